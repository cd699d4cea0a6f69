"""Datasets follow their sessions: a partition per dataset a live session names, a run when inputs moved.

The durable state is in the lake and the instance, not in a cursor: a dataset is pending when the
fingerprint of its inputs (the input tables' versions and its settings) matches neither its last
Delta commit nor its last materialization. The run_key is that fingerprint, and the sensors also
skip a fingerprint that a run (tag `feedback_pipeline/source_fingerprint`) already built, failed
to build (its publish gate would fail again: `feedback-pipeline run` retries it, and reports a repeated
failure as a note) or is
building, so neither a repeated tick nor another sensor requests it twice.

Three sensors ask that question: `evaluation_datasets_on_inputs_sensor` as soon as assessments,
session items, label schemas or sessions materialize, which brings a new submission into its dataset
seconds after its assessments are written; `evaluation_datasets_after_build_sensor` when a build
succeeds, because the sensors start one build of a dataset at a time and inputs that moved during a
build are built next (a build whose process died is marked failed at once by `sensors.run_health`, and
a build still unfinished after STALE_AFTER no longer holds the next one back);
and `evaluation_datasets_sensor` every minute, for every other change (new traces, anything missed
while the daemon was down). `feedback-pipeline run` builds in-process and looks only at the lake
and the materializations.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from feedback_pipeline_dagster.assets import datasets as dataset_assets
from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import pending
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline_dagster.sensors.partitions import add_partitions
from feedback_pipeline_dagster.sensors.run_health import TAG_DIED, fail_dead_runs

PARTITIONS = "evaluation_datasets"
MAX_RUNS_PER_TICK = 50
TAG_DATASET = "feedback_pipeline/dataset"
TAG_FINGERPRINT = "feedback_pipeline/source_fingerprint"
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
STALE_AFTER = timedelta(hours=1)

evaluation_datasets_job = dg.define_asset_job(
    "evaluation_datasets_job",
    selection=dg.AssetSelection.assets(dataset_assets.evaluation_datasets),
    partitions_def=dataset_assets.evaluation_datasets_partitions,
    description="Build one dataset's next version behind its publish gate. A failed gate keeps the current version.",
)
INPUT_ASSETS = [dg.AssetKey(name) for name in ("assessments", "session_items", "label_schemas", "labeling_sessions")]
FOLLOW_SECONDS = 5


def _last_materialized_fingerprint(instance: dg.DagsterInstance, name: str) -> str | None:
    """The fingerprint the dataset's last materialization was built from (a build that changed
    nothing makes no Delta version, so the lake alone does not know it)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("evaluation_datasets"), asset_partitions=[name]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get("source_fingerprint") if materialization else None
    return None if entry is None else entry.value


def fingerprint_digest(fingerprint: str) -> str:
    """A short, stable tag value for a source fingerprint."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:20]


def _has_run(
    instance: dg.DagsterInstance, job_name: str, statuses: list[dg.DagsterRunStatus], tags: dict[str, str] | None = None
) -> bool:
    """Whether a run of `job_name` with these statuses (and tags) was created within the last STALE_AFTER."""
    filters = dg.RunsFilter(
        job_name=job_name, tags=tags or {}, statuses=statuses, created_after=datetime.now(UTC) - STALE_AFTER
    )
    return bool(instance.get_run_ids(filters=filters, limit=1))


def failed_build(instance: dg.DagsterInstance, tags: dict[str, str], other_than: str | None = None) -> str | None:
    """The id of a run (other than `other_than`) that failed to build the dataset from the inputs these
    tags name, within STALE_AFTER: its publish gate would fail again. Runs whose process died
    (`sensors.run_health`) do not count: their inputs were never judged."""
    filters = dg.RunsFilter(
        job_name=evaluation_datasets_job.name,
        tags={TAG_DATASET: tags[TAG_DATASET], TAG_FINGERPRINT: tags[TAG_FINGERPRINT]},
        statuses=[dg.DagsterRunStatus.FAILURE],
        created_after=datetime.now(UTC) - STALE_AFTER,
    )
    for run in instance.get_runs(filters=filters, limit=20):
        if run.run_id != other_than and TAG_DIED not in run.tags:
            return run.run_id
    return None


def repeated_gate_failure(instance: dg.DagsterInstance, tags: dict[str, str], run_id: str) -> str | None:
    """For a failed dataset build (a run whose tags name its inputs), the id of an earlier run whose
    publish gate failed on the same inputs; None for any other run."""
    if TAG_FINGERPRINT not in tags:
        return None
    return failed_build(instance, tags, other_than=run_id)


def _requests(
    lake: Lake, instance: dg.DagsterInstance, *, requested_runs_count: bool
) -> tuple[list[str], list[dg.RunRequest]]:
    """Datasets (named by live sessions) and the builds they need. With `requested_runs_count` (the
    sensors), a fingerprint a run already attempted or is attempting is not requested again, and a
    dataset whose build is still queued or running waits for it: the build's success re-checks."""
    work = pending.dataset_work(lake, FeedbackHome.from_env().root)
    requests = []
    for name, fingerprint in work.builds.items():
        if fingerprint == _last_materialized_fingerprint(instance, name):
            continue
        tags = {TAG_DATASET: name, TAG_FINGERPRINT: fingerprint_digest(fingerprint)}
        job = evaluation_datasets_job.name
        if requested_runs_count and (
            _has_run(instance, job, [*UNFINISHED, dg.DagsterRunStatus.SUCCESS], tags)
            or failed_build(instance, tags)
            or _has_run(instance, job, UNFINISHED, {TAG_DATASET: name})
        ):
            continue
        requests.append(
            dg.RunRequest(
                job_name=evaluation_datasets_job.name,
                partition_key=name,
                run_key=f"{name}:{json.dumps(json.loads(fingerprint), sort_keys=True, separators=(',', ':'))}",
                tags=tags,
            )
        )
    return work.names, requests[:MAX_RUNS_PER_TICK]


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """The dataset builds whose inputs changed since they were last built; adds the missing partitions."""
    names, requests = _requests(lake, instance, requested_runs_count=False)
    add_partitions(instance, PARTITIONS, names)
    return requests


