"""One rule for which assessments stand: the pipeline (landed submissions, collected and derived into
`assessments`) and the Review App's answer index (lake rows plus pending submissions folded in) agree
on the same sequence of creates, repeated answers, overrides, updates and deletes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
from assessments_world import build_world
from bench.assessments import process_pending_submissions

from feedback_pipeline.review_app.queue import pending_row
from feedback_pipeline.review_app.session_answers import SessionAnswers, SessionItems, lake_answer_rows, processed_ids
from feedback_pipeline.submission_contract import AREA
from feedback_pipeline.submissions import submission

SESSION = "review-1"
ALICE, BOB = "alice@example.com", "bob@example.com"
START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def sequence(traces: list[str]) -> list[dict]:
    """Submissions in arrival order; each step is one second after the one before."""
    steps: list[dict] = []

    def add(action: str = "create", **fields) -> dict:
        record = submission(
            action=action, session=SESSION, origin="review-app", source={"source_type": "HUMAN", "source_id": fields.pop("who", ALICE)},
            created_at=(START + timedelta(seconds=len(steps))).isoformat().replace("+00:00", "Z"), **fields,
        )
        steps.append(record)
        return record

    def answer(trace: str, who: str, value: str, overrides: str | None = None) -> dict:
        return add(trace_id=traces[trace], who=who, name="summary_quality", value=value, overrides=overrides)

    first = answer(0, ALICE, "Yes")
    answer(0, ALICE, "No")  # a repeated answer replaces the one before
    bobs = answer(1, BOB, "Yes")
    answer(1, ALICE, "No", overrides=bobs["assessment_id"])  # an override replaces what it overrides
    updated = answer(2, BOB, "Yes")
    add("update", assessment_id=updated["assessment_id"], who=BOB, value="No")
    gone = answer(2, ALICE, "Yes")
    add("delete", assessment_id=gone["assessment_id"], who=ALICE)
    overridden = answer(3, BOB, "Yes")
    undone = answer(3, ALICE, "No", overrides=overridden["assessment_id"])
    add("delete", assessment_id=undone["assessment_id"], who=ALICE)  # deleting the override makes the older one stand again
    answer(4, BOB, "Yes", overrides=first["assessment_id"])  # an override on another trace
    answer(3, BOB, "No")
    answer(1, BOB, "No", overrides=bobs["assessment_id"])
    answer(5, ALICE, "Yes")
    answer(5, BOB, "No")
    answer(6, BOB, "Yes")
    again = answer(6, BOB, "No")
    answer(6, ALICE, "Yes", overrides=again["assessment_id"])  # overriding the newer answer leaves none of Bob's
    return steps


def derive(world, records: list[dict]) -> pl.DataFrame:
    """Land `records`, run what the assessments stage runs, and return the session's assessments."""
    if records:
        world.landing.write_lines(AREA, [json.dumps(r) for r in records])
        process_pending_submissions(world.lake, world.landing)
    return world.lake.read("assessments").filter(pl.col("session") == SESSION)


def standing(index: SessionAnswers, traces: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    return {(t, who): {n: a["assessment_id"] for n, a in index.mine(t, who).items()} for t in traces for who in (ALICE, BOB)}


def test_the_pipeline_and_the_answer_index_agree_on_every_prefix_fed_as_pending(tmp_path, monkeypatch):
    world = build_world(tmp_path, monkeypatch)
    traces = world.session_traces
    items = SessionItems(world.lake.read("session_items").filter(pl.col("session_name") == SESSION).sort("item_id"))
    records = sequence(traces)
    # The Review App lands creates (answers and overrides); updates and deletes reach it through the lake.
    splits = [k for k in range(len(records) + 1) if all(r["action"] == "create" for r in records[k:])]
    assert len(splits) > 3
    indexes, lake_so_far = {}, 0
    for k in splits:
        lake = derive(world, records[lake_so_far:k])
        lake_so_far = k
        index = SessionAnswers(items, 1)
        index.rebuild(lake_answer_rows(lake), processed_ids(lake), [pending_row(r) for r in records[k:]])
        indexes[k] = index
    final = derive(world, records[lake_so_far:])
    from_lake = SessionAnswers(items, 1)
    from_lake.rebuild(lake_answer_rows(final), processed_ids(final), [])

    valid = final.filter("valid")
    expected = {
        (t, who): {r["assessment_name"]: r["assessment_id"] for r in valid.filter((pl.col("trace_id") == t) & (pl.col("assessor_id") == who)).to_dicts()}
        for t in traces for who in (ALICE, BOB)
    }
    assert standing(from_lake, traces) == expected
    ids = {r["assessment_id"] for r in records}
    assert {a for by_name in expected.values() for a in by_name.values()} <= ids
    for k, index in indexes.items():
        assert standing(index, traces) == expected, f"lake after {k} submissions, the rest pending"
        reviews = {row["item_id"]: row["reviews"] for row in from_lake.queue(ALICE)}
        assert {row["item_id"]: row["reviews"] for row in index.queue(ALICE)} == reviews
