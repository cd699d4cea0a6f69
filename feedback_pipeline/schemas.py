"""Label schemas: the questions experts answer, under MLflow's names.

A schema's `name` is the assessment name its answers are written under. Every change of a schema
makes a new version (one row per (name, version) in the `label_schemas` table); an assessment
records the version it answered, so a later change or a (soft) delete never re-interprets a label.

The SDK writes definition events to the landing zone and reads the state back by folding them with
`fold_label_schemas`, the same function the `label_schemas` asset uses to write the Delta table.
Built-in schemas (`expected_facts`, `expected_response`, `guidelines`) exist from the start and can
be overwritten like any other.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from feedback_pipeline import definition_events
from feedback_pipeline.field_errors import FieldError
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.input_types import INPUT_CLASSES, Input, InputText, InputTextList, input_from_parameters
from feedback_pipeline.utc import UTC_TIME

TYPES = ("feedback", "expectation")
MAX_NAME = 250
MAX_INSTRUCTION = 1000

EXPECTED_FACTS = "expected_facts"
EXPECTED_RESPONSE = "expected_response"
GUIDELINES = "guidelines"

TABLE = "label_schemas"
TABLE_SCHEMA = pl.Schema(
    {
        "name": pl.String,
        "version": pl.Int64,
        **definition_events.SCHEMA_COLUMNS,
        "deleted": pl.Boolean,
        "created_at": UTC_TIME,
        "updated_at": UTC_TIME,
        "landing_key": pl.String,
        "content_hash": pl.String,
    }
)


@dataclass(frozen=True)
class LabelSchema:
    """One version of a label schema."""

    name: str
    type: str
    title: str
    input: Input
    instruction: str | None = None
    enable_comment: bool = False
    schema_id: str | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def validate_definition(name: object, type: object, title: object, input: object, instruction: object, enable_comment: object) -> None:
    """Raise ValueError naming the field, the value and what was expected."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise FieldError("name", f"name is {name!r}: expected a non-empty string of at most {MAX_NAME} characters")
    if type not in TYPES:
        raise FieldError("type", f"type is {type!r}: expected 'feedback' or 'expectation'")
    if not isinstance(title, str) or not title.strip():
        raise FieldError("title", f"title is {title!r}: expected a non-empty string")
    if not isinstance(input, Input):
        raise FieldError("input", f"input is {input!r}: expected one of {', '.join(c.__name__ for c in INPUT_CLASSES.values())}")
    if instruction is not None and (not isinstance(instruction, str) or len(instruction) > MAX_INSTRUCTION):
        raise FieldError("instruction", f"instruction is {str(instruction)[:80]!r}: expected a string of at most {MAX_INSTRUCTION} characters")
    if not isinstance(enable_comment, bool):
        raise FieldError("enable_comment", f"enable_comment is {enable_comment!r}: expected true or false")


def put_event(schema: LabelSchema) -> dict:
    """The definition event that makes `schema` the current version of its name."""
    return {
        "event": "label_schema.put",
        "at": definition_events.now_iso(),
        "name": schema.name,
        "schema_id": schema.schema_id or f"ls-{uuid.uuid4().hex[:16]}",
        "type": schema.type,
        "title": schema.title,
        "instruction": schema.instruction,
        "enable_comment": schema.enable_comment,
        "input_type": schema.input.input_type,
        "input": json.dumps(schema.input.parameters(), sort_keys=True),
    }


BUILT_INS = (
    LabelSchema(EXPECTED_FACTS, "expectation", "Expected facts", InputTextList(), "List the facts a correct answer states.", False, "ls-expected-facts"),
    LabelSchema(EXPECTED_RESPONSE, "expectation", "Expected response", InputText(), "Write the response the application should give.", False, "ls-expected-response"),
    LabelSchema(GUIDELINES, "expectation", "Guidelines", InputTextList(), "List the guidelines a good answer follows.", False, "ls-guidelines"),
)
BUILT_IN_TIME = "2026-01-01T00:00:00Z"


def built_in_events() -> pl.DataFrame:
    """The built-in schemas as events that sort before anything landed."""
    rows = [{**put_event(s), "at": BUILT_IN_TIME} for s in BUILT_INS]
    frame = definition_events.events_frame([("builtin", "\n".join(json.dumps(r) for r in rows).encode())])
    return frame


CONTENT = ["type", "title", "instruction", "enable_comment", "input_type", "input"]


