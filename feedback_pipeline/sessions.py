"""Labeling sessions: which traces experts review, snapshots of those traces, and item status.

A session is defined through the SDK (`create_labeling_session`, MLflow's names) or a
`labeling.yaml`; both land definition events, folded by `fold_labeling_sessions` into the
`labeling_sessions` table. Traces enter a session two ways: ids added explicitly (`add_traces`) and
a declarative `trace_filter` that Dagster applies to the `traces` table (`filter_traces`).

`snapshot_items` decides what a refresh adds to `session_items`: immutable copies of the selected
traces, never removed and never rewritten, so reviewers keep seeing what they labeled. Ids added
before their trace arrived are kept in the session's events and become items on the first refresh
after the trace is ingested (until then the asset reports them as `missing_trace_ids`).

Where each item stands (its status) is `feedback_pipeline.item_status`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import quote

import polars as pl

from feedback_pipeline import definition_events, schemas
from feedback_pipeline.field_errors import FieldError
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.traces import CHAT_MESSAGE, DOCUMENT, TOOL_CALL
from feedback_pipeline.utc import UTC_TIME

TABLE = "labeling_sessions"
ITEMS_TABLE = "session_items"
DEFAULT_REFRESH_CRON = "0 * * * *"
DEFAULT_REVIEW_APP_URL = "http://127.0.0.1:8000"
DEFAULT_RESERVATION_MINUTES = 15
MAX_RESERVATION_MINUTES = 24 * 60
MAX_GUIDELINES_CHARS = 20_000

TABLE_SCHEMA = pl.Schema(
    {
        "labeling_session_id": pl.String,
        "name": pl.String,
        **definition_events.SESSION_COLUMNS,
        "created_at": UTC_TIME,
        "updated_at": UTC_TIME,
        "deleted": pl.Boolean,
        "landing_key": pl.String,
        "content_hash": pl.String,
    }
)

TRACE_COLUMNS = {
    "request": pl.String,
    "response": pl.String,
    "request_preview": pl.String,
    "response_preview": pl.String,
    "chat_messages": pl.List(CHAT_MESSAGE),
    "retrieved_documents": pl.List(DOCUMENT),
    "tool_calls": pl.List(TOOL_CALL),
    "spans": pl.String,
    "tags": pl.String,
    "trace_metadata": pl.String,
    "request_time": UTC_TIME,
    "model_id": pl.String,
    "state": pl.String,
}
ITEMS_SCHEMA = pl.Schema(
    {
        "session_id": pl.String,
        "session_name": pl.String,
        "item_id": pl.String,
        "trace_id": pl.String,
        "added_at": UTC_TIME,
        "source": pl.String,
        **TRACE_COLUMNS,
    }
)


# ---------------------------------------------------------------- cron (five fields, UTC)


def check_cron(expression: object) -> str:
    """A five-field cron expression (read in UTC) that croniter accepts; ValueError naming it otherwise."""
    from croniter import CroniterError, croniter

    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise FieldError("refresh_cron", f"refresh_cron is {expression!r}: expected five fields such as '0 * * * *'")
    try:
        croniter.expand(expression)
    except CroniterError as exc:
        raise FieldError("refresh_cron", f"refresh_cron is {expression!r}: {exc} (expected five fields such as '0 * * * *')") from None
    return expression


def cron_matches(expression: str, when: datetime) -> bool:
    """True when a cron expression (read in UTC) fires at the minute of `when`."""
    from croniter import croniter

    return croniter.match(check_cron(expression), when.astimezone(UTC).replace(second=0, microsecond=0))


# ---------------------------------------------------------------- trace filters

FILTER_KEYS = ("start_time", "end_time", "tags", "metadata", "model_id", "state", "text", "sample")
STATES = ("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED")


def _strings(field: str, value: object) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise FieldError(f"trace_filter.{field}", f"trace_filter.{field} is {value!r}: expected a string or a non-empty list of strings")
    return values


def _time(field: str, value: object) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    if not isinstance(value, str):
        raise FieldError(f"trace_filter.{field}", f"trace_filter.{field} is {value!r}: expected an ISO 8601 time such as 2026-11-22T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(f"trace_filter.{field}", f"trace_filter.{field} is {value!r}: expected an ISO 8601 time such as 2026-11-22T00:00:00Z") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _mapping(field: str, value: object) -> dict[str, list[str]]:
    if not isinstance(value, dict) or not value:
        raise FieldError(f"trace_filter.{field}", f"trace_filter.{field} is {value!r}: expected a mapping of key to value (or list of values)")
    return {str(k): _strings(f"{field}.{k}", v) for k, v in value.items()}


def validate_trace_filter(spec: dict | None) -> dict | None:
    """The normalised filter (lists, UTC times); ValueError naming the key at fault."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise FieldError("trace_filter", f"trace_filter is {spec!r}: expected a mapping with keys among {', '.join(FILTER_KEYS)}")
    unknown = sorted(set(spec) - set(FILTER_KEYS))
    if unknown:
        raise FieldError(f"trace_filter.{unknown[0]}", f"trace_filter keys {unknown}: expected only {', '.join(FILTER_KEYS)}")
    out: dict = {}
    for key in ("start_time", "end_time"):
        if spec.get(key) is not None:
            out[key] = _time(key, spec[key])
    if "start_time" in out and "end_time" in out and out["start_time"] >= out["end_time"]:
        raise FieldError("trace_filter.end_time", f"trace_filter.start_time {out['start_time']} is not before end_time {out['end_time']}: expected start < end")
    for key in ("tags", "metadata"):
        if spec.get(key) is not None:
            out[key] = _mapping(key, spec[key])
    if spec.get("model_id") is not None:
        out["model_id"] = _strings("model_id", spec["model_id"])
    if spec.get("state") is not None:
        out["state"] = _strings("state", spec["state"])
        bad = [s for s in out["state"] if s not in STATES]
        if bad:
            raise FieldError("trace_filter.state", f"trace_filter.state {bad}: expected among {', '.join(STATES)}")
    if spec.get("text") is not None:
        if not isinstance(spec["text"], str) or not spec["text"]:
            raise FieldError("trace_filter.text", f"trace_filter.text is {spec['text']!r}: expected a non-empty string")
        out["text"] = spec["text"]
    if spec.get("sample") is not None:
        sample = spec["sample"]
        sample = {"n": sample} if isinstance(sample, int) and not isinstance(sample, bool) else sample
        if not isinstance(sample, dict) or set(sample) - {"n", "seed"}:
            raise FieldError("trace_filter.sample", f"trace_filter.sample is {sample!r}: expected {{n: <count>, seed: <whole number>}}")
        n, seed = sample.get("n"), sample.get("seed", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FieldError("trace_filter.sample.n", f"trace_filter.sample.n is {n!r}: expected a positive whole number")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise FieldError("trace_filter.sample.seed", f"trace_filter.sample.seed is {seed!r}: expected a whole number >= 0")
        out["sample"] = {"n": n, "seed": seed}
    return out


def _json_key(column: str, key: str) -> pl.Expr:
    return pl.col(column).str.json_path_match(f"$[{json.dumps(key)}]")


def filter_expression(spec: dict) -> pl.Expr:
    """A polars predicate over `traces` columns for a normalised filter (the sample is separate)."""
    conditions: list[pl.Expr] = [pl.lit(True)]
    if "start_time" in spec:
        conditions.append(pl.col("request_time") >= pl.lit(spec["start_time"]).str.to_datetime(time_zone="UTC", time_unit="us"))
    if "end_time" in spec:
        conditions.append(pl.col("request_time") < pl.lit(spec["end_time"]).str.to_datetime(time_zone="UTC", time_unit="us"))
    for column, key in (("tags", "tags"), ("trace_metadata", "metadata")):
        for name, values in spec.get(key, {}).items():
            conditions.append(_json_key(column, name).is_in(values))
    if "model_id" in spec:
        conditions.append(pl.col("model_id").is_in(spec["model_id"]))
    if "state" in spec:
        conditions.append(pl.col("state").is_in(spec["state"]))
    if "text" in spec:
        needle = spec["text"].lower()
        conditions.append(
            pl.col("request").str.to_lowercase().str.contains(needle, literal=True)
            | pl.col("response").str.to_lowercase().str.contains(needle, literal=True)
        )
    return pl.all_horizontal(conditions).fill_null(False)


def filter_traces(traces: pl.DataFrame, spec: dict | None) -> pl.DataFrame:
    """The traces a (normalised) filter selects, ignoring its sample size."""
    if spec is None:
        return traces.clear()
    return traces.filter(filter_expression(spec))


# ---------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    """What one refresh of a session adds, and the explicitly added ids whose trace is not ingested yet."""

    items: pl.DataFrame
    missing_trace_ids: list[str]


def empty_items() -> pl.DataFrame:
    return pl.DataFrame(schema=ITEMS_SCHEMA)


def existing_items(lake: Lake, labeling_session_id: str) -> pl.DataFrame:
    """The items a session already has (empty before its first snapshot)."""
    scan = lake.scan(ITEMS_TABLE)
    if scan is None:
        return empty_items()
    return scan.filter(pl.col("session_id") == labeling_session_id).collect()


def snapshot_items(
    session: dict,
    requested: pl.DataFrame,
    traces: pl.DataFrame,
    existing: pl.DataFrame,
    *,
    now: datetime | None = None,
) -> Snapshot:
    """The new items of one session: requested ids and filter matches not yet in `existing`.

    `session` is a `labeling_sessions` row; `requested` has the explicitly added `trace_id`s.
    A filter's `sample: {n, seed}` caps the filter-selected items at n over the session's life,
    picked in a seeded hash order so the choice is reproducible.
    """
    now = now or datetime.now(UTC)
    have = existing.select("trace_id")
    explicit = requested.select("trace_id").unique(maintain_order=True).join(have, on="trace_id", how="anti")
    missing = explicit.join(traces.select("trace_id"), on="trace_id", how="anti")["trace_id"].to_list()
    added = explicit.join(traces.select("trace_id"), on="trace_id", how="semi").with_columns(source=pl.lit("added"))

    spec = json.loads(session["trace_filter"]) if session.get("trace_filter") else None
    matched = filter_traces(traces, spec).select("trace_id").join(have, on="trace_id", how="anti").join(added, on="trace_id", how="anti")
    if spec and "sample" in spec:
        already = existing.filter(pl.col("source") == "filter").height
        room = max(spec["sample"]["n"] - already, 0)
        matched = matched.sort(pl.col("trace_id").hash(seed=spec["sample"]["seed"]), "trace_id").head(room)
    else:
        matched = matched.sort("trace_id")
    chosen = pl.concat([added, matched.with_columns(source=pl.lit("filter"))], how="vertical")

    columns = [pl.col(c).cast(t) if c in traces.columns else pl.lit(None, dtype=t).alias(c) for c, t in TRACE_COLUMNS.items()]
    copies = chosen.join(traces.select("trace_id", *columns), on="trace_id", how="inner", maintain_order="left")
    items = copies.with_columns(
        session_id=pl.lit(session["labeling_session_id"]),
        session_name=pl.lit(session["name"]),
        item_id=pl.lit(session["labeling_session_id"]) + pl.lit(":") + pl.col("trace_id"),
        added_at=pl.lit(now, dtype=UTC_TIME),
    ).select(ITEMS_SCHEMA.names())
    return Snapshot(items=items, missing_trace_ids=missing)


def refresh_session(
    labeling_session_id: str,
    events: pl.DataFrame,
    traces: pl.LazyFrame | None,
    existing: pl.DataFrame,
    *,
    now: datetime | None = None,
) -> Snapshot | None:
    """What a refresh of one session adds, from the definition events, a lazy scan of `traces` and its items.

    None when the session does not exist or was deleted (deleted sessions keep their items, unchanged).
    Only traces the filter or the explicit ids can select are read from the scan.
    """
    table = fold_labeling_sessions(events).filter(pl.col("labeling_session_id") == labeling_session_id)
    if table.height == 0 or table["deleted"][0]:
        return None
    session = table.row(0, named=True)
    requested = requested_traces(events).filter(pl.col("labeling_session_id") == labeling_session_id)
    if traces is None:
        candidates = pl.DataFrame(schema={"trace_id": pl.String, **TRACE_COLUMNS})
    else:
        spec = json.loads(session["trace_filter"]) if session["trace_filter"] else None
        wanted = pl.col("trace_id").is_in(requested["trace_id"].to_list())
        if spec is not None:
            wanted = wanted | filter_expression(spec)
        candidates = traces.filter(wanted).collect()
    return snapshot_items(session, requested, candidates, existing, now=now)


# ---------------------------------------------------------------- the definition fold

SESSION_FIELDS = ["name", *definition_events.SESSION_COLUMNS]


def fold_labeling_sessions(events: pl.DataFrame) -> pl.DataFrame:
    """The `labeling_sessions` table from definition events: the last put of each id, plus deletion."""
    frame = events.filter(pl.col("event").is_in(["labeling_session.put", "labeling_session.delete"]))
    puts = frame.filter(pl.col("event") == "labeling_session.put")
    last = puts.group_by("labeling_session_id").agg(pl.col(SESSION_FIELDS).last(), created_at=pl.col("at").min())
    summary = frame.group_by("labeling_session_id").agg(
        deleted=(pl.col("event") == "labeling_session.delete").any(),
        updated_at=pl.col("at").max(),
        landing_key=pl.col("landing_key").max(),
    )
    table = last.join(summary, on="labeling_session_id").with_columns(
        content_hash=pl.struct([c for c in TABLE_SCHEMA.names() if c != "content_hash"]).hash(seed=0).cast(pl.String)
    )
    return table.select(TABLE_SCHEMA.names()).sort("created_at", "labeling_session_id")


def requested_traces(events: pl.DataFrame) -> pl.DataFrame:
    """Explicitly added trace ids per session (first request wins), in the order they were added."""
    adds = events.filter(pl.col("event") == "labeling_session.add_traces")
    return (
        adds.select("labeling_session_id", "trace_ids", pl.col("at").alias("requested_at"))
        .explode("trace_ids")
        .rename({"trace_ids": "trace_id"})
        .drop_nulls("trace_id")
        .unique(["labeling_session_id", "trace_id"], keep="first", maintain_order=True)
    )


def live_sessions(table: pl.DataFrame) -> pl.DataFrame:
    return table.filter(~pl.col("deleted"))


def due_sessions(table: pl.DataFrame, when: datetime) -> list[str]:
    """Ids of live sessions with a trace_filter whose refresh_cron fires at the minute of `when`."""
    candidates = live_sessions(table).filter(pl.col("trace_filter").is_not_null())
    return [row["labeling_session_id"] for row in candidates.iter_rows(named=True) if cron_matches(row["refresh_cron"], when)]


# ---------------------------------------------------------------- the SDK


def review_app_url(name: str) -> str:
    base = os.environ.get("FEEDBACK_REVIEW_APP_URL") or DEFAULT_REVIEW_APP_URL
    return f"{base.rstrip('/')}/sessions/{quote(name, safe='')}"


@dataclass(frozen=True)
class LabelingSession:
    """A labeling session as defined now; methods land definition events and return the updated session."""

    name: str
    labeling_session_id: str
    assigned_users: list[str] = field(default_factory=list)
    label_schemas: list[str] = field(default_factory=list)
    reviews_per_item: int = 1
    dataset: str | None = None
    trace_filter: dict | None = None
    refresh_cron: str = DEFAULT_REFRESH_CRON
    reservation_minutes: int = DEFAULT_RESERVATION_MINUTES
    guidelines: str | None = None
    assignments: dict[str, list[str]] = field(default_factory=dict)
    adjudicators: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    home: FeedbackHome | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The session's Review App link (`FEEDBACK_REVIEW_APP_URL` + /sessions/<name>)."""
        return review_app_url(self.name)

    def add_traces(self, traces: object) -> LabelingSession:
        """Add traces by id: a list of ids, a polars/pandas frame with `trace_id` (or MLflow's `trace` column)."""
        ids = trace_ids_of(traces)
        event = {"event": "labeling_session.add_traces", "at": definition_events.now_iso(), "labeling_session_id": self.labeling_session_id, "trace_ids": ids}
        definition_events.write_events(_home(self.home).landing(), [event], label=definition_events.session_label(self.labeling_session_id))
        return self

    def set_assigned_users(self, assigned_users: list[str]) -> LabelingSession:
        """Replace who is asked to review this session."""
        updated = replace(self, assigned_users=_users(assigned_users))
        _write_put(updated)
        return get_labeling_session(self.labeling_session_id, home=self.home)

    def assign(self, assignments: dict[str, list[str]]) -> LabelingSession:
        """Assign traces to reviewers ({trace_id: [emails]}); the Review App offers them "assigned to me" first.

        Replaces the reviewers of the traces named; an empty list removes a trace's assignment.
        """
        merged = {**self.assignments, **_assignments(assignments)}
        updated = replace(self, assignments={t: users for t, users in merged.items() if users})
        _write_put(updated)
        return get_labeling_session(self.labeling_session_id, home=self.home)


def _home(home: FeedbackHome | None) -> FeedbackHome:
    return home or FeedbackHome.from_env()


def _users(users: object, field: str = "assigned_users") -> list[str]:
    if users is None:
        return []
    if isinstance(users, str) or not isinstance(users, list | tuple) or not all(isinstance(u, str) and u.strip() for u in users):
        raise FieldError(field, f"{field} is {users!r}: expected a list of user names or emails")
    return list(dict.fromkeys(users))


def _assignments(value: object) -> dict[str, list[str]]:
    """{trace_id: [lower-cased emails]}; ValueError naming the entry at fault."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError("assignments", f"assignments is {value!r}: expected a mapping of trace id to a list of reviewer emails")
    checked: dict[str, list[str]] = {}
    for trace_id, users in value.items():
        if not isinstance(trace_id, str) or not trace_id:
            raise FieldError("assignments", f"assignments key {trace_id!r}: expected a trace id string such as 'tr-…'")
        if isinstance(users, str) or not isinstance(users, list | tuple) or not all(isinstance(u, str) and u.strip() for u in users):
            raise FieldError("assignments", f"assignments[{trace_id!r}] is {users!r}: expected a list of reviewer emails")
        checked[trace_id] = list(dict.fromkeys(u.strip().lower() for u in users))
    return checked


def trace_ids_of(traces: object) -> list[str]:
    """Trace ids from ids, a frame with `trace_id`, MLflow `search_traces` output (`trace` column) or Trace objects."""
    if isinstance(traces, str):
        traces = [traces]
    if isinstance(traces, pl.DataFrame):
        if "trace_id" not in traces.columns:
            raise FieldError("trace_ids", f"traces frame has columns {traces.columns}: expected a trace_id column")
        values = traces["trace_id"].drop_nulls().to_list()
    elif hasattr(traces, "columns") and hasattr(traces, "to_dict"):
        columns = list(traces.columns)
        if "trace_id" in columns:
            values = [v for v in traces["trace_id"].tolist() if v is not None]
        elif "trace" in columns:
            values = [_trace_id_of(v) for v in traces["trace"].tolist()]
        else:
            raise FieldError("trace_ids", f"traces frame has columns {columns}: expected a trace_id or trace column (MLflow search_traces output)")
    elif isinstance(traces, Iterable):
        values = [_trace_id_of(v) for v in traces]
    else:
        raise FieldError("trace_ids", f"traces is {type(traces).__name__}: expected trace ids, a frame with trace_id, or MLflow search_traces output")
    bad = [v for v in values if not isinstance(v, str) or not v]
    if bad or not values:
        raise FieldError("trace_ids", f"traces gave {bad[:3] if bad else 'no ids'}: expected one or more trace id strings such as 'tr-…'")
    return list(dict.fromkeys(values))


def _trace_id_of(value: object) -> str:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = json.loads(value)
    if isinstance(value, dict):
        info = value.get("info", value)
        return info.get("trace_id") or info.get("request_id")
    info = getattr(value, "info", None)
    if info is not None:
        return getattr(info, "trace_id", None) or getattr(info, "request_id", None)
    return value  # type: ignore[return-value]


def put_event(session: LabelingSession) -> dict:
    return {
        "event": "labeling_session.put",
        "at": definition_events.now_iso(),
        "labeling_session_id": session.labeling_session_id,
        "name": session.name,
        "assigned_users": session.assigned_users,
        "label_schemas": session.label_schemas,
        "reviews_per_item": session.reviews_per_item,
        "dataset": session.dataset,
        "trace_filter": json.dumps(session.trace_filter, sort_keys=True) if session.trace_filter is not None else None,
        "refresh_cron": session.refresh_cron,
        "reservation_minutes": session.reservation_minutes,
        "guidelines": session.guidelines,
        "assignments": json.dumps(session.assignments, sort_keys=True) if session.assignments else None,
        "adjudicators": session.adjudicators,
        "owners": session.owners,
    }


def _write_put(session: LabelingSession) -> None:
    definition_events.write_events(_home(session.home).landing(), [put_event(session)], label=definition_events.session_label(session.labeling_session_id))


def session_from_row(row: dict, home: FeedbackHome | None = None) -> LabelingSession:
    return LabelingSession(
        name=row["name"],
        labeling_session_id=row["labeling_session_id"],
        assigned_users=list(row["assigned_users"] or []),
        label_schemas=list(row["label_schemas"] or []),
        reviews_per_item=int(row["reviews_per_item"]),
        dataset=row["dataset"],
        trace_filter=json.loads(row["trace_filter"]) if row["trace_filter"] else None,
        refresh_cron=row["refresh_cron"],
        reservation_minutes=int(row.get("reservation_minutes") or DEFAULT_RESERVATION_MINUTES),
        guidelines=row.get("guidelines"),
        assignments=json.loads(row["assignments"]) if row.get("assignments") else {},
        adjudicators=list(row.get("adjudicators") or []),
        owners=list(row.get("owners") or []),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        home=home,
    )


def session_table(home: FeedbackHome | None = None) -> pl.DataFrame:
    """Every session (deleted ones flagged) as the definition events say now."""
    return fold_labeling_sessions(definition_events.read_events(_home(home).landing()))


def validate_session(session: LabelingSession, known_schemas: Iterable[str]) -> LabelingSession:
    """The session with normalised fields; ValueError naming the field at fault."""
    if not isinstance(session.name, str) or not session.name.strip() or len(session.name) > schemas.MAX_NAME:
        raise FieldError("name", f"name is {session.name!r}: expected a non-empty string of at most {schemas.MAX_NAME} characters")
    label_schemas = session.label_schemas
    if isinstance(label_schemas, str) or not isinstance(label_schemas, list | tuple):
        raise FieldError("label_schemas", f"label_schemas is {label_schemas!r}: expected a list of label schema names")
    names = [s.name if isinstance(s, schemas.LabelSchema) else s for s in label_schemas]
    unknown = [n for n in names if n not in set(known_schemas)]
    if unknown:
        raise FieldError("label_schemas", f"label_schemas names {unknown}: expected existing label schemas ({', '.join(sorted(known_schemas))})")
    rpi = session.reviews_per_item
    if isinstance(rpi, bool) or not isinstance(rpi, int) or rpi < 1:
        raise FieldError("reviews_per_item", f"reviews_per_item is {rpi!r}: expected a whole number >= 1")
    if session.dataset is not None and (not isinstance(session.dataset, str) or not session.dataset.strip()):
        raise FieldError("dataset", f"dataset is {session.dataset!r}: expected a dataset name or None")
    check_cron(session.refresh_cron)
    minutes = session.reservation_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_RESERVATION_MINUTES:
        raise FieldError("reservation_minutes", f"reservation_minutes is {minutes!r}: expected a whole number from 1 to {MAX_RESERVATION_MINUTES}")
    guidelines = session.guidelines
    if guidelines is not None and (not isinstance(guidelines, str) or len(guidelines) > MAX_GUIDELINES_CHARS):
        raise FieldError("guidelines", f"guidelines is {str(guidelines)[:40]!r}…: expected markdown text of at most {MAX_GUIDELINES_CHARS} characters")
    return replace(
        session,
        label_schemas=list(dict.fromkeys(names)),
        assigned_users=_users(session.assigned_users),
        guidelines=guidelines or None,
        assignments=_assignments(session.assignments),
        adjudicators=_users(session.adjudicators, "adjudicators"),
        owners=_users(session.owners, "owners"),
        trace_filter=validate_trace_filter(session.trace_filter),
    )


def same_session(a: LabelingSession, b: LabelingSession) -> bool:
    """True when two definitions agree on every field a user sets."""
    return all(getattr(a, f) == getattr(b, f) for f in SESSION_FIELDS)


def create_labeling_session(
    name: str,
    *,
    assigned_users: list[str] | None = None,
    label_schemas: list[str] | None = None,
    reviews_per_item: int = 1,
    dataset: str | None = None,
    trace_filter: dict | None = None,
    refresh_cron: str = DEFAULT_REFRESH_CRON,
    reservation_minutes: int = DEFAULT_RESERVATION_MINUTES,
    guidelines: str | None = None,
    assignments: dict[str, list[str]] | None = None,
    adjudicators: list[str] | None = None,
    owners: list[str] | None = None,
    home: FeedbackHome | None = None,
) -> LabelingSession:
    """Create a session; its name must not be taken by a live session. Traces come via add_traces or trace_filter.

    `adjudicators`: who may settle the reviewers' disagreements in the Review App (a gold value).
    `owners`: who run the session: they see its agreement figures in the Review App without answering.
    """
    home = _home(home)
    known = [s.name for s in schemas.list_label_schemas(home=home)]
    session = LabelingSession(
        name=name,
        labeling_session_id=f"ses-{uuid.uuid4().hex[:16]}",
        assigned_users=assigned_users or [],
        label_schemas=list(label_schemas or []),
        reviews_per_item=reviews_per_item,
        dataset=dataset,
        trace_filter=trace_filter,
        refresh_cron=refresh_cron,
        reservation_minutes=reservation_minutes,
        guidelines=guidelines,
        assignments=assignments or {},
        adjudicators=adjudicators or [],
        owners=owners or [],
        home=home,
    )
    session = validate_session(session, known)
    if name in live_sessions(session_table(home))["name"].to_list():
        raise ValueError(f"name {name!r} is already a labeling session: expected a new name (or delete the old session first)")
    _write_put(session)
    return get_labeling_session(session.labeling_session_id, home=home)


def get_labeling_session(name_or_id: str, *, home: FeedbackHome | None = None) -> LabelingSession:
    """A live session by name or labeling_session_id."""
    home = _home(home)
    table = live_sessions(session_table(home))
    found = table.filter((pl.col("name") == name_or_id) | (pl.col("labeling_session_id") == name_or_id))
    if found.height == 0:
        raise ValueError(f"labeling session {name_or_id!r} does not exist (or was deleted): expected one of {table['name'].to_list()}")
    return session_from_row(found.row(-1, named=True), home)


def get_labeling_sessions(*, home: FeedbackHome | None = None) -> list[LabelingSession]:
    """Every live session, oldest first."""
    home = _home(home)
    return [session_from_row(row, home) for row in live_sessions(session_table(home)).iter_rows(named=True)]


def delete_labeling_session(session: LabelingSession | str, *, home: FeedbackHome | None = None) -> None:
    """Soft delete: the session leaves listings and refreshes; its items and labels are kept."""
    home = _home(home if home else getattr(session, "home", None))
    target = get_labeling_session(session if isinstance(session, str) else session.labeling_session_id, home=home)
    event = {"event": "labeling_session.delete", "at": definition_events.now_iso(), "labeling_session_id": target.labeling_session_id}
    definition_events.write_events(home.landing(), [event], label=definition_events.session_label(target.labeling_session_id))
