"""Collection: the submissions of landing files recorded once each in `submissions`, with per-file counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from feedback_pipeline.assessment_tables import FILE_SCHEMA, FILES, PARTITION, SUBMISSIONS, days_of, read_table
from feedback_pipeline.landing import LandingKey
from feedback_pipeline.submission_contract import SUBMISSION_SCHEMA
from feedback_pipeline.submission_parsing import parse_lines
from feedback_pipeline.utc import UTC_TIME

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone
    from feedback_pipeline.submission_runs import Scope


def collect_submissions(lake: Lake, landing: LandingZone, scope: Scope) -> dict[str, Any]:
    """Record the submissions of the landing files in scope in `submissions` (a submission_id seen
    before is a duplicate and changes nothing) and each file's counts in `submission_files`."""
    keys = scope.landing_keys(landing)
    parsed = parse_lines(landing.read_lines(keys))
    first_sightings = parsed.sort("landing_key", "line_number").unique("submission_id", keep="first", maintain_order=True)
    written = lake.merge(
        SUBMISSIONS, first_sightings, on=["submission_id"], update=False, partition_by=[PARTITION], within=days_of(first_sightings)
    )
    ids = parsed.select("submission_id")
    recorded = read_table(lake, SUBMISSIONS, SUBMISSION_SCHEMA, pl.col("submission_id").is_in(ids["submission_id"].implode()))
    per_line = parsed.join(
        recorded.select("submission_id", pl.col("landing_key").alias("rec_key"), pl.col("line_number").alias("rec_line")),
        on="submission_id",
        how="left",
    ).with_columns(
        ((pl.col("rec_key") != pl.col("landing_key")) | (pl.col("rec_line") != pl.col("line_number"))).alias("duplicate")
    )
    counted = per_line.group_by("landing_key").agg(
        pl.len().cast(pl.Int64).alias("received"), pl.col("duplicate").sum().cast(pl.Int64).alias("duplicates")
    )
    files = (
        pl.DataFrame({"landing_key": keys}, schema={"landing_key": pl.String})
        .join(counted, on="landing_key", how="left")
        .with_columns(
            pl.col("received").fill_null(0),
            pl.col("duplicates").fill_null(0),
            LandingKey.day_of(pl.col("landing_key")).alias("submission_date"),
            pl.lit(datetime.now(tz=UTC)).cast(UTC_TIME).alias("collected_at"),
        )
        .with_columns(pl.format("{}/{}", "received", "duplicates").alias("counts"))
        .select(FILE_SCHEMA.keys())
    )
    files_written = lake.merge(
        FILES, files, on=["landing_key"], change_column="counts", partition_by=[PARTITION], within=days_of(files)
    )
    return {
        "files": len(keys),
        "received": parsed.height,
        "new": int(written.rows_inserted),
        "duplicates": int(per_line["duplicate"].sum()),
        "delta_version": written.version,
        "files_delta_version": files_written.version,
    }
