"""Benchmark: what the SDK's checks at the call cost per `log_feedback` (ms per call), by traces-table size.

    .venv/bin/python bench/sdk_checks.py [--traces 10000 100000 1000000] [--calls 50]

For each size a temporary home gets a `traces` table of that many rows (in 20 files, as daily
partitions), a categorical label schema and a session assigning two reviewers (through the SDK, then
folded into the tables as a run would). Then `calls` log_feedback calls on known traces, with the
session, are timed with the checks and, for the floor, `land_submissions` of the same records alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_pipeline.entities import AssessmentSource  # noqa: E402
from feedback_pipeline.home import FeedbackHome  # noqa: E402
from feedback_pipeline.input_types import InputCategorical  # noqa: E402
from feedback_pipeline.schemas import create_label_schema, schema_table  # noqa: E402
from feedback_pipeline.sessions import create_labeling_session, session_table  # noqa: E402
from feedback_pipeline.submissions import land_submissions, log_feedback, submission  # noqa: E402


def prepared_home(root: Path, traces: int) -> tuple[FeedbackHome, list[str]]:
    home = FeedbackHome(str(root))
    lake = home.lake()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    frame = pl.DataFrame({"n": range(traces)}).select(
        pl.format("tr-{}", pl.col("n").hash(seed=1)).alias("trace_id"),
        pl.format("req-{}", "n").alias("client_request_id"),
        (pl.lit(start) + pl.duration(minutes=pl.col("n") * (20 * 24 * 60) // traces)).alias("request_time"),
    ).with_columns(pl.col("request_time").dt.date().alias("request_date"))
    lake.merge("traces", frame, on=["trace_id"], partition_by=["request_date"])
    create_label_schema("summary_quality", input=InputCategorical(["Yes", "No"]), home=home)
    create_labeling_session("review", assigned_users=["alice@example.com", "bob@example.com"],
                            label_schemas=["summary_quality"], home=home)
    lake.merge("label_schemas", schema_table(home), on=["name", "version"])
    lake.merge("labeling_sessions", session_table(home), on=["labeling_session_id"])
    return home, frame["trace_id"].sample(50, seed=2, with_replacement=True).to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    alice = AssessmentSource("HUMAN", "alice@example.com")
    print(f"| traces | log_feedback ms/call (checked) | land only ms/call | calls |\n|---:|---:|---:|---:|")
    for traces in args.traces:
        with tempfile.TemporaryDirectory() as root:
            home, ids = prepared_home(Path(root), traces)
            started = time.perf_counter()
            for i in range(args.calls):
                log_feedback(trace_id=ids[i % len(ids)], name="summary_quality", value="Yes", source=alice,
                             session="review", home=home)
            checked = (time.perf_counter() - started) * 1000 / args.calls
            landing = home.landing()
            started = time.perf_counter()
            for i in range(args.calls):
                record = submission(trace_id=ids[i % len(ids)], name="summary_quality", value="Yes", source=alice,
                                    session="review")
                land_submissions(landing, [record], label="sdk")
            floor = (time.perf_counter() - started) * 1000 / args.calls
            print(f"| {traces:,} | {checked:.1f} | {floor:.1f} | {args.calls} |", flush=True)


if __name__ == "__main__":
    main()
