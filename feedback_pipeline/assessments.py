"""Assessments: from raw submissions to validated assessments with their full history.

Four tables, all written idempotently (merge on keys, no version when nothing changed):

- `submissions`: every received submission once (merged on submission_id: a duplicate is a no-op),
  with its landing_key and line_number. Partitioned by `submission_date`, the UTC day it arrived.
- `submission_files`: one row per landing file collected: lines received and duplicates among them.
- `assessment_history`: one row per accepted submission (create, update or delete), the versions of
  every assessment in order; folding them gives the current state.
- `assessments`: the current state, one row per live assessment; `valid` is False when another
  assessment overrides it or a newer one from the same assessor answers the same question
  (trace, span, name, session). Deleted assessments leave this table (their history stays).
- `rejections`: the submissions that failed validation, each with every reason in words.

Every submission in scope ends in exactly one of `assessment_history` and `rejections`; re-deriving a
scope (after a crash, a schema change or a backfill) moves rows between them and refolds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from feedback_pipeline.entities import SOURCE_TYPES
from feedback_pipeline.submissions import (
    ACTIONS,
    AREA,
    KINDS,
    SUBMISSION_SCHEMA,
    duckdb_connection,
    parse_lines,
)
from feedback_pipeline.landing import LandingKey, processed_high_water, record_processed

if TYPE_CHECKING:
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone

SUBMISSIONS = "submissions"
FILES = "submission_files"
HISTORY = "assessment_history"
ASSESSMENTS = "assessments"
REJECTIONS = "rejections"

MAX_NAME_CHARS = 250
MAX_ID_CHARS = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_RATIONALE_CHARS = 10_000
MAX_METADATA_BYTES = 16 * 1024
MAX_RUN_BYTES = 64 * 1024 * 1024
NUMERIC_TYPES = ("UBIGINT", "BIGINT", "DOUBLE")
GROUP_KEY = ["trace_id", "span_id", "assessment_name", "assessor_id", "session"]

UTC_US = pl.Datetime("us", "UTC")
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "submission_id": pl.String,
    "action": pl.String,
    "assessment_id": pl.String,
    "trace_id": pl.String,
    "span_id": pl.String,
    "session": pl.String,
    "assessment_name": pl.String,
    "kind": pl.String,
    "assessment_value": pl.String,
    "rationale": pl.String,
    "source_type": pl.String,
    "assessor_id": pl.String,
    "metadata": pl.String,
    "overrides": pl.String,
    "schema_version": pl.Int64,
    "created_at": UTC_US,
    "origin": pl.String,
    "submission_date": pl.Date,
    "landing_key": pl.String,
    "line_number": pl.Int64,
}
ASSESSMENT_SCHEMA: dict[str, pl.DataType] = {
    "assessment_id": pl.String,
    "trace_id": pl.String,
    "span_id": pl.String,
    "session": pl.String,
    "assessment_name": pl.String,
    "kind": pl.String,
    "assessment_value": pl.String,
    "rationale": pl.String,
    "source_type": pl.String,
    "assessor_id": pl.String,
    "metadata": pl.String,
    "schema_version": pl.Int64,
    "created_at": UTC_US,
    "updated_at": UTC_US,
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
    "rejected_at": UTC_US,
}
FILE_SCHEMA: dict[str, pl.DataType] = {
    "landing_key": pl.String,
    "submission_date": pl.Date,
    "received": pl.Int64,
    "duplicates": pl.Int64,
    "counts": pl.String,
    "collected_at": UTC_US,
}


# --- scope: which landing files / dates a run covers --------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one run covers: landing keys in (after_key, last_key], or submission dates in [start, end)."""

    after_key: str | None = None
    last_key: str | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if (self.last_key is None) == (self.start is None):
            raise ValueError(f"{self}: give either last_key (a landing key range) or start and end (dates)")

    @classmethod
    def dates(cls, start: date, end: date) -> Scope:
        return cls(start=start, end=end)

    @property
    def by_keys(self) -> bool:
        return self.last_key is not None

    def describe(self) -> str:
        if self.by_keys:
            return f"landing keys ({self.after_key or 'start of day'}, {self.last_key}]"
        return f"submission dates [{self.start}, {self.end})"

    def landing_keys(self, landing: LandingZone) -> list[str]:
        """The landing files in scope (for dates: every file that arrived on those days)."""
        if self.by_keys:
            day = self.last_key.split("/")[1]
            start_after = self.after_key or f"{AREA}/{day}/00/"
            keys: list[str] = []
            for key in landing.iter_keys(AREA, after=start_after):
                if key > self.last_key:
                    break
                keys.append(key)
            return keys
        keys = []
        for key in landing.iter_keys(AREA, after=f"{AREA}/{self.start.isoformat()}/00/"):
            if key.split("/")[1] >= self.end.isoformat():
                break
            keys.append(key)
        return keys

    def filter(self) -> pl.Expr:
        """Rows of `submissions` / `submission_files` in scope."""
        if self.by_keys:
            expression = pl.col("landing_key") <= self.last_key
            if self.after_key:
                expression &= pl.col("landing_key") > self.after_key
            else:
                expression &= pl.col("submission_date") == date.fromisoformat(self.last_key.split("/")[1])
            return expression
        return (pl.col("submission_date") >= self.start) & (pl.col("submission_date") < self.end)


