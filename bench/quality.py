"""Benchmark: label agreement and judge alignment for one large session.

Synthetic `assessments` in a real Delta lake: `--items` items in one session, `--reviews` reviews
each (drawn from `--reviewers` reviewers), on a categorical and a numeric question, and an
LLM judge on every item for both. Times `agreement.compute_session` (what the `label_agreement`
asset runs) and `judge_alignment.compute` (the `judge_alignment` asset), each from the lake, and
prints wall and CPU seconds and the process's peak RSS after each (ru_maxrss only grows, so each step's
figure is the peak so far; the table writing is left out).

    .venv/bin/python bench/quality.py --items 100000 --reviews 3
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback_pipeline import agreement, judge_alignment  # noqa: E402
from feedback_pipeline.lake import Lake  # noqa: E402

UTC_TIME = pl.Datetime("us", "UTC")
OPTIONS = ["Good", "Okay", "Bad"]


def assessments(items: int, reviews: int, reviewers: int) -> pl.DataFrame:
    """Reviews that mostly agree (a per-item true value, 1 answer in 4 off by one), and a judge on every item."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    grid = pl.DataFrame({"i": pl.int_range(0, items, eager=True)}).join(
        pl.DataFrame({"r": pl.int_range(0, reviews, eager=True)}), how="cross"
    ).join(pl.DataFrame({"name": ["quality", "rating"]}), how="cross")
    truth = (pl.col("i") * 7919) % 3
    noisy = (truth + ((pl.col("i") * 31 + pl.col("r") * 17) % 4 == 0).cast(pl.Int64)) % 3
    value = pl.when(pl.col("name") == "quality").then(
        pl.format('"{}"', pl.lit(OPTIONS).list.get(noisy))
    ).otherwise((noisy + 2).cast(pl.String))
    humans = grid.select(
        pl.format("a-{}-{}-{}", pl.col("i"), pl.col("name"), pl.col("r")).alias("assessment_id"),
        pl.format("tr-{}", pl.col("i")).alias("trace_id"),
        pl.lit("big").alias("session"),
        pl.col("name").alias("assessment_name"),
        pl.lit("feedback").alias("kind"),
        value.alias("assessment_value"),
        pl.lit("HUMAN").alias("source_type"),
        pl.format("reviewer-{}@example.com", (pl.col("i") + pl.col("r")) % reviewers).alias("assessor_id"),
        pl.lit("{}").alias("metadata"),
        (pl.lit(start) + pl.duration(seconds=pl.col("i"))).cast(UTC_TIME).alias("updated_at"),
        (pl.lit(start) + pl.duration(seconds=pl.col("i"))).cast(UTC_TIME).alias("created_at"),
        pl.lit(True).alias("valid"),
    )
    judged = humans.filter(pl.col("assessment_id").str.ends_with("-0")).with_columns(
        pl.col("assessment_id").str.replace(r"-0$", "-judge"),
        pl.lit(None, pl.String).alias("session"),
        pl.lit("LLM_JUDGE").alias("source_type"),
        pl.lit("gpt-judge").alias("assessor_id"),
    )
    return pl.concat([humans, judged])


def world(lake: Lake, items: int, reviews: int, reviewers: int) -> int:
    rows = assessments(items, reviews, reviewers)
    lake.overwrite("assessments", rows)
    lake.overwrite("labeling_sessions", pl.DataFrame(
        {"labeling_session_id": ["ses-big"], "name": ["big"], "label_schemas": [["quality", "rating"]], "deleted": [False]}
    ))
    lake.overwrite("label_schemas", pl.DataFrame([
        {"name": "quality", "version": 1, "type": "feedback", "input_type": "categorical", "input": json.dumps({"options": OPTIONS}), "deleted": False},
        {"name": "rating", "version": 1, "type": "feedback", "input_type": "numeric", "input": json.dumps({"min_value": 1, "max_value": 5}), "deleted": False},
    ]))
    return rows.height


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=3)
    parser.add_argument("--reviewers", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(str(Path(root) / "lake"))
        rows = world(lake, args.items, args.reviews, args.reviewers)
        print(f"{args.items:,} items x {args.reviews} reviews ({args.reviewers} reviewers) x 2 questions + a judge: {rows:,} assessments")
        print(f"setup peak RSS {peak_mb():.0f} MB")
        now = datetime.now(UTC)
        started, cpu = time.perf_counter(), time.process_time()
        _, metrics, pairs = agreement.compute_session(lake, "ses-big", now)
        took, spent = time.perf_counter() - started, time.process_time() - cpu
        alpha = metrics.filter(pl.col("metric") == "krippendorff_alpha").select("label_schema", pl.col("value").round(4)).rows()
        print(f"agreement   {took:6.2f} s wall  {spent:6.2f} s CPU  peak RSS {peak_mb():6.0f} MB  {len(pairs)} reviewer pairs, alpha {alpha}")
        started, cpu = time.perf_counter(), time.process_time()
        alignment = judge_alignment.compute(lake, now)
        took, spent = time.perf_counter() - started, time.process_time() - cpu
        figures = alignment.select("name", "traces", pl.col("agreement").round(3), pl.col("cohen_kappa").round(3)).rows()
        print(f"alignment   {took:6.2f} s wall  {spent:6.2f} s CPU  peak RSS {peak_mb():6.0f} MB  {figures}")


if __name__ == "__main__":
    main()
