"""One labeling session's items and current answers, indexed for the Review App's per-request questions.

Every page asks the same few things: where an item sits in the queue, my status on it, my counts,
my earlier answers on its trace. Answering them from polars frames cost milliseconds of query work
per request; here they are dictionary and set lookups over an index that is built once per lake
version (vectorised reads, then one pass over the rows) and then kept current by folding in the
Review App's pending submissions as they arrive, one row at a time.

The index holds exactly what `feedback_pipeline.item_status` and the answers fold define:
the session's valid `assessments`, plus pending submissions that are in neither `assessments` nor
`rejections`, kept only where `assessment_validity.with_validity` (the pipeline's own rule) says
they stand: an override replaces what it overrides, a repeated answer the one before it. The rule
runs on the rows of the traces a fold touches, so its cost follows what arrives.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import polars as pl

from feedback_pipeline.assessment_validity import with_validity
from feedback_pipeline.review_app.trace_view import TraceView, trace_view
from feedback_pipeline.item_status import ANSWER_KINDS, ANSWERED, COMPLETED, PENDING, SKIP_KIND, SKIPPED, status_of

QUEUE_COLUMNS = ("item_id", "trace_id", "session_name", "request_preview")
# A view costs about 1 ms to build (markdown, indented JSON) and about as much memory as its row,
# which the session's frame holds anyway; with "next", each item is opened once per review slot,
# passes over the session apart, so the views of a team's whole working set are kept.
VIEWS_KEPT = 1024


class Slots(NamedTuple):
    """What the reservation events say of a session: who holds a live reservation on each trace
    (in arrival order), and who announced an answer to it."""

    held: Mapping[str, list[str]]
    answered: Mapping[str, set[str]]


class AnswerRow(NamedTuple):
    """One current answer (or skip) in the session; `order` is its creation time in microseconds."""

    assessment_id: str | None
    submission_id: str | None
    session: str | None
    trace_id: str | None
    assessment_name: str | None
    kind: str | None
    assessment_value: str | None
    rationale: str | None
    assessor_id: str | None
    overrides: str | None
    order: int


ROW_SCHEMA = {name: pl.Int64 if name == "order" else pl.String for name in AnswerRow._fields}


@dataclass(frozen=True)
class SessionItems:
    """A session's items in queue order (by when they were added), with lookups by item id.

    The trace views of the last `VIEWS_KEPT` items opened are kept: an item's view depends on
    nothing but its row, and a session's items are opened by several reviewers.
    """

    frame: pl.DataFrame
    _views: OrderedDict[str, TraceView] = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _views_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @cached_property
    def ids(self) -> list[str]:
        return self.frame["item_id"].to_list()

    @cached_property
    def positions(self) -> dict[str, int]:
        return {item_id: position for position, item_id in enumerate(self.ids)}

    @cached_property
    def traces(self) -> list[str]:
        return self.frame["trace_id"].to_list()

    @cached_property
    def items_per_trace(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trace_id in self.traces:
            counts[trace_id] = counts.get(trace_id, 0) + 1
        return counts

    @cached_property
    def listed(self) -> list[dict[str, Any]]:
        """What the queue page lists of each item."""
        return self.frame.select([c for c in QUEUE_COLUMNS if c in self.frame.columns]).to_dicts()

    def row(self, item_id: str) -> dict[str, Any]:
        """Every column of one item (KeyError when the session has no such item)."""
        return self.frame.row(self.positions[item_id], named=True)

    def view(self, item_id: str) -> TraceView:
        """What the item page shows of the item's trace (see `trace_view`)."""
        with self._views_lock:
            kept = self._views.get(item_id)
            if kept is not None:
                self._views.move_to_end(item_id)
                return kept
        made = trace_view(self.row(item_id))
        with self._views_lock:
            self._views[item_id] = made
            while len(self._views) > VIEWS_KEPT:
                self._views.popitem(last=False)
        return made


