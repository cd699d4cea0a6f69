"""Assessments: from collected submissions to validated assessments with their full history.

`derive_assessments` validates the submissions of a scope, records each in exactly one of
`assessment_history` and `rejections` (the tables are in `assessment_tables`), and refolds the
assessments they touch into `assessments`. All writes are idempotent (merge on keys, no version when
nothing changed): re-deriving a scope (after a crash, a schema change or a backfill) moves rows
between history and rejections and refolds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from feedback_pipeline.assessment_tables import (
    ASSESSMENT_SCHEMA,
    ASSESSMENTS,
    FILE_SCHEMA,
    FILES,
    HISTORY,
    HISTORY_SCHEMA,
    PARTITION,
    REJECTION_SCHEMA,
    REJECTIONS,
    SUBMISSIONS,
    days_of,
    on_days_of,
    read_table,
    scan_table,
)
from feedback_pipeline import revalidation
from feedback_pipeline.assessment_validity import GROUP_KEY, with_validity
from feedback_pipeline.json_values import duckdb_connection
from feedback_pipeline.landing import record_processed
from feedback_pipeline.submission_contract import AREA, SUBMISSION_SCHEMA
from feedback_pipeline.submission_runs import Scope
from feedback_pipeline.utc import UTC_TIME
from feedback_pipeline.validation import load_context, validate

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake


def history_rows(checked: pl.DataFrame) -> pl.DataFrame:
    """Accepted submissions as `assessment_history` rows."""
    return checked.select(
        "submission_id", "action", "assessment_id", "trace_id", "span_id", "session",
        pl.col("name").alias("assessment_name"), "kind", pl.col("value").alias("assessment_value"), "error", "rationale",
        "source_type", pl.col("source_id").alias("assessor_id"), "metadata", "overrides",
        pl.col("schema_version").cast(pl.Int64), "created_at", "origin", "submission_date", "landing_key", "line_number",
    ).cast(HISTORY_SCHEMA)


def rejection_rows(checked: pl.DataFrame) -> pl.DataFrame:
    """Rejected submissions as `rejections` rows, every reason listed and joined."""
    return checked.select(
        "submission_id", "landing_key", "line_number", "reasons",
        pl.col("reasons").list.join("; ").alias("reason"),
        pl.col("raw").str.slice(0, 2000), "submission_date",
        pl.lit(datetime.now(tz=UTC)).cast(UTC_TIME).alias("rejected_at"),
    ).cast(REJECTION_SCHEMA)


def _merged_metadata(events: pl.DataFrame) -> pl.DataFrame:
    patches = events.filter(pl.col("action").is_in(["create", "update"]) & pl.col("metadata").is_not_null())
    schema = {"assessment_id": pl.String, "merged_metadata": pl.String}
    if patches.height == 0:
        return pl.DataFrame(schema=schema)
    connection = duckdb_connection()
    connection.register("patches", patches.select("assessment_id", "metadata").with_row_index("seq").to_arrow())
    merged = connection.sql(
        "select assessment_id, list_reduce(list(metadata order by seq), lambda a, b: json_merge_patch(a, b))::varchar "
        "as merged_metadata from patches group by assessment_id"
    ).pl()
    connection.close()
    return merged.cast(schema)


def fold(events: pl.DataFrame) -> pl.DataFrame:
    """Apply each assessment's history in order: its create, then updates (name, value, rationale
    replaced when given, metadata merged, updated_at bumped), then a delete. Adds `deleted`.

    A feedback's value and error are its outcome, replaced together: an update giving either sets both."""
    ordered = events.sort("created_at", "landing_key", "line_number")
    creates = ordered.filter(pl.col("action") == "create").unique("assessment_id", keep="first", maintain_order=True)
    outcome = pl.col("assessment_value").is_not_null() | pl.col("error").is_not_null()
    updates = ordered.filter(pl.col("action") == "update").group_by("assessment_id").agg(
        outcome.any().alias("u_outcome"),
        pl.col("assessment_value").filter(outcome).last().alias("u_value"),
        pl.col("error").filter(outcome).last().alias("u_error"),
        pl.col("rationale").drop_nulls().last().alias("u_rationale"),
        pl.col("assessment_name").drop_nulls().last().alias("u_name"),
        pl.col("schema_version").drop_nulls().last().alias("u_schema_version"),
        pl.col("created_at").max().alias("u_updated_at"),
        pl.col("submission_id").last().alias("u_submission_id"),
    )
    deleted = ordered.filter(pl.col("action") == "delete")["assessment_id"].unique()
    return (
        creates.join(updates, on="assessment_id", how="left")
        .join(_merged_metadata(ordered), on="assessment_id", how="left")
        .with_columns(
            pl.when(pl.col("u_outcome").fill_null(False)).then("u_value").otherwise("assessment_value").alias("assessment_value"),
            pl.when(pl.col("u_outcome").fill_null(False)).then("u_error").otherwise("error").alias("error"),
            pl.coalesce("u_rationale", "rationale").alias("rationale"),
            pl.coalesce("u_name", "assessment_name").alias("assessment_name"),
            pl.coalesce("u_schema_version", "schema_version").alias("schema_version"),
            pl.coalesce("merged_metadata", "metadata").alias("metadata"),
            pl.coalesce("u_updated_at", "created_at").alias("updated_at"),
            pl.coalesce("u_submission_id", "submission_id").alias("last_submission_id"),
            pl.col("assessment_id").is_in(deleted.implode()).alias("deleted"),
            pl.lit(True).alias("valid"),
        )
        .select(*ASSESSMENT_SCHEMA.keys(), "deleted")
    )


