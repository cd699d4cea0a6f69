"""Benchmark: the whole flow at scale in one process (wall time per step, total, peak RSS).

    .venv/bin/python bench/end_to_end.py [--traces 1000000] [--session-items 10000] [--submissions 200000]

Untimed: a synthetic JSONL export of N traces shaped like the bundled ones. Timed, in a child
process of its own (so the peak RSS is the pipeline's alone), on a fresh FEEDBACK_HOME:
  import   `traces import` of the export into the landing zone
  traces   the traces stage of `run` (parse, merge into Delta)
  session  two label schemas, a session over the first `--session-items` traces feeding dataset
           `e2e`, and the labeling stage of `run` (the session_items snapshot)
  land     `--submissions` answers to that session (ten reviewers; an expectation and a feedback
           each) landed as submission files of 1,000 lines, as the feedback API would
  assess   the assessments and datasets stages of `run` (validate, fold, build the dataset)
  load     load_evaluation_dataset("e2e").to_polars()
Target (issue 7): 1M traces, 10k items, 200k submissions under 5 minutes, peak RSS under 4 GB.

    .venv/bin/python bench/end_to_end.py --scaling 1000000 10000000

runs the flow once per trace count (submissions and session items as given) and prints seconds per
million traces and peak RSS for each, which should stay flat: time linear in the input, memory
bounded by the batch sizes rather than the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATASET = "e2e"
EXPECTATION = "expected_answer"
FEEDBACK = "correct"
REVIEWERS = [f"reviewer{n}@example.com" for n in range(10)]
LINES_PER_FILE = 1_000


def submission_lines(trace_ids: pl.Series, count: int) -> pl.Series:
    """`count` session answers over `trace_ids`, cycling reviewers then schemas, as landing JSON lines."""
    per_trace = 2 * len(REVIEWERS)
    n = pl.col("n")
    frame = pl.DataFrame({"n": range(count)}).with_columns(
        (n % per_trace).alias("slot"), (n // per_trace % trace_ids.len()).alias("item")
    )
    reviewer = pl.DataFrame({"r": range(len(REVIEWERS)), "source_id": REVIEWERS})
    ids = pl.DataFrame({"item": range(trace_ids.len()), "trace_id": trace_ids})
    frame = (
        frame.with_columns((pl.col("slot") // 2).alias("r"), (pl.col("slot") % 2 == 0).alias("expects"))
        .join(reviewer, on="r", how="left")
        .join(ids, on="item", how="left")
        .sort("n")
    )
    record = pl.struct(
        pl.format("s-e2e-{}", n).alias("submission_id"),
        pl.lit("create").alias("action"),
        pl.format("a-e2e-{}", n).alias("assessment_id"),
        "trace_id",
        pl.lit(DATASET).alias("session"),
        pl.when("expects").then(pl.lit(EXPECTATION)).otherwise(pl.lit(FEEDBACK)).alias("name"),
        pl.when("expects").then(pl.lit("expectation")).otherwise(pl.lit("feedback")).alias("kind"),
        pl.when("expects")
        .then(pl.format("The expected answer for item {}", "item"))
        .otherwise(pl.when(n % 3 == 0).then(pl.lit("No")).otherwise(pl.lit("Yes")))
        .alias("value"),
        pl.struct(pl.lit("HUMAN").alias("source_type"), "source_id").alias("source"),
        pl.lit("2026-11-28T06:00:00.000Z").alias("created_at"),
        pl.lit("api").alias("origin"),
    )
    return frame.select(record.struct.json_encode().alias("line"))["line"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pipeline(export: Path, root: Path, session_items: int, submissions: int) -> dict:
    """The timed steps, in this process; returns seconds per step, counts and peak RSS."""
    os.environ["FEEDBACK_HOME"] = str(root)
    os.environ["DAGSTER_HOME"] = str(root / "dagster")
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.datasets import load_evaluation_dataset
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.input_types import InputCategorical, InputText
    from feedback_pipeline.schemas import create_label_schema
    from feedback_pipeline.sessions import create_labeling_session

    home = FeedbackHome.from_env()
    home.ensure_dagster_home()
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = round(now - clock, 2)
        clock = now

    def run(*stages: str) -> None:
        report = run_pending(home, echo=lambda *a, **k: None, stages=stages)
        if report.failures:
            raise SystemExit(f"run failed: {report.failures}")

    started = clock
    import_traces([str(export)], home.landing())
    step("import")
    run("traces")
    step("traces")
    lake = home.lake()
    create_label_schema(EXPECTATION, type="expectation", input=InputText(), home=home)
    create_label_schema(FEEDBACK, type="feedback", input=InputCategorical(options=["Yes", "No"]), home=home)
    trace_ids = lake.scan("traces").select("trace_id").sort("trace_id").head(session_items).collect()["trace_id"]
    create_labeling_session(
        DATASET, assigned_users=REVIEWERS, label_schemas=[EXPECTATION, FEEDBACK], dataset=DATASET, home=home
    ).add_traces(trace_ids.to_list())
    run("labeling")
    step("session")
    lines = submission_lines(trace_ids, submissions)
    landing = home.landing()
    for start in range(0, lines.len(), LINES_PER_FILE):
        landing.write_lines("submissions", lines.slice(start, LINES_PER_FILE).to_list(), label="api")
    step("land")
    run("assessments", "datasets")
    step("assess")
    records = load_evaluation_dataset(DATASET, home=home).to_polars()
    step("load")
    return {
        "steps": steps,
        "total": round(time.perf_counter() - started, 2),
        "traces": lake.scan("traces").select(pl.len()).collect().item(),
        "session_items": lake.scan("session_items").select(pl.len()).collect().item(),
        "assessments": lake.scan("assessments").select(pl.len()).collect().item(),
        "records": records.height,
        "peak_mb": round(peak_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--session-items", type=int, default=10_000)
    parser.add_argument("--submissions", type=int, default=200_000)
    parser.add_argument("--work", type=Path, help="keep the export and the home here (default: a temporary folder)")
    parser.add_argument("--scaling", type=int, nargs="+", metavar="TRACES",
                        help="run once per trace count and print time per million traces and peak RSS for each")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling:
        scaling(args.scaling, args.session_items, args.submissions, args.work)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    export = work / f"traces-{args.traces}.jsonl"
    if args.child:
        print(json.dumps(pipeline(export, work / "feedback", args.session_items, args.submissions)))
        return

    from bench.synthetic import synthetic_traces, write_jsonl

    work.mkdir(parents=True, exist_ok=True)
    if not export.exists():
        size = write_jsonl(export, synthetic_traces(args.traces))
        print(f"export: {args.traces:,} traces, {size / 1e6:,.0f} MB JSONL", flush=True)
    subprocess.run(["rm", "-rf", str(work / "feedback")], check=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--work", str(work), "--traces", str(args.traces),
         "--session-items", str(args.session_items), "--submissions", str(args.submissions)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode != 0:
        raise SystemExit(f"end to end failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({"result": result}), file=sys.stderr)
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["steps"].items())
    print(
        f"end to end: {result['traces']:,} traces, {result['session_items']:,} session items, "
        f"{args.submissions:,} submissions -> {result['assessments']:,} assessments, {result['records']:,} dataset records "
        f"in {result['total']:.1f} s ({steps}); peak RSS {result['peak_mb']:,} MB (target: < 300 s, < 4,096 MB)"
    )


def scaling(sizes: list[int], session_items: int, submissions: int, work: Path | None) -> None:
    """The flow at each trace count, each in a fresh folder (removed afterwards unless `work` is given)."""
    for traces in sizes:
        folder = (work or Path(tempfile.mkdtemp(prefix="bench-e2e-"))) / f"scale-{traces}"
        done = subprocess.run(
            [sys.executable, __file__, "--work", str(folder), "--traces", str(traces),
             "--session-items", str(session_items), "--submissions", str(submissions)],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        result = json.loads(done.stderr.strip().splitlines()[-1])["result"]
        if work is None:
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        print(
            f"scaling: {traces:>11,} traces in {result['total']:8.1f} s = {result['total'] / traces * 1e6:6.1f} s per million "
            f"traces; peak RSS {result['peak_mb']:,} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
