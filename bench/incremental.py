"""Benchmark: the cost of a small run on a big table (20 new submissions after N stored ones).

    /work/main/.venv/bin/python bench/incremental.py [--stored 10000 1000000] [--new 20]

For each N a fresh data home gets the traces, label schemas and session of `bench/assessments.py`
and N submissions, derived as the sensor's runs would; then `--new` more submissions are landed
and processed twice: once in the library (`process_pending_submissions`: the pending function and the stage functions) and once through
`feedback-pipeline run` (a subprocess: Dagster start-up included). A run's work should follow what
it brings, so the figures for the largest N should stay within 1.5x of the smallest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.assessments import process_pending_submissions, seed_lake, submission_lines  # noqa: E402
from feedback_pipeline.lake import Lake  # noqa: E402
from feedback_pipeline.landing import LandingZone  # noqa: E402

STORED_PER_FILE = 5_000


def measure(stored: int, new: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-incremental-")) / "feedback"
    lake, landing = Lake(str(root / "lake")), LandingZone(str(root / "landing"))
    seed_lake(lake)
    lines = submission_lines(stored + 2 * new)
    for start in range(0, stored, STORED_PER_FILE):
        landing.write_lines("submissions", lines.slice(start, min(STORED_PER_FILE, stored - start)).to_list())
    started = time.perf_counter()
    process_pending_submissions(lake, landing, files_per_run=200)
    seeded = time.perf_counter() - started

    landing.write_lines("submissions", lines.slice(stored, new).to_list())
    started = time.perf_counter()
    process_pending_submissions(lake, landing)
    library = time.perf_counter() - started

    landing.write_lines("submissions", lines.slice(stored + new, new).to_list())
    env = dict(os.environ, FEEDBACK_HOME=str(root), DAGSTER_HOME=str(root / "dagster"), PYTHONPATH=str(REPO))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "feedback_pipeline", "run"], env=env, cwd=REPO, check=True, capture_output=True)
    cli = time.perf_counter() - started
    return {"seed_s": seeded, "library_s": library, "cli_s": cli}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--new", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for stored in args.stored:
        results[stored] = figures = measure(stored, args.new)
        print(
            f"{args.new} new after {stored:>10,} stored: library {figures['library_s']:6.2f} s, "
            f"feedback-pipeline run {figures['cli_s']:6.2f} s (seeding took {figures['seed_s']:.0f} s)",
            flush=True,
        )
    first, last = results[args.stored[0]], results[args.stored[-1]]
    print(
        f"ratio {args.stored[-1]:,} / {args.stored[0]:,}: library {last['library_s'] / first['library_s']:.2f}x, "
        f"feedback-pipeline run {last['cli_s'] / first['cli_s']:.2f}x (target: at most 1.5x)"
    )


if __name__ == "__main__":
    main()
