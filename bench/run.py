"""All benchmarks in one command: each stage at a chosen scale beside its I/O floor, in one table.

    .venv/bin/python bench/run.py [--scale small|medium|large] [--traces N] [--submissions N] [--records N]

Stages (each measured phase runs in its own child process, so its peak RSS is its own):
  trace ingest       import + `run` of N synthetic traces  vs  polars read_ndjson + write_delta of the same JSONL
  submissions        N landed submissions -> validated assessments  vs  polars reading the same JSONL files
                     and writing them to Delta unchanged
  dataset build      `run` of the datasets stage over N session traces (3 reviewers each)  vs  reading the input
                     tables and writing the built records to a new Delta table unchanged
  dataset load       load_evaluation_dataset(...).to_polars()  vs  a bare pl.read_delta of the same table
The table is printed and written to bench/RESULTS.md with the command, the date and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.mlflow_compare import comparison, mlflow_workflow, ours_workflow  # noqa: E402

SCALES = {
    "small": {"traces": 20_000, "submissions": 50_000, "records": 20_000},
    "medium": {"traces": 100_000, "submissions": 200_000, "records": 100_000},
    "large": {"traces": 1_000_000, "submissions": 1_000_000, "records": 100_000},
}
IN_MEMORY_FLOOR_LIMIT = 200_000
SUBMISSION_FILES = 200
REVIEWERS = 3
DATASET = "bench"


def peak_mb() -> float:
    """This process's peak resident memory, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _use_home(root: Path):
    os.environ["FEEDBACK_HOME"] = str(root)
    os.environ["DAGSTER_HOME"] = str(root / "dagster")
    from feedback_pipeline.home import FeedbackHome

    home = FeedbackHome.from_env()
    home.ensure_dagster_home()
    return home


def _timed(rows: Callable[[], int], action: Callable[[], object]) -> dict:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows(), "peak_mb": peak_mb()}


def ingest_floor(work: Path, n: int) -> dict:
    """Polars reading the trace JSONL and writing it to Delta unchanged; streamed above the in-memory limit."""
    if n <= IN_MEMORY_FLOOR_LIMIT:
        from bench.traces_parse import phase_floor

        result = phase_floor(work / "traces.jsonl", work / "floor_delta")
        return {"seconds": result["total_s"], "rows": result["rows"], "peak_mb": result["peak_rss_mb"]}
    import polars as pl

    from bench.traces_parse import _without_null

    scan = pl.scan_ndjson(work / "traces.jsonl", infer_schema_length=1000)
    schema = scan.collect_schema()
    scan = scan.cast({name: _without_null(dtype) for name, dtype in schema.items()})
    out = work / "floor_delta"
    result = _timed(lambda: pl.scan_delta(str(out)).select(pl.len()).collect().item(), lambda: scan.sink_delta(str(out)))
    result["note"] = "streamed: scan_ndjson+sink_delta"
    return result


def ingest_ours(work: Path, n: int) -> dict:
    """`feedback-pipeline traces import` of the JSONL, then the traces stage of `run`."""
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces

    home = _use_home(work / "feedback")
    started = time.perf_counter()
    import_traces([str(work / "traces.jsonl")], home.landing())
    imported = time.perf_counter()
    report = run_pending(home, echo=lambda *a, **k: None, stages=("traces",))
    finished = time.perf_counter()
    assert not report.failures, report.failures
    return {
        "seconds": finished - started,
        "import_seconds": imported - started,
        "run_seconds": finished - imported,
        "rows": home.lake().table("traces").count(),
        "peak_mb": peak_mb(),
    }


def _submission_root(work: Path) -> Path:
    return work / "submissions"


def submissions_prepare(work: Path, n: int) -> dict:
    """A lake with traces, schemas and a session, and `n` submissions landed in SUBMISSION_FILES files."""
    from bench.assessments import generate, seed_lake
    from feedback_pipeline.lake import Lake

    root = _submission_root(work)
    seed_lake(Lake(str(root / "lake")))
    generate(str(root / "landing"), n, SUBMISSION_FILES)
    return {}


def submissions_ours(work: Path, n: int) -> dict:
    from bench.assessments import process_pending_submissions
    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone

    root = _submission_root(work)
    lake, landing = Lake(str(root / "lake")), LandingZone(str(root / "landing"))
    reports: list[dict] = []
    result = _timed(lambda: n, lambda: reports.extend(process_pending_submissions(lake, landing, files_per_run=SUBMISSION_FILES)))
    assert all(r["accounted"] for r in reports), reports
    return result


