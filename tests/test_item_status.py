"""One item-status vocabulary and rule: the plain `status_of` (the Review App's index) and the polars
`session_status` (`sessions show`) say the same, and the Review App's words are the session's."""

from __future__ import annotations

import itertools

import polars as pl

from feedback_pipeline.item_status import REVIEWER_STATUSES, SESSION_STATUSES, session_status, status_of
from feedback_pipeline.review_app import queue

PEOPLE = ["alice", "bob", "carol"]


def test_the_plain_rule_and_the_polars_rule_agree():
    cases = [(set(r), set(s), needed) for r in itertools.chain.from_iterable(itertools.combinations(PEOPLE, k) for k in range(4))
             for s in ([], ["carol"], ["alice", "bob"]) for needed in (1, 2)]
    frame = pl.DataFrame({"reviews": [len(r) for r, _, _ in cases], "skips": [len(s) for _, s, _ in cases],
                          "needed": [n for _, _, n in cases]})
    by_needed = [frame.filter(pl.col("needed") == n).select(session_status(pl.col("reviews"), pl.col("skips"), n)).to_series()
                 for n in (1, 2)]
    polars_says = {n: iter(series.to_list()) for n, series in zip((1, 2), by_needed, strict=True)}
    assert [status_of(r, s, n) for r, s, n in cases] == [next(polars_says[n]) for _, _, n in cases]


def test_a_reviewer_sees_the_session_vocabulary():
    assert set(REVIEWER_STATUSES) - {"answered"} <= set(SESSION_STATUSES)
    assert status_of({"alice"}, set(), 2, "alice") == "answered"
    assert status_of({"alice", "bob"}, {"carol"}, 2, "carol") == "skipped"
    assert status_of({"alice", "bob"}, set(), 2, "carol") == "completed"
    assert status_of({"alice"}, set(), 2, "carol") == "pending"
    assert not hasattr(queue, "STATUSES")
