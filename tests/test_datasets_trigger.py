"""The dataset build follows its inputs within seconds: the datasets sensors evaluated on the real
materializations and runs of a real instance (the one `feedback-pipeline run` records in)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import log_expectation
from feedback_pipeline.cli.pipeline import instance_for, run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.input_types import InputText
from feedback_pipeline.schemas import create_label_schema
from feedback_pipeline.sessions import create_labeling_session
from feedback_pipeline_dagster.sensors.datasets import (
    evaluation_datasets_after_build_sensor,
    evaluation_datasets_job,
    evaluation_datasets_on_inputs_sensor,
    evaluation_datasets_sensor,
)

SAMPLE_TRACES = Path(__file__).resolve().parents[1] / "feedback_pipeline" / "sample_data" / "mlflow_traces.jsonl"
DATASET = "answers"


def quiet(*args, **kwargs) -> None:
    return None


@pytest.fixture
def answered(home):
    """Traces, a session feeding DATASET built once, then a new expectation and only its assessments run."""
    import_traces([str(SAMPLE_TRACES)], home.landing())
    create_label_schema("expected_answer", type="expectation", input=InputText(), home=home)
    run_pending(home, echo=quiet)
    trace_ids = home.lake().read("traces", columns=["trace_id"])["trace_id"].head(5).to_list()
    create_labeling_session(DATASET, label_schemas=["expected_answer"], dataset=DATASET, home=home).add_traces(trace_ids)
    assert not run_pending(home, echo=quiet).failures
    log_expectation(trace_id=trace_ids[0], name="expected_answer", value="the first answer", home=home)
    assert not run_pending(home, echo=quiet, stages=("assessments",)).failures
    return home


def last_success(instance: dg.DagsterInstance, job_name: str) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    [record] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    return run, record.event_log_entry.dagster_event


def lake_resources(home) -> dict:
    return {"lake": LakeResource(uri=home.lake_uri)}


def on_inputs(instance: dg.DagsterInstance, home, cursor: str | None = None):
    """The sensor's result and the cursor it leaves."""
    context = dg.build_sensor_context(instance=instance, resources=lake_resources(home), cursor=cursor)
    return evaluation_datasets_on_inputs_sensor(context), context.cursor


def after_build(instance: dg.DagsterInstance, home):
    run, event = last_success(instance, evaluation_datasets_job.name)
    context = dg.build_run_status_sensor_context(
        sensor_name=evaluation_datasets_after_build_sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources=lake_resources(home),
    )
    return evaluation_datasets_after_build_sensor(context)


def recorded_run(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str], status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run of the code location's job recorded with `status` (NOT_STARTED: waiting for its launcher)."""
    from feedback_pipeline_dagster.definitions import defs

    return instance.create_run_for_job(defs.resolve_job_def(job_name), status=status, tags=tags)


def shows_answer(home) -> bool:
    records = home.lake().read(f"evaluation_datasets/{DATASET}")
    return records.filter(records["expectations"].str.contains("the first answer", literal=True)).height == 1


def test_assessments_materializing_requests_the_dataset_build_at_once(answered):
    instance = instance_for(answered)
    result, cursor = on_inputs(instance, answered)
    [request] = result.run_requests
    assert (request.job_name, request.partition_key) == (evaluation_datasets_job.name, DATASET)

    from feedback_pipeline_dagster.definitions import defs

    build = defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=dict(request.tags)
    )
    assert build.success and shows_answer(answered)
    assert isinstance(after_build(instance, answered), dg.SkipReason)
    assert isinstance(on_inputs(instance, answered, cursor)[0], dg.SkipReason)


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.FAILURE])
def test_a_fingerprint_is_requested_once_by_the_sensors_and_run_still_builds_it(answered, status):
    instance = instance_for(answered)
    [request] = on_inputs(instance, answered)[0].run_requests
    recorded_run(instance, evaluation_datasets_job.name, dict(request.tags), status)

    context = dg.build_sensor_context(instance=instance, resources=lake_resources(answered))
    assert isinstance(evaluation_datasets_sensor(context), dg.SkipReason)
    skipped, _ = on_inputs(instance, answered)
    assert isinstance(skipped, dg.SkipReason) and "under way" in skipped.skip_message

    report = run_pending(answered, echo=quiet, stages=("datasets",))
    assert (report.runs, report.failures) == (1, [])
    assert shows_answer(answered)