def _sensor_result(lake: Lake, instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
    fail_dead_runs(instance, judge_daemon_runs=True)
    names, requests = _requests(lake, instance, requested_runs_count=True)
    missing = [n for n in names if not instance.has_dynamic_partition(PARTITIONS, n)]
    if not requests and not missing:
        return dg.SkipReason("every dataset is built from the current inputs, or a build of them was attempted or is under way")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[dataset_assets.evaluation_datasets_partitions.build_add_request(missing)] if missing else [],
    )


def follow_materializations(context: dg.SensorEvaluationContext) -> dg.SkipReason | None:
    """Move a sensor's cursor (an event-log storage id) to the newest input materialization after
    it; a SkipReason when none came."""
    newest = newest_materialization(context.instance, int(context.cursor or 0))
    if newest is None:
        return dg.SkipReason("no input asset materialized since the last tick")
    context.update_cursor(str(newest))
    return None


@dg.sensor(
    job=evaluation_datasets_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute: a partition per dataset the sessions name, and a build when its inputs changed. "
    "If a tick fails, the lake or the Dagster instance is unreadable: the tick's error says which.",
)
def evaluation_datasets_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """Adds a partition per dataset that sessions name, and requests a build when its inputs changed."""
    return _sensor_result(lake.lake(), context.instance)


def newest_materialization(instance: dg.DagsterInstance, after: int) -> int | None:
    """The storage id of the newest materialization of an input asset after `after`, or None."""
    newest = [
        records[0].storage_id
        for key in INPUT_ASSETS
        if (records := instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1, ascending=False
        ).records)
    ]
    return max(newest, default=None)


@dg.sensor(
    job=evaluation_datasets_job,
    minimum_interval_seconds=FOLLOW_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Right after an input of the datasets materializes: the builds its change calls for. "
    "If a tick fails, the lake or the Dagster instance is unreadable: the tick's error says which.",
)
def evaluation_datasets_on_inputs_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource
) -> dg.SensorResult | dg.SkipReason:
    """Right after assessments, session items, label schemas or sessions materialize (before the run's
    checks finish): the builds `evaluation_datasets_sensor` would request up to a minute later. The
    cursor is the event-log storage id of the last materialization acted on."""
    skipped = follow_materializations(context)
    return skipped or _sensor_result(lake.lake(), context.instance)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[evaluation_datasets_job],
    request_job=evaluation_datasets_job,
    minimum_interval_seconds=FOLLOW_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a dataset build succeeds: the next build, when its inputs moved during the last one. "
    "If a tick fails, the lake or the Dagster instance is unreadable: the tick's error says which.",
)
def evaluation_datasets_after_build_sensor(
    context: dg.RunStatusSensorContext, lake: LakeResource
) -> dg.SensorResult | dg.SkipReason:
    """A build holds the next build of its dataset back (one at a time); its success lets it go."""
    return _sensor_result(lake.lake(), context.instance)
