"""Reading submissions back: landing lines -> the typed frame of the submission contract.

JSON is parsed in bulk with DuckDB, so no Python loop touches each line.
"""

from __future__ import annotations

import polars as pl

from feedback_pipeline.json_values import duckdb_connection
from feedback_pipeline.landing import LandingKey
from feedback_pipeline.submission_contract import MAX_LINE_BYTES, SUBMISSION_SCHEMA
from feedback_pipeline.utc import UTC_TIME

_PARSE_SQL = """
select landing_key, line_number,
  json_type(line) as line_type,
  json_extract_string(line, '$.submission_id') as submission_id,
  lower(json_extract_string(line, '$.action')) as action,
  coalesce(json_extract_string(line, '$.assessment_id'),
           case when coalesce(lower(json_extract_string(line, '$.action')), 'create') = 'create'
                then 'a-' || md5(json_extract_string(line, '$.submission_id')) end) as assessment_id,
  json_extract_string(line, '$.trace_id') as trace_id,
  json_extract_string(line, '$.client_request_id') as client_request_id,
  json_extract_string(line, '$.span_id') as span_id,
  json_extract_string(line, '$.session') as session,
  json_extract_string(line, '$.name') as name,
  lower(json_extract_string(line, '$.kind')) as kind,
  nullif(json_extract(line, '$.value')::varchar, 'null') as value,
  nullif(json_extract(line, '$.error')::varchar, 'null') as error,
  json_type(line, '$.error') as error_type,
  json_extract_string(line, '$.error.error_code') as error_code,
  coalesce(json_extract_string(line, '$.rationale'), json_extract_string(line, '$.comment')) as rationale,
  upper(json_extract_string(line, '$.source.source_type')) as source_type,
  json_extract_string(line, '$.source.source_id') as source_id,
  nullif(json_extract(line, '$.metadata')::varchar, 'null') as metadata,
  json_type(line, '$.metadata') as metadata_type,
  json_extract_string(line, '$.overrides') as overrides,
  json_extract_string(line, '$.origin') as origin,
  json_extract_string(line, '$.created_at') as created_at_text,
  case when json_type(line, '$.created_at') in ('UBIGINT', 'BIGINT', 'DOUBLE')
       then to_timestamp(cast(json_extract_string(line, '$.created_at') as double) / 1000.0)
       else try_cast(json_extract_string(line, '$.created_at') as timestamptz) end as created_at
from lines where json_valid(line) and strlen(line) <= {max_bytes}
"""


def parse_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Landing lines (`LandingZone.read_lines`: landing_key, line_number, raw) -> typed submissions
    (SUBMISSION_SCHEMA), one row per non-blank line, problems in `parse_error`.

    A line that is not a JSON object, or has no submission_id, still becomes a row (with the id
    `line:<landing_key>#<line_number>`) so it can be rejected with its reason: nothing is lost.
    A create without assessment_id gets `a-<md5 of submission_id>`, the same on every re-run.
    """
    lines = lines.rename({"raw": "line"}).filter(pl.col("line").str.strip_chars() != "")
    if lines.height == 0:
        return pl.DataFrame(schema=SUBMISSION_SCHEMA)
    connection = duckdb_connection()
    connection.register("lines", lines.to_arrow())
    fields = connection.sql(_PARSE_SQL.format(max_bytes=MAX_LINE_BYTES)).pl()
    connection.close()
    received = LandingKey.time_of(pl.col("landing_key"))
    frame = lines.join(fields, on=["landing_key", "line_number"], how="left")
    source_type = pl.col("source_type").replace({"AI_JUDGE": "LLM_JUDGE"})
    parse_error = (
        pl.when(pl.col("line").str.len_bytes() > MAX_LINE_BYTES)
        .then(pl.format("line {} is {} bytes long: at most {} are accepted", "line_number",
                        pl.col("line").str.len_bytes(), pl.lit(MAX_LINE_BYTES)))
        .when(pl.col("line_type").is_null())
        .then(pl.format("line {} is not valid JSON: {}", "line_number", pl.col("line").str.slice(0, 80)))
        .when(pl.col("line_type") != "OBJECT")
        .then(pl.format("line {} is a JSON {}: expected an object with a submission_id", "line_number",
                        pl.col("line_type").str.to_lowercase()))
        .when(pl.col("submission_id").is_null() | (pl.col("submission_id").str.strip_chars() == ""))
        .then(pl.lit("submission_id is missing: every submission needs a client-made id (its idempotency key)"))
        .when(pl.col("created_at_text").is_not_null() & pl.col("created_at").is_null())
        .then(pl.format("created_at {} is not an ISO-8601 time or epoch milliseconds", pl.col("created_at_text")))
        .when(pl.col("metadata").is_not_null() & (pl.col("metadata_type") != "OBJECT"))
        .then(pl.format("metadata {} is not a JSON object", pl.col("metadata").str.slice(0, 80)))
        .when(pl.col("error").is_not_null() & (pl.col("error_type") != "OBJECT"))
        .then(pl.format("error {} is not a JSON object: expected {{error_code, error_message, stack_trace}}",
                        pl.col("error").str.slice(0, 80)))
        .when(pl.col("error").is_not_null() & (pl.col("error_code").fill_null("").str.strip_chars() == ""))
        .then(pl.format("error.error_code is missing in {}: an error needs a code such as 'RATE_LIMIT_EXCEEDED'",
                        pl.col("error").str.slice(0, 80)))
    )
    synthetic_id = pl.format("line:{}#{}", "landing_key", "line_number")
    kind = pl.col("kind").fill_null("feedback")  # only for the source default; updates inherit their kind
    return frame.with_columns(
        pl.when(pl.col("submission_id").is_null() | (pl.col("submission_id").str.strip_chars() == ""))
        .then(synthetic_id)
        .otherwise(pl.col("submission_id"))
        .alias("submission_id"),
        pl.col("action").fill_null("create"),
        pl.when(pl.col("source_type").is_null())
        .then(pl.when(kind == "expectation").then(pl.lit("HUMAN")).otherwise(pl.lit("CODE")))
        .otherwise(source_type)
        .alias("source_type"),
        pl.col("source_id").fill_null("default"),
        pl.col("created_at").cast(UTC_TIME).fill_null(received),
        parse_error.alias("parse_error"),
        LandingKey.day_of(pl.col("landing_key")).alias("submission_date"),
        pl.col("line").alias("raw"),
        received.alias("received_at"),
    ).select(SUBMISSION_SCHEMA.keys())
