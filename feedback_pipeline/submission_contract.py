"""The submission contract: the fields of a submission, their types and limits, defined once.

A submission is one JSON object per line of a `submissions` landing file (docs/ARCHITECTURE.md,
whose field table is `field_table()`). From `FIELDS` come the typed frame the pipeline parses lines
into (`SUBMISSION_SCHEMA`), the frame of landing records (`RECORD_SCHEMA`), the limits pipeline
validation applies (`limit_rules`), the same limits for one record at a door (`limit_problems`), and
the feedback API's pydantic constraints (`max_chars`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from feedback_pipeline.entities import SOURCE_TYPES
from feedback_pipeline.utc import UTC_TIME

AREA = "submissions"
ACTIONS = ("create", "update", "delete")
KINDS = ("feedback", "expectation", "skip")
ORIGINS = ("sdk", "review-app", "api", "import", "mlflow-import")
MAX_LINE_BYTES = 1_000_000
MAX_NAME_CHARS = 250
MAX_ID_CHARS = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_RATIONALE_CHARS = 10_000
MAX_METADATA_BYTES = 16 * 1024


@dataclass(frozen=True)
class Field:
    """One field of a submission line: its JSON type, its limit, and the column it is parsed into."""

    name: str
    json_type: str
    about: str
    column: pl.DataType = pl.String
    max_chars: int | None = None
    max_bytes: int | None = None
    parsed_as: str | None = None
    """Where the value is read from inside the line when not at `name` (e.g. `source.source_id`)."""

    @property
    def limit(self) -> str:
        """The limit in words, for the docs table."""
        if self.max_chars is not None:
            return f"{self.max_chars:,} characters"
        if self.max_bytes is not None:
            return f"{self.max_bytes // 1024} KiB of JSON"
        return ""


_ID = "string"
FIELDS: tuple[Field, ...] = (
    Field("submission_id", _ID, "required: the idempotency key, made by the client", max_chars=MAX_ID_CHARS),
    Field("action", "string", " \\| ".join(ACTIONS) + " (default create)"),
    Field("assessment_id", _ID, "create: the id it takes (default `a-<md5 of submission_id>`); update/delete: the target",
          max_chars=MAX_ID_CHARS),
    Field("trace_id", _ID, "the trace assessed (`tr-…`); or give client_request_id", max_chars=MAX_ID_CHARS),
    Field("client_request_id", _ID, "the application's request id, resolved to its trace", max_chars=MAX_ID_CHARS),
    Field("span_id", _ID, "optional: the span assessed", max_chars=MAX_ID_CHARS),
    Field("session", _ID, "optional: a labeling session name (or id)", max_chars=MAX_ID_CHARS),
    Field("name", "string", "what is assessed (a label schema name for session answers)", max_chars=MAX_NAME_CHARS),
    Field("kind", "string", " \\| ".join(KINDS) + " (default feedback)"),
    Field("value", "any JSON", "the answer; null only for a skip, or a feedback with an error", max_bytes=MAX_VALUE_BYTES),
    Field("error", "object", "feedback only: why no value could be given (MLflow's `AssessmentError`: "
          "`error_code`, optional `error_message`, `stack_trace`)", max_bytes=MAX_VALUE_BYTES),
    Field("rationale", "string", "optional free text (`comment` is read as rationale)", max_chars=MAX_RATIONALE_CHARS),
    Field("source_type", "string", " \\| ".join(SOURCE_TYPES) + " (AI_JUDGE reads as LLM_JUDGE); default CODE for "
          "feedback, HUMAN otherwise", parsed_as="source.source_type"),
    Field("source_id", "string", "who assessed (default \"default\")", max_chars=MAX_ID_CHARS, parsed_as="source.source_id"),
    Field("metadata", "object", "merged on update", max_bytes=MAX_METADATA_BYTES),
    Field("overrides", _ID, "the assessment_id this feedback replaces", max_chars=MAX_ID_CHARS),
    Field("created_at", "string or number", "ISO-8601 or epoch ms; default: arrival time", column=UTC_TIME),
    Field("origin", "string", " \\| ".join(ORIGINS)),
)
"""The fields of a submission line, in order. `source_type` and `source_id` are the members of the
line's `source` object."""

PIPELINE_COLUMNS: dict[str, pl.DataType] = {
    "parse_error": pl.String,
    "submission_date": pl.Date,
    "landing_key": pl.String,
    "line_number": pl.Int64,
    "raw": pl.String,
    "received_at": UTC_TIME,
}
"""What parsing adds to the fields: why a line is not a submission, and where and when it landed."""

SUBMISSION_SCHEMA: dict[str, pl.DataType] = {f.name: f.column for f in FIELDS} | PIPELINE_COLUMNS
"""The typed frame of parsed submissions (`submission_parsing.parse_lines`, the `submissions` table)."""



def _record_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    for f in FIELDS:
        if f.parsed_as is None:
            schema[f.name] = pl.String
        elif "source" not in schema:
            schema["source"] = pl.Struct({"source_type": pl.String, "source_id": pl.String})
    return schema


RECORD_SCHEMA = _record_schema()
"""A landing line's fields as a frame before it is written as JSON (value and metadata as JSON text,
`source` an object)."""


def max_chars(field_name: str) -> int:
    """The character limit of a field (for the doors' own checks, such as the feedback API's model)."""
    limit = next((f.max_chars for f in FIELDS if f.name == field_name), None)
    if limit is None:
        raise ValueError(f"field {field_name!r} has no character limit")
    return limit


def limit_rules() -> list[tuple[pl.Expr, pl.Expr]]:
    """(condition, message) per limited field over a frame of parsed submissions (pipeline validation)."""
    rules = []
    for f in FIELDS:
        if f.max_chars is not None:
            length = pl.col(f.name).str.len_chars()
            rules.append((length > f.max_chars, pl.format("{} is {} characters long: at most {} are allowed",
                                                          pl.lit(f.name), length, pl.lit(f.max_chars))))
        if f.max_bytes is not None:
            size = pl.col(f.name).str.len_bytes()
            rules.append((size > f.max_bytes, pl.format("{} is {} bytes of JSON: at most {} are allowed",
                                                        pl.lit(f.name), size, pl.lit(f.max_bytes))))
    return rules


def _member(record: Mapping[str, Any], field: Field) -> Any:
    value: Any = record
    for part in (field.parsed_as or field.name).split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def limit_problems(record: Mapping[str, Any]) -> list[str]:
    """The limits one submission record (as `submissions.submission` makes it) breaks, in the words
    validation would reject it with: for a door to refuse it before it lands."""
    found = []
    for f in FIELDS:
        value = _member(record, f)
        if value is None:
            continue
        if f.max_chars is not None and isinstance(value, str) and len(value) > f.max_chars:
            found.append(f"{f.name} is {len(value)} characters long: at most {f.max_chars} are allowed")
        if f.max_bytes is not None:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
            if size > f.max_bytes:
                found.append(f"{f.name} is {size} bytes of JSON: at most {f.max_bytes} are allowed")
    return found


def field_table() -> str:
    """The fields as the markdown table docs/ARCHITECTURE.md shows (a test keeps the two equal)."""
    rows = [f"| `{f.parsed_as or f.name}` | {f.json_type} | {f.limit} | {f.about} |" for f in FIELDS]
    return "\n".join(["| field | JSON | limit | what |", "|---|---|---|---|", *rows])
