"""Benchmark: trace ingestion (import + `run`) against the I/O floor (polars reading the same JSONL
and writing it to Delta unchanged). Each phase runs in its own process so peak memory is its own.

    .venv/bin/python bench/ingest.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_floor(jsonl: Path, work: Path) -> dict:
    from bench.traces_parse import phase_floor as read_and_write_unchanged

    result = read_and_write_unchanged(jsonl, work / "floor_delta")
    return {"seconds": result["total_s"], "rows": result["rows"], "peak_mb": result["peak_rss_mb"]}


def phase_ours(jsonl: Path, work: Path) -> dict:
    os.environ["FEEDBACK_HOME"] = str(work / "feedback")
    os.environ["DAGSTER_HOME"] = str(work / "feedback" / "dagster")
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.home import FeedbackHome

    home = FeedbackHome.from_env()
    home.ensure_dagster_home()
    started = time.perf_counter()
    import_traces([str(jsonl)], home.landing())
    imported = time.perf_counter()
    report = run_pending(home, echo=lambda *a, **k: None, stages=("sensors.traces",))
    finished = time.perf_counter()
    assert not report.failures, report.failures
    rows = home.lake().table("traces").count()
    return {
        "seconds": finished - started,
        "import_seconds": imported - started,
        "run_seconds": finished - imported,
        "rows": rows,
        "peak_mb": _peak_mb(),
    }


def _child(phase: str, jsonl: Path, work: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--jsonl", str(jsonl), "--work", str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="number of synthetic traces")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--phase", choices=["floor", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--jsonl", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        result = phase_floor(args.jsonl, args.work) if args.phase == "floor" else phase_ours(args.jsonl, args.work)
        print(json.dumps(result))
        return

    from bench.synthetic import synthetic_traces, write_jsonl

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    jsonl = work / "traces.jsonl"
    size = write_jsonl(jsonl, synthetic_traces(args.n))
    floor = _child("floor", jsonl, work)
    ours = _child("ours", jsonl, work)
    print(f"trace ingest, {args.n:,} synthetic traces ({size / 1e6:,.0f} MB JSONL), {os.cpu_count()} cores")
    print(f"{'':28}{'seconds':>9}{'traces/s':>11}{'peak MB':>9}")
    for name, result in (("floor: read_ndjson+write_delta", floor), ("ours: import + run", ours)):
        print(f"{name:<28}{result['seconds']:>9.1f}{result['rows'] / result['seconds']:>11,.0f}{result['peak_mb']:>9,.0f}")
    print(f"  (import {ours['import_seconds']:.1f} s, run {ours['run_seconds']:.1f} s)")
    print(f"ratio ours/floor throughput: {floor['seconds'] / ours['seconds']:.2f}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
