"""Item status: where each item of a labeling session stands, in one vocabulary, by one rule.

For the session (`feedback-pipeline sessions show`, `item_status`): **pending** (no answer, no
skip), **in_progress** (answered by fewer than `reviews_per_item` distinct reviewers),
**completed** (answered by enough) or **skipped** (only skips). For one reviewer (the Review App's
queue and counts): **answered** (I answered), **skipped** (I skipped and never answered),
**completed** (enough others answered) or **pending** (mine to do). Answers are the valid feedback
and expectations; an override replaces what it overrides (validity, `assessment_validity.with_validity`).

`status_of` says it for one item's reviewers and skippers (the Review App's incremental index);
`session_status` is the same rule as a polars expression over a session's items.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

PENDING, IN_PROGRESS, COMPLETED, SKIPPED, ANSWERED = "pending", "in_progress", "completed", "skipped", "answered"
SESSION_STATUSES = (PENDING, IN_PROGRESS, COMPLETED, SKIPPED)
REVIEWER_STATUSES = (PENDING, SKIPPED, ANSWERED, COMPLETED)
ANSWER_KINDS = ("feedback", "expectation")
SKIP_KIND = "skip"


def status_of(reviewers: Collection[str], skippers: Collection[str], reviews_per_item: int, reviewer: str | None = None) -> str:
    """One item's status from who answered and who skipped it: for the session, or for `reviewer`."""
    if reviewer is not None:
        if reviewer in reviewers:
            return ANSWERED
        if reviewer in skippers:
            return SKIPPED
        return COMPLETED if len(reviewers) >= reviews_per_item else PENDING
    if len(reviewers) >= reviews_per_item:
        return COMPLETED
    if reviewers:
        return IN_PROGRESS
    return SKIPPED if skippers else PENDING


def session_status(reviews: pl.Expr, skips: pl.Expr, reviews_per_item: int) -> pl.Expr:
    """`status_of` for the session, over columns: distinct reviewers who answered, and skips."""
    return (
        pl.when(reviews >= reviews_per_item).then(pl.lit(COMPLETED))
        .when(reviews > 0).then(pl.lit(IN_PROGRESS))
        .when(skips > 0).then(pl.lit(SKIPPED))
        .otherwise(pl.lit(PENDING))
    )


def _session_assessments(items: pl.DataFrame, assessments: pl.DataFrame) -> pl.DataFrame:
    keys = items.select("item_id", "trace_id", pl.col("session_name").alias("session")).unique()
    if assessments.height == 0:
        return pl.DataFrame(schema={"item_id": pl.String, "assessor_id": pl.String, "kind": pl.String})
    valid = assessments.filter(pl.col("valid").fill_null(True))
    return valid.join(keys, on=["session", "trace_id"], how="inner").select("item_id", "assessor_id", "kind")


def item_status(items: pl.DataFrame, assessments: pl.DataFrame, reviews_per_item: int) -> pl.DataFrame:
    """Per item: status, reviews (distinct reviewers with a valid answer), reviewers and skipped_by."""
    rows = _session_assessments(items, assessments)
    answers = rows.filter(pl.col("kind").is_in(ANSWER_KINDS)).group_by("item_id").agg(
        reviewers=pl.col("assessor_id").unique().sort()
    )
    skips = rows.filter(pl.col("kind") == SKIP_KIND).group_by("item_id").agg(skipped_by=pl.col("assessor_id").unique().sort())
    frame = (
        items.select("item_id", "trace_id")
        .join(answers, on="item_id", how="left")
        .join(skips, on="item_id", how="left")
        .with_columns(
            reviewers=pl.col("reviewers").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            skipped_by=pl.col("skipped_by").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
        .with_columns(reviews=pl.col("reviewers").list.len().cast(pl.Int64))
    )
    status = session_status(pl.col("reviews"), pl.col("skipped_by").list.len(), reviews_per_item)
    return frame.with_columns(status=status).select("item_id", "trace_id", "status", "reviews", "reviewers", "skipped_by")


def reviewer_progress(items: pl.DataFrame, assessments: pl.DataFrame) -> pl.DataFrame:
    """Per reviewer: items answered and items skipped in this session."""
    rows = _session_assessments(items, assessments)
    return (
        rows.group_by("assessor_id")
        .agg(
            answered=pl.col("item_id").filter(pl.col("kind").is_in(ANSWER_KINDS)).n_unique().cast(pl.Int64),
            skipped=pl.col("item_id").filter(pl.col("kind") == SKIP_KIND).n_unique().cast(pl.Int64),
        )
        .sort("assessor_id")
    )


def progress_counts(status: pl.DataFrame) -> dict[str, int]:
    """Items per status plus the total, for printing."""
    counts = dict(status.group_by("status").len().iter_rows())
    return {"items": status.height, **{s: int(counts.get(s, 0)) for s in SESSION_STATUSES}}