def _content_hash(columns: list[str]) -> pl.Expr:
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("\u2400") for c in columns], separator="\u241f").hash().cast(
        pl.String
    )


def _in_list(column: str, values: list[str]) -> Iterator[str]:
    for start in range(0, len(values), 1000):
        quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values[start : start + 1000])
        yield f"{column} IN ({quoted})"


def _delete_ids(lake: Lake, table: str, column: str, rows: pl.DataFrame) -> int:
    """Delete these rows (by `column`, in the days they fall on) from `table`."""
    within = days_of(rows)
    values = rows[column].to_list()
    return sum(lake.delete(table, predicate, within=within).rows_deleted for predicate in _in_list(column, values))


def derive_assessments(lake: Lake, scope: Scope, run_id: str = "") -> dict[str, Any]:
    """Validate the submissions in scope, record history and rejections, refold the assessments they touch.

    Idempotent: run it again (after a crash, or a label-schema change) and it converges on the same
    tables; a submission that now fails moves from history to rejections, and back.
    """
    started_at = datetime.now(UTC)
    submissions = read_table(lake, SUBMISSIONS, SUBMISSION_SCHEMA, scope.filter())
    context = load_context(lake, submissions)
    checked = validate(submissions, context)
    valid_rows = checked.filter(pl.col("reasons").list.len() == 0)
    invalid_rows = checked.filter(pl.col("reasons").list.len() > 0)
    events, rejections = history_rows(valid_rows), rejection_rows(invalid_rows)

    rejected_result = lake.merge(
        REJECTIONS, rejections, on=["submission_id"], change_column="reason", partition_by=[PARTITION], within=days_of(rejections)
    )
    stale_rejections = read_table(
        lake, REJECTIONS, REJECTION_SCHEMA, on_days_of(events) & pl.col("submission_id").is_in(events["submission_id"].implode())
    )
    unrejected = _delete_ids(lake, REJECTIONS, "submission_id", stale_rejections)

    events = events.with_columns(_content_hash(list(HISTORY_SCHEMA)).alias("content_hash"))
    history_result = lake.merge(
        HISTORY, events, on=["submission_id"], change_column="content_hash", partition_by=[PARTITION], within=days_of(events)
    )
    stale_history = read_table(
        lake, HISTORY, HISTORY_SCHEMA, on_days_of(rejections) & pl.col("submission_id").is_in(rejections["submission_id"].implode())
    )
    withdrawn = _delete_ids(lake, HISTORY, "submission_id", stale_history)

    affected = pl.concat([events["assessment_id"], events["overrides"], stale_history["assessment_id"]]).drop_nulls().unique()
    state_result, removed = refold(lake, affected)
    files = read_table(lake, FILES, FILE_SCHEMA, scope.filter())
    received, duplicates = int(files["received"].sum()), int(files["duplicates"].sum())
    outcomes = checked.group_by("landing_key").agg(
        (pl.col("reasons").list.len() == 0).sum().cast(pl.Int64).alias("accepted"),
        (pl.col("reasons").list.len() > 0).sum().cast(pl.Int64).alias("rejected"),
    )
    per_file = files.join(outcomes, on="landing_key", how="left").select(
        "landing_key", "received", pl.col("accepted").fill_null(0), pl.col("rejected").fill_null(0), "duplicates"
    )
    record_processed(lake, AREA, per_file, run_id)
    revalidated = 0 if scope.by_keys else revalidation.mark_done(lake, scope.start, scope.end, started_at)
    return {
        "scope": scope.describe(),
        "received": received,
        "accepted": valid_rows.height,
        "rejected": invalid_rows.height,
        "duplicates": duplicates,
        "accounted": received == valid_rows.height + invalid_rows.height + duplicates,
        "history_rows_written": history_result.rows_written,
        "rejections_written": rejected_result.rows_written,
        "moved_to_rejections": withdrawn,
        "moved_to_assessments": unrejected,
        "revalidation_requests_done": revalidated,
        "assessments_written": state_result.rows_written,
        "assessments_removed": removed,
        "delta_version": state_result.version,
        "history_delta_version": history_result.version,
        "rejections_delta_version": rejected_result.version,
    }