def fold_label_schemas(events: pl.DataFrame) -> pl.DataFrame:
    """Every version of every schema from definition events (built-ins first), one row per (name, version).

    A put whose content differs from the name's previous put, or follows a delete, opens a new
    version; a delete marks the version current at that moment as deleted.
    """
    frame = pl.concat([built_in_events(), events], how="vertical").filter(
        pl.col("event").is_in(["label_schema.put", "label_schema.delete"])
    )
    put = pl.col("event") == "label_schema.put"
    content = pl.when(put).then(pl.struct(CONTENT).hash(seed=0))
    frame = frame.with_row_index("seq").with_columns(content=content)
    previous_event = pl.col("event").shift(1).over("name", order_by="seq")
    previous_content = pl.col("content").shift(1).over("name", order_by="seq")
    opens = put & (previous_event.is_null() | (previous_event != "label_schema.put") | (previous_content != pl.col("content")))
    frame = frame.with_columns(version=opens.cast(pl.Int64).cum_sum().over("name", order_by="seq"))
    frame = frame.filter(pl.col("version") >= 1)
    first_put = pl.col("seq") == pl.col("seq").min().over("name", "version")
    puts = frame.filter(first_put).select("name", "version", "schema_id", *CONTENT)
    summary = frame.group_by("name", "version").agg(
        deleted=(pl.col("event") == "label_schema.delete").any(),
        updated_at=pl.col("at").max(),
        landing_key=pl.col("landing_key").max(),
    )
    created = frame.group_by("name").agg(created_at=pl.col("at").min(), first_id=pl.col("schema_id").drop_nulls().first())
    table = (
        puts.join(summary, on=["name", "version"]).join(created, on="name")
        .with_columns(schema_id=pl.col("first_id"))
        .with_columns(content_hash=pl.struct([c for c in TABLE_SCHEMA.names() if c != "content_hash"]).hash(seed=0).cast(pl.String))
    )
    return table.select(TABLE_SCHEMA.names()).sort("name", "version")


def latest_versions(frame: pl.DataFrame) -> pl.DataFrame:
    """The newest version of each name, deleted or not: the one derivation of "the latest label schema"
    (validation checks answers against it; `current_schemas` keeps the live ones)."""
    if "name" not in frame.columns:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    return frame.filter(pl.col("version") == pl.col("version").max().over("name")).sort("name")


def current_schemas(frame: pl.DataFrame) -> pl.DataFrame:
    """The latest version of each name that is not deleted."""
    return latest_versions(frame).filter(~pl.col("deleted").fill_null(False))


def schema_from_row(row: dict) -> LabelSchema:
    return LabelSchema(
        name=row["name"],
        type=row["type"],
        title=row["title"],
        input=input_from_parameters(row["input_type"], json.loads(row["input"])),
        instruction=row["instruction"],
        enable_comment=bool(row["enable_comment"]),
        schema_id=row["schema_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def same_definition(a: LabelSchema, b: LabelSchema) -> bool:
    """True when two schemas ask the same question the same way (ids and times aside)."""
    return (a.type, a.title, a.instruction, a.enable_comment, a.input.input_type, a.input.parameters()) == (
        b.type, b.title, b.instruction, b.enable_comment, b.input.input_type, b.input.parameters()
    )


def _home(home: FeedbackHome | None) -> FeedbackHome:
    return home or FeedbackHome.from_env()


def schema_table(home: FeedbackHome | None = None) -> pl.DataFrame:
    """All versions of all schemas as the definition events say now (read-your-writes)."""
    return fold_label_schemas(definition_events.read_events(_home(home).landing()))


def current_by_name(frame: pl.DataFrame) -> dict[str, LabelSchema]:
    return {row["name"]: schema_from_row(row) for row in current_schemas(frame).iter_rows(named=True)}


def create_label_schema(
    name: str,
    *,
    type: str = "feedback",
    title: str | None = None,
    input: Input,
    instruction: str | None = None,
    enable_comment: bool = False,
    overwrite: bool = False,
    home: FeedbackHome | None = None,
) -> LabelSchema:
    """Create a label schema, or with `overwrite=True` make a new version of an existing one."""
    title = name if title is None else title
    validate_definition(name, type, title, input, instruction, enable_comment)
    home = _home(home)
    current = current_by_name(schema_table(home)).get(name)
    if current is not None and not overwrite:
        raise ValueError(f"name {name!r} is already a label schema (version {current.version}): pass overwrite=True to make a new version")
    schema = LabelSchema(name, type, title, input, instruction, enable_comment, current.schema_id if current else None)
    if current is not None and same_definition(current, schema):
        return current
    definition_events.write_events(home.landing(), [put_event(schema)], label=definition_events.SCHEMA_LABEL)
    return current_by_name(schema_table(home))[name]


def get_label_schema(name: str, *, home: FeedbackHome | None = None) -> LabelSchema:
    """The current version of a schema; ValueError when there is none (or it was deleted)."""
    current = current_by_name(schema_table(home))
    if name not in current:
        raise ValueError(f"label schema {name!r} does not exist (or was deleted): expected one of {sorted(current)}")
    return current[name]


def list_label_schemas(*, home: FeedbackHome | None = None) -> list[LabelSchema]:
    """The current version of every live schema, by name."""
    return list(current_by_name(schema_table(home)).values())


def delete_label_schema(name: str, *, home: FeedbackHome | None = None) -> None:
    """Soft delete: the versions stay in the table, so labels keep pointing at what they answered."""
    home = _home(home)
    get_label_schema(name, home=home)
    event = {"event": "label_schema.delete", "at": definition_events.now_iso(), "name": name}
    definition_events.write_events(home.landing(), [event], label=definition_events.SCHEMA_LABEL)
