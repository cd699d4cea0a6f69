"""Benchmark: N submissions from the landing zone to validated assessments (submissions/s, peak RSS).

    /work/main/.venv/bin/python bench/assessments.py [--submissions 200000] [--files 200] [--files-per-run 200]

A temporary lake gets a traces table, the six kinds of label schema and a labeling session with
its snapshot; a child process lands the submissions (creates, ~4% invalid, session answers,
updates and deletes of earlier ones); then this process collects and derives them batch by batch,
as the sensor's runs would. Peak RSS is this process's (generation ran in the child).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_pipeline import pending  # noqa: E402
from feedback_pipeline.assessments import derive_assessments  # noqa: E402
from feedback_pipeline.lake import Lake  # noqa: E402
from feedback_pipeline.landing import LandingZone  # noqa: E402
from feedback_pipeline.submission_collection import collect_submissions  # noqa: E402

SCHEMAS = [
    ("summary_quality", "feedback", "categorical", {"options": ["Yes", "No"]}),
    ("relevance", "feedback", "numeric", {"min_value": 0.0, "max_value": 1.0}),
    ("expected_summary", "expectation", "text", {"max_length": 200}),
    ("topics", "feedback", "categorical_list", {"options": ["billing", "login", "other"]}),
    ("key_facts", "expectation", "text_list", {"max_length_each": 40, "max_count": 3}),
    ("correct", "feedback", "pass_fail", {}),
]
TRACES = 20_000
SESSION_TRACES = 5_000
USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]


def process_pending_submissions(lake: Lake, landing: LandingZone, files_per_run: int = 500) -> list[dict]:
    """What the assessments sensor's runs do, without Dagster (benchmarks and tests): each run
    `pending.submission_work` asks for, collected and derived by the functions the two assets call;
    one report per run."""
    work = pending.submission_work(lake, landing, files_per_run=files_per_run, with_underived=False)
    return [
        {"collected": collect_submissions(lake, landing, batch.scope), **derive_assessments(lake, batch.scope)}
        for batch in work.batches
    ]


def seed_lake(lake: Lake) -> None:
    now = datetime.now(tz=UTC)
    traces = pl.DataFrame({"n": range(TRACES)}).select(
        pl.format("tr-{}", pl.col("n").cast(pl.String).str.zfill(32)).alias("trace_id"),
        pl.format("req-{}", "n").alias("client_request_id"),
        pl.lit(now).dt.cast_time_unit("us").alias("request_time"),
    )
    lake.merge("traces", traces, on=["trace_id"])
    lake.merge("label_schemas", pl.DataFrame({
        "name": [s[0] for s in SCHEMAS], "version": [1] * len(SCHEMAS), "type": [s[1] for s in SCHEMAS],
        "input_type": [s[2] for s in SCHEMAS], "input": [json.dumps(s[3]) for s in SCHEMAS],
        "deleted": [False] * len(SCHEMAS),
    }), on=["name", "version"])
    lake.merge("labeling_sessions", pl.DataFrame({
        "labeling_session_id": ["ls-bench"], "name": ["bench"], "assigned_users": [USERS],
        "label_schemas": [["summary_quality", "expected_summary", "correct"]], "reviews_per_item": [1],
        "deleted": [False],
    }), on=["labeling_session_id"])
    lake.merge("session_items", traces.head(SESSION_TRACES).select(
        pl.lit("ls-bench").alias("session_id"), pl.lit("bench").alias("session_name"),
        pl.format("it-{}", "trace_id").alias("item_id"), "trace_id",
    ), on=["session_id", "item_id"])


def submission_lines(count: int) -> pl.Series:
    """`count` submission JSON lines in arrival order, built with polars (no per-row Python)."""
    base = pl.DataFrame({"n": range(count)}).with_columns(
        pl.format("s-{}", "n").alias("submission_id"),
        pl.format("a-{}", "n").alias("assessment_id"),
        pl.format("tr-{}", (pl.col("n") % TRACES).cast(pl.String).str.zfill(32)).alias("trace_id"),
        pl.struct(pl.lit("HUMAN").alias("source_type"),
                  pl.lit("alice@example.com").alias("source_id")).alias("source"),
        pl.lit("2026-11-22T06:00:00.000Z").alias("created_at"),
        pl.lit("sdk").alias("origin"),
        (pl.col("n") % 100).alias("bucket"),
    )
    common = ["submission_id", "assessment_id", "trace_id", "source", "created_at", "origin"]
    encode = pl.struct(pl.all().exclude("n", "bucket")).struct.json_encode().alias("line")
    parts = [
        base.filter(pl.col("bucket") < 40).select("n", "bucket", *common, pl.lit("summary_quality").alias("name"),
                                                  pl.when(pl.col("n") % 2 == 0).then(pl.lit("Yes")).otherwise(pl.lit("No"))
                                                  .alias("value")),
        base.filter(pl.col("bucket").is_between(40, 59)).select(
            "n", "bucket", *common, pl.lit("relevance").alias("name"), ((pl.col("n") % 97) / 100).alias("value")),
        base.filter(pl.col("bucket").is_between(60, 69)).select(
            "n", "bucket", *common, pl.lit("topics").alias("name"), pl.concat_list(pl.lit("billing"), pl.lit("login"))
            .alias("value")),
        base.filter(pl.col("bucket").is_between(70, 79) & (pl.col("n") % TRACES < SESSION_TRACES)).select(
            "n", "bucket", *common, pl.lit("correct").alias("name"), (pl.col("n") % 3 == 0).alias("value"),
            pl.lit("bench").alias("session")),
        base.filter(pl.col("bucket").is_between(70, 79) & (pl.col("n") % TRACES >= SESSION_TRACES)).select(
            "n", "bucket", *common, pl.lit("expected_summary").alias("name"), pl.lit("expectation").alias("kind"),
            pl.format("Expected answer {}", "n").alias("value")),
        base.filter(pl.col("bucket").is_between(80, 89)).select(
            "n", "bucket", pl.col("submission_id"), pl.lit("update").alias("action"),
            pl.format("a-{}", pl.col("n") - 40).alias("assessment_id"), pl.lit(0.5).alias("value"),
            pl.lit("2026-11-22T06:00:01.000Z").alias("created_at")),
        base.filter(pl.col("bucket").is_between(90, 95)).select(
            "n", "bucket", pl.col("submission_id"), pl.lit("delete").alias("action"),
            pl.format("a-{}", pl.col("n") - 70).alias("assessment_id"),
            pl.lit("2026-11-22T06:00:02.000Z").alias("created_at")),
        base.filter(pl.col("bucket") >= 96).select("n", "bucket", *common, pl.lit("summary_quality").alias("name"),
                                                   pl.lit("Maybe").alias("value")),
    ]
    return pl.concat([part.select("n", encode) for part in parts]).sort("n")["line"]


def generate(landing_uri: str, count: int, files: int) -> None:
    landing = LandingZone(landing_uri)
    lines = submission_lines(count)
    per_file = -(-count // files)
    for start in range(0, count, per_file):
        landing.write_lines("submissions", lines.slice(start, per_file).to_list())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--files-per-run", type=int, default=200)
    args = parser.parse_args()
    from feedback_pipeline import assessments as core

    root = Path(tempfile.mkdtemp(prefix="bench-assessments-"))
    lake, landing = Lake(str(root / "lake")), LandingZone(str(root / "landing"))
    seed_lake(lake)
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=generate, args=(landing.uri, args.submissions, args.files))
    child.start()
    child.join()
    print(f"landed {args.submissions:,} submissions in {args.files} files in {time.perf_counter() - started:.1f} s")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    reports = process_pending_submissions(lake, landing, files_per_run=args.files_per_run)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    totals = {key: sum(r[key] for r in reports) for key in ("received", "accepted", "rejected", "duplicates")}
    counts = core.accounting(lake)
    print(f"runs: {len(reports)}  {totals}  all accounted: {all(r['accounted'] for r in reports)}")
    print(f"assessments: {lake.read('assessments').height:,} current, history: {lake.read('assessment_history').height:,}, "
          f"rejections: {counts['rejected']:,}")
    print(f"{args.submissions:,} submissions -> validated assessments in {elapsed:.1f} s: "
          f"{args.submissions / elapsed:,.0f} submissions/s; peak RSS {peak:,.0f} MiB (before processing {rss_before:,.0f} MiB)")


if __name__ == "__main__":
    main()
