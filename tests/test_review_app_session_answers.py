"""The Review App's answer index agrees with the answers fold and `item_status`, however it is fed."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from feedback_pipeline.assessment_validity import with_validity
from feedback_pipeline.review_app.queue import pending_row
from feedback_pipeline.item_status import item_status
from feedback_pipeline.review_app.session_answers import SessionAnswers, SessionItems, Slots, lake_answer_rows, processed_ids
from feedback_pipeline.submissions import submission
from tests.review_app_seed import assessment_rows

SESSION = "triage"
REVIEWERS = [f"r{i}@example.com" for i in range(4)]
QUESTIONS = [("quality", "feedback"), ("facts", "expectation"), ("_skip", "skip")]
START = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def session_items(count: int) -> SessionItems:
    """Items in queue order; the last two items share one trace (a session may hold a trace twice)."""
    traces = [f"tr-{i}" for i in range(count - 1)] + [f"tr-{count - 2}"]
    return SessionItems(pl.DataFrame({
        "item_id": [f"it-{i}" for i in range(count)], "trace_id": traces, "session_name": [SESSION] * count,
        "request_preview": [f"question {i}" for i in range(count)],
    }))


def world(seed: int, items: SessionItems) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """Lake assessments (some invalid), rejections, and pending records that override, repeat or were processed."""
    rng = random.Random(seed)
    traces = sorted(set(items.traces)) + ["tr-elsewhere"]
    lake = []
    for n in range(40):
        name, kind = rng.choice(QUESTIONS)
        lake.append({
            "assessment_id": f"a-lake-{n}", "submission_id": f"s-lake-{n}", "trace_id": rng.choice(traces), "session": SESSION,
            "assessment_name": name, "kind": kind, "assessment_value": None if kind == "skip" else json.dumps(rng.randint(1, 3)),
            "assessor_id": rng.choice(REVIEWERS), "valid": rng.choice([True, True, False, None]),
            "created_at": START + timedelta(seconds=n),
        })
    earlier = [row["assessment_id"] for row in lake]
    pending = []
    for n in range(60):
        name, kind = rng.choice(QUESTIONS)
        record = submission(
            name=name, kind=kind, value=None if kind == "skip" else rng.randint(1, 3), trace_id=rng.choice(traces),
            session=SESSION, origin="review-app", source={"source_type": "HUMAN", "source_id": rng.choice(REVIEWERS)},
            overrides=rng.choice(earlier) if rng.random() < 0.3 else None,
            created_at=(START + timedelta(minutes=1, seconds=n)).isoformat().replace("+00:00", "Z"),
        )
        if rng.random() < 0.1:
            record["submission_id"] = f"s-lake-{rng.randrange(40)}"
        earlier.append(record["assessment_id"])
        pending.append(record)
    rejections = pl.DataFrame({"submission_id": [pending[3]["submission_id"], "s-unrelated"]})
    return assessment_rows(lake), rejections, pending


def expected(items: SessionItems, lake: pl.DataFrame, rejections: pl.DataFrame, pending: list[dict], needed: int):
    """The answers fold in polars: valid lake rows + unprocessed pending rows, where the pipeline's rule keeps them."""
    processed = pl.concat([lake.select("submission_id"), rejections.select("submission_id")])["submission_id"].implode()
    columns = ["assessment_id", "submission_id", "trace_id", "session", "assessment_name", "kind", "assessment_value", "assessor_id", "overrides"]
    text = [pl.col(c).cast(pl.String) for c in columns]
    stored = lake.filter(pl.col("valid").fill_null(True)).select(*text, order=pl.col("created_at").dt.epoch("us"))
    waiting = pl.DataFrame([pending_row(r)._asdict() for r in pending]).select(*text, "order")
    waiting = waiting.filter(~pl.col("submission_id").is_in(processed))
    held = pl.concat([stored, waiting]).with_columns(created_at=pl.col("order"), span_id=pl.lit(None, pl.String))
    answers = with_validity(held).filter("valid").sort("order", maintain_order=True)
    status = item_status(items.frame, answers.with_columns(valid=pl.lit(True)), needed)
    return answers, status


