"""Stored answers are validated again when what judged them changes: a label schema, a late trace.

Real Delta tables and the real Dagster instance, through `run_pending` (what `feedback-pipeline run` does)."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl

from feedback_pipeline import revalidation
from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.input_types import InputCategorical
from feedback_pipeline.schemas import create_label_schema
from feedback_pipeline.submissions import land_submissions, submission
from tests.conftest import FIXTURES

JSONL = FIXTURES / "traces.jsonl"


def _quiet(*_args, **_kwargs):
    return None


def _run(home) -> None:
    report = run_pending(home, echo=_quiet)
    assert not report.failures, report.failures


def _answer(trace_id: str, value: str, who: str) -> dict:
    return submission(trace_id=trace_id, name="correct", kind="feedback", value=value,
                      source={"source_type": "HUMAN", "source_id": who})


def _last_assessments_metadata(home) -> dict:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("assessments"))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_a_schema_change_moves_stored_answers_and_says_how_many(home):
    import_traces([str(JSONL)], home.landing())
    create_label_schema("correct", input=InputCategorical(options=["Yes", "No"]), home=home)
    _run(home)
    trace_ids = home.lake().read("traces")["trace_id"].sort().to_list()[:6]
    answers = [_answer(t, "No" if i % 2 else "Yes", f"r{i}@example.com") for i, t in enumerate(trace_ids)]
    land_submissions(home.landing(), answers)
    _run(home)
    lake = home.lake()
    assert lake.read("assessments").filter(pl.col("assessment_name") == "correct").height == 6

    create_label_schema("correct", input=InputCategorical(options=["Yes"]), overwrite=True, home=home)
    _run(home)
    no_ids = {a["submission_id"] for a in answers if a["value"] == "No"}
    current = lake.read("assessments").filter(pl.col("assessment_name") == "correct")
    assert current["assessment_value"].str.json_decode(pl.String).to_list() == ["Yes"] * 3
    rejected = lake.read("rejections").filter(pl.col("submission_id").is_in(list(no_ids)))
    assert rejected.height == 3 and all("not one of its options: Yes" in r for r in rejected["reason"])
    metadata = _last_assessments_metadata(home)
    assert metadata["moved_to_rejections"] == 3 and metadata["moved_to_assessments"] == 0
    assert revalidation.pending_dates(lake) == []
    assert run_pending(home, echo=_quiet).runs == 0, "the request was run once"

    create_label_schema("correct", input=InputCategorical(options=["Yes", "No"]), overwrite=True, home=home)
    _run(home)
    assert lake.read("assessments").filter(pl.col("assessment_name") == "correct").height == 6
    assert _last_assessments_metadata(home)["moved_to_assessments"] == 3


def test_a_submission_waiting_for_its_trace_is_accepted_when_the_trace_lands(home, tmp_path):
    lines = JSONL.read_text().splitlines()
    early, late = tmp_path / "early.jsonl", tmp_path / "late.jsonl"
    early.write_text(lines[0] + "\n")
    late.write_text(lines[1] + "\n")
    late_id = json.loads(lines[1])["info"]["trace_id"]
    late_request = json.loads(lines[1])["info"].get("client_request_id")
    import_traces([str(early)], home.landing())
    _run(home)
    waiting = submission(trace_id=late_id, name="relevance", kind="feedback", value=0.5)
    records = [waiting]
    if late_request:
        records.append(submission(client_request_id=late_request, name="relevance", kind="feedback", value=0.7))
    land_submissions(home.landing(), records)
    _run(home)
    lake = home.lake()
    reasons = lake.read("rejections").filter(pl.col("submission_id") == waiting["submission_id"])["reason"].to_list()
    assert reasons and "is not in the traces table: it is validated again when the trace is ingested" in reasons[0]

    import_traces([str(late)], home.landing())
    _run(home)
    assert lake.read("rejections").filter(pl.col("submission_id").is_in([r["submission_id"] for r in records])).height == 0
    accepted = lake.read("assessments").filter(pl.col("trace_id") == late_id)
    assert accepted.height == len(records)
    assert _last_assessments_metadata(home)["moved_to_assessments"] == len(records)
    assert revalidation.pending_dates(lake) == []


def test_the_sensor_requests_each_revalidation_once(home):
    from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
    from feedback_pipeline_dagster.sensors.assessments import submissions_sensor

    import_traces([str(JSONL)], home.landing())
    _run(home)
    land_submissions(home.landing(), [_answer(home.lake().read("traces")["trace_id"][0], "Yes", "a@example.com")])
    _run(home)
    day = home.lake().read("submissions")["submission_date"][0]
    revalidation.request(home.lake(), pl.Series([day]), "test")
    resources = {"lake": LakeResource(uri=home.lake_uri), "landing": LandingResource(uri=home.landing_uri)}
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = submissions_sensor(context)
        again = submissions_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    [request] = first.run_requests
    assert request.partition_key == day.isoformat() and request.run_key.startswith(f"revalidate:{day.isoformat()}:")
    assert [r.run_key for r in again.run_requests] == [request.run_key], "same request, same run key"
