"""Re-validating stored submissions when what they were judged against changes.

A label schema that changes (an option removed, a range narrowed, a schema deleted) governs answers
already accepted or rejected; a trace that lands late is what a submission was rejected for. The
stage that makes such a change records the submission dates to re-derive in `revalidations`
(submission_date, cause, requested_at, done_at); the assessments stage requests a run per pending
date (`sensors.assessments`), and `derive_assessments` over those dates moves rows between
`assessment_history` and `rejections` as the rules now say, then marks the requests done.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.assessment_tables import REJECTIONS, SUBMISSIONS
from feedback_pipeline.utc import UTC_TIME

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake

TABLE = "revalidations"
SCHEMA = {"submission_date": pl.Date, "cause": pl.String, "requested_at": UTC_TIME, "done_at": UTC_TIME}


def request(lake: Lake, dates: pl.Series, cause: str) -> int:
    """Ask for the submissions of `dates` to be validated again, because of `cause`; the number of dates."""
    days = dates.drop_nulls().unique().sort()
    if days.len() == 0:
        return 0
    frame = pl.DataFrame({"submission_date": days}).select(
        pl.col("submission_date").cast(pl.Date),
        pl.lit(cause).alias("cause"),
        pl.lit(datetime.now(UTC)).cast(UTC_TIME).alias("requested_at"),
        pl.lit(None, UTC_TIME).alias("done_at"),
    )
    lake.merge(TABLE, frame, on=["submission_date", "cause", "requested_at"], update=False)
    return days.len()


def after_schema_change(lake: Lake, names: list[str]) -> int:
    """Request the dates holding submissions that answer the label schemas `names` (they changed)."""
    scan = lake.scan(SUBMISSIONS)
    if scan is None or not names:
        return 0
    dates = scan.filter(pl.col("name").is_in(names)).select(pl.col("submission_date").unique()).collect()
    return request(lake, dates["submission_date"], f"label schema changed: {', '.join(sorted(names))}")


def after_traces_arrived(lake: Lake, traces: pl.DataFrame) -> int:
    """Request the dates of rejected submissions that name one of these new traces (by trace_id or
    client_request_id): they were refused because their trace had not arrived."""
    submitted, rejected = lake.scan(SUBMISSIONS), lake.scan(REJECTIONS)
    if submitted is None or rejected is None or traces.height == 0:
        return 0
    names_trace = pl.col("trace_id").is_in(traces["trace_id"].implode())
    names_request = pl.col("client_request_id").is_in(traces["client_request_id"].drop_nulls().implode())
    dates = (
        submitted.filter(names_trace | (pl.col("trace_id").is_null() & names_request))
        .select("submission_id", "submission_date")
        .join(rejected.select("submission_id"), on="submission_id", how="semi")
        .select(pl.col("submission_date").unique())
        .collect()
    )
    return request(lake, dates["submission_date"], "trace arrived")


def pending_requests(lake: Lake) -> list[tuple[date, str]]:
    """Each submission date with a revalidation requested and not done yet (oldest first), with the
    time of its latest request (ISO text)."""
    scan = lake.scan(TABLE)
    if scan is None:
        return []
    found = (
        scan.filter(pl.col("done_at").is_null())
        .group_by("submission_date")
        .agg(pl.col("requested_at").max().dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"))
        .sort("submission_date")
        .collect()
    )
    return list(found.iter_rows())


def pending_dates(lake: Lake) -> list[date]:
    """Submission dates with a revalidation requested and not done yet, oldest first."""
    return [day for day, _ in pending_requests(lake)]


def mark_done(lake: Lake, start: date, end: date, started_at: datetime) -> int:
    """Mark the requests for dates in [start, end) made before `started_at` done (a derive covered them)."""
    scan = lake.scan(TABLE)
    if scan is None:
        return 0
    covered = scan.filter(
        pl.col("done_at").is_null()
        & pl.col("submission_date").is_between(pl.lit(start), pl.lit(end), closed="left")
        & (pl.col("requested_at") <= pl.lit(started_at).cast(UTC_TIME))
    ).collect()
    if covered.height == 0:
        return 0
    lake.merge(TABLE, covered.with_columns(pl.lit(datetime.now(UTC)).cast(UTC_TIME).alias("done_at")),
               on=["submission_date", "cause", "requested_at"])
    return covered.height