# --- collection ---------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _read(lake: Lake, table: str, schema: dict[str, pl.DataType], where: pl.Expr | None = None) -> pl.DataFrame:
    scan = lake.scan(table)
    if scan is None:
        return pl.DataFrame(schema=schema)
    if where is not None:
        scan = scan.filter(where)
    return scan.collect()


def collect_submissions(lake: Lake, landing: LandingZone, scope: Scope) -> dict[str, Any]:
    """Record the submissions of the landing files in scope in `submissions` (a submission_id seen
    before is a duplicate and changes nothing) and each file's counts in `submission_files`."""
    keys = scope.landing_keys(landing)
    parsed = parse_lines(landing.read_lines(keys))
    first_sightings = parsed.sort("landing_key", "line_number").unique("submission_id", keep="first", maintain_order=True)
    written = lake.merge(SUBMISSIONS, first_sightings, on=["submission_id"], update=False, partition_by=["submission_date"])
    ids = parsed.select("submission_id")
    recorded = _read(lake, SUBMISSIONS, SUBMISSION_SCHEMA, pl.col("submission_id").is_in(ids["submission_id"].implode()))
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
            pl.col("landing_key").str.split("/").list.get(1).str.to_date("%Y-%m-%d").alias("submission_date"),
            pl.lit(_now()).cast(UTC_US).alias("collected_at"),
        )
        .with_columns(pl.format("{}/{}", "received", "duplicates").alias("counts"))
        .select(FILE_SCHEMA.keys())
    )
    files_written = lake.merge(FILES, files, on=["landing_key"], change_column="counts")
    return {
        "files": len(keys),
        "received": parsed.height,
        "new": int(written.rows_inserted),
        "duplicates": int(per_line["duplicate"].sum()),
        "delta_version": written.version,
        "files_delta_version": files_written.version,
    }


# --- validation ---------------------------------------------------------------------------------


@dataclass
class ValidationContext:
    """What validation checks submissions against, read from the lake."""

    traces: pl.DataFrame
    schemas: pl.DataFrame
    sessions: pl.DataFrame
    items: pl.DataFrame
    targets: pl.DataFrame


_INPUT_DTYPE = pl.Struct(
    {
        "options": pl.List(pl.String),
        "multi_select": pl.Boolean,
        "min_value": pl.Float64,
        "max_value": pl.Float64,
        "max_length": pl.Int64,
        "max_length_each": pl.Int64,
        "max_count": pl.Int64,
    }
)


def latest_schemas(label_schemas: pl.DataFrame) -> pl.DataFrame:
    """The newest version of each label schema with its input parameters as columns."""
    if label_schemas.height == 0:
        return pl.DataFrame(
            schema={"name": pl.String, "schema_version": pl.Int64, "schema_type": pl.String, "input_type": pl.String,
                    "schema_deleted": pl.Boolean, **dict(_INPUT_DTYPE.to_schema())}
        )
    return (
        label_schemas.sort("version")
        .group_by("name")
        .agg(pl.all().last())
        .select(
            "name",
            pl.col("version").cast(pl.Int64).alias("schema_version"),
            pl.col("type").alias("schema_type"),
            "input_type",
            pl.col("deleted").fill_null(False).alias("schema_deleted"),
            pl.col("input").str.json_decode(_INPUT_DTYPE).alias("params"),
        )
        .unnest("params")
    )