def lake_answer_rows(assessments: pl.DataFrame | None) -> list[AnswerRow]:
    """The valid rows of a session's `assessments`, oldest first, as index rows."""
    if assessments is None or assessments.height == 0:
        return []
    columns = assessments.columns
    order = (
        pl.col("created_at").dt.epoch("us")
        if "created_at" in columns and assessments.schema["created_at"] != pl.String
        else pl.lit(0, pl.Int64)
    )
    frame = (
        assessments.filter(pl.col("valid").fill_null(True) if "valid" in columns else pl.lit(True))
        .select(
            *[
                (pl.col(field).cast(pl.String) if field in columns else pl.lit(None, pl.String)).alias(field)
                for field in AnswerRow._fields
                if field != "order"
            ],
            order.fill_null(0).cast(pl.Int64).alias("order"),
        )
        .sort("order", maintain_order=True)
    )
    return [AnswerRow(*values) for values in frame.iter_rows()]


class SessionAnswers:
    """The current answers of one session over its items, and each reviewer's view of them.

    Built from the lake's rows by `rebuild`; pending rows are folded in by `add`. All methods are
    thread-safe (one lock per session). `sources`, `pending_generation` and `pending_position` are
    the feeder's bookmarks: which lake frames and which part of the pending log the index holds.
    """

    def __init__(self, items: SessionItems, reviews_per_item: int) -> None:
        self.items = items
        self.reviews_per_item = reviews_per_item
        self.lock = threading.RLock()
        self.sources: tuple[Any, ...] = ()
        self.pending_generation = -1
        self.pending_position = 0
        self._reset(frozenset())

    def _reset(self, processed: frozenset[str]) -> None:
        self._processed = processed
        self._rows: dict[str, AnswerRow] = {}
        self._held: dict[str, set[str]] = {}
        self._overridden: set[str] = set()
        self._by_trace: dict[str, dict[str, AnswerRow]] = {}
        self._reviewers: dict[str, frozenset[str]] = {}
        self._skippers: dict[str, frozenset[str]] = {}
        self._answered: dict[str, set[str]] = {}
        self._skipped: dict[str, set[str]] = {}
        self._complete: set[str] = set()
        self._complete_items = 0
        self._by_count: dict[int, set[str]] = {0: set(self.items.traces)}

    def rebuild(self, lake_rows: Iterable[AnswerRow], processed: frozenset[str], pending: Iterable[AnswerRow]) -> None:
        """Start over from the lake's rows; `processed`: submission ids already in the lake."""
        with self.lock:
            self._reset(processed)
            from_lake: set[str] = set()
            self._hold(lake_rows, from_lake)
            for trace_id in from_lake:  # valid as the lake judged them, with the same rule
                self._by_trace[trace_id] = {key: self._rows[key] for key in self._held[trace_id]}
            self._add(pending, from_lake)

    def add(self, pending: Iterable[AnswerRow]) -> None:
        """Fold in pending rows (in arrival order); those the lake already holds are ignored."""
        with self.lock:
            self._add(pending, set())

    def _add(self, pending: Iterable[AnswerRow], also_summarise: set[str]) -> None:
        touched: set[str] = set()
        self._hold((row for row in pending if row.submission_id not in self._processed), touched)
        if touched:
            self._stand(touched)
        for trace_id in touched | also_summarise:
            self._summarise(trace_id)

    def _hold(self, rows: Iterable[AnswerRow], touched: set[str]) -> None:
        """Keep each row by its id (a later row with the same id replaces it), noting the traces it
        and what it overrides sit on."""
        for row in rows:
            key = _key(row)
            previous = self._rows.get(key)
            if previous is not None and previous.trace_id != row.trace_id:
                self._held[str(previous.trace_id)].discard(key)
                touched.add(str(previous.trace_id))
            self._rows[key] = row
            self._held.setdefault(str(row.trace_id), set()).add(key)
            touched.add(str(row.trace_id))
            if row.overrides:
                self._overridden.add(row.overrides)
                replaced = self._rows.get(row.overrides)
                if replaced is not None:
                    touched.add(str(replaced.trace_id))

    def _stand(self, touched: set[str]) -> None:
        """`_by_trace` of the touched traces: the rows held there that `with_validity` keeps (a few
        rows, so polars' in-memory engine: the streaming engine's start-up would cost more)."""
        keys = [key for trace_id in touched for key in self._held.get(trace_id, ())]
        rows = pl.DataFrame([self._rows[key] for key in keys], schema=ROW_SCHEMA, orient="row").lazy()
        state = rows.with_columns(
            assessment_id=pl.Series(keys, dtype=pl.String), created_at=pl.col("order"), span_id=pl.lit(None, pl.String)
        )
        overridden = pl.Series([key for key in keys if key in self._overridden], dtype=pl.String)
        query = with_validity(state, overridden).filter("valid").select("assessment_id")
        standing = query.collect(engine="in-memory")["assessment_id"]
        for trace_id in touched:
            self._by_trace[trace_id] = {}
        for key in standing:
            row = self._rows[key]
            self._by_trace[str(row.trace_id)][key] = row

    def _summarise(self, trace_id: str) -> None:
        """Recompute who answered and who skipped a trace, and the per-reviewer sets that follow."""
        rows = self._by_trace.get(trace_id, {}).values()
        reviewers = frozenset(str(r.assessor_id) for r in rows if r.kind in ANSWER_KINDS)
        skippers = frozenset(str(r.assessor_id) for r in rows if r.kind == SKIP_KIND)
        for mapping, before, after in (
            (self._answered, self._reviewers.get(trace_id, frozenset()), reviewers),
            (self._skipped, self._skippers.get(trace_id, frozenset()), skippers),
        ):
            for reviewer in before - after:
                mapping[reviewer].discard(trace_id)
            for reviewer in after - before:
                mapping.setdefault(reviewer, set()).add(trace_id)
        before_count, count = len(self._reviewers.get(trace_id, ())), len(reviewers)
        if before_count != count:
            self._by_count.get(before_count, set()).discard(trace_id)
            self._by_count.setdefault(count, set()).add(trace_id)
        self._reviewers[trace_id] = reviewers
        self._skippers[trace_id] = skippers
        complete = len(reviewers) >= self.reviews_per_item
        if complete != (trace_id in self._complete):
            per_trace = self.items.items_per_trace.get(trace_id, 0)
            if complete:
                self._complete.add(trace_id)
                self._complete_items += per_trace
            else:
                self._complete.discard(trace_id)
                self._complete_items -= per_trace

    def status(self, item_id: str, reviewer: str) -> str:
        """The item's status for `reviewer` (`item_status.status_of`: answered, skipped, completed, pending)."""
        with self.lock:
            return self._status(self.items.traces[self.items.positions[item_id]], reviewer)

    def _status(self, trace_id: str, reviewer: str) -> str:
        reviewers, skippers = self._reviewers.get(trace_id, frozenset()), self._skippers.get(trace_id, frozenset())
        return status_of(reviewers, skippers, self.reviews_per_item, reviewer)

    def counts(self, reviewer: str) -> dict[str, int]:
        """My items by status (`item_status.REVIEWER_STATUSES`), the total, how many I answered or skipped, and
        how many have enough reviews."""
        per_trace = self.items.items_per_trace
        with self.lock:
            answered = self._answered.get(reviewer, set())
            skipped = self._skipped.get(reviewer, set()) - answered
            mine = sum(per_trace.get(t, 0) for t in answered)
            skips = sum(per_trace.get(t, 0) for t in skipped)
            session_complete = self._complete_items
            others = session_complete - sum(per_trace.get(t, 0) for t in (answered | skipped) & self._complete)
        total = len(self.items.ids)
        return {
            PENDING: total - mine - skips - others, SKIPPED: skips, ANSWERED: mine, COMPLETED: others,
            "total": total, "mine_settled": mine + skips, "session_complete": session_complete,
        }

    def queue(self, reviewer: str, slots: Slots | None = None) -> list[dict[str, Any]]:
        """Every item as the queue page lists it: its `number` (as the item page shows it), `reviews`,
        `in_review` (others' waiting reservations) and my `status`."""
        slots = slots or Slots({}, {})
        with self.lock:
            return [
                {**listed, "number": number, "reviews": len(self._reviewers.get(trace_id, ())),
                 "in_review": len(self._taken(trace_id, reviewer, slots)[1]),
                 "status": self._status(trace_id, reviewer)}
                for number, (listed, trace_id) in enumerate(zip(self.items.listed, self.items.traces, strict=True), 1)
            ]

    def _taken(self, trace_id: str, reviewer: str, slots: Slots) -> tuple[set[str], list[str]]:
        """(who answered, whose live reservation waits) on a trace, by others than `reviewer`.

        Answers are the index's plus those the reservation events announce; a reservation waits
        when its reviewer has neither answered nor skipped the trace.
        """
        answered = set(self._reviewers.get(trace_id, frozenset())) | slots.answered.get(trace_id, set())
        settled = answered | self._skippers.get(trace_id, frozenset())
        answered.discard(reviewer)
        return answered, [r for r in slots.held.get(trace_id, ()) if r != reviewer and r not in settled]

    def route(
        self, reviewer: str, slots: Slots, start: int, *,
        assigned: frozenset[str] = frozenset(), exclude: frozenset[str] = frozenset(),
    ) -> str | None:
        """The item to send a reviewer to: one they have not answered or skipped whose answers and live
        reservations leave a slot free; traces `assigned` to them first, then the fewest taken
        slots, then queue order from position `start` (wrapping around).

        The search stops at the first item with as few taken slots as any item has answers (none
        can have fewer), so it rarely walks the whole session."""
        ids, traces = self.items.ids, self.items.traces
        best: tuple[int, int] | None = None
        best_id = None
        with self.lock:
            floor = (0 if assigned else 1, min((count for count, held in self._by_count.items() if held), default=0))
            for offset in range(len(ids)):
                position = (start + offset) % len(ids)
                trace_id, item_id = traces[position], ids[position]
                if item_id in exclude or reviewer in self._reviewers.get(trace_id, ()) or reviewer in self._skippers.get(trace_id, ()):
                    continue
                answered, waiting = self._taken(trace_id, reviewer, slots)
                taken = len(answered) + len(waiting)
                if taken >= self.reviews_per_item:
                    continue
                rank = (0 if trace_id in assigned else 1, taken)
                if best is None or rank < best:
                    best, best_id = rank, item_id
                    if rank == floor:
                        break
        return best_id

    def fits(self, trace_id: str, reviewer: str, slots: Slots) -> bool:
        """Whether the trace's answers plus every waiting reservation, the reviewer's own included, fit `reviews_per_item`."""
        with self.lock:
            answered, waiting = self._taken(trace_id, reviewer, slots)
        return reviewer in slots.held.get(trace_id, ()) and len(answered) + len(waiting) + 1 <= self.reviews_per_item

    def mine(self, trace_id: str, reviewer: str) -> dict[str, dict[str, Any]]:
        """My latest answer per question on one trace (skips excluded), with the value decoded."""
        with self.lock:
            rows = [r for r in self._by_trace.get(trace_id, {}).values() if r.assessor_id == reviewer and r.kind != SKIP_KIND]
        latest: dict[str, dict[str, Any]] = {}
        for row in sorted(rows, key=lambda r: r.order):
            text = row.assessment_value
            latest[str(row.assessment_name)] = {**row._asdict(), "value": json.loads(text) if text is not None else None}
        return latest


def _key(row: AnswerRow) -> str:
    return row.assessment_id or f"submission:{row.submission_id}"


def processed_ids(*frames: pl.DataFrame | None) -> frozenset[str]:
    """The submission ids the lake already holds (in `assessments` or `rejections`)."""
    found: set[str] = set()
    for frame in frames:
        if frame is not None and "submission_id" in frame.columns:
            found.update(frame["submission_id"].cast(pl.String).drop_nulls().to_list())
    return frozenset(found)


def answer_row(record: Mapping[str, Any], order: int) -> AnswerRow:
    """A landed Review App submission as an index row."""
    source = record.get("source") or {}
    value = record.get("value")
    return AnswerRow(
        assessment_id=record.get("assessment_id"),
        submission_id=record.get("submission_id"),
        session=record.get("session"),
        trace_id=record.get("trace_id"),
        assessment_name=record.get("name"),
        kind=record.get("kind"),
        assessment_value=None if value is None else json.dumps(value),
        rationale=record.get("rationale"),
        assessor_id=source.get("source_id") if isinstance(source, Mapping) else None,
        overrides=record.get("overrides"),
        order=order,
    )
