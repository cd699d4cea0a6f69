"""Parse MLflow trace exports (every span layout MLflow has written) into the `traces` table.

The work is vectorised: each raw line is decoded once with an explicit union schema covering
MLflow 2 (`request_id`, spans with a `context` key), 3.4 (protobuf-style dicts: `""` root parent,
int64 fields as strings), 3.5 (hex ids, status "OK") and 3.6+ (base64 ids, `null` root parent);
the layouts are then coalesced with expressions, spans are exploded for span-level work and
aggregated back. Open key/value maps (tags, metadata, assessment metadata) are kept as JSON text
through `str.json_path_match`. Only lines the batch decoder cannot read are looked at one by one,
to turn them into rejections with a reason or to coerce stray value types into the schema.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline.json_values import duckdb_connection
from feedback_pipeline.submission_contract import RECORD_SCHEMA
from feedback_pipeline.utc import UTC_TIME

RAW_PREVIEW_CHARS = 2_000
PREVIEW_CHARS = 1_000
_CHUNK_ROWS = 4_096
_PARALLEL_MIN_ROWS = 2_000
_LATEST_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
EARLIEST_REQUEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_REQUEST_AHEAD = timedelta(days=30)


DOCUMENT = pl.Struct({"id": pl.String, "page_content": pl.String, "doc_uri": pl.String})
CHAT_MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
TOOL_CALL = pl.Struct({"name": pl.String, "inputs": pl.String, "outputs": pl.String})

TRACES_SCHEMA = pl.Schema(
    {
        "trace_id": pl.String,
        "client_request_id": pl.String,
        "experiment_id": pl.String,
        "request_time": UTC_TIME,
        "request_date": pl.Date,
        "execution_duration_ms": pl.Int64,
        "state": pl.String,
        "request": pl.String,
        "response": pl.String,
        "request_preview": pl.String,
        "response_preview": pl.String,
        "tags": pl.String,
        "trace_metadata": pl.String,
        "model_id": pl.String,
        "session_id": pl.String,
        "user_id": pl.String,
        "span_count": pl.Int64,
        "retrieved_documents": pl.List(DOCUMENT),
        "chat_messages": pl.List(CHAT_MESSAGE),
        "tool_calls": pl.List(TOOL_CALL),
        "spans": pl.String,
        "landing_key": pl.String,
        "content_hash": pl.String,
        "ingested_at": UTC_TIME,
    }
)

REJECTIONS_SCHEMA = pl.Schema(
    {
        "landing_key": pl.String,
        "line_number": pl.Int64,
        "reason": pl.String,
        "raw": pl.String,
        "rejected_at": UTC_TIME,
    }
)

SUBMISSIONS_SCHEMA = pl.Schema({**RECORD_SCHEMA, "submission": pl.String})

# Span attributes MLflow writes (each value a JSON-encoded string). Inputs, outputs and type become
# span fields; every other attribute (MLflow's and the app's own) is kept under `attributes` in the
# display spans, read in bulk by DuckDB (`_SPAN_DETAILS_SQL`) with events and the status message.
_INPUTS, _OUTPUTS, _SPAN_TYPE = "mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.spanType"
# The metadata key our push writes on the assessments it logs in MLflow (our assessment_id): an
# import recognises them as ours and does not double them.
PUSHED_ASSESSMENT_KEY = "feedback_pipeline.assessment_id"
_METADATA_KEYS = (
    "mlflow.traceInputs",
    "mlflow.traceOutputs",
    "mlflow.modelId",
    "mlflow.trace.session",
    "mlflow.trace.user",
)

_SPAN = pl.Struct(
    {
        "span_id": pl.String,
        "parent_span_id": pl.String,
        "parent_id": pl.String,
        "context": pl.Struct({"span_id": pl.String, "trace_id": pl.String}),
        "name": pl.String,
        "start_time_unix_nano": pl.String,
        "end_time_unix_nano": pl.String,
        "start_time": pl.String,
        "end_time": pl.String,
        "status": pl.Struct({"code": pl.String, "message": pl.String}),
        "status_code": pl.String,
        "status_message": pl.String,
        "attributes": pl.Struct({k: pl.String for k in (_INPUTS, _OUTPUTS, _SPAN_TYPE)}),
    }
)
_METADATA = pl.Struct({k: pl.String for k in _METADATA_KEYS})
RAW_TRACE = pl.Struct(
    {
        "info": pl.Struct(
            {
                "trace_id": pl.String,
                "request_id": pl.String,
                "client_request_id": pl.String,
                "trace_location": pl.Struct(
                    {"type": pl.String, "mlflow_experiment": pl.Struct({"experiment_id": pl.String})}
                ),
                "experiment_id": pl.String,
                "request_time": pl.String,
                "timestamp_ms": pl.String,
                "execution_duration_ms": pl.String,
                "execution_duration": pl.String,
                "execution_time_ms": pl.String,
                "state": pl.String,
                "status": pl.String,
                "request_preview": pl.String,
                "response_preview": pl.String,
                "trace_metadata": _METADATA,
                "request_metadata": _METADATA,
            }
        ),
        "data": pl.Struct({"spans": pl.List(_SPAN), "request": pl.String, "response": pl.String}),
    }
)

_RAW_ASSESSMENT = pl.Struct(
    {
        "assessment_id": pl.String,
        "assessment_name": pl.String,
        "name": pl.String,
        "trace_id": pl.String,
        "span_id": pl.String,
        "source": pl.Struct({"source_type": pl.String, "source_id": pl.String}),
        "create_time": pl.String,
        "create_time_ms": pl.String,
        "rationale": pl.String,
        "overrides": pl.String,
        "expectation": pl.Struct(
            {"serialized_value": pl.Struct({"serialization_format": pl.String, "value": pl.String})}
        ),
    }
)

_RAW_DOCUMENT = pl.Struct(
    {
        "id": pl.String,
        "page_content": pl.String,
        "content": pl.String,
        "text": pl.String,
        "metadata": pl.Struct({"doc_uri": pl.String}),
    }
)
_OPENAI_TOOL_CALLS = pl.List(pl.Struct({"function": pl.Struct({"name": pl.String, "arguments": pl.String})}))
_OPENAI_MESSAGE = pl.Struct({"role": pl.String, "content": pl.String, "tool_calls": _OPENAI_TOOL_CALLS})
_OPENAI_REQUEST = pl.Struct({"messages": pl.List(_OPENAI_MESSAGE)})
_OPENAI_RESPONSE = pl.Struct({"choices": pl.List(pl.Struct({"message": _OPENAI_MESSAGE}))})


@dataclass(frozen=True)
class ParsedTraces:
    """One batch parsed: trace rows, rejected lines, and embedded assessments as submissions."""

    traces: pl.DataFrame
    rejections: pl.DataFrame
    submissions: pl.DataFrame


class _Rejected(ValueError):
    """A line that cannot be read as an MLflow trace; the message is the reason."""


def parse_mlflow_traces(lines: pl.DataFrame, *, ingested_at: datetime | None = None) -> ParsedTraces:
    """Parse raw MLflow trace exports into trace rows, rejections and submissions.

    `lines` has landing_key (str), line_number (i64) and raw (one JSON document per row). A row
    that is not a readable trace becomes a rejection; the rest of the batch still parses. When a
    trace_id occurs twice the newest export (later landing_key, then line) wins.
    """
    now = (ingested_at or datetime.now(UTC)).astimezone(UTC)
    frame = lines.select(
        pl.col("landing_key").cast(pl.String),
        pl.col("line_number").cast(pl.Int64),
        pl.col("raw").cast(pl.String),
    ).with_row_index("_row")
    decoded, reasons = _decode_batch(frame)
    checked = _check(decoded, now)
    rejected_rows = pl.concat(
        [
            reasons,
            checked.filter(pl.col("_reason").is_not_null()).select("_row", "_reason"),
        ]
    )
    good = checked.filter(pl.col("_reason").is_null()).drop("_reason")
    good = _newest_per_trace(good)
    traces, submissions = _build_in_parallel(good, now)
    rejections = (
        frame.join(rejected_rows, on="_row", how="inner")
        .sort("_row")
        .select(
            "landing_key",
            "line_number",
            pl.col("_reason").alias("reason"),
            pl.col("raw").str.slice(0, RAW_PREVIEW_CHARS).alias("raw"),
            pl.lit(now, dtype=UTC_TIME).alias("rejected_at"),
        )
    )
    return ParsedTraces(traces=traces, rejections=rejections, submissions=submissions)


def _build_in_parallel(good: pl.DataFrame, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trace rows and embedded submissions, built on row slices in threads (one per core).

    Rows are independent once each trace_id occurs once, and polars releases the GIL, so the
    slices keep every core busy where one frame-wide pass mostly runs on one.
    """

    def build(part: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        return _trace_rows(part, now), _submissions(part.select("trace_id", "_info_text"))

    workers = min(os.cpu_count() or 1, max(1, good.height // _PARALLEL_MIN_ROWS))
    if workers == 1:
        return build(good)
    size = -(-good.height // workers)
    with ThreadPoolExecutor(workers) as pool:
        built = list(pool.map(build, [good.slice(start, size) for start in range(0, good.height, size)]))
    submissions = pl.concat([part for _, part in built]).unique("submission_id", keep="last", maintain_order=True)
    return pl.concat([part for part, _ in built]), submissions


def request_dates(raw: pl.Series) -> pl.Series:
    """The UTC request date of each raw trace line, or null when it cannot be read.

    Cheap on purpose (the importer labels every landing file with it): a regular expression finds
    `info.request_time` (or MLflow 2's `timestamp_ms`) in the usual export layout, and only the
    lines it misses are parsed as JSON.
    """
    frame = pl.DataFrame({"raw": raw.cast(pl.String)}).with_row_index("_row")
    found = frame.select(
        "_row",
        "raw",
        pl.coalesce(
            pl.col("raw").str.extract(r'"request_time"\s*:\s*"([^"]+)"', 1),
            pl.col("raw").str.extract(r'"timestamp_ms"\s*:\s*"?(\d+)', 1),
        ).alias("_time"),
    )
    missed = found.filter(pl.col("_time").is_null() & pl.col("raw").is_not_null()).select(
        "_row",
        pl.coalesce(
            pl.col("raw").str.json_path_match("$.info.request_time"),
            pl.col("raw").str.json_path_match("$.info.timestamp_ms"),
        ).alias("_late"),
    )
    return (
        found.join(missed, on="_row", how="left")
        .sort("_row")
        .select(_parse_time(pl.coalesce("_time", "_late")).dt.date().alias(raw.name or "request_date"))
        .to_series()
    )


# --- decoding ---------------------------------------------------------------------------------


def _decode_batch(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode every readable line with the union schema; return decoded rows and (row, reason)."""
    blank = frame["raw"].is_null() | (frame["raw"].str.strip_chars() == "")
    empty = frame.filter(blank).select(
        "_row",
        pl.format("line {} is empty: expected one MLflow trace as a JSON object", "line_number").alias(
            "_reason"
        ),
    )
    reasons: list[tuple[int, str]] = []
    work = frame.filter(~blank).select("_row", "line_number", pl.col("raw").alias("_raw_text"), "landing_key")
    info_text = pl.col("_raw_text").str.json_path_match("$.info").alias("_info_text")
    try:
        decoded, failed = _decode_in_parallel(work, info_text), []
    except pl.exceptions.PolarsError:
        values, failed = _decode_lenient(work["_raw_text"], RAW_TRACE)
        decoded = work.with_columns(values.alias("_t"), info_text)
    if failed:
        repaired_at, repaired_text = [], []
        for index in failed:
            row, line, text, _ = work.row(index)
            try:
                repaired_text.append(_conform_line(text, line))
                repaired_at.append(index)
            except _Rejected as exc:
                reasons.append((row, str(exc)))
        repaired, still = _decode_lenient(pl.Series(repaired_text, dtype=pl.String), RAW_TRACE)
        for index in still:
            row, line, _, _ = work.row(repaired_at[index])
            reasons.append((row, f"line {line} does not fit any MLflow trace layout"))
        fixed = work[repaired_at].with_columns(repaired.alias("_t"), info_text)
        fixed = fixed.filter(~pl.int_range(pl.len()).is_in(still))
        decoded = (
            pl.concat([decoded.filter(~pl.int_range(pl.len()).is_in(failed)), fixed]).sort("_row").rechunk()
        )
    reason_frame = pl.DataFrame(reasons, schema={"_row": pl.UInt32, "_reason": pl.String}, orient="row")
    return decoded, pl.concat([empty, reason_frame])


def _decode_in_parallel(work: pl.DataFrame, info_text: pl.Expr) -> pl.DataFrame:
    """Decode the whole batch in row chunks collected together, so every core parses JSON."""
    chunks = [
        work.slice(start, _CHUNK_ROWS)
        .lazy()
        .with_columns(pl.col("_raw_text").str.json_decode(RAW_TRACE).alias("_t"), info_text)
        for start in range(0, max(work.height, 1), _CHUNK_ROWS)
    ]
    return pl.concat(pl.collect_all(chunks)).rechunk()


def _decode_lenient(texts: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    """Decode JSON texts with `dtype`; positions the decoder refuses come back null and listed."""
    try:
        return texts.str.json_decode(dtype), []
    except pl.exceptions.PolarsError:
        if len(texts) == 1:
            return pl.Series([None], dtype=dtype), [0]
    size = _CHUNK_ROWS if len(texts) > _CHUNK_ROWS else max(1, len(texts) // 2)
    parts, failed = [], []
    for start in range(0, len(texts), size):
        part, bad = _decode_lenient(texts.slice(start, size), dtype)
        parts.append(part)
        failed.extend(start + b for b in bad)
    return pl.concat(parts).rechunk(), failed


def _conform_line(text: str, line: int) -> str:
    """Read one line the batch decoder refused: a reason, or the line coerced to the schema."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Rejected(
            f"line {line} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise _Rejected(
            f"line {line} is not an MLflow trace: expected a JSON object with 'info' and 'data', "
            f"got {_json_kind(document)}"
        )
    return json.dumps(_conform(document, RAW_TRACE, "", line))


def _conform(value: object, dtype: pl.DataType, path: str, line: int) -> object:
    """Coerce a decoded value to `dtype`: scalars become JSON text, wrong containers are rejected."""
    if value is None:
        return None
    if isinstance(dtype, pl.Struct):
        if not isinstance(value, dict):
            raise _Rejected(
                f"line {line} is not an MLflow trace: {path or 'the document'} must be a JSON object, "
                f"got {_json_kind(value)}"
            )
        return {
            field.name: _conform(value[field.name], field.dtype, f"{path}.{field.name}".lstrip("."), line)
            for field in dtype.fields
            if field.name in value
        }
    if isinstance(dtype, pl.List):
        if not isinstance(value, list):
            raise _Rejected(
                f"line {line} is not an MLflow trace: {path} must be a list, got {_json_kind(value)}"
            )
        return [_conform(item, dtype.inner, f"{path}[{i}]", line) for i, item in enumerate(value)]
    return value if isinstance(value, str) else json.dumps(value)


def _json_kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "a number" if isinstance(value, (int, float)) else "null")


# --- validation and coalescing across layouts ---------------------------------------------------


def _parse_time(text: pl.Expr) -> pl.Expr:
    """RFC 3339 text or epoch milliseconds -> UTC datetime (null when unreadable or out of range)."""
    stripped = text.str.strip_chars()
    millis = stripped.cast(pl.Int64, strict=False)
    return (
        pl.when(stripped.str.contains(r"^\d+$"))
        .then(pl.when(millis <= _LATEST_MILLIS).then(millis).cast(pl.Datetime("ms", "UTC")).cast(UTC_TIME))
        .otherwise(
            stripped.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC")
        )
    )


def _duration_ms(info: pl.Expr) -> pl.Expr:
    """The execution duration in ms across layouts (MLflow 3 `execution_duration` "1.5s", MLflow 2 `execution_time_ms`)."""
    seconds = info.struct.field("execution_duration").str.strip_suffix("s").cast(pl.Float64, strict=False)
    return pl.coalesce(
        info.struct.field("execution_duration_ms").cast(pl.Int64, strict=False),
        info.struct.field("execution_time_ms").cast(pl.Int64, strict=False),
        (seconds * 1000).round(0).cast(pl.Int64, strict=False),
    )


def _check(work: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Coalesce the trace-level fields across layouts and name what makes a line unusable.

    Times a real trace cannot have (before EARLIEST_REQUEST_TIME, more than LATEST_REQUEST_AHEAD
    after ingestion, a negative duration) are refused: the request date is the trace's partition."""
    info = pl.col("_t").struct.field("info")
    data = pl.col("_t").struct.field("data")
    line = pl.col("line_number").cast(pl.String)
    time_text = pl.coalesce(info.struct.field("request_time"), info.struct.field("timestamp_ms"))
    frame = work.with_columns(
        pl.coalesce(info.struct.field("trace_id"), info.struct.field("request_id")).alias("trace_id"),
        time_text.alias("_time_text"),
        _parse_time(time_text).alias("request_time"),
        data.struct.field("spans").alias("_spans"),
    )
    trace_id = pl.col("trace_id")
    reason = (
        pl.when(info.is_null())
        .then(
            pl.format(
                "line {} is not an MLflow trace: the 'info' object is missing "
                '(expected {{"info": {{"trace_id": ...}}, "data": {{"spans": [...]}}}})',
                line,
            )
        )
        .when(trace_id.is_null() | (trace_id.str.strip_chars() == ""))
        .then(
            pl.format(
                "line {} is not an MLflow trace: info.trace_id is missing "
                "(expected info.trace_id, or info.request_id in MLflow 2 exports)",
                line,
            )
        )
        .when(pl.col("_spans").is_null())
        .then(
            pl.format(
                "line {} (trace {}): data.spans is missing: expected the trace's spans as a list "
                "under data.spans",
                line,
                trace_id,
            )
        )
        .when(pl.col("_time_text").is_null())
        .then(
            pl.format(
                "line {} (trace {}): info.request_time is missing (expected RFC 3339 time or "
                "epoch milliseconds; MLflow 2: info.timestamp_ms)",
                line,
                trace_id,
            )
        )
        .when(pl.col("request_time").is_null())
        .then(
            pl.format(
                "line {} (trace {}): info.request_time '{}' is not a valid time: expected RFC 3339 "
                "like 2026-01-31T12:00:00.000Z or epoch milliseconds",
                line,
                trace_id,
                pl.col("_time_text"),
            )
        )
        .when(~pl.col("request_time").is_between(pl.lit(EARLIEST_REQUEST_TIME), pl.lit(now + LATEST_REQUEST_AHEAD)))
        .then(
            pl.format(
                "line {} (trace {}): info.request_time {} is implausible: expected a time between {} and {}",
                line,
                trace_id,
                pl.col("request_time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ"),
                pl.lit(f"{EARLIEST_REQUEST_TIME:%Y-%m-%d}"),
                pl.lit(f"{now + LATEST_REQUEST_AHEAD:%Y-%m-%dT%H:%M:%SZ}"),
            )
        )
        .when(_duration_ms(info) < 0)
        .then(
            pl.format(
                "line {} (trace {}): execution duration {} ms is negative: expected 0 or more",
                line,
                trace_id,
                _duration_ms(info),
            )
        )
    )
    return frame.with_columns(reason.alias("_reason"))


def _newest_per_trace(good: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per trace_id: the one from the later landing key, then the later line."""
    keys = good.select("_row", "trace_id", "landing_key", "line_number")
    if keys["trace_id"].n_unique() == keys.height:
        return good
    newest = (
        keys.sort("landing_key", "line_number", "_row", nulls_last=False)
        .unique("trace_id", keep="last")
        .select("_row")
    )
    return good.join(newest, on="_row", how="semi").sort("_row")


# --- building the trace rows ------------------------------------------------------------------


def _json_text(value: pl.Expr) -> pl.Expr:
    """`value` as a JSON literal (quoted string, number, or null)."""
    return pl.struct(value.alias("v")).struct.json_encode().str.slice(5).str.head(-1)


def _embedded_json(text: pl.Expr) -> pl.Expr:
    """JSON text to splice into a document: itself when it looks like one JSON value, else quoted.

    A cheap shape check (first and last character) rather than a full parse: MLflow writes these
    attributes with json.dumps, and the check catches the usual stray, a bare unencoded string.
    Null stays null.
    """
    first, last = text.str.head(1), text.str.tail(1)
    valid = (
        ((first == "{") & (last == "}"))
        | ((first == "[") & (last == "]"))
        | ((first == '"') & (last == '"') & (text.str.len_bytes() > 1))
        | text.str.contains(r"^(-?\d[\d.eE+-]*|true|false|null)$")
    )
    return pl.when(valid).then(text).otherwise(_json_text(text))


def _json_object(fields: dict[str, pl.Expr], embedded: frozenset[str] = frozenset()) -> pl.Expr:
    """A compact JSON object of `fields`, in order; `embedded` fields already hold JSON text.

    Runs of plain fields are encoded together by one `struct.json_encode`; embedded JSON texts
    are spliced in between.
    """
    parts: list[pl.Expr] = []
    plain: list[pl.Expr] = []

    def flush() -> None:
        if plain:
            parts.append(pl.struct(list(plain)).struct.json_encode().str.slice(1).str.head(-1))
            plain.clear()

    for key, expr in fields.items():
        if key in embedded:
            flush()
            parts.append(pl.lit(json.dumps(key) + ":") + expr.fill_null("null"))
        else:
            plain.append(expr.alias(key))
    flush()
    return pl.lit("{") + pl.concat_str(parts, separator=",") + pl.lit("}")


def _json_map(text: pl.Expr) -> pl.Expr:
    """A JSON object text, or "{}" when absent or not an object."""
    return pl.when(text.str.starts_with("{")).then(text).otherwise(pl.lit("{}"))


def _unquote(attribute: pl.Expr) -> pl.Expr:
    """A JSON-encoded name attribute ("\\"RETRIEVER\\"") -> its text (names carry no escapes)."""
    return attribute.str.strip_prefix('"').str.strip_suffix('"')


def hex_span_id(span_id: pl.Expr) -> pl.Expr:
    """A span id in MLflow's hex form (16 lowercase hex digits), whichever encoding the export used.

    `Trace.to_json()` (3.6+) writes span ids base64, MLflow 2 as `0x`-prefixed hex, assessments
    and 3.5 exports as plain hex; one encoding throughout lets span feedback join its span.
    """
    text = span_id.str.strip_chars().str.strip_prefix("0x")
    is_hex = text.str.contains(r"^[0-9a-fA-F]{16}$")
    decoded = text.str.decode("base64", strict=False).bin.encode("hex")
    return pl.when(text.is_null() | (text == "")).then(None).when(is_hex).then(text.str.to_lowercase()).otherwise(
        pl.coalesce(decoded, text)
    )


def _span_rows(good: pl.DataFrame) -> pl.DataFrame:
    """One row per span with the fields normalised across layouts."""
    spans = (
        good.select("_row", pl.col("_spans").alias("s"))
        .explode("s")
        .filter(pl.col("s").is_not_null())
        .with_columns(pl.int_range(pl.len()).over("_row").alias("_pos"))
    )
    s = pl.col("s")
    attrs = s.struct.field("attributes")
    parent = pl.coalesce(s.struct.field("parent_span_id"), s.struct.field("parent_id"))
    status = pl.coalesce(s.struct.field("status").struct.field("code"), s.struct.field("status_code"))
    status_message = pl.coalesce(s.struct.field("status").struct.field("message"), s.struct.field("status_message"))
    return spans.select(
        "_row",
        "_pos",
        hex_span_id(pl.coalesce(s.struct.field("span_id"), s.struct.field("context").struct.field("span_id"))).alias(
            "span_id"
        ),
        hex_span_id(pl.when(parent == "").then(None).otherwise(parent)).alias("parent_id"),
        s.struct.field("name").alias("name"),
        _unquote(attrs.struct.field(_SPAN_TYPE)).alias("span_type"),
        pl.coalesce(s.struct.field("start_time_unix_nano"), s.struct.field("start_time"))
        .cast(pl.Int64, strict=False)
        .alias("start_time_ns"),
        pl.coalesce(s.struct.field("end_time_unix_nano"), s.struct.field("end_time"))
        .cast(pl.Int64, strict=False)
        .alias("end_time_ns"),
        status.str.replace(r"^(STATUS_CODE_|StatusCode\.)", "").alias("status"),
        pl.when(status_message != "").then(status_message).alias("status_message"),
        attrs.struct.field(_INPUTS).alias("inputs"),
        attrs.struct.field(_OUTPUTS).alias("outputs"),
    )


_SPAN_DETAILS_SQL = """
with spans as (
  select _row, unnest(s) as span, unnest(range(len(s))) as n
  from (select _row, json_extract(raw, '$.data.spans[*]') as s from lines)
), objects as (
  select _row, (row_number() over (partition by _row order by n) - 1)::bigint as _pos,
         json_extract(span, '$.attributes') as a, json_extract(span, '$.events[*]') as e
  from spans where json_type(span) = 'OBJECT'
)
select _row, _pos,
  '{' || coalesce(array_to_string(list_filter(list_transform(json_keys(a), lambda k, i:
      case when k in ('mlflow.spanInputs', 'mlflow.spanOutputs') then null
           else to_json(k) || ':' || embedded((json_extract(a, '$.*'))[i]) end), lambda p: p is not null), ','), '')
      || '}' as attributes,
  coalesce(to_json(list_transform(e, lambda v: {
      'name': json_extract_string(v, '$.name'),
      'timestamp_ns': try_cast(coalesce(json_extract_string(v, '$.time_unix_nano'),
                                        json_extract_string(v, '$.timestamp')) as bigint),
      'attributes': coalesce(json_extract(v, '$.attributes'), '{}'::json)}))::varchar, '[]') as events
from objects
"""
# An attribute value as JSON: MLflow's JSON-encoded text decoded when it is one JSON value, else as given.
_EMBEDDED_MACRO = """
create or replace macro embedded(v) as case
  when json_type(v) = 'VARCHAR'
       and regexp_matches(json_extract_string(v, '$'), '^(\\{.*\\}|\\[.*\\]|".*"|-?\\d[\\d.eE+-]*|true|false|null)$', 's')
       and json_valid(json_extract_string(v, '$'))
  then json_extract_string(v, '$') else v::varchar end
"""


def _span_details(good: pl.DataFrame) -> pl.DataFrame:
    """Per span (_row, _pos): every attribute but inputs and outputs as a JSON object text, and its
    events as a JSON list of {name, timestamp_ns, attributes}. DuckDB reads the open maps, which
    the typed decode cannot, in bulk."""
    schema = {"_row": pl.UInt32, "_pos": pl.Int64, "attributes": pl.String, "events": pl.String}
    if good.is_empty():
        return pl.DataFrame(schema=schema)
    connection = duckdb_connection()
    connection.execute(_EMBEDDED_MACRO)
    connection.register("lines", good.select("_row", pl.col("_raw_text").alias("raw")).to_arrow())
    details = connection.sql(_SPAN_DETAILS_SQL).pl()
    connection.close()
    return details.cast(schema)


def _display_spans(spans: pl.DataFrame, details: pl.DataFrame) -> pl.DataFrame:
    """Per trace row, the JSON list of normalised spans, with their attributes and events."""
    span_json = _json_object(
        {
            "span_id": pl.col("span_id"),
            "parent_id": pl.col("parent_id"),
            "name": pl.col("name"),
            "span_type": pl.col("span_type"),
            "start_time_ns": pl.col("start_time_ns"),
            "end_time_ns": pl.col("end_time_ns"),
            "status": pl.col("status"),
            "status_message": pl.col("status_message"),
            "inputs": _embedded_json(pl.col("inputs")),
            "outputs": _embedded_json(pl.col("outputs")),
            "attributes": pl.col("attributes").fill_null("{}"),
            "events": pl.col("events").fill_null("[]"),
        },
        embedded=frozenset({"inputs", "outputs", "attributes", "events"}),
    )
    return (
        spans.join(details, on=["_row", "_pos"], how="left")
        .sort("_row", "_pos")
        .group_by("_row", maintain_order=True)
        .agg(
            (pl.lit("[") + span_json.str.join(",") + pl.lit("]")).alias("spans"),
            pl.len().cast(pl.Int64).alias("span_count"),
        )
    )


def _root_io(spans: pl.DataFrame) -> pl.DataFrame:
    """Per trace row, the root span's inputs and outputs (root = the first span with no parent)."""
    return (
        spans.filter(pl.col("parent_id").is_null())
        .sort("_row", "_pos")
        .group_by("_row", maintain_order=True)
        .agg(
            pl.col("inputs").first().alias("_root_inputs"),
            pl.col("outputs").first().alias("_root_outputs"),
        )
    )


def _retrieved_documents(spans: pl.DataFrame) -> pl.DataFrame:
    """Per trace row, the documents RETRIEVER spans returned (objects or plain strings)."""
    retriever = spans.filter((pl.col("span_type") == "RETRIEVER") & pl.col("outputs").is_not_null())
    objects = retriever.filter(pl.col("outputs").str.contains(r"^\s*\[\s*(\{|\])"))
    decoded, _ = _decode_lenient(objects["outputs"], pl.List(_RAW_DOCUMENT))
    d = pl.col("d")
    from_objects = (
        objects.select("_row", "_pos", decoded.alias("d"))
        .explode("d")
        .filter(d.is_not_null())
        .select(
            "_row",
            "_pos",
            pl.struct(
                d.struct.field("id").alias("id"),
                pl.coalesce(
                    d.struct.field("page_content"), d.struct.field("content"), d.struct.field("text")
                ).alias("page_content"),
                d.struct.field("metadata").struct.field("doc_uri").alias("doc_uri"),
            ).alias("doc"),
        )
    )
    strings = retriever.filter(pl.col("outputs").str.contains(r'^\s*\[\s*"'))
    texts, _ = _decode_lenient(strings["outputs"], pl.List(pl.String))
    from_strings = (
        strings.select("_row", "_pos", texts.alias("t"))
        .explode("t")
        .filter(pl.col("t").is_not_null())
        .select(
            "_row",
            "_pos",
            pl.struct(
                pl.lit(None, pl.String).alias("id"),
                pl.col("t").alias("page_content"),
                pl.lit(None, pl.String).alias("doc_uri"),
            ).alias("doc"),
        )
    )
    return (
        pl.concat([from_objects, from_strings])
        .with_columns(pl.int_range(pl.len()).alias("_n"))
        .sort("_row", "_pos", "_n")
        .group_by("_row", maintain_order=True)
        .agg(pl.col("doc").alias("retrieved_documents"))
    )


def _span_tool_calls(spans: pl.DataFrame) -> pl.DataFrame:
    """One tool call per TOOL span: its name, inputs and outputs (JSON text)."""
    return spans.filter(pl.col("span_type") == "TOOL").select(
        "_row",
        pl.col("_pos").alias("_order"),
        pl.struct(pl.col("name"), pl.col("inputs"), pl.col("outputs")).alias("call"),
    )


def _messages_one_by_one(request: pl.DataFrame) -> pl.DataFrame:
    """OpenAI messages of requests the batch decoder refused, read message by message.

    This is where content given as a list of parts ([{"type": "text", "text": ...}]) lands: the
    text parts are joined with newlines.
    """
    empty = pl.DataFrame(schema={"_row": pl.UInt32, "m": _OPENAI_MESSAGE, "_part": pl.Int32})
    if request.is_empty():
        return empty
    items = _array_items(
        request.select("_row", pl.col("request").str.json_path_match("$.messages").alias("messages")),
        "messages",
    ).filter(pl.col("item").str.starts_with("{"))
    if items.is_empty():
        return empty
    content = _scalar_or_json(pl.col("item"), "content")
    items = items.with_columns(content.alias("content"))
    parts, _ = _decode_lenient(items["content"].fill_null("null"), pl.List(pl.Struct({"text": pl.String})))
    strings = items.select(
        pl.when(pl.col("content").str.starts_with('"')).then("content").otherwise(pl.lit("null"))
    ).to_series()
    texts, _ = _decode_lenient(strings, pl.String)
    calls, _ = _decode_lenient(items["item"], pl.Struct({"tool_calls": _OPENAI_TOOL_CALLS}))
    return items.select(
        "_row",
        pl.struct(
            pl.col("item").str.json_path_match("$.role").alias("role"),
            pl.coalesce(
                texts,
                parts.list.eval(pl.element().struct.field("text")).list.drop_nulls().list.join("\n"),
            ).alias("content"),
            calls.struct.field("tool_calls").alias("tool_calls"),
        ).alias("m"),
        pl.lit(0, pl.Int32).alias("_part"),
    )


def _chat(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Chat messages (OpenAI-style request plus the answer) and OpenAI tool calls per trace row."""
    request = rows.filter(
        pl.col("request").str.contains(r"^\s*\{") & pl.col("request").str.contains('"messages"', literal=True)
    )
    decoded, failed = _decode_lenient(request["request"], _OPENAI_REQUEST)
    m = pl.col("m")
    messages = pl.concat(
        [
            request.select("_row", decoded.struct.field("messages").alias("m"))
            .with_columns(pl.lit(0).alias("_part"))
            .explode("m")
            .filter(m.is_not_null()),
            _messages_one_by_one(request[failed]),
        ]
    )
    response = rows.filter(
        pl.col("response").str.contains(r"^\s*\{")
        & pl.col("response").str.contains('"choices"', literal=True)
    )
    answers, _ = _decode_lenient(response["response"], _OPENAI_RESPONSE)
    answer = (
        response.select(
            "_row", answers.struct.field("choices").list.first().struct.field("message").alias("m")
        )
        .filter(m.is_not_null())
        .with_columns(pl.lit(1).alias("_part"))
    )
    plain = rows.filter(pl.col("response").str.contains(r'^\s*"'))
    plain_text, _ = _decode_lenient(plain["response"], pl.String)
    plain = plain.select(
        "_row",
        pl.struct(
            pl.lit("assistant").alias("role"),
            plain_text.alias("content"),
            pl.lit(None, _OPENAI_TOOL_CALLS).alias("tool_calls"),
        ).alias("m"),
        pl.lit(1).alias("_part"),
    ).filter(m.struct.field("content").is_not_null())
    # Only traces whose request is OpenAI-style get chat messages; a plain answer joins those.
    answers_all = pl.concat([answer, plain]).join(messages.select("_row").unique(), on="_row", how="semi")
    all_messages = pl.concat([messages, answers_all]).with_columns(pl.int_range(pl.len()).alias("_n"))
    chat = (
        all_messages.sort("_row", "_part", "_n")
        .group_by("_row", maintain_order=True)
        .agg(
            pl.struct(m.struct.field("role").alias("role"), m.struct.field("content").alias("content")).alias(
                "chat_messages"
            )
        )
    )
    f = pl.col("f")
    tool_calls = (
        all_messages.select("_row", pl.col("_n"), m.struct.field("tool_calls").alias("f"))
        .explode("f")
        .filter(f.is_not_null())
        .select(
            "_row",
            (pl.col("_n") + 1_000_000).alias("_order"),
            pl.struct(
                f.struct.field("function").struct.field("name").alias("name"),
                f.struct.field("function").struct.field("arguments").alias("inputs"),
                pl.lit(None, pl.String).alias("outputs"),
            ).alias("call"),
        )
    )
    return chat, tool_calls


def _tag(key: str) -> pl.Expr:
    """A trace tag's value read from the info text (tags of any shape never fail the line)."""
    return pl.col("_info_text").str.json_path_match(f"$.tags['{key}']")


def _model_span_chat(spans: pl.DataFrame, root_chat: pl.DataFrame) -> pl.DataFrame:
    """Chat messages of the last CHAT_MODEL or LLM span, for traces whose root span is not chat-shaped.

    The shape MLflow's docs give an app (a root function calling the model client) keeps the
    messages on the model span: its inputs are the request's messages, its outputs the reply.
    """
    calls = (
        spans.filter(pl.col("span_type").is_in(["CHAT_MODEL", "LLM"]) & pl.col("inputs").is_not_null())
        .join(root_chat.select("_row"), on="_row", how="anti")
        .sort("_row", "_pos")
        .group_by("_row", maintain_order=True)
        .agg(pl.col("inputs").last().alias("request"), pl.col("outputs").last().fill_null("null").alias("response"))
    )
    return _chat(calls)[0]


def _trace_rows(good: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Assemble the `traces` table rows from decoded, validated lines."""
    if good.is_empty():
        return pl.DataFrame(schema=TRACES_SCHEMA)
    info = pl.col("_t").struct.field("info")
    data = pl.col("_t").struct.field("data")
    meta = pl.coalesce(info.struct.field("trace_metadata"), info.struct.field("request_metadata"))
    spans = _span_rows(good)
    state = pl.coalesce(info.struct.field("state"), info.struct.field("status")).str.replace(
        r"^(TRACE_STATE_|TRACE_STATUS_)", ""
    )
    base = good.select(
        "_row",
        "trace_id",
        info.struct.field("client_request_id").alias("client_request_id"),
        pl.coalesce(
            info.struct.field("trace_location")
            .struct.field("mlflow_experiment")
            .struct.field("experiment_id"),
            info.struct.field("experiment_id"),
        ).alias("experiment_id"),
        "request_time",
        pl.col("request_time").dt.date().alias("request_date"),
        _duration_ms(info).alias("execution_duration_ms"),
        pl.when(state.is_null() | state.is_in(["", "UNSPECIFIED"]))
        .then(pl.lit("STATE_UNSPECIFIED"))
        .otherwise(state)
        .alias("state"),
        pl.coalesce(meta.struct.field("mlflow.traceInputs"), data.struct.field("request")).alias("_request"),
        pl.coalesce(meta.struct.field("mlflow.traceOutputs"), data.struct.field("response")).alias(
            "_response"
        ),
        info.struct.field("request_preview").alias("_request_preview"),
        info.struct.field("response_preview").alias("_response_preview"),
        _json_map(pl.col("_info_text").str.json_path_match("$.tags")).alias("tags"),
        _json_map(
            pl.coalesce(
                pl.col("_info_text").str.json_path_match("$.trace_metadata"),
                pl.col("_info_text").str.json_path_match("$.request_metadata"),
            )
        ).alias("trace_metadata"),
        meta.struct.field("mlflow.modelId").alias("model_id"),
        # MLflow 2.x kept user and session as tags
        pl.coalesce(meta.struct.field("mlflow.trace.session"), _tag("mlflow.trace.session")).alias("session_id"),
        pl.coalesce(meta.struct.field("mlflow.trace.user"), _tag("mlflow.trace.user")).alias("user_id"),
        "landing_key",
    )
    rows = (
        base.join(_root_io(spans), on="_row", how="left", maintain_order="left")
        .join(_display_spans(spans, _span_details(good)), on="_row", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("_root_inputs", "_request").alias("request"),
            pl.coalesce("_root_outputs", "_response").alias("response"),
            pl.col("span_count").fill_null(0),
            pl.col("spans").fill_null("[]"),
        )
        .with_columns(
            pl.coalesce("_request_preview", pl.col("request").str.slice(0, PREVIEW_CHARS)).alias(
                "request_preview"
            ),
            pl.coalesce("_response_preview", pl.col("response").str.slice(0, PREVIEW_CHARS)).alias(
                "response_preview"
            ),
        )
    )
    chat, openai_calls = _chat(rows.select("_row", "request", "response"))
    chat = pl.concat([chat, _model_span_chat(spans, chat)])
    tool_calls = (
        pl.concat([_span_tool_calls(spans), openai_calls])
        .sort("_row", "_order")
        .group_by("_row", maintain_order=True)
        .agg(pl.col("call").alias("tool_calls"))
    )
    rows = (
        rows.join(_retrieved_documents(spans), on="_row", how="left", maintain_order="left")
        .join(chat, on="_row", how="left", maintain_order="left")
        .join(tool_calls, on="_row", how="left", maintain_order="left")
        .with_columns(
            pl.col("retrieved_documents").fill_null(pl.lit([], pl.List(DOCUMENT))),
            pl.col("chat_messages").fill_null(pl.lit([], pl.List(CHAT_MESSAGE))),
            pl.col("tool_calls").fill_null(pl.lit([], pl.List(TOOL_CALL))),
            pl.lit(now, dtype=UTC_TIME).alias("ingested_at"),
        )
    )
    hashed = [c for c in TRACES_SCHEMA.names() if c not in ("landing_key", "content_hash", "ingested_at")]
    content = pl.struct(hashed)
    return rows.with_columns(
        pl.concat_str(
            [
                content.hash(seed=0x5EED).cast(pl.String).str.zfill(20),
                content.hash(seed=0xFEED).cast(pl.String).str.zfill(20),
            ]
        ).alias("content_hash")
    ).select([pl.col(name).cast(dtype) for name, dtype in TRACES_SCHEMA.items()])


# --- embedded assessments -> submissions ------------------------------------------------------


def _scalar_or_json(holder: pl.Expr, key: str) -> pl.Expr:
    """The JSON text of `holder[key]` where `holder` is a compact JSON object text.

    `json_path_match` returns strings unquoted, so a string is told apart from a number or a
    literal by finding its quoted form right after the key in the object text.
    """
    found = holder.str.json_path_match(f"$.{key}")
    quoted = _json_text(found)
    is_string = holder.str.contains(pl.lit(f'"{key}":') + quoted, literal=True)
    return pl.when(found.is_null()).then(pl.lit("null")).when(is_string).then(quoted).otherwise(found)


def _array_items(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """One row per element of the JSON array texts in `column` (as JSON text), with its position `_n`.

    Positions are read with `json_path_match`, one column per position as far as the longest
    array reaches, so the work stays vectorised.
    """
    positions: list[pl.Series] = []
    while not positions or positions[-1].null_count() < frame.height:
        positions.append(frame[column].str.json_path_match(f"$[{len(positions)}]"))
    return (
        frame.with_columns(
            pl.concat_list(positions).alias("item"),
            pl.int_ranges(0, len(positions)).alias("_n"),
        )
        .explode("item", "_n")
        .filter(pl.col("item").is_not_null())
    )


def _submissions(good: pl.DataFrame) -> pl.DataFrame:
    """Assessments embedded in `info.assessments`, as `mlflow-import` submission records."""
    holders = (
        good.filter(pl.col("_info_text").str.contains('"assessments"', literal=True))
        .select("trace_id", pl.col("_info_text").str.json_path_match("$.assessments").alias("a"))
        .filter(pl.col("a").str.starts_with("[") & (pl.col("a") != "[]"))
    )
    if holders.is_empty():
        return pl.DataFrame(schema=SUBMISSIONS_SCHEMA)
    items = _array_items(holders.select("trace_id", "a"), "a").filter(
        pl.col("item").str.starts_with("{")
        # ours, pushed to MLflow earlier: already in our tables under our own id
        & ~pl.col("item").str.contains(f'"{PUSHED_ASSESSMENT_KEY}"', literal=True)
    )
    raw, _ = _decode_lenient(items["item"], _RAW_ASSESSMENT)
    item = pl.col("item")
    feedback = item.str.json_path_match("$.feedback")
    expectation = item.str.json_path_match("$.expectation")
    serialized = (
        pl.col("_r").struct.field("expectation").struct.field("serialized_value").struct.field("value")
    )
    created_text = pl.coalesce(
        pl.col("_r").struct.field("create_time"), pl.col("_r").struct.field("create_time_ms")
    )
    created = (
        pl.when(created_text.str.contains(r"^\d+$"))
        .then(_parse_time(created_text).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
        .otherwise(created_text)
    )
    r = pl.col("_r")
    frame = (
        items.with_columns(raw.alias("_r"))
        .select(
            r.struct.field("assessment_id").alias("submission_id"),
            pl.lit("create").alias("action"),
            r.struct.field("assessment_id").alias("assessment_id"),
            pl.coalesce(r.struct.field("trace_id"), pl.col("trace_id")).alias("trace_id"),
            pl.lit(None, pl.String).alias("client_request_id"),
            hex_span_id(r.struct.field("span_id")).alias("span_id"),
            pl.lit(None, pl.String).alias("session"),
            pl.coalesce(r.struct.field("assessment_name"), r.struct.field("name")).alias("name"),
            pl.when(expectation.is_not_null())
            .then(pl.lit("expectation"))
            .otherwise(pl.lit("feedback"))
            .alias("kind"),
            pl.when(serialized.is_not_null())
            .then(serialized)
            .when(expectation.is_not_null())
            .then(_scalar_or_json(expectation, "value"))
            .otherwise(_scalar_or_json(feedback, "value"))
            .alias("value"),
            pl.when(feedback.str.json_path_match("$.error").str.starts_with("{"))
            .then(feedback.str.json_path_match("$.error"))
            .alias("error"),
            r.struct.field("rationale").alias("rationale"),
            pl.struct(
                r.struct.field("source")
                .struct.field("source_type")
                .str.to_uppercase()
                .fill_null("HUMAN")
                .alias("source_type"),
                r.struct.field("source").struct.field("source_id").fill_null("default").alias("source_id"),
            ).alias("source"),
            _json_map(item.str.json_path_match("$.metadata")).alias("metadata"),
            r.struct.field("overrides").alias("overrides"),
            created.alias("created_at"),
            pl.lit("mlflow-import").alias("origin"),
        )
        .filter(pl.col("submission_id").is_not_null())
    )
    record = _json_object(
        {name: pl.col(name) for name in SUBMISSIONS_SCHEMA.names() if name != "submission"},
        embedded=frozenset({"value", "error", "metadata"}),
    )
    return (
        frame.with_columns(record.alias("submission"))
        .unique("submission_id", keep="last", maintain_order=True)
        .select([pl.col(n).cast(t) for n, t in SUBMISSIONS_SCHEMA.items()])
    )