def load_context(lake: Lake, exclude_submission_ids: pl.Series | None = None) -> ValidationContext:
    """Read traces, label schemas, sessions, their snapshots and the assessments already recorded."""
    traces = lake.read("traces", columns=["trace_id", "client_request_id", "request_time"]) if lake.exists("traces") \
        else pl.DataFrame(schema={"trace_id": pl.String, "client_request_id": pl.String, "request_time": UTC_US})
    schemas = latest_schemas(lake.read("label_schemas") if lake.exists("label_schemas") else pl.DataFrame())
    sessions = (
        lake.read("labeling_sessions", columns=["labeling_session_id", "name", "assigned_users", "label_schemas", "deleted"])
        if lake.exists("labeling_sessions")
        else pl.DataFrame(schema={"labeling_session_id": pl.String, "name": pl.String, "assigned_users": pl.List(pl.String),
                                  "label_schemas": pl.List(pl.String), "deleted": pl.Boolean})
    )
    items = (
        lake.read("session_items", columns=["session_id", "trace_id"]).unique()
        if lake.exists("session_items")
        else pl.DataFrame(schema={"session_id": pl.String, "trace_id": pl.String})
    )
    history = _read(lake, HISTORY, HISTORY_SCHEMA)
    if exclude_submission_ids is not None and history.height:
        history = history.filter(~pl.col("submission_id").is_in(exclude_submission_ids.implode()))
    return ValidationContext(traces, schemas, sessions, items, targets_from_history(history))


def targets_from_history(history: pl.DataFrame) -> pl.DataFrame:
    """The assessments that updates, deletes and overrides may name: their create and whether deleted."""
    deleted = history.filter(pl.col("action") == "delete").select("assessment_id").unique()
    return (
        history.filter(pl.col("action") == "create")
        .sort("created_at")
        .unique("assessment_id", keep="first", maintain_order=True)
        .select(
            "assessment_id",
            pl.col("kind").alias("t_kind"),
            pl.col("assessment_name").alias("t_name"),
            pl.col("trace_id").alias("t_trace_id"),
            pl.col("span_id").alias("t_span_id"),
            pl.col("session").alias("t_session"),
            pl.col("source_type").alias("t_source_type"),
            pl.col("assessor_id").alias("t_source_id"),
            pl.col("assessment_id").is_in(deleted["assessment_id"].implode()).alias("t_deleted"),
            pl.lit(False).alias("t_in_batch"),
        )
    )


_FACTS_SQL = """
select row_id, json_type(value) as value_type, json_extract_string(value, '$') as value_text,
       json_extract_string(value, '$[*]') as value_items, json_type(value, '$[*]') as item_types,
       json_type(value, '$.*') as member_types
from v
"""


def value_facts(frame: pl.DataFrame, column: str = "value") -> pl.DataFrame:
    """Typed views of a JSON value column (parsed in bulk by DuckDB): value_type (VARCHAR, BOOLEAN,
    UBIGINT, BIGINT, DOUBLE, ARRAY, OBJECT), value_text, value_num, value_items, item_types, member_types."""
    indexed = frame.with_row_index("row_id")
    present = indexed.select("row_id", pl.col(column).alias("value")).filter(pl.col("value").is_not_null())
    facts_schema = {"row_id": pl.UInt32, "value_type": pl.String, "value_text": pl.String,
                    "value_items": pl.List(pl.String), "item_types": pl.List(pl.String),
                    "member_types": pl.List(pl.String)}
    if present.height:
        connection = duckdb_connection()
        connection.register("v", present.to_arrow())
        facts = connection.sql(_FACTS_SQL).pl().cast(facts_schema)
        connection.close()
    else:
        facts = pl.DataFrame(schema=facts_schema)
    return (
        indexed.join(facts, on="row_id", how="left")
        .with_columns(
            pl.when(pl.col("value_type").is_in(NUMERIC_TYPES))
            .then(pl.col("value_text").cast(pl.Float64, strict=False))
            .alias("value_num")
        )
        .drop("row_id")
    )


Rule = tuple[pl.Expr, pl.Expr]


def _reason(condition: pl.Expr, message: pl.Expr) -> Rule:
    """A validation rule: when `condition` holds, `message` (in words a person can act on) is a reason."""
    return condition.fill_null(False), message


