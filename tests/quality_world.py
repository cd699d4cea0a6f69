"""Hand-built sessions for the label-quality tests: answers per reviewer and item, as `assessments` rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline import adjudication

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ASSESSMENT_SCHEMA = {
    "assessment_id": pl.String, "trace_id": pl.String, "span_id": pl.String, "session": pl.String,
    "assessment_name": pl.String, "kind": pl.String, "assessment_value": pl.String, "rationale": pl.String,
    "source_type": pl.String, "assessor_id": pl.String, "metadata": pl.String, "schema_version": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"), "updated_at": pl.Datetime("us", "UTC"), "overrides": pl.String,
    "valid": pl.Boolean, "submission_id": pl.String,
}


def answer(who: str, trace_id: str, name: str, value, *, session: str | None = "s", source_type: str = "HUMAN",
           kind: str = "feedback", minutes: int = 0, metadata: dict | None = None, assessment_id: str | None = None) -> dict:
    when = T0 + timedelta(minutes=minutes)
    assessment_id = assessment_id or f"a-{name}-{trace_id}-{who}"
    return {
        "assessment_id": assessment_id, "trace_id": trace_id, "span_id": None, "session": session,
        "assessment_name": name, "kind": kind, "assessment_value": json.dumps(value), "rationale": None,
        "source_type": source_type, "assessor_id": who, "metadata": json.dumps(metadata or {}), "schema_version": 1,
        "created_at": when, "updated_at": when, "overrides": None, "valid": True, "submission_id": "s-" + assessment_id,
    }


def table(answers: dict[str, list], name: str, **options) -> list[dict]:
    """Rows from {reviewer: [value per item, None for no answer]} (items tr-0, tr-1, ...)."""
    return [
        answer(who, f"tr-{index}", name, value, **options)
        for who, values in answers.items()
        for index, value in enumerate(values)
        if value is not None
    ]


def gold(who: str, trace_id: str, name: str, value, settles: list[str], *, session: str = "s", kind: str = "feedback",
         minutes: int = 60) -> dict:
    """An adjudication row as the pipeline stores it (no session of its own; metadata names what it settles)."""
    return answer(who, trace_id, name, value, session=None, kind=kind, minutes=minutes,
                  metadata={adjudication.SETTLES: settles, adjudication.SESSION: session},
                  assessment_id=f"gold-{name}-{trace_id}")


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ASSESSMENT_SCHEMA)


def schemas(*specs: tuple[str, str, dict]) -> pl.DataFrame:
    """label_schemas rows from (name, input_type, input parameters)."""
    return pl.DataFrame(
        [{"name": n, "version": 1, "type": "feedback", "input_type": t, "input": json.dumps(p), "deleted": False} for n, t, p in specs]
    )
