"""The Review App's side of label quality: the Disagreements view for a session's adjudicators, and
the agreement panel (with a server-rendered SVG chart) on the session page.

Only adjudicators see other reviewers' answers: the Disagreements view lists the items where the
reviewers' answers to a question differ and no adjudication settled them yet, every answer with
who gave it; the adjudicator picks one or writes the gold value, which lands as a submission
(`feedback_pipeline.adjudication.adjudication_submission`) and leaves the list once the pipeline
has processed it. Reviewers keep seeing only their own answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from feedback_pipeline import adjudication, agreement
from feedback_pipeline.session_roles import is_adjudicator, sees_agreement
from feedback_pipeline.review_app.answers import Question, parse_answers
from feedback_pipeline.submissions import land_submissions

CHART_WIDTH = 360
BAR_HEIGHT = 18
BAR_GAP = 8
LABEL_WIDTH = 160
ADJUDICATION_COLUMNS = ("assessment_id", "trace_id", "assessment_name", "metadata", "valid", "updated_at")


class Adjudications:
    """The lake's adjudications per session, re-read when `assessments` gets a new version (checked
    at most every `ttl` seconds): they have no session of their own, so the session's cached
    assessments do not hold them."""

    def __init__(self, lake: Any, ttl: float) -> None:
        self.lake = lake
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int | None, float, pl.DataFrame]] = {}

    def of(self, session: str) -> pl.DataFrame:
        cached = self._cache.get(session)
        if cached and time.monotonic() - cached[1] < self.ttl:
            return cached[2]
        with self._lock:
            version = self.lake.version("assessments")
            if cached and cached[0] == version:
                frame = cached[2]
            else:
                scan = self.lake.scan("assessments")
                frame = (
                    pl.DataFrame(schema={"trace_id": pl.String, "assessment_name": pl.String, "settles": pl.List(pl.String)})
                    if scan is None
                    else scan.select(ADJUDICATION_COLUMNS)
                    .filter(pl.col("valid").fill_null(True) & (adjudication.adjudicated_session() == session))
                    .select("trace_id", "assessment_name", adjudication.settles().alias("settles"))
                    .collect()
                )
            self._cache[session] = (version, time.monotonic(), frame)
            return frame


def _display(value: str | None) -> str:
    decoded = None if value is None else json.loads(value)
    if isinstance(decoded, list):
        return ", ".join(str(v) for v in decoded) or "(none)"
    return str(decoded).lower() if isinstance(decoded, bool) else str(decoded)


def open_disagreements(state: Any, session: Mapping[str, Any], adjudications: Adjudications) -> list[dict[str, Any]]:
    """What the Disagreements view lists: per (item, question) still unsettled, every reviewer's answer."""
    name = str(session["name"])
    questions, _ = state.data.questions(session)
    frame = state.data.tables.frame("assessments", ("session", name))
    schemas = state.data.tables.frame("label_schemas")
    if frame is None or schemas is None or frame.height == 0:
        return []
    ratings = agreement.session_ratings(frame, name, [q.name for q in questions], schemas)
    rows = agreement.disagreements(ratings, adjudications.of(name))
    items = state.data.items(session)
    by_trace = {t: i for i, t in zip(items.ids, items.traces, strict=True)}
    by_name = {q.name: q for q in questions}
    out = []
    for row in rows.iter_rows(named=True):
        if row["trace_id"] not in by_trace:
            continue
        choices: dict[str, dict[str, Any]] = {}
        for answer in row["answers"]:
            choice = choices.setdefault(answer["value"], {"value": answer["value"], "label": _display(answer["value"]), "by": []})
            choice["by"].append(answer["assessor_id"])
        out.append({
            "trace_id": row["trace_id"], "item_id": by_trace[row["trace_id"]], "question": by_name[row["label_schema"]],
            "answers": [{**a, "label": _display(a["value"])} for a in row["answers"]], "choices": list(choices.values()),
            "preview": items.row(by_trace[row["trace_id"]]).get("request_preview"),
        })
    return out


def _gold_form(question: Question, written: str) -> dict[str, list[str]]:
    """A written gold value as the item form would post it (lists: comma-separated)."""
    if question.input_type in ("categorical_list", "text_list"):
        return {f"answer:{question.name}": [part.strip() for part in written.split(",") if part.strip()]}
    if question.input_type == "pass_fail":
        labels = {label.lower(): value for value, label in question.choices}
        written = labels.get(written.strip().lower(), written.strip().lower())
    return {f"answer:{question.name}": [written]}


