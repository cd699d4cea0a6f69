"""Review slot reservations: who is looking at which item, shared by every app process and host.

Opening an item reserves one of its `reviews_per_item` slots for the reviewer for the session's
`reservation_minutes`. A reservation is one small event in the landing zone's `reservations` area
(one folder per second; no other reader lists it):

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

Readers re-check the folders of the last `LAG_SECONDS` (a file whose key was made before another's
can become visible after it, and other hosts' clocks differ) and as many seconds ahead, reading
only the keys not read yet. On a local disk a folder is listed again only when its modification
time changed, or was within `SETTLE_NS` of the last listing (timestamps are coarse), so a refresh
costs a few `stat` calls and the listing of the folders written since; object stores list each.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from feedback_pipeline.landing import LandingKey, LandingZone
from feedback_pipeline.review_app.session_answers import Slots
from feedback_pipeline.sessions import MAX_RESERVATION_MINUTES

AREA = "reservations"
LAG_SECONDS = 10
SETTLE_NS = 1_000_000_000
CATCH_UP_SECONDS = 120
SECOND_NS = 1_000_000_000


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


@dataclass(frozen=True)
class _Folder:
    """What a listing of one second's folder found: its version then, when it began, the keys."""

    version: int | None
    listed_ns: int
    keys: frozenset[str]

    def unchanged(self, version: int | None) -> bool:
        """Whether a folder now at `version` can hold nothing this listing missed."""
        return self.version is not None and version == self.version and (version == 0 or version < self.listed_ns - SETTLE_NS)


class Reservations:
    """The live reservations of every session, folded from the landing zone's reservation events.

    `refresh` reads what landed since the last look (at most every `refresh_seconds`, unless
    forced); a process's own reservations are folded in when it writes them.
    """

    def __init__(self, landing: LandingZone, refresh_seconds: float = 1.0) -> None:
        self.landing = landing
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._listing = threading.Lock()
        self._first_second = (time.time_ns() - MAX_RESERVATION_MINUTES * 60 * SECOND_NS) // SECOND_NS
        self._folders: dict[int, _Folder] = {}
        self._checked = 0.0
        self._listed_from = 0.0
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
        key = self.landing.write_lines(AREA, [json.dumps(event, sort_keys=True)])
        landed = Reservation(key, made.session, made.item_id, made.trace_id, made.reviewer, made.until_ns, made.answered)
        with self._lock:
            self._fold(landed)
        return landed

    def release(self, session: str, reviewer: str) -> None:
        """Land an already expired reservation that replaces the reviewer's live one in a session."""
        self._land(Reservation("", session, "", "", reviewer, 0))

    def refresh(self, force: bool = False) -> None:
        """Fold the reservation events that landed since the last look (and were not read yet).

        `force`: every event landed before this call is folded on return. One thread lists at a
        time, and a forced call that waited for a listing begun after it was made takes that
        listing's result.
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
        now_second = time.time_ns() // SECOND_NS
        seconds = range(self._first_second, now_second + LAG_SECONDS + 1)
        if len(seconds) > CATCH_UP_SECONDS:
            found = self._catch_up(seconds.start)
        else:
            found = {second: self._check(second) for second in seconds}
        listed = {second: folder for second, folder in found.items() if folder is not None}
        # only this thread (holding _listing) changes _folders, so it reads them without _lock
        fresh = [
            made
            for second, folder in listed.items()
            for key in sorted(folder.keys - (self._folders[second].keys if second in self._folders else frozenset()))
            for made in _read(self.landing, key)
        ]
        with self._lock:
            for made in fresh:
                self._fold(made)
            self._folders.update(listed)
            self._first_second = now_second - LAG_SECONDS
            self._folders = {second: f for second, f in self._folders.items() if second >= self._first_second}
            self._checked = started

    def _check(self, second: int) -> _Folder | None:
        """A fresh listing of one second's folder, or None when it cannot have changed since the last."""
        folder = self.landing.folder(AREA, second * SECOND_NS)
        version = self.landing.folder_version(folder)
        known = self._folders.get(second)
        if known is not None and known.unchanged(version):
            return None
        listed_ns = time.time_ns()
        return _Folder(version, listed_ns, frozenset(self.landing.folder_keys(folder)))

    def _catch_up(self, first_second: int) -> dict[int, _Folder]:
        """Every key landed since `first_second` (a fresh process, or one idle for minutes), by second;
        the folders are listed again next time (their versions are unknown)."""
        found: dict[int, set[str]] = {}
        cursor = f"{self.landing.folder(AREA, first_second * SECOND_NS)}/{first_second * SECOND_NS:019d}"
        for key in self.landing.list(AREA, after=cursor):
            found.setdefault(LandingKey.parse(key).time_ns // SECOND_NS, set()).add(key)
        return {second: _Folder(None, 0, frozenset(keys)) for second, keys in found.items()}

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


def _read(landing: LandingZone, key: str) -> list[Reservation]:
    return [made for made in (_parse(key, line) for line in landing.read_bytes(key).decode().splitlines()) if made]


def _parse(key: str, line: str) -> Reservation | None:
    try:
        event = json.loads(line)
        return Reservation(
            key, str(event["session"]), str(event["item_id"]), str(event["trace_id"]), str(event["reviewer"]),
            int(event["until_ns"]), str(event["answered"]) if event.get("answered") else None,
        )
    except (ValueError, KeyError, TypeError):
        return None
