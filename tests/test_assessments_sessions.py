"""End to end with the real labeling stage: a session's item status follows the assessments."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import polars as pl

from feedback_pipeline import assessment_tables as tables
from feedback_pipeline.search import search_assessments
from feedback_pipeline import sessions
from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.entities import AssessmentSource
from feedback_pipeline.exports import import_traces
from feedback_pipeline.labeling_file import apply_labeling_file
from feedback_pipeline.submissions import land_submissions, log_feedback, submission

FIXTURES = Path(__file__).parent / "fixtures"


def _quiet(*_args, **_kwargs) -> None:
    return None


def test_item_status_follows_answers_skips_and_rejections(home):
    import_traces([str(FIXTURES / "traces.jsonl")], home.landing())
    with resources.as_file(resources.files("feedback_pipeline.sample_data") / "labeling.yaml") as path:
        apply_labeling_file(path, home=home)
    assert not run_pending(home, echo=_quiet).failures
    lake = home.lake()
    items = lake.read("session_items").filter(pl.col("session_name") == "label_summaries").sort("item_id")
    first, second, third = items["trace_id"].head(3).to_list()
    outside = lake.read("traces").join(items.select("trace_id"), on="trace_id", how="anti")["trace_id"][0]

    alice = AssessmentSource("HUMAN", "alice@example.com")
    log_feedback(trace_id=first, name="summary_quality", value="Yes", source=alice, session="label_summaries", home=home)
    land_submissions(home.landing(), [
        submission(trace_id=second, kind="skip", session="label_summaries", source=alice, origin="review-app"),
        submission(trace_id=third, name="summary_quality", value="Maybe", session="label_summaries", source=alice),
        submission(trace_id=outside, name="summary_quality", value="Yes", session="label_summaries", source=alice),
    ])
    assert not run_pending(home, echo=_quiet).failures

    status = sessions.item_status(items, search_assessments(lake=lake, include_invalid=True), reviews_per_item=1)
    by_trace = dict(zip(status["trace_id"], status["status"], strict=True))
    assert (by_trace[first], by_trace[second], by_trace[third]) == ("completed", "skipped", "pending")
    reasons = lake.read(tables.REJECTIONS)["reason"].to_list()
    assert any("is not one of its options: Yes, No" in r for r in reasons)
    assert any(f"trace {outside} is not in session 'label_summaries''s snapshot" in r for r in reasons)
