"""The `traces` asset: MLflow trace exports from the landing zone, parsed into `lake/traces`."""


import dagster as dg
from pydantic import Field

from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import exports

TRACE_DAYS = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_offset=1)


class TraceFilesConfig(dg.Config):
    """Which landing files to ingest. Empty: re-ingest the files that hold the partitions' traces (a backfill)."""

    landing_keys: list[str] = Field(default_factory=list)


@dg.asset(
    partitions_def=TRACE_DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"delta", "polars"},
    group_name="ingest",
)
def traces(
    context: dg.AssetExecutionContext, config: TraceFilesConfig, lake: LakeResource, landing: LandingResource
) -> dg.MaterializeResult:
    """MLflow traces, one row per trace_id, daily-partitioned on request time; malformed lines go to `trace_rejections`.

    If it fails: the run's error names the landing file; `feedback-pipeline traces rejections` lists
    refused lines. Re-run the run (or backfill the days) once the cause is fixed: ingest is idempotent."""
    the_lake, zone = lake.lake(), landing.landing()
    days = context.partition_key_range
    keys = config.landing_keys or exports.landing_keys_for_days(the_lake, days.start, days.end)
    report = exports.ingest_trace_files(the_lake, zone, keys, run_id=context.run_id)
    context.log.info(
        f"{report.received} traces received from {len(keys)} files in {report.batches} batches: "
        f"{report.ingested} parsed, {report.new_or_updated} new or changed, {report.rejected} rejected, "
        f"{report.quarantined} files quarantined (see trace_rejections, line_number 0)"
    )
    return dg.MaterializeResult(
        metadata={
            "landing_files": report.landing_files,
            "batches": report.batches,
            "received": report.received,
            "ingested": report.ingested,
            "new_or_updated": report.new_or_updated,
            "rejected": report.rejected,
            "quarantined_files": report.quarantined,
            "imported_assessments": report.imported_assessments,
            "revalidation_dates_requested": report.revalidation_dates,
            "delta_version": report.delta_version,
            "rejections_delta_version": report.rejections_delta_version,
            "table_uri": the_lake.table_uri("traces"),
        }
    )