def _short(column: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String)
    return pl.when(text.str.len_chars() > 80).then(text.str.slice(0, 77) + "...").otherwise(text)


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
            "assessment_id",
            pl.col("kind").fill_null("feedback").alias("t_kind"),
            pl.col("name").alias("t_name"),
            pl.col("trace_id").alias("t_trace_id"),
            pl.col("span_id").alias("t_span_id"),
            pl.col("session").alias("t_session"),
            pl.col("source_type").alias("t_source_type"),
            pl.col("source_id").alias("t_source_id"),
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
    """Reasons a value does not fit its label schema's input (or, without a schema, MLflow's value types)."""
    name, vtype = pl.col("name"), pl.col("value_type")
    given = is_answer & pl.col("value").is_not_null() & pl.col("schema_type").is_not_null()
    input_type = pl.col("input_type")
    options = pl.col("options").list.join(", ")
    multi = (input_type == "categorical_list") | ((input_type == "categorical") & pl.col("multi_select").fill_null(False))
    single = (input_type == "categorical") & ~pl.col("multi_select").fill_null(False)
    strings_only = pl.col("item_types").list.eval(pl.element() == "VARCHAR").list.all()
    bad_items = pl.col("value_items").list.set_difference(pl.col("options"))
    longest = pl.col("value_items").list.eval(pl.element().str.len_chars()).list.max()
    value = _short("value")
    free_form = is_answer & pl.col("value").is_not_null() & pl.col("schema_type").is_null() & pl.col("session").is_null()
    nested = pl.concat_list(pl.col("item_types").fill_null([]), pl.col("member_types").fill_null([])).list.eval(
        pl.element().is_in(["ARRAY", "OBJECT"])
    ).list.any()
    return [
        _reason(given & single & ((vtype != "VARCHAR") | ~pl.col("options").list.contains(pl.col("value_text"))),
                pl.format("value {} for '{}' is not one of its options: {}", value, name, options)),
        _reason(given & multi & ((vtype != "ARRAY") | ~strings_only),
                pl.format("value {} for '{}' must be a list of options from: {}", value, name, options)),
        _reason(given & multi & (vtype == "ARRAY") & strings_only & (bad_items.list.len() > 0),
                pl.format("value {} for '{}' has items that are not options: {} (options: {})", value, name,
                          bad_items.list.join(", "), options)),
        _reason(given & (input_type == "numeric") & ~vtype.is_in(NUMERIC_TYPES),
                pl.format("value {} for '{}' must be a number", value, name)),
        _reason(given & (input_type == "numeric") & (pl.col("value_num") < pl.col("min_value")),
                pl.format("value {} for '{}' is below its minimum {}", value, name, pl.col("min_value"))),
        _reason(given & (input_type == "numeric") & (pl.col("value_num") > pl.col("max_value")),
                pl.format("value {} for '{}' is above its maximum {}", value, name, pl.col("max_value"))),
        _reason(given & (input_type == "text") & (vtype != "VARCHAR"),
                pl.format("value {} for '{}' must be text", value, name)),
        _reason(given & (input_type == "text") & (vtype == "VARCHAR")
                & (pl.col("value_text").str.len_chars() > pl.col("max_length")),
                pl.format("value for '{}' is {} characters long: at most {} are allowed", name,
                          pl.col("value_text").str.len_chars(), pl.col("max_length"))),
        _reason(given & (input_type == "text_list") & ((vtype != "ARRAY") | ~strings_only),
                pl.format("value {} for '{}' must be a list of texts", value, name)),
        _reason(given & (input_type == "text_list") & (vtype == "ARRAY")
                & (pl.col("value_items").list.len() > pl.col("max_count")),
                pl.format("value for '{}' has {} items: at most {} are allowed", name,
                          pl.col("value_items").list.len(), pl.col("max_count"))),
        _reason(given & (input_type == "text_list") & (vtype == "ARRAY") & (longest > pl.col("max_length_each")),
                pl.format("an item of the value for '{}' is {} characters long: at most {} are allowed", name,
                          longest, pl.col("max_length_each"))),
        _reason(given & (input_type == "pass_fail") & (vtype != "BOOLEAN"),
                pl.format("value {} for '{}' must be true (pass) or false (fail)", value, name)),
        _reason(free_form & (pl.col("kind") == "feedback") & vtype.is_in(["ARRAY", "OBJECT"]) & nested,
                pl.format("feedback value {} nests lists or objects: a feedback value is a number, text, a boolean, "
                          "or a flat list or object of those", value)),
    ]


