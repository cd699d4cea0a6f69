"""The dataset build follows the runs that write its inputs: `evaluation_datasets_after_runs_sensor`
evaluated on real runs of a real instance (the one `feedback-pipeline run` records in)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.resources import LakeResource
from feedback_pipeline import log_expectation
from feedback_pipeline.cli.pipeline import instance_for, run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.schemas import InputText, create_label_schema
from feedback_pipeline.sessions import create_labeling_session
from sensors.datasets import (
    evaluation_datasets_after_runs_sensor,
    evaluation_datasets_job,
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
    assert not run_pending(home, echo=quiet, stages=("sensors.assessments",)).failures
    return home


def last_success(instance: dg.DagsterInstance, job_name: str) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    [record] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    return run, record.event_log_entry.dagster_event


def after(instance: dg.DagsterInstance, home, job_name: str):
    run, event = last_success(instance, job_name)
    context = dg.build_run_status_sensor_context(
        sensor_name=evaluation_datasets_after_runs_sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"lake": LakeResource(uri=home.lake_uri)},
    )
    return evaluation_datasets_after_runs_sensor(context)


def unstarted(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str] | None = None) -> dg.DagsterRun:
    """A run of the code location's job created but not started yet, as a requested run waits for its launcher."""
    from feedback_pipeline.definitions import defs

    return instance.create_run_for_job(
        defs.resolve_job_def(job_name), status=dg.DagsterRunStatus.NOT_STARTED, tags=tags or {}
    )


def test_an_assessments_run_success_requests_the_dataset_build_at_once(answered):
    instance = instance_for(answered)
    result = after(instance, answered, "assessments_job")
    [request] = result.run_requests
    assert (request.job_name, request.partition_key) == (evaluation_datasets_job.name, DATASET)

    from feedback_pipeline.definitions import defs

    build = defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=dict(request.tags)
    )
    assert build.success
    records = answered.lake().read(f"evaluation_datasets/{DATASET}")
    assert records.filter(records["expectations"].str.contains("the first answer", literal=True)).height == 1

    settled = after(instance, answered, evaluation_datasets_job.name)
    assert isinstance(settled, dg.SkipReason)


def test_it_waits_for_the_last_of_several_input_runs(answered):
    instance = instance_for(answered)
    unstarted(instance, "assessments_job")
    waiting = after(instance, answered, "assessments_job")
    assert isinstance(waiting, dg.SkipReason) and "assessments_job" in waiting.skip_message


def test_a_requested_build_is_not_requested_again_by_either_sensor(answered):
    instance = instance_for(answered)
    [request] = after(instance, answered, "assessments_job").run_requests
    unstarted(instance, evaluation_datasets_job.name, dict(request.tags))

    context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource(uri=answered.lake_uri)})
    assert isinstance(evaluation_datasets_sensor(context), dg.SkipReason)
    assert isinstance(after(instance, answered, "assessments_job"), dg.SkipReason)

    report = run_pending(answered, echo=quiet)
    assert (report.runs, report.failures) == (1, [])
    records = answered.lake().read(f"evaluation_datasets/{DATASET}")
    assert records.filter(records["expectations"].str.contains("the first answer", literal=True)).height == 1
