"""What the Review App reads: sessions, their items and questions, and the answers given so far.

The lake is read through a small cache (a table is re-read when its Delta version moves, checked at
most every `ttl` seconds). Answers are the lake's valid assessments folded with the Review App's own
submissions still waiting in the landing zone, so an item counts as done for its reviewer at once,
before the pipeline has run ("read your own writes"). The landing tail starts after the newest
submissions file the pipeline recorded (or `lookback_hours` back) and keeps at most `max_pending`
records; records leave it once their submission shows up in `assessments` or `rejections`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingKey, LandingZone, processed_high_water
from feedback_pipeline.review_app.answers import Question, current_questions
from feedback_pipeline.sessions import item_status, live_sessions

REVIEW_APP_LABEL = "review-app"
ANSWER_SCHEMA = {
    "assessment_id": pl.String,
    "submission_id": pl.String,
    "trace_id": pl.String,
    "session": pl.String,
    "assessment_name": pl.String,
    "kind": pl.String,
    "assessment_value": pl.String,
    "rationale": pl.String,
    "assessor_id": pl.String,
    "overrides": pl.String,
    "order": pl.Int64,
}
STATUSES = ("pending", "skipped", "done", "complete")


class TableCache:
    """Delta table reads (optionally one key's rows, some columns) kept until the table's version moves."""

    def __init__(self, lake: Lake, ttl: float = 1.0) -> None:
        self.lake = lake
        self.ttl = ttl
        self._locks: dict[tuple, threading.Lock] = {}
        self._frames: dict[tuple, tuple[int | None, float, pl.DataFrame | None]] = {}

    def frame(
        self, name: str, where: tuple[str, Any] | None = None, columns: tuple[str, ...] | None = None
    ) -> pl.DataFrame | None:
        """The rows of `name` (those whose column `where[0]` equals `where[1]`), or None when never written."""
        key = (name, where, columns)
        cached = self._frames.get(key)
        if cached and time.monotonic() - cached[1] < self.ttl:
            return cached[2]
        with self._locks.setdefault(key, threading.Lock()):
            cached = self._frames.get(key)
            if cached and time.monotonic() - cached[1] < self.ttl:
                return cached[2]
            version = self.lake.version(name)
            if cached and cached[0] == version:
                self._frames[key] = (version, time.monotonic(), cached[2])
                return cached[2]
            frame = None if version is None else self._read(name, version, where, columns)
            self._frames[key] = (version, time.monotonic(), frame)
            return frame

    def _read(self, name: str, version: int, where: tuple[str, Any] | None, columns: tuple[str, ...] | None) -> pl.DataFrame:
        scan = self.lake.scan(name, version)
        names = scan.collect_schema().names()
        if where is not None:
            scan = scan.filter(pl.col(where[0]) == where[1]) if where[0] in names else scan.head(0)
        if columns is not None:
            scan = scan.select([c for c in columns if c in names])
        return scan.collect()


def _epoch_us(text: Any) -> int:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def pending_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A landed Review App submission in the shape of an `assessments` row (see ANSWER_SCHEMA)."""
    source = record.get("source") or {}
    value = record.get("value")
    return {
        "assessment_id": record.get("assessment_id"),
        "submission_id": record.get("submission_id"),
        "trace_id": record.get("trace_id"),
        "session": record.get("session"),
        "assessment_name": record.get("name"),
        "kind": record.get("kind"),
        "assessment_value": None if value is None else json.dumps(value),
        "rationale": record.get("rationale"),
        "assessor_id": source.get("source_id") if isinstance(source, Mapping) else None,
        "overrides": record.get("overrides"),
        "order": _epoch_us(record.get("created_at")),
    }


class PendingSubmissions:
    """The tail of the landing zone's Review App submissions that the lake may not hold yet."""

    def __init__(
        self,
        landing: LandingZone,
        tables: TableCache,
        *,
        lookback_hours: float = 72,
        refresh_seconds: float = 1.0,
        max_pending: int = 100_000,
        files_per_refresh: int = 2000,
    ) -> None:
        self.landing = landing
        self.tables = tables
        self.refresh_seconds = refresh_seconds
        self.max_pending = max_pending
        self.files_per_refresh = files_per_refresh
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._frame: pl.DataFrame | None = None
        self._checked = 0.0
        self._cursor = self._start_cursor(lookback_hours)

    def _start_cursor(self, lookback_hours: float) -> str:
        newest = processed_high_water(self.tables.lake, "submissions")
        if newest:
            return newest
        start = datetime.now(UTC) - timedelta(hours=lookback_hours)
        return f"submissions/{start:%Y-%m-%d}/{start:%H}/"

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Remember submissions this process just landed (visible before the next listing)."""
        with self._lock:
            for record in records:
                self._records[str(record["submission_id"])] = pending_row(record)
            self._trim()
            self._frame = None

    def _trim(self) -> None:
        excess = len(self._records) - self.max_pending
        if excess > 0:
            for key in list(self._records)[:excess]:
                del self._records[key]

    def refresh(self, through: str | None = None) -> None:
        """Read Review App submission files that landed since the last look.

        Throttled to one listing per `refresh_seconds`, unless `through` (a landing key this
        reviewer wrote, possibly through another process) has not been read yet.
        """
        with self._lock:
            behind = through is not None and through > self._cursor
            if not behind and time.monotonic() - self._checked < self.refresh_seconds:
                return
            for key in self.landing.list("submissions", after=self._cursor, limit=self.files_per_refresh):
                self._cursor = key
                if LandingKey.parse(key).label != REVIEW_APP_LABEL:
                    continue
                for line in self.landing.read_bytes(key).decode().splitlines():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(record, dict) and record.get("submission_id"):
                        self._records[str(record["submission_id"])] = pending_row(record)
                        self._frame = None
            self._trim()
            self._checked = time.monotonic()

    def frame(self, session: str, through: str | None = None) -> pl.DataFrame:
        """A session's remembered submissions that are in neither `assessments` nor `rejections` yet.

        Those found there are forgotten: from then on the lake is the truth about them.
        """
        self.refresh(through)
        with self._lock:
            if self._frame is None:
                rows = list(self._records.values())
                self._frame = pl.DataFrame(rows, schema=ANSWER_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ANSWER_SCHEMA)
            frame = self._frame.filter(pl.col("session") == session)
        if frame.height == 0:
            return frame
        processed = [
            done.select(pl.col("submission_id").cast(pl.String))
            for done in (
                self.tables.frame("assessments", ("session", session), ("submission_id",)),
                self.tables.frame("rejections", None, ("submission_id",)),
            )
            if done is not None and "submission_id" in done.columns
        ]
        if not processed:
            return frame
        seen = frame.join(pl.concat(processed).unique(), on="submission_id", how="semi")["submission_id"]
        if seen.len():
            with self._lock:
                for submission_id in seen:
                    self._records.pop(submission_id, None)
                self._frame = None
        return frame.filter(~pl.col("submission_id").is_in(seen.implode()))


def review_status(items: pl.DataFrame, answers: pl.DataFrame, reviewer: str, reviews_per_item: int) -> pl.DataFrame:
    """Each item with `reviews` (reviewers who answered) and `status` for this reviewer.

    status: done (I answered), skipped (I skipped and never answered), complete (enough others
    answered: `feedback_pipeline.sessions.item_status` says completed), pending (waiting for me).
    """
    overall = item_status(items, answers.with_columns(valid=pl.lit(True)), reviews_per_item)
    mine = (
        pl.when(pl.col("reviewers").list.contains(reviewer))
        .then(pl.lit("done"))
        .when(pl.col("skipped_by").list.contains(reviewer))
        .then(pl.lit("skipped"))
        .when(pl.col("status") == "completed")
        .then(pl.lit("complete"))
        .otherwise(pl.lit("pending"))
    )
    return items.join(overall.select("item_id", "reviews", mine.alias("status")), on="item_id", how="left")


def _latest(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    order = [c for c in ("updated_at", "version", "created_at") if c in frame.columns]
    if order:
        frame = frame.sort(order)
    return frame.unique(key, keep="last", maintain_order=True)


class ReviewData:
    """The Review App's read side over one lake and landing zone."""

    def __init__(self, lake: Lake, landing: LandingZone, *, ttl: float = 5.0, lookback_hours: float = 72) -> None:
        self.tables = TableCache(lake, ttl)
        self.pending = PendingSubmissions(landing, self.tables, lookback_hours=lookback_hours, refresh_seconds=min(ttl, 1.0))

    def sessions(self) -> list[dict[str, Any]]:
        """The current, not deleted labeling sessions, by name."""
        frame = self.tables.frame("labeling_sessions")
        if frame is None or frame.height == 0:
            return []
        frame = _latest(live_sessions(frame), "name")
        return sorted(frame.to_dicts(), key=lambda s: str(s["name"]))

    def session(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions() if s["name"] == name), None)

    @staticmethod
    def may_review(session: Mapping[str, Any], reviewer: str) -> bool:
        """Assigned users only; anyone invited when the session assigns nobody."""
        assigned = [str(u).strip().lower() for u in session.get("assigned_users") or []]
        return not assigned or reviewer.lower() in assigned

    def questions(self, session: Mapping[str, Any]) -> tuple[list[Question], list[str]]:
        schemas = self.tables.frame("label_schemas")
        return current_questions(schemas if schemas is not None else pl.DataFrame(), list(session.get("label_schemas") or []))

    def items(self, session: Mapping[str, Any]) -> pl.DataFrame:
        """The session's items in queue order (by when they were added)."""
        frame = self.tables.frame("session_items", ("session_id", session["labeling_session_id"]))
        if frame is None or frame.height == 0:
            return pl.DataFrame(schema={"item_id": pl.String, "trace_id": pl.String, "session_name": pl.String})
        order = [c for c in ("added_at", "item_id") if c in frame.columns]
        return frame.sort(order) if order else frame

    def answers(self, session_name: str, through: str | None = None) -> pl.DataFrame:
        """Every reviewer's current answers and skips in a session, pending submissions included.

        `through`: a landing key the reader wrote; the answers include it.
        """
        lake = self.tables.frame("assessments", ("session", session_name))
        if lake is None or lake.height == 0:
            stored = pl.DataFrame(schema=ANSWER_SCHEMA)
        else:
            stored = lake.filter(pl.col("valid").fill_null(True))
            created = pl.col("created_at")
            stored = stored.with_columns(
                (created.dt.epoch("us") if lake.schema["created_at"] != pl.String else pl.lit(0, pl.Int64)).alias("order"),
                *[pl.lit(None, pl.String).alias(c) for c in ANSWER_SCHEMA if c not in lake.columns and c != "order"],
            ).select([pl.col(c).cast(t) for c, t in ANSWER_SCHEMA.items()])
        pending = self.pending.frame(session_name, through)
        combined = pl.concat([stored, pending])
        replaced = pending.select(pl.col("overrides").drop_nulls().alias("assessment_id"))
        return combined.join(replaced, on="assessment_id", how="anti").sort("order")

    def queue(self, session: Mapping[str, Any], reviewer: str, answers: pl.DataFrame | None = None) -> pl.DataFrame:
        """The session's items with my status (see `review_status`)."""
        if answers is None:
            answers = self.answers(str(session["name"]))
        items = self.items(session)
        listed = items.select([c for c in ("item_id", "trace_id", "session_name", "request_preview") if c in items.columns])
        return review_status(listed, answers, reviewer, int(session.get("reviews_per_item") or 1))

    @staticmethod
    def my_answers(answers: pl.DataFrame, trace_id: str, reviewer: str) -> dict[str, dict[str, Any]]:
        """My latest answer per question on one trace (skips excluded), with the value decoded."""
        mine = answers.filter(
            (pl.col("trace_id") == trace_id) & (pl.col("assessor_id") == reviewer) & (pl.col("kind") != "skip")
        )
        latest: dict[str, dict[str, Any]] = {}
        for row in mine.to_dicts():
            text = row["assessment_value"]
            row["value"] = json.loads(text) if text is not None else None
            latest[row["assessment_name"]] = row
        return latest
