"""Benchmark: the cost of a small run on a big table (20 new submissions after N stored ones).

    /work/main/.venv/bin/python bench/incremental.py [--stored 10000 1000000] [--new 20] [--per-day 10000]

For each N a fresh data home gets the traces, label schemas and session of `bench/assessments.py`
and N submissions, landed over the days before today (`--per-day` a day, as a home that grew over
months holds them; 0: all today), derived as the sensor's runs would; then `--new` more submissions are landed
and processed twice: once in the library (`process_pending_submissions`: the pending function and the stage functions) and once through
`feedback-pipeline run` (a subprocess: Dagster start-up included), then `run` once more with
nothing pending. A run's work should follow what it brings, so the figures for the largest N
should stay within 1.5x of the smallest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.assessments import process_pending_submissions, seed_lake, submission_lines  # noqa: E402
from feedback_pipeline.lake import Lake  # noqa: E402
from feedback_pipeline.landing import LandingZone, jsonl_bytes  # noqa: E402

STORED_PER_FILE = 5_000


def land_stored(landing: LandingZone, lines, stored: int, per_day: int) -> None:
    """The first `stored` lines in files of STORED_PER_FILE, `per_day` of them on each day before today."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    days = -(-stored // per_day) if per_day else 0
    for start in range(0, stored, STORED_PER_FILE):
        chunk = lines.slice(start, min(STORED_PER_FILE, stored - start)).to_list()
        if not days:
            landing.write_lines("submissions", chunk)
            continue
        moment = today - timedelta(days=days - start // per_day) + timedelta(seconds=start % per_day)
        landing.put(landing.new_key("submissions", when_ns=int(moment.timestamp() * 1e9)), jsonl_bytes(chunk))


def measure(stored: int, new: int, per_day: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-incremental-")) / "feedback"
    lake, landing = Lake(str(root / "lake")), LandingZone(str(root / "landing"))
    seed_lake(lake)
    lines = submission_lines(stored + 2 * new)
    land_stored(landing, lines, stored, per_day)
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
    started = time.perf_counter()
    idle = subprocess.run([sys.executable, "-m", "feedback_pipeline", "run"], env=env, cwd=REPO, check=True, capture_output=True)
    assert b"nothing pending" in idle.stdout, idle.stdout
    return {"seed_s": seeded, "library_s": library, "cli_s": cli, "idle_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--new", type=int, default=20)
    parser.add_argument("--per-day", type=int, default=10_000, help="stored submissions landed on each earlier day (0: all today)")
    args = parser.parse_args()
    results = {}
    for stored in args.stored:
        results[stored] = figures = measure(stored, args.new, args.per_day)
        print(
            f"{args.new} new after {stored:>10,} stored: library {figures['library_s']:6.2f} s, "
            f"feedback-pipeline run {figures['cli_s']:6.2f} s, with nothing pending {figures['idle_s']:5.2f} s "
            f"(seeding took {figures['seed_s']:.0f} s)",
            flush=True,
        )
    first, last = results[args.stored[0]], results[args.stored[-1]]
    print(
        f"ratio {args.stored[-1]:,} / {args.stored[0]:,}: library {last['library_s'] / first['library_s']:.2f}x, "
        f"feedback-pipeline run {last['cli_s'] / first['cli_s']:.2f}x (target: at most 1.5x)"
    )


if __name__ == "__main__":
    main()
