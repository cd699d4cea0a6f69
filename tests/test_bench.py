"""`bench/run.py` (what `make bench` runs): one table beside the floors, kept in RESULTS.md per command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import write_results  # noqa: E402


def test_a_tiny_run_prints_every_stage_beside_its_floor_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "unused"))
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--traces", "300", "--submissions", "500", "--records", "200",
         "--mlflow-traces", "0", "--no-review-app", "--no-latency", "--results", str(results)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert "`bench/run.py --traces 300 --submissions 500 --records 200" in text
    assert f"{os.cpu_count()} cores (nproc)" in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    for stage, n in (("trace ingest (import + run)", "300"), ("submissions -> validated assessments", "500"),
                     ("dataset load (to_polars)", "180")):
        assert rows[stage][1] == n, rows[stage]
        assert rows[stage][5] != "-", "the floor figures sit beside ours"
    assert "dataset build (run datasets stage)" in rows


def test_results_keep_the_notes_and_replace_only_the_same_commands_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nnotes that stay\n")
    write_results(path, "### `bench/run.py` (small scale)\n\nfirst\n")
    write_results(path, "### `bench/run.py --scale medium` (medium scale)\n\nmedium\n")
    write_results(path, "### `bench/run.py` (small scale)\n\nsecond\n")
    text = path.read_text()
    assert "notes that stay" in text and "medium" in text and "second" in text
    assert "first" not in text


def test_a_tiny_end_to_end_run_reaches_a_loaded_dataset(tmp_path):
    done = subprocess.run(
        [sys.executable, "bench/end_to_end.py", "--traces", "300", "--session-items", "40", "--submissions", "800",
         "--work", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("end to end: 300 traces, 40 session items, 800 submissions -> "), line
    assert "40 dataset records" in line and "peak RSS" in line


def test_the_quality_benchmark_prints_agreement_and_alignment_figures():
    done = subprocess.run(
        [sys.executable, "bench/quality.py", "--items", "300"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "agreement" in done.stdout and "alignment" in done.stdout and "peak RSS" in done.stdout