def agreement_chart(rows: pl.DataFrame | None) -> dict[str, Any] | None:
    """Bars of alpha (or exact match) and percent agreement per question, laid out for inline SVG."""
    if rows is None or rows.height == 0:
        return None
    bars = []
    questions = sorted(set(rows.get_column("label_schema").to_list()))
    for index, question in enumerate(questions):
        mine = {r["metric"]: r for r in rows.filter(pl.col("label_schema") == question).to_dicts()}
        first = mine.get("krippendorff_alpha") or mine.get("exact_match") or {}
        percent = mine.get("percent_agreement") or {}
        y = index * (2 * BAR_HEIGHT + BAR_GAP)
        for offset, (label, row, css) in enumerate(
            (("alpha" if "krippendorff_alpha" in mine else "exact match", first, "alpha"), ("agreement", percent, "percent"))
        ):
            value = row.get("value")
            bars.append({
                "question": question if offset == 0 else "", "metric": label, "css": css,
                "y": y + offset * BAR_HEIGHT, "width": 0 if value is None else round(max(value, 0.0) * CHART_WIDTH, 1),
                "text": "—" if value is None else f"{value:.2f}", "note": row.get("note") or "",
                "items": row.get("items"), "reviewers": row.get("reviewers"),
            })
    height = len(questions) * (2 * BAR_HEIGHT + BAR_GAP)
    return {"bars": bars, "width": LABEL_WIDTH + CHART_WIDTH + 150, "height": height, "label_width": LABEL_WIDTH,
            "chart_width": CHART_WIDTH, "bar_height": BAR_HEIGHT - 4}


def adjudication_router(
    state: Any, reviewer_and_session: Callable[[Request, str], tuple[str, dict[str, Any]] | Response]
) -> APIRouter:
    """The Disagreements routes (GET lists, POST adjudicates), for the session's adjudicators only."""
    router = APIRouter(include_in_schema=False)
    adjudications = Adjudications(state.data.tables.lake, state.data.tables.ttl)

    def adjudicator_and_session(request: Request, name: str) -> tuple[str, dict[str, Any]] | Response:
        found = reviewer_and_session(request, name)
        if isinstance(found, Response):
            return found
        reviewer, session = found
        if not is_adjudicator(session, reviewer):
            return state.problem(request, 403, "Adjudicators only",
                                 f"Only the adjudicators of {name!r} see the reviewers' answers side by side.", reviewer)
        return found

    def page(request: Request, reviewer: str, session: dict[str, Any], status_code: int = 200, **extra: Any) -> Response:
        rows = open_disagreements(state, session, adjudications)
        return state.render(request, "disagreements.html", status_code, reviewer, session=session, rows=rows,
                            saved=request.query_params.get("saved"), errors=extra.pop("errors", {}), **extra)

    @router.get("/sessions/{name}/disagreements")
    def disagreements_page(request: Request, name: str) -> Response:
        found = adjudicator_and_session(request, name)
        if isinstance(found, Response):
            return found
        return page(request, *found)

    @router.post("/sessions/{name}/disagreements")
    async def adjudicate(request: Request, name: str) -> Response:
        form = await request.form()
        posted = {key: str(form.get(key, "")) for key in ("csrf_token", "trace_id", "question", "choice", "gold")}
        found = adjudicator_and_session(request, name)
        if isinstance(found, Response):
            return found
        reviewer, session = found
        if not state.csrf_ok(request, posted["csrf_token"], reviewer):
            return state.problem(request, 403, "Form expired", "The form's security token did not match; reload the page.", reviewer)
        row = next((r for r in open_disagreements(state, session, adjudications)
                    if r["trace_id"] == posted["trace_id"] and r["question"].name == posted["question"]), None)
        if row is None:
            return state.problem(request, 404, "Nothing to settle",
                                 f"trace_id {posted['trace_id']!r}, question {posted['question']!r}: expected an open "
                                 "disagreement of this session (it may have been settled already).", reviewer)
        question: Question = row["question"]
        key = f"{row['trace_id']}|{question.name}"
        if posted["gold"].strip():
            answers, errors = parse_answers([question], _gold_form(question, posted["gold"]))
            if errors:
                return page(request, reviewer, session, 422, errors={key: next(iter(errors.values()))})
            value = answers[question.name].value
        elif posted["choice"] in {c["value"] for c in row["choices"]}:
            value = json.loads(posted["choice"])
        else:
            return page(request, reviewer, session, 422, errors={key: "pick one of the answers or write the gold value"})
        record = adjudication.adjudication_submission(
            session=name, trace_id=row["trace_id"], name=question.name, kind=question.kind, value=value,
            adjudicator=reviewer, settled_ids=[a["assessment_id"] for a in row["answers"]],
            extra_metadata={"schema_version": question.version, "item_id": row["item_id"]},
        )
        land_submissions(state.landing, [record], label=adjudication.ORIGIN)
        target = f"/sessions/{quote(name, safe='')}/disagreements?saved={quote(row['trace_id'], safe='')}"
        return RedirectResponse(target, status_code=303)

    return router


def session_quality(state: Any, session: Mapping[str, Any], reviewer: str) -> dict[str, Any] | None:
    """The session page's agreement panel, for the session's adjudicators and owners (None for everyone else)."""
    if not sees_agreement(session, reviewer):
        return None
    rows = state.data.tables.frame(agreement.TABLE, ("session", str(session["name"])))
    return {"chart": agreement_chart(rows), "adjudicator": is_adjudicator(session, reviewer)}
