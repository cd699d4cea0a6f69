"""Benchmark: building an evaluation dataset (select, resolve, merge, diff) and its publish gate.

Synthetic input tables: `--traces` traces in one session feeding the dataset, 3 expectation
names, `--reviews` reviewers each (so every value has disagreements to resolve), 1 trace in 10
sharing its inputs with another. Prints seconds and records per second for each phase.

    .venv/bin/python bench/datasets.py --traces 100000 --reviews 3
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback_pipeline import datasets  # noqa: E402

UTC_TIME = pl.Datetime("us", "UTC")


def tables(n: int, reviews: int) -> dict[str, pl.DataFrame]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = pl.int_range(0, n, eager=True)
    shared = pl.col("i") - (pl.col("i") % 10 == 9).cast(pl.Int64)
    traces = pl.DataFrame({"i": ids}).select(
        pl.format("tr-{}", pl.col("i")).alias("trace_id"),
        pl.format('{{"question": "question {}", "user": "u{}"}}', shared, shared % 50).alias("request"),
        pl.format('"answer {}"', pl.col("i")).alias("response"),
        pl.format('{{"env": "prod", "shard": "{}"}}', pl.col("i") % 7).alias("tags"),
        (pl.lit(start) + pl.duration(seconds=pl.col("i"))).cast(UTC_TIME).alias("request_time"),
    )
    names = ["topic", "expected_summary", "rating"]
    grid = pl.DataFrame({"i": ids}).join(pl.DataFrame({"name": names}), how="cross").join(
        pl.DataFrame({"r": pl.int_range(0, reviews, eager=True)}), how="cross"
    )
    value = (
        pl.when(pl.col("name") == "topic").then(pl.format('"{}"', pl.lit(["billing", "shipping", "other"]).list.get((pl.col("i") + pl.col("r")) % 3)))
        .when(pl.col("name") == "rating").then(((pl.col("i") + pl.col("r")) % 5 + 1).cast(pl.String))
        .otherwise(pl.format('"summary {} by {}"', pl.col("i"), pl.col("r")))
    )
    assessments = grid.select(
        pl.format("a-{}-{}-{}", pl.col("i"), pl.col("name"), pl.col("r")).alias("assessment_id"),
        pl.format("tr-{}", pl.col("i")).alias("trace_id"),
        pl.col("name").alias("assessment_name"),
        pl.lit("expectation").alias("kind"),
        value.alias("assessment_value"),
        pl.lit("HUMAN").alias("source_type"),
        pl.lit(True).alias("valid"),
        (pl.lit(start) + pl.duration(minutes=pl.col("r"))).cast(UTC_TIME).alias("created_at"),
        (pl.lit(start) + pl.duration(minutes=pl.col("r"))).cast(UTC_TIME).alias("updated_at"),
    )
    return {
        "traces": traces,
        "assessments": assessments,
        "labeling_sessions": pl.DataFrame({"labeling_session_id": ["s1"], "name": ["bench"], "dataset": ["bench"], "deleted": [False]}),
        "session_items": traces.select(pl.lit("s1").alias("session_id"), pl.lit("bench").alias("session_name"), "trace_id"),
        "label_schemas": pl.DataFrame(
            {
                "name": ["topic", "expected_summary", "rating"],
                "version": [1, 1, 1],
                "type": ["expectation"] * 3,
                "input_type": ["categorical", "text", "numeric"],
                "input": ['{"options": ["billing", "shipping", "other"]}', "{}", '{"min_value": 1, "max_value": 5}'],
                "deleted": [False] * 3,
            }
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=3)
    args = parser.parse_args()
    inputs = tables(args.traces, args.reviews)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    print(f"{args.traces:,} traces, {inputs['assessments'].height:,} expectations ({args.reviews} reviewers each)")
    for rule in ("latest", "majority"):
        config = datasets.DatasetConfig(disagreement=rule)
        began = time.perf_counter()
        build = datasets.build_dataset("bench", **inputs, previous=None, now=now, config=config)
        first = time.perf_counter() - began
        began = time.perf_counter()
        again = datasets.build_dataset("bench", **inputs, previous=build.records, now=now + timedelta(hours=1), config=config)
        rebuild = time.perf_counter() - began
        assert not again.changed
        n = build.records.height
        print(
            f"build ({rule:<8}): {n:,} records in {first:.2f} s ({n / first:,.0f} records/s); "
            f"unchanged rebuild + diff {rebuild:.2f} s; disagreements {sum(build.disagreements.values()):,}"
        )
    began = time.perf_counter()
    import great_expectations  # noqa: F401

    imported = time.perf_counter() - began
    began = time.perf_counter()
    audit = datasets.audit_dataset(build, inputs["label_schemas"])
    gate = time.perf_counter() - began
    print(f"publish gate: {'passed' if audit.passed else audit.message} in {gate:.2f} s (+ {imported:.1f} s to import great_expectations)")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
