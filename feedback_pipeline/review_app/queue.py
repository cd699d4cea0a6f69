"""What the Review App reads: sessions, their items and questions, and the answers given so far.

The lake is read through a small cache (a table is re-read when its Delta version moves, checked at
most every `ttl` seconds). Answers are the lake's valid assessments folded with the Review App's own
submissions still waiting in the landing zone, so an item counts as done for its reviewer at once,
before the pipeline has run ("read your own writes"). The landing tail starts after the newest
submissions file the pipeline recorded (or `lookback_hours` back) and keeps at most `max_pending`
records; records leave it once their submission shows up in `assessments` or `rejections`.

Nothing a request needs is recomputed per request: sessions, questions and items are derived once
per table version, and answers live in a per-session index (`session_answers.SessionAnswers`)
rebuilt when the lake moves and otherwise fed the pending submissions as they arrive.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from feedback_pipeline import session_roles
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingKey, LandingZone, processed_high_water
from feedback_pipeline.review_app.answers import Question, current_questions
from feedback_pipeline.review_app.reservations import Reservations
from feedback_pipeline.review_app.session_answers import (
    AnswerRow,
    SessionAnswers,
    SessionItems,
    answer_row,
    lake_answer_rows,
    processed_ids,
)
from feedback_pipeline.sessions import DEFAULT_RESERVATION_MINUTES, live_sessions

REVIEW_APP_LABEL = "review-app"
CLAIM_ATTEMPTS = 6


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


def pending_row(record: Mapping[str, Any]) -> AnswerRow:
    """A landed Review App submission as an answer row, ordered by its `created_at`."""
    return answer_row(record, _epoch_us(record.get("created_at")))


def _records_in(data: bytes) -> list[dict[str, Any]]:
    """The submission objects of a landing file (lines that are not one are left to the pipeline)."""
    records = []
    for line in data.decode().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("submission_id"):
            records.append(record)
    return records


class PendingSubmissions:
    """The tail of the landing zone's Review App submissions that the lake may not hold yet.

    Each session's rows are kept in arrival order (its log); readers follow a log by position.
    Dropping rows (records the lake now holds, or the oldest beyond `max_pending`) rewrites the
    log and bumps the session's generation, which tells readers to start over.

    Files this process landed itself are known from `add` and never read back. The listing and
    reading of other processes' files happens outside the lock the readers share, by one thread
    at a time; a request waits for it only when its reviewer wrote a file this process has not
    read yet.
    """

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
        self._refreshing = threading.Lock()
        self._own_keys: set[str] = set()
        self._records: dict[str, AnswerRow] = {}
        self._logs: dict[str, list[AnswerRow]] = {}
        self._generations: dict[str, int] = {}
        self._checked = 0.0
        self._caught_up = 0.0
        self._cursor = self._start_cursor(lookback_hours)

    def _start_cursor(self, lookback_hours: float) -> str:
        newest = processed_high_water(self.tables.lake, "submissions")
        if newest:
            return newest
        start = datetime.now(UTC) - timedelta(hours=lookback_hours)
        return f"submissions/{start:%Y-%m-%d}/{start:%H}/"

    def add(self, records: Iterable[Mapping[str, Any]], landing_key: str | None = None) -> None:
        """Remember submissions this process just landed (in the file `landing_key`), visible at once."""
        with self._lock:
            if landing_key is not None and landing_key > self._cursor:
                self._own_keys.add(landing_key)
            for record in records:
                self._remember(pending_row(record))
            self._trim()

    def _remember(self, row: AnswerRow) -> None:
        if row.submission_id in self._records:
            return
        self._records[str(row.submission_id)] = row
        self._logs.setdefault(str(row.session), []).append(row)

    def _trim(self) -> None:
        excess = len(self._records) - self.max_pending
        if excess > 0:
            dropped = [self._records.pop(key) for key in list(self._records)[:excess]]
            self._rewrite_logs({str(row.session) for row in dropped})

    def _rewrite_logs(self, sessions: set[str]) -> None:
        for session in sessions:
            self._logs[session] = [row for row in self._records.values() if row.session == session]
            self._generations[session] = self._generations.get(session, 0) + 1

    def refresh(self, through: str | None = None, force: bool = False) -> None:
        """Read Review App submission files that landed since the last look.

        Throttled to one listing per `refresh_seconds`, unless `through` (a landing key this
        reviewer wrote, possibly through another process) has not been read yet, or `force`: then
        it waits for the thread listing, and takes its result when it began after this call.
        """
        asked = time.monotonic()
        with self._lock:
            behind = force or (through is not None and through > self._cursor and through not in self._own_keys)
            if not behind and asked - self._checked < self.refresh_seconds:
                return
        if not self._refreshing.acquire(blocking=behind):
            return
        try:
            with self._lock:
                cursor, own = self._cursor, set(self._own_keys)
                listed_after_asked = self._caught_up >= asked
            if listed_after_asked or (behind and through is not None and through <= cursor):
                return
            started = time.monotonic()
            keys = self.landing.list("submissions", after=cursor, limit=self.files_per_refresh)
            rows = [
                pending_row(record)
                for key in keys
                if key not in own and LandingKey.parse(key).label == REVIEW_APP_LABEL
                for record in _records_in(self.landing.read_bytes(key))
            ]
            with self._lock:
                for row in rows:
                    self._remember(row)
                self._cursor = keys[-1] if keys else cursor
                self._own_keys = {key for key in self._own_keys if key > self._cursor}
                self._trim()
                self._checked = started
                if len(keys) < self.files_per_refresh:
                    self._caught_up = started
        finally:
            self._refreshing.release()

    def since(self, session: str, generation: int, position: int) -> tuple[int, int, list[AnswerRow]]:
        """(generation, end position, rows) of a session's log after `position`.

        When the log was rewritten since `generation`, the rows are the whole log: start over.
        """
        with self._lock:
            current = self._generations.get(session, 0)
            log = self._logs.get(session, [])
            return current, len(log), log[position if current == generation else 0 :]

    def forget(self, session: str, processed: frozenset[str]) -> None:
        """Drop a session's rows whose submission the lake now holds: from then on the lake is the truth."""
        with self._lock:
            held = [row.submission_id for row in self._logs.get(session, []) if row.submission_id in processed]
            for submission_id in held:
                self._records.pop(str(submission_id), None)
            if held:
                self._rewrite_logs({session})


