"""The submission contract is defined once: the parsed frame, the landing records, validation's
limits, a door's limits, the feedback API's model and the docs table all come from it."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from feedback_pipeline import submission_contract as contract
from feedback_pipeline.entities import AssessmentSource
from feedback_pipeline.review_app.feedback_api import FeedbackIn
from feedback_pipeline.submission_parsing import parse_lines
from feedback_pipeline.submissions import submission
from feedback_pipeline.traces import SUBMISSIONS_SCHEMA

DOCS = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def test_the_docs_table_is_the_contract():
    assert contract.field_table() in DOCS.read_text(encoding="utf-8")


def test_parsed_frames_and_landing_records_have_the_contract_fields():
    record = submission(trace_id="tr-1", name="q", value="Yes", source=AssessmentSource("HUMAN", "a@example.com"))
    assert list(record) == list(contract.RECORD_SCHEMA)
    assert list(SUBMISSIONS_SCHEMA) == [*contract.RECORD_SCHEMA, "submission"]
    lines = pl.DataFrame({"landing_key": ["submissions/2026-11-22/05/1763791165350000000-x.jsonl"], "line_number": [1],
                          "raw": [json.dumps(record)]})
    assert parse_lines(lines).schema == pl.Schema(contract.SUBMISSION_SCHEMA)


def _limits_in_validation(record: dict) -> list[str]:
    lines = pl.DataFrame({"landing_key": ["submissions/2026-11-22/05/1763791165350000000-x.jsonl"], "line_number": [1],
                          "raw": [json.dumps(record)]})
    reasons = pl.concat_list([pl.when(condition.fill_null(False)).then(message) for condition, message in contract.limit_rules()])
    return parse_lines(lines).select(reasons.list.drop_nulls()).item().to_list()


def test_a_door_and_validation_apply_the_same_limits():
    record = submission(
        trace_id="t" * 257, client_request_id=None, name="n" * 251, value="v" * 70_000, rationale="r" * 10_001,
        source=AssessmentSource("HUMAN", "u" * 257), metadata={"m": "x" * 17_000}, overrides="o" * 257,
    )
    problems = contract.limit_problems(record)
    assert problems == _limits_in_validation(record)
    assert [p.split(" ")[0] for p in problems] == ["trace_id", "name", "value", "rationale", "source_id", "metadata",
                                                    "overrides"]
    assert contract.limit_problems(submission(trace_id="tr-1", name="q", value=1)) == []


def test_the_feedback_api_model_takes_its_limits_from_the_contract():
    fields = FeedbackIn.model_fields
    limits = {name: next(m.max_length for m in fields[name].metadata if hasattr(m, "max_length"))
              for name in ("trace_id", "client_request_id", "name", "comment", "user_id", "span_id")}
    assert limits == {"trace_id": contract.MAX_ID_CHARS, "client_request_id": contract.MAX_ID_CHARS,
                      "name": contract.MAX_NAME_CHARS, "comment": contract.MAX_RATIONALE_CHARS,
                      "user_id": contract.MAX_ID_CHARS, "span_id": contract.MAX_ID_CHARS}