def _with_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    action, kind, name, session = pl.col("action"), pl.col("kind"), pl.col("name"), pl.col("session")
    is_create, is_update, is_delete = action == "create", action == "update", action == "delete"
    is_skip = kind == "skip"
    is_answer = (is_create & ~is_skip) | (is_update & ~is_skip)
    has_target = pl.col("t_kind").is_not_null()
    needs_target = is_update | is_delete | (is_create & pl.col("overrides").is_not_null())
    session_found = pl.col("labeling_session_id").is_not_null()
    first_create = pl.col("submission_id") == pl.col("submission_id").first().over("assessment_id", "action")
    too_long = [
        _reason(pl.col(column).str.len_chars() > MAX_ID_CHARS,
                pl.format("{} is {} characters long: at most {} are allowed", pl.lit(column),
                          pl.col(column).str.len_chars(), pl.lit(MAX_ID_CHARS)))
        for column in ("submission_id", "assessment_id", "trace_id", "span_id", "session", "source_id", "overrides")
    ]
    rules = [
        _reason(~action.is_in(ACTIONS), pl.format("action '{}' is not one of: {}", action, pl.lit(", ".join(ACTIONS)))),
        _reason(is_create & ~kind.is_in(KINDS), pl.format("kind '{}' is not one of: {}", kind, pl.lit(", ".join(KINDS)))),
        _reason(is_create & ~is_skip & (name.is_null() | (name.str.strip_chars() == "")),
                pl.lit("name is missing: a feedback or expectation needs the name of what it assesses")),
        _reason(name.str.len_chars() > MAX_NAME_CHARS,
                pl.format("name is {} characters long: at most {} are allowed", name.str.len_chars(),
                          pl.lit(MAX_NAME_CHARS))),
        *too_long,
        _reason(is_create & pl.col("trace_id").is_null() & pl.col("client_request_id").is_null(),
                pl.lit("trace_id is missing: give the trace_id (tr-…) or the client_request_id of the traced request")),
        _reason(pl.col("trace_id").is_null() & pl.col("client_request_id").is_not_null(),
                pl.format("client_request_id '{}' matches no trace in the traces table", pl.col("client_request_id"))),
        _reason(pl.col("trace_id").is_not_null() & ~pl.col("trace_known") & ~is_delete,
                pl.format("trace {} is not in the traces table: ingest the trace first, then re-run this date",
                          pl.col("trace_id"))),
        _reason(~pl.col("source_type").is_in(SOURCE_TYPES),
                pl.format("source.source_type '{}' is not one of: {}", pl.col("source_type"),
                          pl.lit(", ".join(SOURCE_TYPES)))),
        _reason(pl.col("value").str.len_bytes() > MAX_VALUE_BYTES,
                pl.format("value is {} bytes of JSON: at most {} are allowed", pl.col("value").str.len_bytes(),
                          pl.lit(MAX_VALUE_BYTES))),
        _reason(pl.col("rationale").str.len_chars() > MAX_RATIONALE_CHARS,
                pl.format("rationale is {} characters long: at most {} are allowed",
                          pl.col("rationale").str.len_chars(), pl.lit(MAX_RATIONALE_CHARS))),
        _reason(pl.col("metadata").str.len_bytes() > MAX_METADATA_BYTES,
                pl.format("metadata is {} bytes of JSON: at most {} are allowed", pl.col("metadata").str.len_bytes(),
                          pl.lit(MAX_METADATA_BYTES))),
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
                pl.format("a skip carries no value (got {})", _short("value"))),
        _reason(is_create & ~is_skip & pl.col("value").is_null(),
                pl.lit("value is missing: a feedback or expectation needs a value")),
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


# --- the fold: history -> current state -----------------------------------------------------------


def history_rows(checked: pl.DataFrame) -> pl.DataFrame:
    """Accepted submissions as `assessment_history` rows."""
    return checked.select(
        "submission_id", "action", "assessment_id", "trace_id", "span_id", "session",
        pl.col("name").alias("assessment_name"), "kind", pl.col("value").alias("assessment_value"), "rationale",
        "source_type", pl.col("source_id").alias("assessor_id"), "metadata", "overrides",
        pl.col("schema_version").cast(pl.Int64), "created_at", "origin", "submission_date", "landing_key", "line_number",
    ).cast(HISTORY_SCHEMA)