def _minutes(session: Mapping[str, Any]) -> int:
    return int(session.get("reservation_minutes") or DEFAULT_RESERVATION_MINUTES)


def _spread(reviewer: str, count: int) -> int:
    """A stable starting position per reviewer, so a team does not contend for the same first item."""
    return int.from_bytes(hashlib.sha256(reviewer.encode()).digest()[:4], "big") % count


def _latest(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    order = [c for c in ("updated_at", "version", "created_at") if c in frame.columns]
    if order:
        frame = frame.sort(order)
    return frame.unique(key, keep="last", maintain_order=True)


def _same(before: tuple, now: tuple) -> bool:
    """Whether two tuples hold the very same objects (frames compare by identity, not content)."""
    return len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True))


class ReviewData:
    """The Review App's read side over one lake and landing zone.

    What the pages need is derived once per version of the tables it comes from (the frames
    TableCache hands out stay the same objects until their table's version moves) and, for
    answers, kept current with the pending submissions by `SessionAnswers`.
    """

    def __init__(self, lake: Lake, landing: LandingZone, *, ttl: float = 5.0, lookback_hours: float = 72) -> None:
        self.tables = TableCache(lake, ttl)
        self.pending = PendingSubmissions(landing, self.tables, lookback_hours=lookback_hours, refresh_seconds=min(ttl, 1.0))
        self.reservations = Reservations(landing, refresh_seconds=min(ttl, 1.0))
        self._lock = threading.Lock()
        self._derived: dict[tuple, tuple[tuple, Any]] = {}
        self._answers: dict[str, SessionAnswers] = {}

    def _derive(self, key: tuple, sources: tuple, build: Callable[[], Any]) -> Any:
        """`build()`, kept while every one of `sources` is the same object as when it was built."""
        cached = self._derived.get(key)
        if cached is not None and _same(cached[0], sources):
            return cached[1]
        value = build()
        self._derived[key] = (sources, value)
        return value

    def _sessions_by_name(self) -> dict[str, dict[str, Any]]:
        frame = self.tables.frame("labeling_sessions")

        def build() -> dict[str, dict[str, Any]]:
            if frame is None or frame.height == 0:
                return {}
            rows = _latest(live_sessions(frame), "name").to_dicts()
            return {str(s["name"]): s for s in sorted(rows, key=lambda s: str(s["name"]))}

        return self._derive(("sessions",), (frame,), build)

    def sessions(self) -> list[dict[str, Any]]:
        """The current, not deleted labeling sessions, by name."""
        return list(self._sessions_by_name().values())

    def session(self, name: str) -> dict[str, Any] | None:
        return self._sessions_by_name().get(name)

    may_review = staticmethod(session_roles.may_open)
    may_answer = staticmethod(session_roles.may_answer)

    def questions(self, session: Mapping[str, Any]) -> tuple[list[Question], list[str]]:
        schemas = self.tables.frame("label_schemas")
        names = tuple(session.get("label_schemas") or [])
        return self._derive(
            ("questions", names),
            (schemas,),
            lambda: current_questions(schemas if schemas is not None else pl.DataFrame(), list(names)),
        )

    def items(self, session: Mapping[str, Any]) -> SessionItems:
        """The session's items in queue order (by when they were added)."""
        session_id = session["labeling_session_id"]
        frame = self.tables.frame("session_items", ("session_id", session_id))

        def build() -> SessionItems:
            if frame is None or frame.height == 0:
                return SessionItems(pl.DataFrame(schema={"item_id": pl.String, "trace_id": pl.String, "session_name": pl.String}))
            order = [c for c in ("added_at", "item_id") if c in frame.columns]
            return SessionItems(frame.sort(order) if order else frame)

        return self._derive(("items", session_id), (frame,), build)

    @staticmethod
    def assigned_to(session: Mapping[str, Any], reviewer: str) -> frozenset[str]:
        """The traces the session's per-item assignment gives this reviewer."""
        raw = session.get("assignments")
        if not raw:
            return frozenset()
        mapping = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return frozenset(trace for trace, users in mapping.items() if reviewer in [str(u).lower() for u in users or []])

    def hold(self, session: Mapping[str, Any], item_id: str, trace_id: str, reviewer: str) -> None:
        """Reserve a slot of the item a reviewer opened, unless they hold it already."""
        name = str(session["name"])
        held = self.reservations.held_by(name, reviewer)
        if held is None or held.item_id != item_id:
            self.reservations.reserve(name, item_id, trace_id, reviewer, _minutes(session))

    def next_item(
        self, session: Mapping[str, Any], reviewer: str, after: str | None = None, through: str | None = None,
        answered: bool = False,
    ) -> str | None:
        """Reserve and return the item a reviewer should review next (see `SessionAnswers.route`), or None.

        Picks a candidate from what this process has read (at most a second old), lands the
        reservation, then reads every reservation landed since, and keeps the item only if its
        answers and the reservations seen fit its slots (`reservations`: why that is enough);
        otherwise tries another candidate. "Nothing left" is said only after a fresh read of both
        (a slot another process freed within the last second is found). Submissions need no fresh
        listing: an answer given through "next" lands while its reviewer's reservation of the item
        is live, and before the reviewer's next reservation, which announces it; whichever of the
        two is seen takes the slot. `after`: the item just reviewed (the search goes on from there;
        `answered`: it was answered, not skipped); without it each reviewer starts elsewhere.
        """
        name = str(session["name"])
        items = self.items(session)
        if not items.ids:
            return None
        start = items.positions[after] + 1 if after in items.positions else _spread(reviewer, len(items.ids))
        just_answered = items.traces[items.positions[after]] if answered and after in items.positions else None
        assigned = self.assigned_to(session, reviewer)
        lost: set[str] = set()

        def route(given: SessionAnswers) -> str | None:
            return given.route(reviewer, self.reservations.slots(name), start, assigned=assigned, exclude=frozenset(lost))

        self.reservations.refresh()
        answers = self.answers(session, through)
        looked_again = False
        for _ in range(CLAIM_ATTEMPTS):
            candidate = route(answers)
            if candidate is None and not looked_again:
                # "nothing left" may come from a view up to a second old (a reservation since
                # released or moved on in another process): say it only after reading everything landed
                looked_again = True
                self.reservations.refresh(force=True)
                self.pending.refresh(force=True)
                answers = self.answers(session, through)
                candidate = route(answers)
            if candidate is None:
                break
            trace_id = items.traces[items.positions[candidate]]
            self.reservations.reserve(name, candidate, trace_id, reviewer, _minutes(session), answered=just_answered)
            self.reservations.refresh(force=True)
            answers = self.answers(session, through)
            if answers.fits(trace_id, reviewer, self.reservations.slots(name)):
                return candidate
            lost.add(candidate)
        if lost:
            self.reservations.release(name, reviewer)
        return None

    def answers(self, session: Mapping[str, Any], through: str | None = None) -> SessionAnswers:
        """Every reviewer's current answers and skips in a session, pending submissions included.

        `through`: a landing key the reader wrote; the answers include it.
        """
        name = str(session["name"])
        self.pending.refresh(through)
        items = self.items(session)
        needed = int(session.get("reviews_per_item") or 1)
        with self._lock:
            answers = self._answers.get(name)
            if answers is None or answers.items is not items or answers.reviews_per_item != needed:
                answers = self._answers[name] = SessionAnswers(items, needed)
        lake = self.tables.frame("assessments", ("session", name))
        rejections = self.tables.frame("rejections", None, ("submission_id",))
        with answers.lock:
            generation, position, rows = self.pending.since(name, answers.pending_generation, answers.pending_position)
            if not _same(answers.sources, (lake, rejections)) or generation != answers.pending_generation:
                processed = processed_ids(lake, rejections)
                self.pending.forget(name, processed)
                generation, position, rows = self.pending.since(name, -1, 0)
                answers.rebuild(lake_answer_rows(lake), processed, rows)
                answers.sources = (lake, rejections)
            else:
                answers.add(rows)
            answers.pending_generation, answers.pending_position = generation, position
        return answers
