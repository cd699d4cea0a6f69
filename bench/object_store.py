"""The trace ingest and the submissions stage with the lake and landing zone on local disk and on a local
S3-compatible server (SeaweedFS, started here on loopback through tests/servers.py), in one run.

    .venv/bin/python bench/object_store.py [--traces 100000] [--submissions 200000]

Each measured phase runs in its own process against its own fresh home:
  ingest       `traces import` of N synthetic traces into the landing zone, then the traces stage of `run`
  submissions  M submissions landed in SUBMISSION_FILES files beside a seeded lake (not timed), then
               `bench.assessments.process_pending_submissions` (validate, history, current state, rejections)
Prints one line per phase and backend: seconds, rows, rows per second, and the S3/local ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUBMISSION_FILES = 200


def phase_ingest(export: str) -> dict:
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.home import FeedbackHome

    home = FeedbackHome.from_env()
    home.ensure_dagster_home()
    started = time.perf_counter()
    import_traces([export], home.landing())
    imported = time.perf_counter()
    report = run_pending(home, echo=lambda *a, **k: None, stages=("traces",))
    finished = time.perf_counter()
    assert not report.failures, report.failures
    rows = home.lake().table("traces").count()
    return {"seconds": finished - started, "import_seconds": imported - started, "run_seconds": finished - imported, "rows": rows}


def phase_submissions(count: int) -> dict:
    from bench.assessments import process_pending_submissions, seed_lake, submission_lines
    from feedback_pipeline.home import FeedbackHome

    home = FeedbackHome.from_env()
    lake, landing = home.lake(), home.landing()
    seed_lake(lake)
    lines = submission_lines(count)
    per_file = -(-count // SUBMISSION_FILES)
    for start in range(0, count, per_file):
        landing.write_lines("submissions", lines.slice(start, per_file).to_list())
    started = time.perf_counter()
    reports = process_pending_submissions(lake, landing, files_per_run=SUBMISSION_FILES)
    seconds = time.perf_counter() - started
    assert all(r["accounted"] for r in reports), reports
    return {"seconds": seconds, "rows": count}


def child(phase: str, argument: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--argument", argument],
        capture_output=True, text=True, check=False, cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def backends(work: Path, s3) -> dict[str, callable]:
    """Fresh environments per phase: a local FEEDBACK_HOME, or all of it under a new S3 prefix."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDBACK_", "AWS_"))}
    base["GX_ANALYTICS_ENABLED"] = "false"

    def local(name: str) -> dict[str, str]:
        root = work / "local" / name
        return {**base, "FEEDBACK_HOME": str(root), "DAGSTER_HOME": str(root / "dagster")}

    def on_s3(name: str) -> dict[str, str]:
        return {
            **base,
            "FEEDBACK_HOME": f"s3://{s3.bucket}/bench-{name}-{secrets.token_hex(3)}",
            "DAGSTER_HOME": str(work / "s3" / name / "dagster"),
            "FEEDBACK_STORAGE_OPTIONS": json.dumps(s3.storage_options),
        }

    return {"local disk": local, "S3 (SeaweedFS, loopback)": on_s3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--submissions", type=int, default=200_000)
    parser.add_argument("--phase", choices=("ingest", "submissions"))
    parser.add_argument("--argument")
    args = parser.parse_args()
    if args.phase == "ingest":
        print(json.dumps(phase_ingest(args.argument)))
        return
    if args.phase == "submissions":
        print(json.dumps(phase_submissions(int(args.argument))))
        return

    from bench.synthetic import synthetic_traces, write_jsonl
    from tests.servers import seaweedfs

    with tempfile.TemporaryDirectory(prefix="feedback-bench-store-") as folder, seaweedfs() as s3:
        work = Path(folder)
        export = work / "traces.jsonl"
        write_jsonl(export, synthetic_traces(args.traces))
        print(f"# {args.traces:,} traces ({export.stat().st_size / 1e6:.0f} MB JSONL), {args.submissions:,} submissions "
              f"in {SUBMISSION_FILES} files; {os.cpu_count()} cores", flush=True)  # fmt: skip
        print(f"{'stage':<12} {'backend':<26} {'seconds':>8} {'rows':>9} {'rows/s':>9}  detail", flush=True)
        figures: dict[tuple[str, str], float] = {}
        for stage, argument in (("ingest", str(export)), ("submissions", str(args.submissions))):
            for backend, env_for in backends(work, s3).items():
                result = child(stage, argument, env_for(stage))
                figures[stage, backend] = result["seconds"]
                detail = (
                    f"import {result['import_seconds']:.1f}s + run {result['run_seconds']:.1f}s" if stage == "ingest" else ""
                )
                print(f"{stage:<12} {backend:<26} {result['seconds']:>8.1f} {result['rows']:>9,} "
                      f"{result['rows'] / result['seconds']:>9,.0f}  {detail}", flush=True)  # fmt: skip
            local, remote = (figures[stage, name] for name in backends(work, s3))
            print(f"{stage:<12} {'S3 / local':<26} {remote / local:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
