"""Input tables for the dataset tests, written to a real lake with the columns of docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline.lake import Lake

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
UTC_TIME = pl.Datetime("us", "UTC")


def trace(trace_id: str, question: str, answer: str, minutes: int = 0, tags: dict | None = None) -> dict:
    return {
        "trace_id": trace_id,
        "request_time": T0 + timedelta(minutes=minutes),
        "state": "OK",
        "request": json.dumps({"question": question}),
        "response": json.dumps(answer),
        "tags": json.dumps(tags or {"mlflow.traceName": "answer"}),
        "session_id": None,
    }


def expectation(
    assessment_id: str,
    trace_id: str,
    name: str,
    value,
    minutes: int = 0,
    source_type: str = "HUMAN",
    valid: bool = True,
    kind: str = "expectation",
    session: str | None = "s1",
    overrides: str | None = None,
) -> dict:
    when = T0 + timedelta(hours=1, minutes=minutes)
    return {
        "assessment_id": assessment_id,
        "trace_id": trace_id,
        "span_id": None,
        "session": session,
        "assessment_name": name,
        "kind": kind,
        "assessment_value": json.dumps(value),
        "error": None,
        "rationale": None,
        "source_type": source_type,
        "assessor_id": "alice@example.com",
        "metadata": "{}",
        "schema_version": 1,
        "created_at": when,
        "updated_at": when,
        "overrides": overrides,
        "valid": valid,
        "submission_id": "s-" + assessment_id,
    }


def write_world(
    lake: Lake,
    traces: list[dict],
    assessments: list[dict],
    sessions: list[dict] | None = None,
    items: list[dict] | None = None,
    schemas: list[dict] | None = None,
) -> None:
    """Write (overwrite) every input table the datasets build reads."""
    sessions = sessions if sessions is not None else [session("s1", "summaries")]
    if items is None:
        items = [item("s1", t["trace_id"]) for t in traces]
    lake.overwrite("traces", pl.DataFrame(traces, schema_overrides={"request_time": UTC_TIME, "session_id": pl.String}))
    lake.overwrite(
        "assessments",
        pl.DataFrame(
            assessments,
            schema={
                "assessment_id": pl.String, "trace_id": pl.String, "span_id": pl.String, "session": pl.String,
                "assessment_name": pl.String, "kind": pl.String, "assessment_value": pl.String, "rationale": pl.String,
                "source_type": pl.String, "assessor_id": pl.String, "metadata": pl.String, "schema_version": pl.Int64,
                "created_at": UTC_TIME, "updated_at": UTC_TIME, "overrides": pl.String, "valid": pl.Boolean,
                "submission_id": pl.String,
            },
        ),
    )
    lake.overwrite(
        "labeling_sessions",
        pl.DataFrame(
            sessions,
            schema={
                "labeling_session_id": pl.String, "name": pl.String, "assigned_users": pl.List(pl.String),
                "label_schemas": pl.List(pl.String), "reviews_per_item": pl.Int64, "dataset": pl.String,
                "deleted": pl.Boolean,
            },
        ),
    )
    lake.overwrite(
        "session_items",
        pl.DataFrame(items, schema={"session_id": pl.String, "session_name": pl.String, "item_id": pl.String, "trace_id": pl.String}),
    )
    lake.overwrite(
        "label_schemas",
        pl.DataFrame(
            schemas if schemas is not None else [label_schema("expected_summary", "text", {}), label_schema("topic", "categorical", {"options": ["billing", "shipping", "other"]})],
            schema={"name": pl.String, "version": pl.Int64, "type": pl.String, "input_type": pl.String, "input": pl.String, "deleted": pl.Boolean},
        ),
    )


def session(session_id: str, dataset: str | None, name: str | None = None, deleted: bool = False) -> dict:
    return {
        "labeling_session_id": session_id,
        "name": name or f"session-{session_id}",
        "assigned_users": ["alice@example.com"],
        "label_schemas": ["expected_summary", "topic"],
        "reviews_per_item": 1,
        "dataset": dataset,
        "deleted": deleted,
    }


def item(session_id: str, trace_id: str, session_name: str | None = None) -> dict:
    return {"session_id": session_id, "session_name": session_name or f"session-{session_id}", "item_id": f"i-{session_id}-{trace_id}", "trace_id": trace_id}


def label_schema(name: str, input_type: str, params: dict, version: int = 1, kind: str = "expectation") -> dict:
    return {"name": name, "version": version, "type": kind, "input_type": input_type, "input": json.dumps(params), "deleted": False}


def materialize(lake: Lake, name: str, instance, run_config: dict | None = None):
    """One real Dagster run of the `evaluation_datasets` partition `name` (the partition is added first)."""
    import dagster as dg

    from feedback_pipeline_dagster.assets.datasets import evaluation_datasets
    from feedback_pipeline_dagster.assets.resources import LakeResource

    if not instance.has_dynamic_partition("evaluation_datasets", name):
        instance.add_dynamic_partitions("evaluation_datasets", [name])
    return dg.materialize(
        [evaluation_datasets],
        partition_key=name,
        instance=instance,
        resources={"lake": LakeResource(uri=lake.uri)},
        run_config=run_config,
        raise_on_error=False,
    )


def disagreeing_world(lake: Lake) -> None:
    """One trace, three reviewers: topic billing, billing, shipping; summary short, long (latest), short."""
    write_world(
        lake,
        [trace("tr-1", "q1", "a")],
        [
            expectation("a-1", "tr-1", "topic", "billing", 0),
            expectation("a-2", "tr-1", "topic", "billing", 1),
            expectation("a-3", "tr-1", "topic", "shipping", 2),
            expectation("a-4", "tr-1", "expected_summary", "short", 0),
            expectation("a-5", "tr-1", "expected_summary", "long", 1),
            expectation("a-6", "tr-1", "expected_summary", "short", -1),
        ],
    )
