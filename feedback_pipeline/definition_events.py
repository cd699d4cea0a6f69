"""Definition events: the landing-zone log of label schemas and labeling sessions.

The SDK and `feedback-pipeline apply` never write Delta tables; they land small JSON events in the
`definitions` area, one file per call. Readers (the SDK, the Dagster assets, the sensor and the
schedule) fold the same events into the current state, so a definition is visible right after it
is written, before any pipeline run.

Event files carry a label saying what they hold, so a sensor can route them without opening them:
`schema` for label schema events, `session-<labeling_session_id>` for a session's events. Other
writers of the `definitions` area (reviewer invitations) use other labels and are ignored here.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import polars as pl

from feedback_pipeline.landing import LandingKey, LandingZone
from feedback_pipeline.utc import UTC_TIME

AREA = "definitions"
SCHEMA_LABEL = "schema"
SESSION_LABEL_PREFIX = "session-"

# The columns of a label schema and of a labeling session that their events carry; the tables
# (`schemas.TABLE_SCHEMA`, `sessions.TABLE_SCHEMA`) are built from these.
SCHEMA_COLUMNS = {
    "schema_id": pl.String,
    "type": pl.String,
    "title": pl.String,
    "instruction": pl.String,
    "enable_comment": pl.Boolean,
    "input_type": pl.String,
    "input": pl.String,
}
SESSION_COLUMNS = {
    "assigned_users": pl.List(pl.String),
    "label_schemas": pl.List(pl.String),
    "reviews_per_item": pl.Int64,
    "dataset": pl.String,
    "trace_filter": pl.String,
    "refresh_cron": pl.String,
    "reservation_minutes": pl.Int64,
    "guidelines": pl.String,
    "assignments": pl.String,
    "adjudicators": pl.List(pl.String),
    "owners": pl.List(pl.String),
}

EVENT_SCHEMA = pl.Schema(
    {
        "event": pl.String,
        "at": pl.String,
        "name": pl.String,
        **SCHEMA_COLUMNS,
        "labeling_session_id": pl.String,
        **SESSION_COLUMNS,
        "trace_ids": pl.List(pl.String),
    }
)

FRAME_SCHEMA = pl.Schema({**{k: v for k, v in EVENT_SCHEMA.items() if k != "at"}, "at": UTC_TIME, "landing_key": pl.String, "line": pl.Int64})


def now_iso() -> str:
    """The current UTC time as the events write it (RFC 3339, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def session_label(labeling_session_id: str) -> str:
    return f"{SESSION_LABEL_PREFIX}{labeling_session_id}"


def session_id_of_key(key: str) -> str | None:
    """The labeling session id a landing key's label names, or None for other files."""
    label = LandingKey.parse(key).label
    return label[len(SESSION_LABEL_PREFIX) :] if label.startswith(SESSION_LABEL_PREFIX) else None


def is_labeling_key(key: str) -> bool:
    """True for the definition files this module owns (schema and session events)."""
    label = LandingKey.parse(key).label
    return label == SCHEMA_LABEL or label.startswith(SESSION_LABEL_PREFIX)


def write_events(landing: LandingZone, events: list[dict], *, label: str) -> str | None:
    """Land `events` as one immutable file; nothing is written for an empty list."""
    if not events:
        return None
    unknown = sorted({k for event in events for k in event} - set(EVENT_SCHEMA))
    if unknown:
        raise ValueError(f"definition event fields {unknown}: expected only {list(EVENT_SCHEMA)}")
    return landing.write_lines(AREA, [json.dumps(event, ensure_ascii=False, sort_keys=True) for event in events], label=label)


def labeling_keys(landing: LandingZone, *, after: str | None = None) -> list[str]:
    """Keys of the schema and session event files, oldest first."""
    return [key for key in landing.iter_keys(AREA, after) if is_labeling_key(key)]


def events_frame(files: list[tuple[str, bytes]]) -> pl.DataFrame:
    """Parse (landing key, file content) pairs into one event frame in arrival order."""
    frames = []
    for key, data in files:
        frame = pl.read_ndjson(io.BytesIO(data), schema=EVENT_SCHEMA)
        frames.append(frame.with_columns(landing_key=pl.lit(key), line=pl.int_range(pl.len(), dtype=pl.Int64)))
    if not frames:
        return pl.DataFrame(schema=FRAME_SCHEMA)
    frame = pl.concat(frames, how="vertical")
    return frame.with_columns(at=pl.col("at").str.to_datetime(time_zone="UTC", time_unit="us")).select(FRAME_SCHEMA.names()).sort("landing_key", "line")


def read_events(landing: LandingZone) -> pl.DataFrame:
    """Every schema and session event landed so far, in arrival order."""
    return events_frame([(key, landing.read_bytes(key)) for key in labeling_keys(landing)])
