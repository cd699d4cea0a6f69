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

from assets.assessments import JOB_NAME, TAG_AFTER, TAG_LAST
from assets.resources import LakeResource, LandingResource
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline.submission_contract import AREA
from feedback_pipeline.submission_runs import Batch, batches
from feedback_pipeline.submission_watermarks import processed_watermark, ready_keys, underived_dates

FILES_PER_RUN = 2_000
FILES_PER_TICK = 10_000
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
    description="Requests assessments_job runs for new files in the submissions landing area.",
)
def submissions_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource
) -> dg.SensorResult | dg.SkipReason:
    store, zone = lake.lake(), landing.landing()
    cursor = context.cursor or processed_watermark(store)
    listed = zone.list(AREA, after=cursor, limit=FILES_PER_TICK)
    if not listed:
        return dg.SkipReason(f"no submission files after {cursor or 'the start'}")
    keys = ready_keys(store, zone, listed)
    if not keys:
        return dg.SkipReason(f"{len(listed)} submission file(s) wait for earlier trace files to be ingested")
    return dg.SensorResult(
        run_requests=[run_request(batch) for batch in batches(keys, cursor, FILES_PER_RUN, zone.sizes(keys))],
        cursor=keys[-1],
    )


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Runs that process everything pending: landing files not collected yet, and whole days whose
    collected submissions were never derived (a run died between its two steps)."""
    watermark = processed_watermark(lake)
    keys = ready_keys(lake, landing, landing.list(AREA, after=watermark))
    requests = [run_request(batch) for batch in batches(keys, watermark, FILES_PER_RUN, landing.sizes(keys))]
    covered = {request.partition_key for request in requests}
    for day in underived_dates(lake):
        if day.isoformat() not in covered:
            requests.append(dg.RunRequest(job_name=JOB_NAME, partition_key=day.isoformat()))
    return requests
