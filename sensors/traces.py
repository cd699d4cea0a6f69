"""Trace files arriving in the landing zone trigger `traces` runs, a bounded batch per tick."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline_dagster.assets.traces import TRACE_DAYS, traces
from feedback_pipeline import exports, pending
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone

FILES_PER_RUN = 50

ingest_traces = dg.define_asset_job(
    "ingest_traces",
    selection=[traces],
    partitions_def=TRACE_DAYS,
    description="Parse a batch of trace files from the landing zone into `traces`. A failed run is safe to re-run.",
)


def _clamp(day: str) -> str:
    first = TRACE_DAYS.start.date().isoformat()
    today = datetime.now(UTC).date().isoformat()
    return min(max(day, first), today)


def trace_run_request(keys: list[str]) -> dg.RunRequest:
    """One run over a batch of trace files, covering the daily partitions their labels name.

    The run key is the batch's first and last landing key: deterministic, and unique per batch
    because keys only grow. Misnamed files name no dates; the run quarantines them.
    """
    today = datetime.now(UTC).date().isoformat()
    first_day, last_day = exports.label_dates(keys) or (today, today)
    return dg.RunRequest(
        run_key=f"traces:{keys[0]}..{keys[-1]}",
        job_name=ingest_traces.name,
        run_config={"ops": {"traces": {"config": {"landing_keys": keys}}}},
        tags={
            "dagster/asset_partition_range_start": _clamp(first_day),
            "dagster/asset_partition_range_end": _clamp(last_day),
            "feedback/landing_files": str(len(keys)),
        },
    )


def trace_run_requests(keys: list[str]) -> list[dg.RunRequest]:
    return [trace_run_request(keys[i : i + FILES_PER_RUN]) for i in range(0, len(keys), FILES_PER_RUN)]


@dg.sensor(
    job=ingest_traces,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New MLflow trace files in the landing zone: at most 1,000 files per tick, 50 per run. If a tick "
    "fails, the landing zone is unreadable (check FEEDBACK_LANDING_URI and its credentials).",
)
def trace_files_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource
) -> dg.SensorResult | dg.SkipReason:
    keys = pending.trace_files(lake.lake(), landing.landing(), after=context.cursor or None)
    if not keys:
        return dg.SkipReason("no new trace files")
    return dg.SensorResult(run_requests=trace_run_requests(keys), cursor=keys[-1])


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Runs for every trace file after the last one a run consumed (what `feedback-pipeline run` does)."""
    return trace_run_requests(pending.trace_files(lake, landing))