def refold(lake: Lake, assessment_ids: pl.Series) -> tuple[Any, int]:
    """Recompute the current state of these assessments from their history, and the validity of the
    assessments that share a question (trace, span, name, assessor, session) with them or with one
    they override; write what changed (merge on assessment_id, in the days of the changed rows) and
    remove the deleted ones. Reads only those groups' rows."""
    ids = assessment_ids.implode()
    events = read_table(lake, HISTORY, HISTORY_SCHEMA, pl.col("assessment_id").is_in(ids))
    folded = fold(events.select(HISTORY_SCHEMA.keys()))
    scan = scan_table(lake, ASSESSMENTS, ASSESSMENT_SCHEMA)
    if scan is None:
        current, overridden_elsewhere = pl.DataFrame(schema=ASSESSMENT_SCHEMA), None
    else:
        standing = scan.filter(pl.col("assessment_id").is_in(ids)).select(*GROUP_KEY, "overrides").collect()
        targets = pl.concat([standing["overrides"], folded["overrides"]]).drop_nulls().unique().implode()
        overridden = scan.filter(pl.col("assessment_id").is_in(targets)).select(GROUP_KEY).collect()
        groups = pl.concat([standing.select(GROUP_KEY), folded.select(GROUP_KEY), overridden]).unique()
        current = (
            scan.filter(pl.col("trace_id").is_in(groups["trace_id"].unique().implode()))
            .select(ASSESSMENT_SCHEMA.keys())
            .collect()
            .join(groups, on=GROUP_KEY, how="semi", nulls_equal=True)
        )
        group_ids = pl.concat([current["assessment_id"], folded["assessment_id"]]).unique().implode()
        overridden_elsewhere = (
            scan.filter(pl.col("overrides").is_in(group_ids) & ~pl.col("assessment_id").is_in(ids))
            .select("overrides")
            .collect()["overrides"]
        )
    alive = pl.concat(
        [
            current.filter(~pl.col("assessment_id").is_in(ids)),
            folded.filter(~pl.col("deleted")).select(ASSESSMENT_SCHEMA.keys()),
        ]
    )
    state = with_validity(alive, overridden_elsewhere)
    state = state.with_columns(_content_hash(list(ASSESSMENT_SCHEMA)).alias("content_hash"))
    changed = state.join(current.select("assessment_id", _content_hash(list(ASSESSMENT_SCHEMA)).alias("content_hash")),
                         on=["assessment_id", "content_hash"], how="anti")
    moved_from = current.filter(pl.col("assessment_id").is_in(changed["assessment_id"].implode()))
    result = lake.merge(
        ASSESSMENTS, changed, on=["assessment_id"], change_column="content_hash", partition_by=[PARTITION],
        within=days_of(changed, moved_from),
    )
    gone = current.filter(
        pl.col("assessment_id").is_in(ids) & ~pl.col("assessment_id").is_in(state["assessment_id"].implode())
    )
    return result, _delete_ids(lake, ASSESSMENTS, "assessment_id", gone)


def assessments_touched(lake: Lake, scope: Scope | None) -> pl.DataFrame:
    """The current assessments whose latest submission came from the landing files in scope: what a run
    changed. Without a scope (a check run outside a sensor run), every current assessment."""
    if scope is None:
        return read_table(lake, ASSESSMENTS, ASSESSMENT_SCHEMA)
    submitted = lake.scan(SUBMISSIONS)
    current = scan_table(lake, ASSESSMENTS, ASSESSMENT_SCHEMA)
    if submitted is None or current is None:
        return pl.DataFrame(schema=ASSESSMENT_SCHEMA)
    ids = submitted.filter(scope.filter()).select("submission_id").collect()["submission_id"]
    return current.filter(pl.col("last_submission_id").is_in(ids.implode())).collect()


def accounting(lake: Lake, scope: Scope | None = None) -> dict[str, int]:
    """How the recorded submissions (those in `scope`, when given: what one run owns, so a run
    writing beside it does not count) are accounted for: each must be in exactly one of
    `assessment_history` (accepted) and `rejections`."""
    ids = read_table(lake, SUBMISSIONS, SUBMISSION_SCHEMA, where=None if scope is None else scope.filter()).select(
        "submission_id", PARTITION
    )
    owned = None if scope is None else on_days_of(ids) & pl.col("submission_id").is_in(ids["submission_id"].implode())
    accepted = read_table(lake, HISTORY, HISTORY_SCHEMA, owned).select("submission_id").with_columns(pl.lit(True).alias("accepted"))
    rejected = read_table(lake, REJECTIONS, REJECTION_SCHEMA, owned).select("submission_id").with_columns(pl.lit(True).alias("rejected"))
    joined = ids.join(accepted, on="submission_id", how="left").join(rejected, on="submission_id", how="left")
    in_history, in_rejections = pl.col("accepted").fill_null(False), pl.col("rejected").fill_null(False)
    counts = joined.select(
        pl.len().alias("submissions"),
        in_history.sum().alias("accepted"),
        in_rejections.sum().alias("rejected"),
        (in_history & in_rejections).sum().alias("in_both"),
        (~in_history & ~in_rejections).sum().alias("in_neither"),
    )
    return {key: int(value) for key, value in counts.row(0, named=True).items()}
