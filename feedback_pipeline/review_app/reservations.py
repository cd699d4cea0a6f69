"""Review slot reservations: who is looking at which item, shared by every app process and host.

Opening an item reserves one of its `reviews_per_item` slots for the reviewer for the session's
`reservation_minutes`. A reservation is one small event in the landing zone's `definitions` area
(files labelled `reservation`, ignored by the other readers of that area):

    {"event": "item_reserved", "session": ..., "item_id": ..., "trace_id": ..., "reviewer": ..., "until_ns": ...}

A reviewer holds at most one reservation per session: a newer one replaces the older. It ends when
it expires, or when the reviewer's answer or skip of the item is seen (the answers index says so),
so submit and skip release it without an event of their own.

Processes agree by writing first and reading after: a process that routes a reviewer to an item
lands the reservation, lists what landed since its last look, and keeps the item only when the
reviewer's reservation is among the first (in arrival order) to fit the item's free slots.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feedback_pipeline.landing import LandingKey, LandingZone
from feedback_pipeline.sessions import MAX_RESERVATION_MINUTES

RESERVATION_LABEL = "reservation"
AREA = "definitions"


@dataclass(frozen=True)
class Reservation:
    """One live reservation; `key` (its landing key) orders reservations by arrival."""

    key: str
    session: str
    item_id: str
    trace_id: str
    reviewer: str
    until_ns: int


def _start_cursor() -> str:
    """Where the log of a fresh process starts: no reservation landed earlier can still be live."""
    start = datetime.now(UTC) - timedelta(minutes=MAX_RESERVATION_MINUTES)
    return f"{AREA}/{start:%Y-%m-%d}/{start:%H}/"


class Reservations:
    """The live reservations of every session, folded from the landing zone's reservation events.

    `refresh` lists what landed after the last key read (at most every `refresh_seconds`, unless
    forced); a process's own reservations are folded in when it writes them.
    """

    def __init__(self, landing: LandingZone, refresh_seconds: float = 1.0) -> None:
        self.landing = landing
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._cursor = _start_cursor()
        self._checked = 0.0
        self._held: dict[tuple[str, str], Reservation] = {}

    def reserve(self, session: str, item_id: str, trace_id: str, reviewer: str, minutes: int) -> Reservation:
        """Land a reservation of one slot of `item_id` for `reviewer`, replacing their earlier one in the session."""
        until_ns = time.time_ns() + minutes * 60 * 1_000_000_000
        event = {
            "event": "item_reserved", "session": session, "item_id": item_id, "trace_id": trace_id,
            "reviewer": reviewer, "until_ns": until_ns,
        }
        key = self.landing.write_lines(AREA, [json.dumps(event, sort_keys=True)], label=RESERVATION_LABEL)
        made = Reservation(key, session, item_id, trace_id, reviewer, until_ns)
        with self._lock:
            self._fold(made)
        return made

    def release(self, session: str, reviewer: str) -> None:
        """Land an already expired reservation that replaces the reviewer's live one in a session."""
        event = {"event": "item_reserved", "session": session, "item_id": "", "trace_id": "", "reviewer": reviewer, "until_ns": 0}
        key = self.landing.write_lines(AREA, [json.dumps(event, sort_keys=True)], label=RESERVATION_LABEL)
        with self._lock:
            self._fold(Reservation(key, session, "", "", reviewer, 0))

    def refresh(self, force: bool = False) -> None:
        """Fold the reservation events that landed since the last look."""
        with self._lock:
            if not force and time.monotonic() - self._checked < self.refresh_seconds:
                return
            cursor = self._cursor
            checked = time.monotonic()
        found: list[Reservation] = []
        last = cursor
        for key in self.landing.iter_keys(AREA, after=cursor):
            last = key
            if LandingKey.parse(key).label != RESERVATION_LABEL:
                continue
            for line in self.landing.read_bytes(key).decode().splitlines():
                made = _parse(key, line)
                if made is not None:
                    found.append(made)
        with self._lock:
            for made in found:
                self._fold(made)
            self._cursor = max(self._cursor, last)
            self._checked = checked

    def _fold(self, made: Reservation) -> None:
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

    def by_trace(self, session: str) -> dict[str, list[str]]:
        """Who holds a live reservation on each trace of a session (reviewers, in arrival order)."""
        now = time.time_ns()
        with self._lock:
            live = [r for r in self._held.values() if r.session == session and r.until_ns > now]
        held: dict[str, list[str]] = {}
        for made in sorted(live, key=lambda r: r.key):
            held.setdefault(made.trace_id, []).append(made.reviewer)
        return held


def _parse(key: str, line: str) -> Reservation | None:
    try:
        event = json.loads(line)
        return Reservation(
            key, str(event["session"]), str(event["item_id"]), str(event["trace_id"]), str(event["reviewer"]),
            int(event["until_ns"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
