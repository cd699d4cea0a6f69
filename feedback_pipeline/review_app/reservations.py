"""Review slot reservations: who is looking at which item, shared by every app process and host.

Opening an item reserves one of its `reviews_per_item` slots for the reviewer for the session's
`reservation_minutes`. A reservation is one small event in the landing zone's `definitions` area
(files labelled `reservation`, ignored by the other readers of that area):

    {"event": "item_reserved", "session": ..., "item_id": ..., "trace_id": ..., "reviewer": ...,
     "until_ns": ..., "answered": trace id or null}

A reviewer holds at most one reservation per session: a newer one replaces the older. It ends when
it expires, or when the reviewer's answer or skip of the item is seen (the answers index says so),
so submit and skip release it without an event of their own. The reservation a reviewer takes
right after answering names the trace they answered (`answered`): whoever sees the older
reservation replaced also knows its slot is now an answer, even before the answer itself is read.

Processes agree by writing first and reading after: a process that routes a reviewer to an item
lands the reservation, then lists what landed, and keeps the item only when the answers plus every
live reservation it sees on the item (its own included) fit `reviews_per_item`. Of contenders
for the last slot, the one whose reservation landed last sees all the others, so at most as many
keep the item as it has free slots (a contender that gives way tries another item).

Listing resumes `LAG_SECONDS` (to within a second) before the newest key read, and keys already
read are skipped: a file whose key was made before another's can become visible after it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feedback_pipeline.landing import LandingKey, LandingZone
from feedback_pipeline.review_app.session_answers import Slots
from feedback_pipeline.sessions import MAX_RESERVATION_MINUTES

RESERVATION_LABEL = "reservation"
AREA = "definitions"
LAG_SECONDS = 10


@dataclass(frozen=True)
class Reservation:
    """One live reservation; `key` (its landing key) orders reservations by arrival."""

    key: str
    session: str
    item_id: str
    trace_id: str
    reviewer: str
    until_ns: int
    answered: str | None = None


def _cursor_at(moment_ns: int) -> str:
    """A cursor sorting before every key landed at or after `moment_ns`."""
    moment = datetime.fromtimestamp(moment_ns / 1e9, tz=UTC)
    return f"{AREA}/{moment:%Y-%m-%d}/{moment:%H}/{moment_ns:019d}"


def _start_cursor() -> str:
    """Where the log of a fresh process starts: no reservation landed earlier can still be live."""
    return _cursor_at(int((datetime.now(UTC) - timedelta(minutes=MAX_RESERVATION_MINUTES)).timestamp() * 1e9))


class Reservations:
    """The live reservations of every session, folded from the landing zone's reservation events.

    `refresh` lists what landed after the last key read (at most every `refresh_seconds`, unless
    forced); a process's own reservations are folded in when it writes them.
    """

    def __init__(self, landing: LandingZone, refresh_seconds: float = 1.0) -> None:
        self.landing = landing
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._listing = threading.Lock()
        self._cursor = _start_cursor()
        self._checked = 0.0
        self._listed_from = 0.0
        self._seen: dict[str, int] = {}
        self._newest_ns = 0
        self._pruned_ns = 0
        self._held: dict[tuple[str, str], Reservation] = {}
        self._answered: dict[str, dict[str, set[str]]] = {}

    def reserve(
        self, session: str, item_id: str, trace_id: str, reviewer: str, minutes: int, answered: str | None = None
    ) -> Reservation:
        """Land a reservation of one slot of `item_id` for `reviewer`, replacing their earlier one in the session.

        `answered`: the trace the reviewer has just answered (their earlier reservation's slot is an answer now).
        """
        until_ns = time.time_ns() + minutes * 60 * 1_000_000_000
        return self._land(Reservation("", session, item_id, trace_id, reviewer, until_ns, answered))

    def _land(self, made: Reservation) -> Reservation:
        event = {
            "event": "item_reserved", "session": made.session, "item_id": made.item_id, "trace_id": made.trace_id,
            "reviewer": made.reviewer, "until_ns": made.until_ns, "answered": made.answered,
        }
        key = self.landing.write_lines(AREA, [json.dumps(event, sort_keys=True)], label=RESERVATION_LABEL)
        landed = Reservation(key, made.session, made.item_id, made.trace_id, made.reviewer, made.until_ns, made.answered)
        with self._lock:
            self._see(key, LandingKey.parse(key).time_ns)
            self._fold(landed)
        return landed

    def _see(self, key: str, time_ns: int) -> None:
        self._seen[key] = time_ns
        self._newest_ns = max(self._newest_ns, time_ns)

    def release(self, session: str, reviewer: str) -> None:
        """Land an already expired reservation that replaces the reviewer's live one in a session."""
        self._land(Reservation("", session, "", "", reviewer, 0))

    def refresh(self, force: bool = False) -> None:
        """Fold the reservation events that landed since the last look (and were not read yet).

        `force`: every event landed before this call is folded on return. Listing is the costly
        part (it grows with the hour's folder), so one thread lists at a time, and a forced call
        that waited for a listing begun after it was made takes that listing's result.
        """
        asked = time.monotonic()
        with self._lock:
            if not force and asked - self._checked < self.refresh_seconds:
                return
        if not self._listing.acquire(blocking=force):
            return
        try:
            if self._listed_from >= asked:
                return
            started = time.monotonic()
            self._list(started)
            self._listed_from = started
        finally:
            self._listing.release()

    def _list(self, started: float) -> None:
        with self._lock:
            cursor = self._cursor
        keys = self.landing.list(AREA, after=cursor)
        with self._lock:
            unseen = [key for key in keys if key not in self._seen]
        found: list[tuple[str, int, list[Reservation]]] = []
        for key in unseen:
            parsed = LandingKey.parse(key)
            lines = self.landing.read_bytes(key).decode().splitlines() if parsed.label == RESERVATION_LABEL else []
            found.append((key, parsed.time_ns, [made for made in (_parse(key, line) for line in lines) if made]))
        with self._lock:
            for key, time_ns, reservations in found:
                if key in self._seen:
                    continue
                self._see(key, time_ns)
                for made in reservations:
                    self._fold(made)
            self._forget_before(self._newest_ns - LAG_SECONDS * 1_000_000_000)
            self._checked = started

    def _forget_before(self, floor_ns: int) -> None:
        """Move the cursor to `floor_ns` and forget the keys before it (at most once a second of key time)."""
        if floor_ns - self._pruned_ns < 1_000_000_000:
            return
        self._cursor = max(self._cursor, _cursor_at(floor_ns))
        self._seen = {key: t for key, t in self._seen.items() if t >= floor_ns}
        self._pruned_ns = floor_ns

    def _fold(self, made: Reservation) -> None:
        if made.answered:
            self._answered.setdefault(made.session, {}).setdefault(made.answered, set()).add(made.reviewer)
        holder = (made.session, made.reviewer)
        earlier = self._held.get(holder)
        if earlier is not None and earlier.key >= made.key:
            return
        self._held[holder] = made

    def held_by(self, session: str, reviewer: str) -> Reservation | None:
        """The reviewer's live reservation in a session, if any."""
        with self._lock:
            made = self._held.get((session, reviewer))
        return made if made is not None and made.until_ns > time.time_ns() else None

    def slots(self, session: str) -> Slots:
        """Who holds a live reservation on each trace of a session (in arrival order), and who announced answers."""
        now = time.time_ns()
        with self._lock:
            live = [r for r in self._held.values() if r.session == session and r.until_ns > now]
            # handed out as is, not copied: readers only look traces up, and entries only grow
            answered = self._answered.setdefault(session, {})
        held: dict[str, list[str]] = {}
        for made in sorted(live, key=lambda r: r.key):
            held.setdefault(made.trace_id, []).append(made.reviewer)
        return Slots(held, answered)


def _parse(key: str, line: str) -> Reservation | None:
    try:
        event = json.loads(line)
        return Reservation(
            key, str(event["session"]), str(event["item_id"]), str(event["trace_id"]), str(event["reviewer"]),
            int(event["until_ns"]), str(event["answered"]) if event.get("answered") else None,
        )
    except (ValueError, KeyError, TypeError):
        return None