def submissions_floor(work: Path, n: int) -> dict:
    """Polars reading the landed submission files and writing them to Delta unchanged."""
    import polars as pl

    files = sorted(str(p) for p in (_submission_root(work) / "landing").rglob("*") if p.is_file())
    out = work / "submissions_floor"

    def read_and_write() -> None:
        frame = pl.read_ndjson(files, infer_schema_length=None, schema_overrides={"value": pl.String})
        frame.write_delta(str(out))

    return _timed(lambda: pl.scan_delta(str(out)).select(pl.len()).collect().item(), read_and_write)


def datasets_prepare(work: Path, n: int) -> dict:
    """A home whose lake holds `n` session traces with REVIEWERS expectations each, for dataset DATASET."""
    import polars as pl

    from bench.datasets import tables

    home = _use_home(work / "datasets")
    lake = home.lake()
    for name, frame in tables(n, REVIEWERS).items():
        if name == "labeling_sessions":
            frame = frame.with_columns(dataset=pl.lit(DATASET))
        lake.overwrite(name, frame)
    return {}


def dataset_build_ours(work: Path, n: int) -> dict:
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.datasets import load_evaluation_dataset

    home = _use_home(work / "datasets")
    outcome = []
    result = _timed(
        lambda: len(load_evaluation_dataset(DATASET, home=home)),
        lambda: outcome.append(run_pending(home, echo=lambda *a, **k: None, stages=("datasets",))),
    )
    assert not outcome[0].failures, outcome[0].failures
    return result


def _dataset_table(work: Path) -> str:
    from feedback_pipeline.datasets import table_name

    return _use_home(work / "datasets").lake().table_uri(table_name(DATASET))


def dataset_build_floor(work: Path, n: int) -> dict:
    """Read the dataset's input tables and write the built records to a new Delta table unchanged."""
    import polars as pl

    lake = _use_home(work / "datasets").lake()
    records = _dataset_table(work)
    out = work / "dataset_floor"

    def read_and_write() -> None:
        for name in ("traces", "assessments", "labeling_sessions", "session_items", "label_schemas"):
            pl.read_delta(lake.table_uri(name))
        pl.read_delta(records).write_delta(str(out))

    return _timed(lambda: pl.scan_delta(str(out)).select(pl.len()).collect().item(), read_and_write)


def dataset_load_ours(work: Path, n: int) -> dict:
    from feedback_pipeline.datasets import load_evaluation_dataset

    home = _use_home(work / "datasets")
    frames = []
    result = _timed(lambda: frames[0].height, lambda: frames.append(load_evaluation_dataset(DATASET, home=home).to_polars()))
    return result


def dataset_load_floor(work: Path, n: int) -> dict:
    import polars as pl

    table = _dataset_table(work)
    frames = []
    return _timed(lambda: frames[0].height, lambda: frames.append(pl.read_delta(table)))


PHASES: dict[str, Callable[[Path, int], dict]] = {
    f.__name__: f
    for f in (
        ingest_floor, ingest_ours, submissions_prepare, submissions_ours, submissions_floor,
        datasets_prepare, dataset_build_ours, dataset_build_floor, dataset_load_ours, dataset_load_floor,
        mlflow_workflow, ours_workflow,
    )
}


def child(phase: str, work: Path, n: int) -> dict:
    """Run one phase in a fresh interpreter and return its figures."""
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--work", str(work), "--n", str(n)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def script_lines(script: str, *arguments: str) -> list[str]:
    """Run another bench script in its own process; its output lines, or why it failed."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *arguments],
        capture_output=True, text=True, check=False, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0:
        lines.append(f"{script} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    print("\n".join(lines), flush=True)
    return lines


def machine() -> str:
    """Core count, memory and CPU model of this machine."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores (nproc), {memory_kb / 1024 / 1024:.1f} GB RAM, {model}, Python {platform.python_version()}"