def mine_status(row: dict, reviewer: str, needed: int) -> str:
    if reviewer in row["reviewers"]:
        return "answered"
    if reviewer in row["skipped_by"]:
        return "skipped"
    return "completed" if row["status"] == "completed" else "pending"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("needed", [1, 2])
def test_the_index_fed_at_once_or_row_by_row_matches_the_fold(seed, needed):
    items = session_items(12)
    lake, rejections, pending = world(seed, items)
    answers, status = expected(items, lake, rejections, pending, needed)
    rows = [pending_row(r) for r in pending]

    at_once = SessionAnswers(items, needed)
    at_once.rebuild(lake_answer_rows(lake), processed_ids(lake, rejections), rows)
    row_by_row = SessionAnswers(items, needed)
    row_by_row.rebuild(lake_answer_rows(lake), processed_ids(lake, rejections), [])
    for row in rows:
        row_by_row.add([row])

    by_item = {row["item_id"]: row for row in status.to_dicts()}
    for index in (at_once, row_by_row):
        for reviewer in REVIEWERS:
            statuses = {item_id: mine_status(by_item[item_id], reviewer, needed) for item_id in items.ids}
            queue = index.queue(reviewer)
            assert {row["item_id"]: row["status"] for row in queue} == statuses
            assert {row["item_id"]: row["reviews"] for row in queue} == {i: by_item[i]["reviews"] for i in items.ids}
            assert all(index.status(item_id, reviewer) == s for item_id, s in statuses.items())
            counts = index.counts(reviewer)
            for name in ("pending", "skipped", "answered", "completed"):
                assert counts[name] == list(statuses.values()).count(name), (reviewer, name)
            assert counts["session_complete"] == status.filter(pl.col("status") == "completed").height
            pending_after = [i for i in items.ids[3:] + items.ids[:3] if statuses[i] == "pending"]
            fewest = min((by_item[i]["reviews"] for i in pending_after), default=None)
            routed = index.route(reviewer, Slots({}, {}), 3)
            assert routed == next((i for i in pending_after if by_item[i]["reviews"] == fewest), None), "fewest answers first"
            for trace_id in set(items.traces):
                mine = answers.filter(
                    (pl.col("trace_id") == trace_id) & (pl.col("assessor_id") == reviewer) & (pl.col("kind") != "skip")
                )
                latest = {r["assessment_name"]: r["assessment_id"] for r in mine.to_dicts()}
                assert {name: row["assessment_id"] for name, row in index.mine(trace_id, reviewer).items()} == latest


def test_an_override_that_arrives_before_what_it_overrides_still_wins():
    items = session_items(3)
    first = submission(name="quality", value=1, trace_id="tr-0", session=SESSION, origin="review-app",
                       source={"source_type": "HUMAN", "source_id": REVIEWERS[1]}, created_at="2026-11-22T06:00:00Z")
    second = submission(name="quality", value=2, trace_id="tr-0", session=SESSION, origin="review-app", overrides=first["assessment_id"],
                        source={"source_type": "HUMAN", "source_id": REVIEWERS[0]}, created_at="2026-11-22T06:00:01Z")
    index = SessionAnswers(items, 2)
    index.rebuild([], frozenset(), [])
    index.add([pending_row(second)])
    index.add([pending_row(first)])
    assert index.mine("tr-0", REVIEWERS[0])["quality"]["value"] == 2
    assert index.mine("tr-0", REVIEWERS[1]) == {}
    assert index.status("it-0", REVIEWERS[1]) == "pending" and index.queue(REVIEWERS[1])[0]["reviews"] == 1


def test_a_trace_view_is_made_once_per_item_and_items_version():
    items = session_items(3)
    assert items.view("it-1") is items.view("it-1")
    assert session_items(3).view("it-1") is not items.view("it-1"), "another version of the items makes its own"