def rejection_rows(checked: pl.DataFrame) -> pl.DataFrame:
    """Rejected submissions as `rejections` rows, every reason listed and joined."""
    return checked.select(
        "submission_id", "landing_key", "line_number", "reasons",
        pl.col("reasons").list.join("; ").alias("reason"),
        pl.col("raw").str.slice(0, 2000), "submission_date",
        pl.lit(_now()).cast(UTC_US).alias("rejected_at"),
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
    replaced when given, metadata merged, updated_at bumped), then a delete. Adds `deleted`."""
    ordered = events.sort("created_at", "landing_key", "line_number")
    creates = ordered.filter(pl.col("action") == "create").unique("assessment_id", keep="first", maintain_order=True)
    updates = ordered.filter(pl.col("action") == "update").group_by("assessment_id").agg(
        pl.col("assessment_value").drop_nulls().last().alias("u_value"),
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
            pl.coalesce("u_value", "assessment_value").alias("assessment_value"),
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


def with_validity(state: pl.DataFrame) -> pl.DataFrame:
    """`valid`: not overridden by a live assessment, and the newest of its assessor's answers to the
    same question (trace, span, name, session). Deleting the newer one makes the older valid again."""
    overridden = state["overrides"].drop_nulls().unique()
    ordered = state.sort("created_at", "assessment_id")
    newest = pl.col("assessment_id").last().over(GROUP_KEY) == pl.col("assessment_id")
    return ordered.with_columns((newest & ~pl.col("assessment_id").is_in(overridden.implode())).alias("valid"))


def _content_hash(columns: list[str]) -> pl.Expr:
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("\u2400") for c in columns], separator="\u241f").hash().cast(
        pl.String
    )


def _in_list(column: str, values: list[str]) -> Iterator[str]:
    for start in range(0, len(values), 1000):
        quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values[start : start + 1000])
        yield f"{column} IN ({quoted})"


def _delete_ids(lake: Lake, table: str, column: str, values: list[str]) -> int:
    return sum(lake.delete(table, predicate).rows_deleted for predicate in _in_list(column, values))


def derive_assessments(lake: Lake, scope: Scope, run_id: str = "") -> dict[str, Any]:
    """Validate the submissions in scope, record history and rejections, refold the assessments they touch.

    Idempotent: run it again (after a crash, or a label-schema change) and it converges on the same
    tables; a submission that now fails moves from history to rejections, and back.
    """
    submissions = _read(lake, SUBMISSIONS, SUBMISSION_SCHEMA, scope.filter())
    context = load_context(lake, exclude_submission_ids=submissions["submission_id"])
    checked = validate(submissions, context)
    valid_rows = checked.filter(pl.col("reasons").list.len() == 0)
    invalid_rows = checked.filter(pl.col("reasons").list.len() > 0)
    events, rejections = history_rows(valid_rows), rejection_rows(invalid_rows)

    rejected_result = lake.merge(REJECTIONS, rejections, on=["submission_id"], change_column="reason")
    stale_rejections = _read(lake, REJECTIONS, REJECTION_SCHEMA, pl.col("submission_id").is_in(events["submission_id"].implode()))
    unrejected = _delete_ids(lake, REJECTIONS, "submission_id", stale_rejections["submission_id"].to_list())

    events = events.with_columns(_content_hash(list(HISTORY_SCHEMA)).alias("content_hash"))
    history_result = lake.merge(HISTORY, events, on=["submission_id"], change_column="content_hash")
    stale_history = _read(lake, HISTORY, HISTORY_SCHEMA, pl.col("submission_id").is_in(rejections["submission_id"].implode()))
    withdrawn = _delete_ids(lake, HISTORY, "submission_id", stale_history["submission_id"].to_list())

    affected = pl.concat([events["assessment_id"], events["overrides"], stale_history["assessment_id"]]).drop_nulls().unique()
    state_result, removed = refold(lake, affected)
    files = _read(lake, FILES, FILE_SCHEMA, scope.filter())
    received, duplicates = int(files["received"].sum()), int(files["duplicates"].sum())
    outcomes = checked.group_by("landing_key").agg(
        (pl.col("reasons").list.len() == 0).sum().cast(pl.Int64).alias("accepted"),
        (pl.col("reasons").list.len() > 0).sum().cast(pl.Int64).alias("rejected"),
    )
    per_file = files.join(outcomes, on="landing_key", how="left").select(
        "landing_key", "received", pl.col("accepted").fill_null(0), pl.col("rejected").fill_null(0), "duplicates"
    )
    record_processed(lake, AREA, per_file, run_id)
    return {
        "scope": scope.describe(),
        "received": received,
        "accepted": valid_rows.height,
        "rejected": invalid_rows.height,
        "duplicates": duplicates,
        "accounted": received == valid_rows.height + invalid_rows.height + duplicates,
        "history_rows_written": history_result.rows_written,
        "history_rows_withdrawn": withdrawn,
        "rejections_written": rejected_result.rows_written,
        "rejections_withdrawn": unrejected,
        "assessments_written": state_result.rows_written,
        "assessments_removed": removed,
        "delta_version": state_result.version,
        "history_delta_version": history_result.version,
        "rejections_delta_version": rejected_result.version,
    }


def refold(lake: Lake, assessment_ids: pl.Series) -> tuple[Any, int]:
    """Recompute the current state of these assessments from their history and every assessment's
    validity; write what changed (merge on assessment_id) and remove the deleted ones."""
    events = _read(lake, HISTORY, HISTORY_SCHEMA, pl.col("assessment_id").is_in(assessment_ids.implode()))
    folded = fold(events.select(HISTORY_SCHEMA.keys()))
    current = _read(lake, ASSESSMENTS, ASSESSMENT_SCHEMA)
    alive = pl.concat(
        [
            current.select(ASSESSMENT_SCHEMA.keys()).filter(~pl.col("assessment_id").is_in(assessment_ids.implode())),
            folded.filter(~pl.col("deleted")).select(ASSESSMENT_SCHEMA.keys()),
        ]
    )
    state = with_validity(alive)
    state = state.with_columns(_content_hash(list(ASSESSMENT_SCHEMA)).alias("content_hash"))
    result = lake.merge(ASSESSMENTS, state, on=["assessment_id"], change_column="content_hash")
    gone = current.filter(
        pl.col("assessment_id").is_in(assessment_ids.implode()) & ~pl.col("assessment_id").is_in(state["assessment_id"].implode())
    )["assessment_id"].to_list()
    return result, _delete_ids(lake, ASSESSMENTS, "assessment_id", gone)


def assessments_touched(lake: Lake, scope: Scope | None) -> pl.DataFrame:
    """The current assessments whose latest submission came from the landing files in scope: what a run
    changed. Without a scope (a check run outside a sensor run), every current assessment."""
    if scope is None:
        return _read(lake, ASSESSMENTS, ASSESSMENT_SCHEMA)
    submitted = lake.scan(SUBMISSIONS)
    current = lake.scan(ASSESSMENTS)
    if submitted is None or current is None:
        return pl.DataFrame(schema=ASSESSMENT_SCHEMA)
    ids = submitted.filter(scope.filter()).select("submission_id").collect()["submission_id"]
    return current.filter(pl.col("last_submission_id").is_in(ids.implode())).collect()


def accounting(lake: Lake) -> dict[str, int]:
    """How the recorded submissions are accounted for: each must be in exactly one of
    `assessment_history` (accepted) and `rejections`."""
    ids = _read(lake, SUBMISSIONS, SUBMISSION_SCHEMA).select("submission_id")
    accepted = _read(lake, HISTORY, HISTORY_SCHEMA).select("submission_id").with_columns(pl.lit(True).alias("accepted"))
    rejected = _read(lake, REJECTIONS, REJECTION_SCHEMA).select("submission_id").with_columns(pl.lit(True).alias("rejected"))
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


# --- what is pending ----------------------------------------------------------------------------


def processed_watermark(lake: Lake) -> str | None:
    """The newest submissions landing key whose run completed (recorded last, in `processed_files`):
    files after it are pending."""
    return processed_high_water(lake, AREA)


def underived_dates(lake: Lake) -> list[date]:
    """Submission dates with a collected submission in neither history nor rejections (a run died between)."""
    if not lake.exists(SUBMISSIONS):
        return []
    done = pl.concat([
        _read(lake, HISTORY, HISTORY_SCHEMA).select("submission_id"),
        _read(lake, REJECTIONS, REJECTION_SCHEMA).select("submission_id"),
    ])
    missing = lake.scan(SUBMISSIONS).select("submission_id", "submission_date").collect().join(done, on="submission_id", how="anti")
    return sorted(missing["submission_date"].unique().to_list())


def ready_keys(lake: Lake, landing: LandingZone, keys: list[str]) -> list[str]:
    """The leading submission files that arrived before the first trace file still waiting to be
    ingested: a submission is validated only once every trace that landed before it is in `traces`
    (the trace stage lands the assessments embedded in an export before it commits the traces)."""
    waiting = landing.list("traces", after=processed_high_water(lake, "traces"), limit=1)
    if not waiting:
        return keys
    cutoff = LandingKey.parse(waiting[0]).time_ns
    return list(itertools.takewhile(lambda key: LandingKey.parse(key).time_ns < cutoff, keys))


def pending_submissions(lake: Lake, landing: LandingZone, after_key: str | None = None) -> pl.DataFrame:
    """Submissions in landing files not collected yet (after `after_key`, default: the collected
    watermark), parsed but not validated: what a reader folds in for read-your-writes."""
    after = after_key if after_key is not None else processed_watermark(lake)
    return parse_lines(landing.read_lines(landing.list(AREA, after=after)))


# --- reading ------------------------------------------------------------------------------------

SEARCH_COLUMNS = [
    "trace_id", "session", "assessment_id", "assessment_name", "kind", "assessment_value", "rationale", "source_type",
    "assessor_id", "timestamp", "valid", "span_id", "metadata", "overrides", "schema_version", "created_at",
    "updated_at", "submission_id", "pending",
]


def _pending_state(lake: Lake, landing: LandingZone, current: pl.DataFrame) -> pl.DataFrame:
    """Current state with pending landing submissions folded in (unvalidated, marked `pending`)."""
    pending = pending_submissions(lake, landing).filter(pl.col("parse_error").is_null())
    if pending.height == 0:
        return current.with_columns(pl.lit(False).alias("pending"))
    context_targets = targets_from_history(_read(lake, HISTORY, HISTORY_SCHEMA))
    checked = pending.with_columns(pl.lit([], pl.List(pl.String)).alias("reasons"), pl.lit(None, pl.Int64).alias("schema_version"))
    inherit = checked.join(context_targets, left_on="assessment_id", right_on="assessment_id", how="left").with_columns(
        pl.when(pl.col("action") != "create").then(pl.col("t_kind")).otherwise(pl.col("kind").fill_null("feedback")).alias("kind"),
        pl.when(pl.col("action") != "create").then(pl.col("t_source_type")).otherwise(pl.col("source_type")).alias("source_type"),
        pl.when(pl.col("action") != "create").then(pl.col("t_source_id")).otherwise(pl.col("source_id")).alias("source_id"),
    )
    touched = inherit["assessment_id"].drop_nulls().unique()
    events = pl.concat([
        _read(lake, HISTORY, HISTORY_SCHEMA, pl.col("assessment_id").is_in(touched.implode())).select(HISTORY_SCHEMA.keys()),
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
    current = _read(lake, ASSESSMENTS, ASSESSMENT_SCHEMA).select(ASSESSMENT_SCHEMA.keys())
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


# --- batching: how landing files are cut into runs -------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Landing files (after_key, last_key] of one arrival day: what one run collects and derives."""

    after_key: str | None
    last_key: str
    files: int

    @property
    def day(self) -> str:
        return self.last_key.split("/")[1]

    @property
    def scope(self) -> Scope:
        return Scope(after_key=self.after_key, last_key=self.last_key)