def row(stage: str, ours: dict, floor: dict | None) -> str:
    """One table row: our figures, the floor's beside them, and ours/floor throughput."""
    rate = ours["rows"] / ours["seconds"]
    cells = [stage, f"{ours['rows']:,}", f"{ours['seconds']:.2f}", f"{rate:,.0f}", f"{ours['peak_mb']:,.0f}"]
    if floor is None:
        cells += ["-", "-", "-", "-"]
    else:
        floor_rate = floor["rows"] / floor["seconds"]
        cells += [f"{floor['seconds']:.2f}", f"{floor_rate:,.0f}", f"{floor['peak_mb']:,.0f}", f"{rate / floor_rate:.2f}"]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| stage | scale (rows) | wall s | rows/s | peak RSS MB | floor wall s | floor rows/s | floor peak MB | ours/floor |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def stages(work: Path, traces: int, submissions: int, records: int, progress: Callable[[str], None]) -> list[str]:
    """Run every stage and its floor; return the table rows."""
    from bench.synthetic import synthetic_traces, write_jsonl

    rows: list[str] = []

    def measure(stage: str, ours_phase: str, floor_phase: str, n: int) -> None:
        ours, floor = child(ours_phase, work, n), child(floor_phase, work, n)
        rows.append(row(stage + (f" [floor {floor['note']}]" if "note" in floor else ""), ours, floor))
        progress(rows[-1])

    if traces:
        size = write_jsonl(work / "traces.jsonl", synthetic_traces(traces))
        progress(f"trace ingest: {traces:,} traces, {size / 1e6:,.0f} MB JSONL")
        measure("trace ingest (import + run)", "ingest_ours", "ingest_floor", traces)
    if submissions:
        progress(f"submissions: landing {submissions:,}")
        child("submissions_prepare", work, submissions)
        measure("submissions -> validated assessments", "submissions_ours", "submissions_floor", submissions)
    if records:
        progress(f"datasets: {records:,} session traces x {REVIEWERS} reviewers x 3 expectations")
        child("datasets_prepare", work, records)
        measure("dataset build (run datasets stage)", "dataset_build_ours", "dataset_build_floor", records)
        measure("dataset load (to_polars)", "dataset_load_ours", "dataset_load_floor", records)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--traces", type=int, help="synthetic traces to ingest (0 skips the stage)")
    parser.add_argument("--submissions", type=int, help="submissions to validate (0 skips the stage)")
    parser.add_argument("--records", type=int, help="dataset records to build and load (0 skips the stage)")
    parser.add_argument("--mlflow-traces", type=int, default=2_000, help="traces in the MLflow comparison (0 skips it)")
    parser.add_argument("--no-review-app", action="store_true", help="skip the Review App latency (bench/review_app.py)")
    parser.add_argument("--no-latency", action="store_true", help="skip submission-to-dataset latency under `dagster dev`")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md", help="where to write the table")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.work, args.n)))
        return

    scale = {key: getattr(args, key) if getattr(args, key) is not None else value for key, value in SCALES[args.scale].items()}
    command = "bench/run.py " + " ".join(sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    started = time.perf_counter()
    try:
        rows = stages(work, scale["traces"], scale["submissions"], scale["records"], lambda line: print(line, flush=True))
        compared = comparison(work / "mlflow", args.mlflow_traces, child) if args.mlflow_traces else []
        for line in compared:
            print(line, flush=True)
        if not args.no_review_app:
            compared += ["", "Review App (bench/review_app.py, 20 concurrent reviewers; target: item page p95 < 100 ms, submit p95 < 50 ms):", ""]
            compared += script_lines("review_app.py")
        if not args.no_latency:
            compared += ["", *script_lines("latency.py", "--samples", "3")]
        if args.scale == "large":
            compared += ["", "Whole flow in one process (bench/end_to_end.py; target: 1M traces in < 300 s, < 4 GB):", ""]
            flow = work / "end_to_end"
            flow.mkdir()
            if scale["traces"] == 1_000_000:
                (flow / "traces-1000000.jsonl").symlink_to(work / "traces.jsonl")
            compared += script_lines("end_to_end.py", "--work", str(flow))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(
        [
            f"### `{command.strip()}` ({args.scale} scale: {scale['traces']:,} traces, {scale['submissions']:,} submissions, "
            f"{scale['records']:,} records)",
            "",
            f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC on {machine()}; total {time.perf_counter() - started:.0f} s",
            "",
            HEADER,
            *rows,
            "",
            *compared,
            "",
        ]
    )
    print()
    print(report)
    write_results(args.results, report)


def write_results(path: Path, section: str) -> None:
    """Add the section to RESULTS.md, replacing an earlier one from the same command."""
    title = "# Benchmark results\n\nEach section is the latest run of its command (`make bench` runs `bench/run.py`).\n"
    text = path.read_text() if path.exists() else title
    heading = section.splitlines()[0].split(" (")[0]
    kept = [part for part in text.split("\n### ")[1:] if not ("### " + part).startswith(heading)]
    path.write_text("\n### ".join([text.split("\n### ")[0].rstrip() + "\n", *kept]).rstrip() + "\n\n" + section)


if __name__ == "__main__":
    main()
