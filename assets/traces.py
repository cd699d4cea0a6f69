"""The `traces` asset: MLflow trace exports from the landing zone, parsed into `lake/traces`."""


import dagster as dg
from pydantic import Field

from assets.resources import LakeResource, LandingResource
from feedback_pipeline import exports
from feedback_pipeline.landing import record_processed
from feedback_pipeline.traces import parse_mlflow_traces

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
    """MLflow traces, one row per trace_id, daily-partitioned on request time; malformed lines go to `trace_rejections`."""
    the_lake, zone = lake.lake(), landing.landing()
    days = context.partition_key_range
    keys = config.landing_keys or exports.landing_keys_for_days(the_lake, days.start, days.end)
    lines = exports.read_trace_lines(zone, keys)
    parsed = parse_mlflow_traces(lines)
    changed = the_lake.unseen("traces", parsed.traces, on=["trace_id"], change_column="content_hash")

    imported = parsed.submissions.join(changed.select("trace_id"), on="trace_id", how="semi")
    if imported.height:
        zone.write_lines("submissions", imported["submission"].to_list(), label="mlflow-import")
    commit = {"dagster_run_id": context.run_id}
    written = the_lake.merge("traces", changed, on=["trace_id"], change_column="content_hash", commit_metadata=commit)
    rejected = the_lake.merge(
        "trace_rejections", parsed.rejections, on=["landing_key", "line_number"], change_column="reason",
        commit_metadata=commit,
    )
    counts = exports.counts_per_file(keys, lines, parsed.rejections)
    record_processed(the_lake, "traces", counts, context.run_id)
    context.log.info(
        f"{lines.height} traces received from {len(keys)} files: {parsed.traces.height} parsed, "
        f"{written.rows_written} new or changed, {parsed.rejections.height} rejected"
    )
    return dg.MaterializeResult(
        metadata={
            "landing_files": len(keys),
            "received": lines.height,
            "ingested": parsed.traces.height,
            "new_or_updated": written.rows_written,
            "rejected": parsed.rejections.height,
            "imported_assessments": imported.height,
            "delta_version": written.version,
            "rejections_delta_version": rejected.version,
            "table_uri": the_lake.table_uri("traces"),
        }
    )
