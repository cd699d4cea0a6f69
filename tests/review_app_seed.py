"""Lake tables in the contract's shape (docs/ARCHITECTURE.md) for Review App tests and the benchmark.

Written with `Lake` directly: the labeling assets that normally write them are not needed to
exercise the app, which only reads them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline.lake import Lake

SCRIPT = "<script>document.title='pwned';window.__pwned=1;alert('xss')</script>"
LONG = "https://example.com/" + "a1b2c3d4" * 400  # one unbroken string of 3,220 characters
LONG_INDEX = 3
GUIDELINES = "Judge **only** the final answer.\n\n- Cite the document id when it is wrong."

SCHEMAS = [
    ("quality", "feedback", "Overall quality", "How good is the final answer?", True, "categorical",
     {"options": ["Good", "Okay", "Bad"]}),
    ("issues", "feedback", "Issues found", "Tick every problem you see.", False, "categorical_list",
     {"options": ["Hallucination", "Off topic", "Too long"], "required": False}),
    ("rating", "feedback", "Rating", "1 (poor) to 5 (excellent).", False, "numeric", {"min_value": 1, "max_value": 5}),
    ("summary", "feedback", "Summary", "One sentence on the answer.", False, "text",
     {"max_length": 40, "required": False}),
    ("expected_facts", "expectation", "Expected facts", "Facts a correct answer must state.", False, "text_list",
     {"max_length_each": 50, "max_count": 3}),
    ("correct", "feedback", "Is it correct?", "", False, "pass_fail",
     {"positive_label": "Correct", "negative_label": "Wrong"}),
]


def schema_rows() -> pl.DataFrame:
    rows = [
        {"name": n, "version": 1, "type": t, "title": title, "instruction": instr, "enable_comment": comment,
         "input_type": it, "input": json.dumps(params), "deleted": False}
        for n, t, title, instr, comment, it, params in SCHEMAS
    ]
    rows.append({**rows[0], "version": 0, "title": "Old quality", "input": json.dumps({"options": ["Yes", "No"]})})
    return pl.DataFrame(rows)


def session_rows() -> pl.DataFrame:
    every = [s[0] for s in SCHEMAS]
    return pl.DataFrame(
        [
            {"labeling_session_id": "ls-1", "name": "triage", "assigned_users": [], "label_schemas": every,
             "reviews_per_item": 2, "dataset": None, "deleted": False, "reservation_minutes": 15,
             "guidelines": GUIDELINES, "assignments": json.dumps({"tr-triage-0003": ["dave@example.com"]})},
            {"labeling_session_id": "ls-2", "name": "restricted", "assigned_users": ["Bob@example.com"],
             "label_schemas": ["quality"], "reviews_per_item": 1, "dataset": None, "deleted": False},
            {"labeling_session_id": "ls-3", "name": "gone", "assigned_users": [], "label_schemas": ["quality"],
             "reviews_per_item": 1, "dataset": None, "deleted": True},
        ],
        schema={"labeling_session_id": pl.String, "name": pl.String, "assigned_users": pl.List(pl.String),
                "label_schemas": pl.List(pl.String), "reviews_per_item": pl.Int64, "dataset": pl.String,
                "deleted": pl.Boolean, "reservation_minutes": pl.Int64, "guidelines": pl.String, "assignments": pl.String},
    )


def item_row(session_id: str, session_name: str, index: int, when: datetime, hostile: bool = False) -> dict:
    trace_id = f"tr-{session_name}-{index:04d}"
    question = f"What is the capital of country number {index}?"
    answer = f"The capital is **City {index}**." + (f" {SCRIPT}" if hostile else "") + (f" See {LONG}" if index == LONG_INDEX else "")
    doc = "Capital cities are listed here." + (f" {SCRIPT}" if hostile else "")
    spans = [
        {"span_id": "s1", "parent_id": None, "name": "agent", "span_type": "AGENT", "start_time_ns": 0,
         "end_time_ns": 5_000_000, "status": "OK", "inputs": {"question": question}, "outputs": answer, "attributes": {}},
        {"span_id": "s2", "parent_id": "s1", "name": "retrieve" + (SCRIPT if hostile else ""), "span_type": "RETRIEVER",
         "start_time_ns": 100, "end_time_ns": 2_000_000, "status": "OK", "inputs": {"query": question},
         "outputs": [{"page_content": doc}], "attributes": {}},
        {"span_id": "s3", "parent_id": "s1", "name": "lookup_population", "span_type": "TOOL", "start_time_ns": 2_000_100,
         "end_time_ns": 3_000_000, "status": "OK", "inputs": {"city": f"City {index}"}, "outputs": {"population": 1000},
         "attributes": {}},
    ]
    return {
        "session_id": session_id,
        "session_name": session_name,
        "item_id": f"it-{index:04d}",
        "trace_id": trace_id,
        "added_at": when + timedelta(seconds=index),
        "request": json.dumps({"messages": [{"role": "user", "content": question}]}),
        "response": json.dumps(answer),
        "request_preview": question,
        "response_preview": answer[:100],
        "chat_messages": [
            {"role": "system", "content": "You are a geography assistant."},
            {"role": "user", "content": question + (f" {SCRIPT}" if hostile else "")},
            {"role": "assistant", "content": answer},
        ],
        "retrieved_documents": [
            {"id": LONG[-300:] if index == LONG_INDEX else "doc-1", "page_content": doc,
             "doc_uri": LONG if index == LONG_INDEX else "https://example.com/capitals"},
            {"id": "doc-2", "page_content": "Local notes.", "doc_uri": "javascript:alert(1)"},
        ],
        "tool_calls": [{"name": "lookup_population", "inputs": json.dumps({"city": f"City {index}"}),
                        "outputs": json.dumps({"population": 1000})}],
        "spans": json.dumps(spans),
        "tags": "{}",
        "trace_metadata": "{}",
        "request_time": when,
    }


def item_rows(session_id: str, session_name: str, count: int, hostile_index: int | None = None) -> pl.DataFrame:
    when = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    return pl.DataFrame([item_row(session_id, session_name, i, when, i == hostile_index) for i in range(1, count + 1)])


def seed(lake: Lake, items: int = 3, hostile_index: int | None = 2) -> None:
    """label_schemas, labeling_sessions and session_items: `items` items in triage, 2 in restricted."""
    lake.append("label_schemas", schema_rows())
    lake.append("labeling_sessions", session_rows())
    lake.append("session_items", pl.concat([item_rows("ls-1", "triage", items, hostile_index), item_rows("ls-2", "restricted", 2)]))


def assessment_rows(rows: list[dict]) -> pl.DataFrame:
    """`assessments` rows in the contract's columns (what the assessments pipeline writes)."""
    now = datetime.now(UTC)
    base = {"span_id": None, "rationale": None, "source_type": "HUMAN", "metadata": "{}", "schema_version": 1,
            "created_at": now, "updated_at": now, "overrides": None, "valid": True}
    return pl.DataFrame([{**base, **row} for row in rows]).with_columns(
        pl.col("created_at").dt.cast_time_unit("us"), pl.col("updated_at").dt.cast_time_unit("us")
    )