def batches(
    keys: list[str], after_key: str | None, max_files: int, sizes: list[int] | None = None, max_bytes: int = MAX_RUN_BYTES
) -> list[Batch]:
    """Cut keys (in arrival order, all after `after_key`) into runs of one day, each of at most `max_files`
    files and, when the files' `sizes` are given, at most `max_bytes` of them (a larger file goes alone),
    so a run's memory stays bounded however the submissions were split into files."""
    cut: list[Batch] = []
    previous, first_index, run_bytes = after_key, 0, 0
    for index, key in enumerate(keys):
        run_bytes += sizes[index] if sizes is not None else 0
        last_of_run = (
            index + 1 == len(keys)
            or index + 1 - first_index >= max_files
            or keys[index + 1].split("/")[1] != key.split("/")[1]
            or (sizes is not None and run_bytes + sizes[index + 1] > max_bytes)
        )
        if last_of_run:
            same_day = previous is not None and previous.split("/")[1] == key.split("/")[1]
            cut.append(Batch(previous if same_day else None, key, index + 1 - first_index))
            previous, first_index, run_bytes = key, index + 1, 0
    return cut


def process_pending(lake: Lake, landing: LandingZone, max_files: int = 500) -> list[dict[str, Any]]:
    """Collect and derive every pending landing file, batch by batch, without Dagster (tests, benchmarks)."""
    watermark = processed_watermark(lake)
    reports = []
    keys = ready_keys(lake, landing, landing.list(AREA, after=watermark))
    for batch in batches(keys, watermark, max_files, landing.sizes(keys)):
        collected = collect_submissions(lake, landing, batch.scope)
        reports.append({"collected": collected, **derive_assessments(lake, batch.scope)})
    return reports
