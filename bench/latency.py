"""Submission-to-dataset latency with `dagster dev` running (the sensors at their default intervals).

    .venv/bin/python bench/latency.py [--samples 1] [--timeout 300]

Untimed setup on a temporary FEEDBACK_HOME/DAGSTER_HOME: 200 synthetic traces, a text expectation schema
and a labeling session over them feeding dataset `latency`, processed once by `run`. Then `dagster dev`
starts on a free port; each sample lands one expectation (`log_expectation`) and polls
`load_evaluation_dataset` until the record carries it. The whole process group is stopped afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATASET = "latency"
EXPECTATION = "expected_answer"
TRACES = 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(work: Path) -> list[str]:
    """Traces, schema and session feeding DATASET, processed once; returns the trace ids."""
    from bench.run import _use_home
    from bench.synthetic import synthetic_traces, write_jsonl
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.input_types import InputText
    from feedback_pipeline.schemas import create_label_schema
    from feedback_pipeline.sessions import create_labeling_session

    home = _use_home(work)
    write_jsonl(work / "traces.jsonl", synthetic_traces(TRACES))
    import_traces([str(work / "traces.jsonl")], home.landing())
    create_label_schema(EXPECTATION, type="expectation", input=InputText(), home=home)
    run_pending(home, echo=lambda *a, **k: None)
    trace_ids = home.lake().read("traces", columns=["trace_id"])["trace_id"].to_list()
    create_labeling_session(DATASET, label_schemas=[EXPECTATION], dataset=DATASET, home=home).add_traces(trace_ids)
    report = run_pending(home, echo=lambda *a, **k: None)
    if report.failures:
        raise SystemExit(f"setup failed: {report.failures}")
    return trace_ids


def _shows(value: str, home) -> bool:
    from feedback_pipeline.datasets import load_evaluation_dataset

    try:
        frame = load_evaluation_dataset(DATASET, home=home).to_polars()
    except LookupError:
        return False
    return bool(frame["expectations"].str.contains(value, literal=True).any())


def measure(work: Path, samples: int, timeout: float) -> list[float | None]:
    """Seconds from landing each expectation to seeing it in the dataset (None: not within `timeout`)."""
    trace_ids = _prepare(work)
    from feedback_pipeline import log_expectation
    from feedback_pipeline.home import FeedbackHome

    home = FeedbackHome.from_env()
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-p", str(free_port())],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    latencies: list[float | None] = []
    try:
        for sample in range(samples):
            value = f"latency probe {sample} {time.time_ns()}"
            started = time.monotonic()
            log_expectation(trace_id=trace_ids[sample], name=EXPECTATION, value=value, home=home)
            while time.monotonic() - started < timeout and not _shows(value, home):
                time.sleep(0.5)
            latencies.append(time.monotonic() - started if _shows(value, home) else None)
            print(f"sample {sample}: {latencies[-1] if latencies[-1] is None else round(latencies[-1], 1)} s", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    return latencies


def summary(latencies: list[float | None], timeout: float) -> str:
    """One line: p50 (and max) of the samples, or how many timed out."""
    seen = [x for x in latencies if x is not None]
    missed = len(latencies) - len(seen)
    figures = f"p50 {statistics.median(seen):.1f} s, max {max(seen):.1f} s" if seen else "none seen"
    return (
        f"submission -> dataset with `dagster dev` (default sensor intervals): {figures} over {len(latencies)} sample(s)"
        + (f", {missed} not seen within {timeout:.0f} s" if missed else "")
        + " (target: p50 < 30 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        print(summary(measure(Path(tmp), args.samples, args.timeout), args.timeout))


if __name__ == "__main__":
    main()
