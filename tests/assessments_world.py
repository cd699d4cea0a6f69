"""A small lake for the assessment tests: the fixture traces, label schemas, a labeling session and its snapshot.

The label-schema and session tables use exactly the columns the labeling module writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)

SCHEMAS = [
    ("summary_quality", "feedback", "categorical", {"options": ["Yes", "No"]}),
    ("relevance", "feedback", "numeric", {"min_value": 0.0, "max_value": 1.0}),
    ("expected_summary", "expectation", "text", {"max_length": 200}),
    ("topics", "feedback", "categorical_list", {"options": ["billing", "login", "other"]}),
    ("key_facts", "expectation", "text_list", {"max_length_each": 20, "max_count": 2}),
    ("correct", "feedback", "pass_fail", {"positive_label": "Correct", "negative_label": "Wrong"}),
]


@dataclass
class World:
    home: FeedbackHome
    lake: Lake
    landing: LandingZone
    trace_ids: list[str]
    client_request_ids: list[str]
    session_traces: list[str]


def fixture_traces() -> pl.DataFrame:
    rows = [json.loads(line)["info"] for line in (FIXTURES / "traces.jsonl").read_text().splitlines() if line.strip()]
    return pl.DataFrame(
        {
            "trace_id": [row["trace_id"] for row in rows],
            "client_request_id": [row.get("client_request_id") for row in rows],
            "request_time": [datetime.fromisoformat(row["request_time"].replace("Z", "+00:00")) for row in rows],
        }
    ).with_columns(pl.col("request_time").dt.cast_time_unit("us"))


def label_schema_rows(schemas: list[tuple[str, str, str, dict]], version: int = 1, deleted: bool = False) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "name": [s[0] for s in schemas],
            "version": [version] * len(schemas),
            "type": [s[1] for s in schemas],
            "input_type": [s[2] for s in schemas],
            "input": [json.dumps(s[3]) for s in schemas],
            "title": [s[0].replace("_", " ").title() for s in schemas],
            "instruction": [None] * len(schemas),
            "enable_comment": [True] * len(schemas),
            "deleted": [deleted] * len(schemas),
        },
        schema_overrides={"instruction": pl.String},
    )


def build_world(tmp_path: Path, monkeypatch, session_size: int = 10) -> World:
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "home"))
    for variable in ("FEEDBACK_LAKE_URI", "FEEDBACK_LANDING_URI", "DAGSTER_HOME", "FEEDBACK_STORAGE_OPTIONS"):
        monkeypatch.delenv(variable, raising=False)
    home = FeedbackHome.from_env()
    lake = home.lake()
    traces = fixture_traces()
    lake.merge("traces", traces, on=["trace_id"])
    lake.merge("label_schemas", label_schema_rows(SCHEMAS), on=["name", "version"])
    session_traces = traces["trace_id"].head(session_size).to_list()
    lake.merge(
        "labeling_sessions",
        pl.DataFrame(
            {
                "labeling_session_id": ["ls-1"],
                "name": ["review-1"],
                "assigned_users": [["alice@example.com", "bob@example.com"]],
                "label_schemas": [["summary_quality", "expected_summary", "correct"]],
                "reviews_per_item": [1],
                "deleted": [False],
            }
        ),
        on=["labeling_session_id"],
    )
    lake.merge(
        "session_items",
        pl.DataFrame(
            {
                "session_id": ["ls-1"] * len(session_traces),
                "session_name": ["review-1"] * len(session_traces),
                "item_id": [f"it-{i}" for i in range(len(session_traces))],
                "trace_id": session_traces,
                "added_at": [NOW] * len(session_traces),
            }
        ).with_columns(pl.col("added_at").dt.cast_time_unit("us")),
        on=["session_id", "item_id"],
    )
    return World(home, lake, home.landing(), traces["trace_id"].to_list(),
                 traces["client_request_id"].to_list(), session_traces)
