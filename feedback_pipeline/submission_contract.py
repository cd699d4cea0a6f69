"""The submission contract: the landing area, the vocabularies and limits of a submission, its typed frame.

A submission is one JSON object per line of a `submissions` landing file (docs/ARCHITECTURE.md).
Every door (SDK, Review App, feedback API, importers) and the pipeline's validation read these.
"""

from __future__ import annotations

import polars as pl

AREA = "submissions"
ACTIONS = ("create", "update", "delete")
KINDS = ("feedback", "expectation", "skip")
MAX_LINE_BYTES = 1_000_000
MAX_NAME_CHARS = 250
MAX_ID_CHARS = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_RATIONALE_CHARS = 10_000
MAX_METADATA_BYTES = 16 * 1024

SUBMISSION_SCHEMA: dict[str, pl.DataType] = {
    "submission_id": pl.String,
    "action": pl.String,
    "assessment_id": pl.String,
    "trace_id": pl.String,
    "client_request_id": pl.String,
    "span_id": pl.String,
    "session": pl.String,
    "name": pl.String,
    "kind": pl.String,
    "value": pl.String,
    "rationale": pl.String,
    "source_type": pl.String,
    "source_id": pl.String,
    "metadata": pl.String,
    "overrides": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "origin": pl.String,
    "parse_error": pl.String,
    "submission_date": pl.Date,
    "landing_key": pl.String,
    "line_number": pl.Int64,
    "raw": pl.String,
    "received_at": pl.Datetime("us", "UTC"),
}
