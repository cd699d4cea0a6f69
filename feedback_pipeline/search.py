"""Searching assessments (the SDK's `search_assessments`): the current state, optionally with the
submissions still waiting in the landing zone folded in (read-your-writes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.assessment_tables import ASSESSMENT_SCHEMA, ASSESSMENTS, HISTORY, HISTORY_SCHEMA, read_table
from feedback_pipeline.assessment_validity import with_validity
from feedback_pipeline.assessments import fold, history_rows
from feedback_pipeline.submission_watermarks import pending_submissions
from feedback_pipeline.validation import targets_from_history

if TYPE_CHECKING:
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone

SEARCH_COLUMNS = [
    "trace_id", "session", "assessment_id", "assessment_name", "kind", "assessment_value", "error", "rationale", "source_type",
    "assessor_id", "timestamp", "valid", "span_id", "metadata", "overrides", "schema_version", "created_at",
    "updated_at", "submission_id", "pending",
]


def _pending_state(lake: Lake, landing: LandingZone, current: pl.DataFrame) -> pl.DataFrame:
    """Current state with pending landing submissions folded in (unvalidated, marked `pending`)."""
    pending = pending_submissions(lake, landing).filter(pl.col("parse_error").is_null())
    if pending.height == 0:
        return current.with_columns(pl.lit(False).alias("pending"))
    context_targets = targets_from_history(read_table(lake, HISTORY, HISTORY_SCHEMA))
    checked = pending.with_columns(pl.lit([], pl.List(pl.String)).alias("reasons"), pl.lit(None, pl.Int64).alias("schema_version"))
    inherit = checked.join(context_targets, left_on="assessment_id", right_on="assessment_id", how="left").with_columns(
        pl.when(pl.col("action") != "create").then(pl.col("t_kind")).otherwise(pl.col("kind").fill_null("feedback")).alias("kind"),
        pl.when(pl.col("action") != "create").then(pl.col("t_source_type")).otherwise(pl.col("source_type")).alias("source_type"),
        pl.when(pl.col("action") != "create").then(pl.col("t_source_id")).otherwise(pl.col("source_id")).alias("source_id"),
    )
    touched = inherit["assessment_id"].drop_nulls().unique()
    events = pl.concat([
        read_table(lake, HISTORY, HISTORY_SCHEMA, pl.col("assessment_id").is_in(touched.implode())).select(HISTORY_SCHEMA.keys()),
        history_rows(inherit),
    ])
    folded = fold(events).filter(~pl.col("deleted")).select(ASSESSMENT_SCHEMA.keys())
    alive = pl.concat([current.filter(~pl.col("assessment_id").is_in(touched.implode())).select(ASSESSMENT_SCHEMA.keys()), folded])
    pending_ids = folded["assessment_id"]
    return with_validity(alive).with_columns(pl.col("assessment_id").is_in(pending_ids.implode()).alias("pending"))


def search_assessments(
    *,
    trace_ids: list[str] | None = None,
    session: str | None = None,
    name: str | list[str] | None = None,
    assessor: str | list[str] | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    assessment_ids: list[str] | None = None,
    include_invalid: bool = False,
    include_pending: bool = False,
    lake: Lake | None = None,
    landing: LandingZone | None = None,
    home: FeedbackHome | None = None,
) -> pl.DataFrame:
    """Assessments as a polars frame, newest first; only valid ones unless `include_invalid`.

    `include_pending` folds in submissions still waiting in the landing zone (read-your-writes:
    what a reviewer just answered shows at once, with `pending` True). `since`/`until` filter on
    the time of the latest change (`timestamp` = updated_at; naive datetimes are read as UTC).
    """
    if lake is None or (include_pending and landing is None):
        if home is None:
            from feedback_pipeline.home import FeedbackHome

            home = FeedbackHome.from_env()
        lake = lake or home.lake()
        landing = landing or home.landing()
    current = read_table(lake, ASSESSMENTS, ASSESSMENT_SCHEMA).select(ASSESSMENT_SCHEMA.keys())
    state = _pending_state(lake, landing, current) if include_pending else current.with_columns(pl.lit(False).alias("pending"))
    state = state.with_columns(pl.col("updated_at").alias("timestamp"))
    conditions: list[pl.Expr] = []
    listed = {"trace_id": trace_ids, "assessment_name": name, "assessor_id": assessor, "assessment_id": assessment_ids}
    for column, wanted in listed.items():
        if wanted is not None:
            conditions.append(pl.col(column).is_in([wanted] if isinstance(wanted, str) else list(wanted)))
    if session is not None:
        conditions.append(pl.col("session") == session)
    if kind is not None:
        conditions.append(pl.col("kind") == kind)
    if since is not None:
        conditions.append(pl.col("timestamp") >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    if until is not None:
        conditions.append(pl.col("timestamp") < (until if until.tzinfo else until.replace(tzinfo=UTC)))
    if not include_invalid:
        conditions.append(pl.col("valid"))
    if conditions:
        state = state.filter(pl.all_horizontal(conditions))
    return state.sort("timestamp", descending=True).select(SEARCH_COLUMNS)

