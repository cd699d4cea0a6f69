"""The Dagster side: the submissions sensor (batching, cursor, run keys), runs over key ranges and
date ranges (single-run backfills), pending_run_requests and the asset checks. Real instance, real lake."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest
from bench.assessments import process_pending_submissions
from assessments_world import build_world, label_schema_rows

import feedback_pipeline_dagster.sensors.assessments as sensor_module
from feedback_pipeline_dagster.assets.assessments import (
    TAG_AFTER,
    TAG_LAST,
    assessments,
    assessments_match_label_schemas,
    every_submission_accounted_for,
    submissions,
)
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import assessments as core
from feedback_pipeline import assessment_tables as tables
from feedback_pipeline.search import search_assessments
from feedback_pipeline.entities import AssessmentSource
from feedback_pipeline.landing import record_processed
from feedback_pipeline.submission_contract import AREA
from feedback_pipeline.submissions import submission

ALICE = AssessmentSource("HUMAN", "alice@example.com")


@pytest.fixture
def world(tmp_path, monkeypatch):
    return build_world(tmp_path, monkeypatch)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def resources(world) -> dict:
    return {"lake": LakeResource(uri=world.lake.uri), "landing": LandingResource(uri=world.landing.uri)}


def land_on(world, when: datetime, records: list[dict]) -> str:
    """Land a submissions file as if it had arrived at `when`."""
    key = world.landing.new_key(AREA, when_ns=int(when.timestamp() * 1e9))
    path = world.landing.path(key)
    world.landing.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    world.landing.fs.pipe_file(path, ("\n".join(json.dumps(r) for r in records) + "\n").encode())
    return key


def answer(world, index: int, value: str = "Yes") -> dict:
    return submission(trace_id=world.trace_ids[index], name="summary_quality", value=value, source=ALICE)


def run(world, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [submissions, assessments, assessments_match_label_schemas, every_submission_accounted_for],
        partition_key=request.partition_key,
        tags=dict(request.tags),
        resources=resources(world),
        instance=instance,
    )


def run_suite_check(world, instance) -> dg.ExecuteInProcessResult:
    """Execute only the label-schema suite check, as from the UI (no sensor run tags)."""
    return dg.materialize(
        [assessments, assessments_match_label_schemas],
        selection=dg.AssetSelection.checks(assessments_match_label_schemas),
        resources=resources(world),
        instance=instance,
    )


def test_sensor_cuts_a_backlog_into_bounded_batches_and_advances_its_cursor(world, instance, monkeypatch):
    monkeypatch.setattr(sensor_module, "FILES_PER_TICK", 5)
    monkeypatch.setattr(sensor_module, "FILES_PER_RUN", 2)
    yesterday = datetime.now(tz=UTC) - timedelta(days=1)
    old = [land_on(world, yesterday + timedelta(seconds=i), [answer(world, i)]) for i in range(3)]
    new = [world.landing.write_lines(AREA, [json.dumps(answer(world, 10 + i))]) for i in range(4)]

    context = dg.build_sensor_context(instance=instance, resources=resources(world))
    first = sensor_module.submissions_sensor(context)
    assert first.cursor == new[1]
    requests = first.run_requests
    assert [r.partition_key for r in requests] == [old[0][12:22], old[0][12:22], new[0][12:22]]
    assert [r.tags[TAG_LAST] for r in requests] == [old[1], old[2], new[1]]
    assert [r.tags[TAG_AFTER] for r in requests] == ["", old[1], ""], "a day's first batch starts at its day folder"
    assert all(r.job_name == "assessments_job" for r in requests)

    replay = sensor_module.submissions_sensor(dg.build_sensor_context(instance=instance, resources=resources(world)))
    assert [r.run_key for r in replay.run_requests] == [r.run_key for r in requests], "run keys are deterministic"

    second = sensor_module.submissions_sensor(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources(world))
    )
    assert [r.tags[TAG_LAST] for r in second.run_requests] == [new[3]]
    assert second.cursor == new[3]
    idle = sensor_module.submissions_sensor(
        dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=resources(world))
    )
    assert isinstance(idle, dg.SkipReason)

    for request in [*requests, *second.run_requests]:
        assert run(world, instance, request).success
    assert search_assessments(lake=world.lake).height == 7


def test_sensor_without_a_cursor_starts_at_what_the_lake_already_collected(world, instance):
    world.landing.write_lines(AREA, [json.dumps(answer(world, 0))])
    process_pending_submissions(world.lake, world.landing)
    context = dg.build_sensor_context(instance=instance, resources=resources(world))
    assert isinstance(sensor_module.submissions_sensor(context), dg.SkipReason)


def test_submissions_wait_for_trace_files_that_landed_before_them(world, instance):
    trace_key = world.landing.write("traces", b"{}\n")
    early = land_on(world, datetime.now(tz=UTC) - timedelta(minutes=5), [answer(world, 0)])
    late = world.landing.write_lines(AREA, [json.dumps(answer(world, 1))])
    ticked = sensor_module.submissions_sensor(dg.build_sensor_context(instance=instance, resources=resources(world)))
    assert [r.tags[TAG_LAST] for r in ticked.run_requests] == [early] and ticked.cursor == early
    waiting = sensor_module.submissions_sensor(
        dg.build_sensor_context(instance=instance, cursor=ticked.cursor, resources=resources(world))
    )
    assert isinstance(waiting, dg.SkipReason) and "wait for earlier trace files" in waiting.skip_message
    record_processed(world.lake, "traces", pl.DataFrame({"landing_key": [trace_key], "received": [1], "accepted": [1],
                                                          "rejected": [0]}))
    resumed = sensor_module.submissions_sensor(
        dg.build_sensor_context(instance=instance, cursor=ticked.cursor, resources=resources(world))
    )
    assert [r.tags[TAG_LAST] for r in resumed.run_requests] == [late]


def test_a_run_records_accounting_and_the_checks_pass(world, instance):
    world.landing.write_lines(AREA, [json.dumps(answer(world, 0)), json.dumps(answer(world, 1, "Maybe")), "oops"])
    [request] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    result = run(world, instance, request)
    assert result.success
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    metadata = events["assessments"]
    assert metadata["received"].value == 3 and metadata["accepted"].value == 1 and metadata["rejected"].value == 2
    assert metadata["accounted"].value is True
    assert "delta_version" in metadata and "delta_version" in events["submissions"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["assessments_match_label_schemas"].passed
    assert checks["every_submission_accounted_for"].passed
    assert sensor_module.pending_run_requests(world.lake, world.landing, instance) == []


def test_the_label_schema_suite_flags_assessments_a_schema_change_made_invalid(world, instance):
    world.landing.write_lines(AREA, [json.dumps(answer(world, 0, "Yes"))])
    [request] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    assert run(world, instance, request).success
    narrowed = [("summary_quality", "feedback", "categorical", {"options": ["Good", "Bad"]})]
    world.lake.merge("label_schemas", label_schema_rows(narrowed, version=2), on=["name", "version"])
    result = run_suite_check(world, instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["failed_expectations"].value == 1
    [header, _, failure] = evaluation.metadata["failures"].value.splitlines()
    row = dict(zip(header.strip("| ").split(" | "), failure.strip("| ").split(" | "), strict=True))
    assert row["suite"] == "schema:summary_quality" and row["unexpected_count"] == "1"
    assert row["sample"] == "['Yes']"


def test_single_run_backfill_over_a_date_range_rederives_from_submissions(world, instance):
    today = datetime.now(tz=UTC)
    yesterday = today - timedelta(days=1)
    land_on(world, yesterday, [answer(world, 0, "Maybe")])
    land_on(world, today, [answer(world, 1, "Maybe")])
    for request in sensor_module.pending_run_requests(world.lake, world.landing, instance):
        assert run(world, instance, request).success
    assert search_assessments(lake=world.lake).height == 0
    widened = [("summary_quality", "feedback", "categorical", {"options": ["Yes", "No", "Maybe"]})]
    world.lake.merge("label_schemas", label_schema_rows(widened, version=2), on=["name", "version"])

    result = dg.materialize(
        [submissions, assessments],
        tags={"dagster/asset_partition_range_start": yesterday.date().isoformat(),
              "dagster/asset_partition_range_end": today.date().isoformat()},
        resources=resources(world),
        instance=instance,
    )
    assert result.success
    metadata = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["assessments"]["accepted"].value == 2
    found = search_assessments(lake=world.lake)
    assert found.height == 2 and found["schema_version"].to_list() == [2, 2]
    assert world.lake.read(tables.REJECTIONS).height == 0


def test_pending_run_requests_resume_a_run_that_died_half_way(world, instance):
    world.landing.write_lines(AREA, [json.dumps(answer(world, 0))])
    time.sleep(0.001)
    world.landing.write_lines(AREA, [json.dumps(answer(world, 1))])
    [request] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    dg.materialize([submissions], partition_key=request.partition_key, tags=dict(request.tags),
                   resources=resources(world), instance=instance)  # the run dies after its first step
    [resume] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    assert resume.run_key == request.run_key and resume.tags == request.tags, "the unfinished batch is pending again"
    assert run(world, instance, resume).success
    assert search_assessments(lake=world.lake).height == 2
    assert sensor_module.pending_run_requests(world.lake, world.landing, instance) == []
    assert core.accounting(world.lake)["in_neither"] == 0
    assert world.lake.read(tables.SUBMISSIONS).select(pl.len()).item() == 2


def test_a_sensor_runs_suite_checks_the_assessments_that_run_changed(world, instance):
    world.landing.write_lines(AREA, [json.dumps(answer(world, i)) for i in range(3)])
    [first] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    assert run(world, instance, first).success
    world.landing.write_lines(AREA, [json.dumps(answer(world, 3, "No"))])
    [second] = sensor_module.pending_run_requests(world.lake, world.landing, instance)
    [evaluation] = [
        c for c in run(world, instance, second).get_asset_check_evaluations()
        if c.check_name == "assessments_match_label_schemas"
    ]
    assert evaluation.passed and evaluation.metadata["rows_evaluated"].value == 2, "the new row, once per suite"
    whole = run_suite_check(world, instance)
    [evaluation] = whole.get_asset_check_evaluations()
    assert evaluation.metadata["rows_evaluated"].value == 8, "outside a sensor run: all four rows, once per suite"
