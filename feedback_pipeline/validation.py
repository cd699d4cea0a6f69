"""Validation: every reason a submission cannot be accepted, checked in bulk against what the lake holds.

`validate` adds a `reasons` list to each submission (empty: valid) and fills in what updates and
deletes inherit from the assessment they name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.assessment_tables import HISTORY, HISTORY_SCHEMA, read_table
from feedback_pipeline.entities import SOURCE_TYPES
from feedback_pipeline.input_types import PARAMETERS_DTYPE, Rule, shown_column, value_rules
from feedback_pipeline.json_values import value_facts
from feedback_pipeline.schemas import latest_versions
from feedback_pipeline.submission_contract import ACTIONS, KINDS, limit_rules
from feedback_pipeline.utc import UTC_TIME

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake


@dataclass
class ValidationContext:
    """What validation checks submissions against, read from the lake."""

    traces: pl.DataFrame
    schemas: pl.DataFrame
    sessions: pl.DataFrame
    items: pl.DataFrame
    targets: pl.DataFrame


def latest_schemas(label_schemas: pl.DataFrame) -> pl.DataFrame:
    """The newest version of each label schema (`schemas.latest_versions`) with its input parameters as columns."""
    return (
        latest_versions(label_schemas)
        .select(
            "name",
            pl.col("version").cast(pl.Int64).alias("schema_version"),
            pl.col("type").alias("schema_type"),
            "input_type",
            pl.col("deleted").fill_null(False).alias("schema_deleted"),
            pl.col("input").str.json_decode(PARAMETERS_DTYPE).alias("params"),
        )
        .unnest("params")
    )


def load_context(lake: Lake, submissions: pl.DataFrame) -> ValidationContext:
    """Read what validating `submissions` needs, and only that, so a run costs what it brings: the
    recorded assessments its updates, deletes, overrides and create ids name (its own submissions
    left out, so re-deriving judges them afresh), the traces it and those assessments name (by
    trace_id or client_request_id), the label schemas and sessions, and the session items of those traces."""
    named_ids = pl.concat([submissions["assessment_id"], submissions["overrides"]]).drop_nulls().unique()
    history = read_table(lake, HISTORY, HISTORY_SCHEMA, pl.col("assessment_id").is_in(named_ids.implode()))
    history = history.filter(~pl.col("submission_id").is_in(submissions["submission_id"].implode()))
    targets = targets_from_history(history)
    trace_ids = pl.concat([submissions["trace_id"], targets["t_trace_id"]]).drop_nulls().unique()
    request_ids = submissions["client_request_id"].drop_nulls().unique()
    traces = _columns(
        lake, "traces", {"trace_id": pl.String, "client_request_id": pl.String, "request_time": UTC_TIME},
        pl.col("trace_id").is_in(trace_ids.implode()) | pl.col("client_request_id").is_in(request_ids.implode()),
    )
    schemas = latest_schemas(lake.read("label_schemas") if lake.exists("label_schemas") else pl.DataFrame())
    sessions = (
        lake.read("labeling_sessions", columns=["labeling_session_id", "name", "assigned_users", "label_schemas", "deleted"])
        if lake.exists("labeling_sessions")
        else pl.DataFrame(schema={"labeling_session_id": pl.String, "name": pl.String, "assigned_users": pl.List(pl.String),
                                  "label_schemas": pl.List(pl.String), "deleted": pl.Boolean})
    )
    items = _columns(
        lake, "session_items", {"session_id": pl.String, "trace_id": pl.String}, pl.col("trace_id").is_in(traces["trace_id"].implode())
    ).unique()
    return ValidationContext(traces, schemas, sessions, items, targets)


def _columns(lake: Lake, table: str, schema: dict[str, pl.DataType], where: pl.Expr) -> pl.DataFrame:
    """The columns of `schema` of the rows matching `where` (only those columns are read)."""
    scan = lake.scan(table)
    if scan is None:
        return pl.DataFrame(schema=schema)
    return scan.filter(where).select(list(schema)).collect()


def _target_columns(kind: pl.Expr, name: str, source_id: str) -> list[pl.Expr]:
    """What an update, delete or override inherits from the assessment it names, as `t_` columns."""
    return [
        pl.col("assessment_id"), kind.alias("t_kind"), pl.col(name).alias("t_name"), pl.col("trace_id").alias("t_trace_id"),
        pl.col("span_id").alias("t_span_id"), pl.col("session").alias("t_session"),
        pl.col("source_type").alias("t_source_type"), pl.col(source_id).alias("t_source_id"),
    ]


def targets_from_history(history: pl.DataFrame) -> pl.DataFrame:
    """The assessments that updates, deletes and overrides may name: their create and whether deleted."""
    deleted = history.filter(pl.col("action") == "delete").select("assessment_id").unique()
    return (
        history.filter(pl.col("action") == "create")
        .sort("created_at")
        .unique("assessment_id", keep="first", maintain_order=True)
        .select(
            *_target_columns(pl.col("kind"), "assessment_name", "assessor_id"),
            pl.col("assessment_id").is_in(deleted["assessment_id"].implode()).alias("t_deleted"),
            pl.lit(False).alias("t_in_batch"),
        )
    )


def _reason(condition: pl.Expr, message: pl.Expr) -> Rule:
    """A validation rule: when `condition` holds, `message` (in words a person can act on) is a reason."""
    return condition.fill_null(False), message


def validate(submissions: pl.DataFrame, context: ValidationContext) -> pl.DataFrame:
    """The submissions with the fields updates inherit filled in and a `reasons` list (empty: valid)."""
    if submissions.height == 0:
        return submissions.with_columns(pl.lit([], pl.List(pl.String)).alias("reasons"),
                                        pl.lit(None, pl.Int64).alias("schema_version"))
    frame = value_facts(submissions.sort("created_at", "landing_key", "line_number"))
    action = pl.col("action")
    batch_targets = (
        frame.filter((action == "create") & pl.col("parse_error").is_null() & pl.col("assessment_id").is_not_null())
        .unique("assessment_id", keep="first", maintain_order=True)
        .select(
            *_target_columns(pl.col("kind").fill_null("feedback"), "name", "source_id"),
            pl.lit(False).alias("t_deleted"),
            pl.lit(True).alias("t_in_batch"),
            pl.col("submission_id").alias("t_submission_id"),
        )
        .join(context.targets.select("assessment_id"), on="assessment_id", how="anti")
    )
    targets = pl.concat([context.targets.with_columns(pl.lit(None, pl.String).alias("t_submission_id")), batch_targets],
                        how="diagonal_relaxed")
    is_update, is_delete = action == "update", action == "delete"
    target_id = pl.when(is_update | is_delete).then(pl.col("assessment_id")).otherwise(pl.col("overrides"))
    frame = frame.with_columns(
        target_id.alias("target_id"),
        pl.col("assessment_id").is_in(context.targets["assessment_id"].implode()).alias("id_taken"),
    ).join(
        targets.rename({"assessment_id": "target_id"}), on="target_id", how="left"
    )
    has_target = pl.col("t_kind").is_not_null()
    inherits = is_update | is_delete
    frame = frame.with_columns(
        pl.coalesce("trace_id", "t_trace_id").alias("trace_id"),
        pl.when(inherits).then(pl.col("t_span_id")).otherwise(pl.coalesce("span_id", "t_span_id")).alias("span_id"),
        pl.when(inherits).then(pl.col("t_session")).otherwise(pl.coalesce("session", "t_session")).alias("session"),
        pl.when(pl.col("kind") == "skip").then(pl.coalesce("name", "t_name", pl.lit("skip")))
        .otherwise(pl.coalesce("name", "t_name")).alias("name"),
        pl.col("kind").alias("given_kind"),
        pl.when(inherits & has_target).then(pl.col("t_kind")).otherwise(pl.col("kind").fill_null("feedback")).alias("kind"),
        pl.when(inherits & has_target).then(pl.col("t_source_type")).otherwise(pl.col("source_type")).alias("source_type"),
        pl.when(inherits & has_target).then(pl.col("t_source_id")).otherwise(pl.col("source_id")).alias("source_id"),
    )
    by_request = (
        context.traces.filter(pl.col("client_request_id").is_not_null())
        .sort("request_time")
        .group_by("client_request_id")
        .agg(pl.col("trace_id").last().alias("resolved_trace_id"))
    )
    frame = frame.join(by_request, on="client_request_id", how="left").with_columns(
        pl.coalesce("trace_id", "resolved_trace_id").alias("trace_id")
    )
    frame = frame.with_columns(pl.col("trace_id").is_in(context.traces["trace_id"].implode()).alias("trace_known"))
    frame = frame.join(context.schemas, on="name", how="left")
    live_sessions = context.sessions.filter(~pl.col("deleted").fill_null(False))
    columns = [pl.col("name").alias("session_name"), "labeling_session_id", "assigned_users", "label_schemas"]
    session_lookup = pl.concat(
        [
            live_sessions.select(pl.col("name").alias("session"), *columns),
            live_sessions.select(pl.col("labeling_session_id").alias("session"), *columns),
        ]
    ).unique("session", keep="last", maintain_order=True)
    frame = frame.join(session_lookup, on="session", how="left").with_columns(
        pl.coalesce("session_name", "session").alias("session")  # a session named by its id is stored by name
    ).join(
        context.items.rename({"session_id": "labeling_session_id"}).with_columns(pl.lit(True).alias("in_session")),
        on=["labeling_session_id", "trace_id"],
        how="left",
    )
    return _with_reasons(frame)


def _value_reasons(is_answer: pl.Expr) -> list[Rule]:
    """Reasons a value does not fit its label schema's input (`input_types`) or, without a schema, MLflow's
    value types."""
    given = is_answer & pl.col("value").is_not_null() & pl.col("schema_type").is_not_null()
    free_form = is_answer & pl.col("value").is_not_null() & pl.col("schema_type").is_null() & pl.col("session").is_null()
    nested = pl.concat_list(pl.col("item_types").fill_null([]), pl.col("member_types").fill_null([])).list.eval(
        pl.element().is_in(["ARRAY", "OBJECT"])
    ).list.any()
    return [
        *(_reason(given & condition, message) for condition, message in value_rules(pl.col("name"), shown_column("value"))),
        _reason(free_form & (pl.col("kind") == "feedback") & pl.col("value_type").is_in(["ARRAY", "OBJECT"]) & nested,
                pl.format("feedback value {} nests lists or objects: a feedback value is a number, text, a boolean, "
                          "or a flat list or object of those", shown_column("value"))),
    ]


def _with_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    action, kind, name, session = pl.col("action"), pl.col("kind"), pl.col("name"), pl.col("session")
    is_create, is_update, is_delete = action == "create", action == "update", action == "delete"
    is_skip = kind == "skip"
    is_answer = (is_create & ~is_skip) | (is_update & ~is_skip)
    has_error = pl.col("error").is_not_null()
    has_target = pl.col("t_kind").is_not_null()
    needs_target = is_update | is_delete | (is_create & pl.col("overrides").is_not_null())
    session_found = pl.col("labeling_session_id").is_not_null()
    first_create = pl.col("submission_id") == pl.col("submission_id").first().over("assessment_id", "action")
    rules = [
        _reason(~action.is_in(ACTIONS), pl.format("action '{}' is not one of: {}", action, pl.lit(", ".join(ACTIONS)))),
        _reason(is_create & ~kind.is_in(KINDS), pl.format("kind '{}' is not one of: {}", kind, pl.lit(", ".join(KINDS)))),
        _reason(is_create & ~is_skip & (name.is_null() | (name.str.strip_chars() == "")),
                pl.lit("name is missing: a feedback or expectation needs the name of what it assesses")),
        *(_reason(condition, message) for condition, message in limit_rules()),
        _reason(is_create & pl.col("trace_id").is_null() & pl.col("client_request_id").is_null(),
                pl.lit("trace_id is missing: give the trace_id (tr-…) or the client_request_id of the traced request")),
        _reason(pl.col("trace_id").is_null() & pl.col("client_request_id").is_not_null(),
                pl.format("client_request_id '{}' matches no trace in the traces table", pl.col("client_request_id"))),
        _reason(pl.col("trace_id").is_not_null() & ~pl.col("trace_known") & ~is_delete,
                pl.format("trace {} is not in the traces table: it is validated again when the trace is ingested",
                          pl.col("trace_id"))),
        _reason(~pl.col("source_type").is_in(SOURCE_TYPES),
                pl.format("source.source_type '{}' is not one of: {}", pl.col("source_type"),
                          pl.lit(", ".join(SOURCE_TYPES)))),
        _reason((is_update | is_delete) & pl.col("assessment_id").is_null(),
                pl.format("assessment_id is missing: name the assessment to {}", action)),
        _reason(needs_target & pl.col("target_id").is_not_null() & ~has_target,
                pl.format("assessment {} does not exist", pl.col("target_id"))),
        _reason((is_update | (is_create & pl.col("overrides").is_not_null())) & pl.col("t_deleted").fill_null(False),
                pl.format("assessment {} was deleted", pl.col("target_id"))),
        _reason(is_update & has_target & pl.col("given_kind").is_not_null() & (pl.col("given_kind") != pl.col("t_kind")),
                pl.format("kind is '{}' but assessment {} is a {}: an assessment cannot switch kind",
                          pl.col("given_kind"), pl.col("target_id"), pl.col("t_kind"))),
        _reason(is_create & pl.col("overrides").is_not_null() & has_target
                & ((pl.col("t_kind") != "feedback") | (kind != "feedback")),
                pl.format("assessment {} is a {}: only feedback can be overridden, by feedback", pl.col("target_id"),
                          pl.col("t_kind"))),
        _reason(is_create & (pl.col("id_taken") | ~first_create),
                pl.format("assessment_id {} is already used by an earlier submission", pl.col("assessment_id"))),
        _reason(is_skip & pl.col("value").is_not_null(),
                pl.format("a skip carries no value (got {})", shown_column("value"))),
        _reason(is_create & ~is_skip & pl.col("value").is_null() & ~((kind == "feedback") & has_error),
                pl.lit("value is missing: a feedback or expectation needs a value (a feedback may give an error instead)")),
        _reason(has_error & (pl.coalesce(kind, pl.col("t_kind")) != "feedback"),
                pl.format("error is given but the kind is '{}': only a feedback carries an error",
                          pl.coalesce(kind, pl.col("t_kind")))),
        _reason(session.is_not_null() & ~session_found & ~is_delete,
                pl.format("session '{}' does not exist (or was deleted)", session)),
        _reason(session_found & is_answer & name.is_not_null() & ~pl.col("label_schemas").list.contains(name),
                pl.format("label schema '{}' is not one of session '{}''s questions: {}", name, session,
                          pl.col("label_schemas").list.join(", "))),
        _reason(session_found & ~is_delete & pl.col("trace_known") & pl.col("in_session").is_null(),
                pl.format("trace {} is not in session '{}''s snapshot", pl.col("trace_id"), session)),
        _reason(session_found & ~is_delete & (pl.col("assigned_users").list.len() > 0)
                & ~pl.col("assigned_users").list.contains(pl.col("source_id")),
                pl.format("assessor '{}' is not assigned to session '{}' (assigned: {})", pl.col("source_id"), session,
                          pl.col("assigned_users").list.join(", "))),
        _reason(is_answer & session_found & pl.col("label_schemas").list.contains(name) & pl.col("schema_type").is_null(),
                pl.format("label schema '{}' does not exist", name)),
        _reason(is_answer & pl.col("schema_deleted").fill_null(False), pl.format("label schema '{}' was deleted", name)),
        _reason(is_answer & pl.col("schema_type").is_not_null() & (kind != pl.col("schema_type")),
                pl.format("kind is '{}' but label schema '{}' is a {}", kind, name, pl.col("schema_type"))),
        *_value_reasons(is_answer),
    ]
    parse_failed = pl.col("parse_error").is_not_null()
    failing = frame.with_row_index("_row").with_columns(
        (parse_failed | pl.any_horizontal([condition for condition, _ in rules])).alias("_failing")
    )
    # Messages are formatted only for the failing rows: most rows pass, and formatting is the costly part.
    passed = failing.filter(~pl.col("_failing")).with_columns(pl.lit([], pl.List(pl.String)).alias("reasons"))
    failed = failing.filter(pl.col("_failing")).with_columns(
        pl.when(parse_failed)
        .then(pl.concat_list(pl.col("parse_error")))
        .otherwise(
            pl.concat_list([
                pl.when(condition).then(pl.coalesce(message.cast(pl.String), pl.lit(f"fails validation rule {index}")))
                for index, (condition, message) in enumerate(rules, 1)
            ])
            .list.drop_nulls()
        )
        .alias("reasons")
    )
    checked = pl.concat([passed, failed]).sort("_row").drop("_row", "_failing")
    rejected_creates = checked.filter((pl.col("action") == "create") & (pl.col("reasons").list.len() > 0))["assessment_id"]
    follow_up = pl.col("t_in_batch").fill_null(False) & pl.col("target_id").is_in(rejected_creates.implode()) & (
        (pl.col("action") != "create") | pl.col("overrides").is_not_null()
    )
    return checked.with_columns(
        pl.when(follow_up & (pl.col("reasons").list.len() == 0))
        .then(pl.concat_list(pl.format("assessment {} was rejected, so this {} cannot apply to it",
                                       pl.col("target_id"), pl.col("action"))))
        .otherwise(pl.col("reasons"))
        .alias("reasons")
    )

