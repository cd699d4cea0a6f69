"""The submissions sensor: new files in the `submissions` landing area -> runs of `assessments_job`.

The cursor is the last landing key requested (it starts at the last file a completed run recorded); each
tick lists at most FILES_PER_TICK keys, cut into runs of at most FILES_PER_RUN files (and MAX_RUN_BYTES) of one day,
each keyed by its key range, so a backlog of a million files drains a bounded slice per tick.
A tick that finds nothing new lists only the folders from the cursor's hour on, so it runs every
INTERVAL_SECONDS: a reviewer's answer starts its run within seconds (its dataset build follows
the run's success, see `sensors.datasets`).
Files that arrived after a trace file still waiting to be ingested wait too (`ready_keys`).
"""


import dagster as dg

from feedback_pipeline_dagster.assets.assessments import JOB_NAME, TAG_AFTER, TAG_LAST
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import pending, revalidation
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline.submission_runs import Batch

FILES_PER_RUN = pending.SUBMISSION_FILES_PER_RUN
FILES_PER_TICK = pending.SUBMISSION_FILES_PER_LOOK
INTERVAL_SECONDS = 10


def run_request(batch: Batch) -> dg.RunRequest:
    """The run for one batch of landing files; the same batch always gets the same run_key."""
    return dg.RunRequest(
        run_key=f"submissions:{batch.after_key or batch.day}:{batch.last_key}",
        job_name=JOB_NAME,
        partition_key=batch.day,
        tags={TAG_AFTER: batch.after_key or "", TAG_LAST: batch.last_key},
    )


@dg.sensor(
    job_name=JOB_NAME,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests assessments_job runs for new files in the submissions landing area (files after a trace "
    "file still waiting to be ingested wait for it). If a tick fails, the landing zone or the lake is unreadable.",
)
def submissions_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource
) -> dg.SensorResult | dg.SkipReason:
    store = lake.lake()
    work = pending.submission_work(
        store, landing.landing(), after=context.cursor or None, limit=FILES_PER_TICK,
        files_per_run=FILES_PER_RUN, with_underived=False,
    )
    again = revalidation_run_requests(store)
    if not work.listed and not again:
        return dg.SkipReason(f"no submission files after {context.cursor or 'the last processed file'}")
    if not work and not again:
        return dg.SkipReason(f"{work.listed} submission file(s) wait for earlier trace files to be ingested")
    return dg.SensorResult(
        run_requests=[run_request(batch) for batch in work.batches] + again, cursor=work.last_key or context.cursor
    )


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Runs that process everything pending (`pending.submission_work`): landing files not collected
    yet, whole days whose collected submissions were never derived, and the days a schema change or a late trace
    asked to validate again (`revalidation`)."""
    work = pending.submission_work(lake, landing, files_per_run=FILES_PER_RUN)
    return [run_request(batch) for batch in work.batches] + [
        dg.RunRequest(job_name=JOB_NAME, partition_key=day.isoformat()) for day in work.underived_days
    ]


def revalidation_run_requests(lake: Lake) -> list[dg.RunRequest]:
    """One date run per submission date a schema change or a late trace asked to validate again,
    keyed by the date and the latest request, so each request is run once."""
    return [
        dg.RunRequest(run_key=f"revalidate:{day.isoformat()}:{stamp}", job_name=JOB_NAME, partition_key=day.isoformat())
        for day, stamp in revalidation.pending_requests(lake)
    ]
