"""A trace as a reviewer reads it: chat messages as sanitised markdown, documents, tool calls, span tree.

Everything here comes from the traced application and is untrusted. Markdown is rendered with raw
HTML disabled (a `<script>` stays text) and the result is cleaned by nh3 as a second wall; every
other string is left to Jinja's autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_MAX_SPANS = 2000
MARKDOWN_KEPT = 256


@lru_cache(maxsize=MARKDOWN_KEPT)
def markdown_html(text: str | None) -> Markup:
    """Markdown rendered to HTML that cannot run script or load anything but plain links.

    The last `MARKDOWN_KEPT` texts are kept: a session's guidelines are on every item page, and
    system prompts repeat across traces."""
    html = _MARKDOWN.render(text or "")
    clean = nh3.clean(html, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return Markup(clean)


def pretty_json(value: Any) -> str:
    """JSON text (or a JSON-holding string) indented for reading; other strings unchanged."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, ValueError):
            return value
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def safe_link(uri: str | None) -> str | None:
    """The URI when it is an http(s) link a browser may follow, else None (shown as text)."""
    if not uri:
        return None
    return uri if urlparse(uri).scheme in ("http", "https") else None


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, ValueError):
            return value
    return value


def answer_text(response: Any) -> str | None:
    """The final answer's text when the response is a string or an OpenAI-style/keyed object."""
    value = _loads(response)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            message = choices[0].get("message") or {}
            if isinstance(message, Mapping) and isinstance(message.get("content"), str):
                return message["content"]
        for key in ("content", "output", "answer", "response", "text"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


@dataclass
class SpanNode:
    """One span in the collapsible tree."""

    name: str
    span_type: str
    status: str
    duration_ms: float | None
    inputs: str
    outputs: str
    attributes: str
    children: list[SpanNode] = field(default_factory=list)


def span_tree(spans_json: str | None) -> list[SpanNode]:
    """The spans (the `spans` JSON column) as a forest ordered by start time; cycles are cut."""
    spans = _loads(spans_json) or []
    if not isinstance(spans, list):
        return []
    spans = [s for s in spans if isinstance(s, Mapping)][:_MAX_SPANS]
    spans.sort(key=lambda s: s.get("start_time_ns") or 0)
    nodes: dict[str, SpanNode] = {}
    parents: dict[str, str | None] = {}
    order: list[str] = []
    for index, span in enumerate(spans):
        span_id = str(span.get("span_id") or f"#{index}")
        start, end = span.get("start_time_ns"), span.get("end_time_ns")
        duration = (end - start) / 1e6 if isinstance(start, int) and isinstance(end, int) else None
        status = span.get("status")
        if isinstance(status, Mapping):
            status = status.get("status_code") or status.get("code")
        nodes[span_id] = SpanNode(
            name=str(span.get("name") or "span"),
            span_type=str(span.get("span_type") or ""),
            status=str(status or ""),
            duration_ms=duration,
            inputs=pretty_json(span.get("inputs")) if span.get("inputs") is not None else "",
            outputs=pretty_json(span.get("outputs")) if span.get("outputs") is not None else "",
            attributes=pretty_json(span.get("attributes")) if span.get("attributes") else "",
        )
        parent = span.get("parent_id")
        parents[span_id] = str(parent) if parent else None
        order.append(span_id)
    roots: list[SpanNode] = []
    for span_id in order:
        parent = parents[span_id]
        if parent is None or parent not in nodes or _in_cycle(span_id, parents):
            roots.append(nodes[span_id])
        else:
            nodes[parent].children.append(nodes[span_id])
    return roots


def _in_cycle(span_id: str, parents: Mapping[str, str | None]) -> bool:
    """True when following parents from `span_id` comes back to it."""
    seen: set[str] = set()
    current = parents.get(span_id)
    while current is not None and current in parents and current not in seen:
        if current == span_id:
            return True
        seen.add(current)
        current = parents[current]
    return False


@dataclass
class TraceView:
    """What the item page shows of a trace."""

    messages: list[dict[str, Any]]
    request: str
    answer_html: Markup | None
    response: str
    documents: list[dict[str, Any]]
    tool_calls: list[dict[str, str]]
    spans: list[SpanNode]


def trace_view(item: Mapping[str, Any]) -> TraceView:
    """Build the reviewer's view of one `session_items` row."""
    answer = answer_text(item.get("response"))
    messages = [m for m in (item.get("chat_messages") or []) if isinstance(m, Mapping)]
    if answer is not None and messages and messages[-1].get("role") == "assistant" and (
        (messages[-1].get("content") or "").strip() == answer.strip()
    ):
        messages = messages[:-1]
    return TraceView(
        messages=[
            {"role": str(m.get("role") or ""), "html": markdown_html(str(m.get("content") or ""))} for m in messages
        ],
        request=pretty_json(item.get("request")) if item.get("request") is not None else "",
        answer_html=markdown_html(answer) if answer is not None else None,
        response=pretty_json(item.get("response")) if item.get("response") is not None else "",
        documents=[
            {
                "id": str(d.get("id") or ""),
                "content": str(d.get("page_content") or ""),
                "uri": str(d.get("doc_uri") or ""),
                "href": safe_link(d.get("doc_uri")),
            }
            for d in _documents(item.get("retrieved_documents"))
        ],
        tool_calls=[
            {"name": str(t.get("name") or ""), "inputs": pretty_json(t.get("inputs")), "outputs": pretty_json(t.get("outputs"))}
            for t in (item.get("tool_calls") or [])
            if isinstance(t, Mapping)
        ],
        spans=span_tree(item.get("spans")),
    )


def _documents(value: Sequence[Any] | None) -> list[Mapping[str, Any]]:
    return [d for d in (value or []) if isinstance(d, Mapping)]
