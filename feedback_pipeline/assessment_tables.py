"""The assessment tables: their names and schemas, and reading one as a frame even before it exists.

- `submissions`: every received submission once (merged on submission_id: a duplicate is a no-op),
  with its landing_key and line_number. Partitioned by `submission_date`, the UTC day it arrived.
- `submission_files`: one row per landing file collected: lines received and duplicates among them.
- `assessment_history`: one row per accepted submission (create, update or delete), the versions of
  every assessment in order; folding them gives the current state.
- `assessments`: the current state, one row per live assessment; `valid` is False when another
  assessment overrides it or a newer one from the same assessor answers the same question
  (trace, span, name, session). Deleted assessments leave this table (their history stays).
- `rejections`: the submissions that failed validation, each with every reason in words.

All five are Delta-partitioned by `submission_date` (`PARTITION`; for `assessments`, the day of its
create), and every merge and delete names its rows' days: delta-rs prunes only by partition columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.utc import UTC_TIME

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake

SUBMISSIONS = "submissions"
FILES = "submission_files"
HISTORY = "assessment_history"
ASSESSMENTS = "assessments"
REJECTIONS = "rejections"

_ASSESSMENT_CONTENT: dict[str, pl.DataType] = {
    "assessment_id": pl.String,
    "trace_id": pl.String,
    "span_id": pl.String,
    "session": pl.String,
    "assessment_name": pl.String,
    "kind": pl.String,
    "assessment_value": pl.String,
    "error": pl.String,
    "rationale": pl.String,
    "source_type": pl.String,
    "assessor_id": pl.String,
    "metadata": pl.String,
}
"""What an assessment says, in the order both `assessment_history` and `assessments` keep it."""

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "submission_id": pl.String,
    "action": pl.String,
    **_ASSESSMENT_CONTENT,
    "overrides": pl.String,
    "schema_version": pl.Int64,
    "created_at": UTC_TIME,
    "origin": pl.String,
    "submission_date": pl.Date,
    "landing_key": pl.String,
    "line_number": pl.Int64,
}
ASSESSMENT_SCHEMA: dict[str, pl.DataType] = {
    **_ASSESSMENT_CONTENT,
    "schema_version": pl.Int64,
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
    "overrides": pl.String,
    "valid": pl.Boolean,
    "submission_id": pl.String,
    "last_submission_id": pl.String,
    "submission_date": pl.Date,
    "origin": pl.String,
}
REJECTION_SCHEMA: dict[str, pl.DataType] = {
    "submission_id": pl.String,
    "landing_key": pl.String,
    "line_number": pl.Int64,
    "reasons": pl.List(pl.String),
    "reason": pl.String,
    "raw": pl.String,
    "submission_date": pl.Date,
    "rejected_at": UTC_TIME,
}
FILE_SCHEMA: dict[str, pl.DataType] = {
    "landing_key": pl.String,
    "submission_date": pl.Date,
    "received": pl.Int64,
    "duplicates": pl.Int64,
    "counts": pl.String,
    "collected_at": UTC_TIME,
}


PARTITION = "submission_date"
"""The partition column of `submissions`, `submission_files`, `assessment_history`, `rejections` and
`assessments` (the day the submission, or the assessment's first submission, arrived): a run's merges and
deletes name the days its rows fall on, so they read those partitions only."""


def days_of(*frames: pl.DataFrame) -> dict[str, list[str]]:
    """The `within` of a merge or delete touching these frames' rows: their days as ISO dates (no
    restriction when a row has no day, or there are no rows)."""
    days = pl.concat([frame[PARTITION].cast(pl.String) for frame in frames])
    if days.is_empty() or days.null_count():
        return {}
    return {PARTITION: days.unique().sort().to_list()}


def on_days_of(frame: pl.DataFrame) -> pl.Expr:
    """A scan filter to the days `frame`'s rows fall on (its partitions), for reading rows keyed like them."""
    return pl.col(PARTITION).is_in(frame[PARTITION].unique().implode()) | pl.col(PARTITION).is_null()


def scan_table(lake: Lake, table: str, schema: dict[str, pl.DataType]) -> pl.LazyFrame | None:
    """A lazy scan of `table` (None when it does not exist yet) with every column of `schema`: one that
    a table written before the column existed lacks reads as null (the next merge adds it to the
    table: merges evolve the schema)."""
    scan = lake.scan(table)
    if scan is None:
        return None
    present = scan.collect_schema()
    return scan.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in present)


def read_table(lake: Lake, table: str, schema: dict[str, pl.DataType], where: pl.Expr | None = None) -> pl.DataFrame:
    """The rows of `table` (those matching `where`), or an empty frame of `schema` when it does not exist yet."""
    scan = scan_table(lake, table, schema)
    if scan is None:
        return pl.DataFrame(schema=schema)
    if where is not None:
        scan = scan.filter(where)
    return scan.collect()
