"""The same small workflow in MLflow OSS (SQLite store) and in feedback-pipeline, timed on the same steps.

    .venv/bin/python bench/mlflow_compare.py [--n 2000]

Untimed setup on both sides: N traces are logged (MLflow: `@mlflow.trace` calls; ours: import of N synthetic
traces and `run`) and, for ours, a text expectation schema and a labeling session feeding dataset `compare`.
Timed on both sides: one expectation per trace by `log_expectation`, building the dataset from the traces
and loading it as a frame (MLflow: `create_dataset`, `search_traces`, `merge_records`, `to_df`; ours:
`run` of every pending stage, `load_evaluation_dataset(...).to_polars()`). Each side runs in its own process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXPECTATION = "expected_answer"
DATASET = "compare"


def mlflow_available() -> bool:
    """Whether MLflow can be imported here."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def mlflow_workflow(work: Path, n: int) -> dict:
    """MLflow on a SQLite store: log N traces (untimed), then expectations, dataset, merge, to_df (timed)."""
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    import mlflow
    from mlflow.entities import AssessmentSource
    from mlflow.genai.datasets import create_dataset

    experiment = mlflow.set_experiment("bench")

    @mlflow.trace
    def answer(question: str) -> str:
        return f"The answer to {question} is in the billing settings."

    for i in range(n):
        answer(f"question {i}")
    trace_ids = mlflow.search_traces(experiment_ids=[experiment.experiment_id], max_results=n, return_type="pandas")["trace_id"].tolist()
    assert len(trace_ids) == n, len(trace_ids)
    source = AssessmentSource(source_type="HUMAN", source_id="alice@example.com")

    started = time.perf_counter()
    for i, trace_id in enumerate(trace_ids):
        mlflow.log_expectation(trace_id=trace_id, name=EXPECTATION, value=f"expected answer {i}", source=source)
    logged = time.perf_counter()
    dataset = create_dataset(name=DATASET, experiment_id=[experiment.experiment_id])
    traces = mlflow.search_traces(experiment_ids=[experiment.experiment_id], max_results=n, return_type="pandas")
    dataset.merge_records(traces)
    frame = dataset.to_df()
    finished = time.perf_counter()
    return {"seconds": finished - started, "log_seconds": logged - started, "build_seconds": finished - logged, "rows": len(frame)}


def ours_workflow(work: Path, n: int) -> dict:
    """feedback-pipeline: N traces and a session feeding a dataset (untimed), then expectations, run, load (timed)."""
    from bench.run import _use_home
    from bench.synthetic import synthetic_traces, write_jsonl
    from feedback_pipeline import log_expectation
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.datasets import load_evaluation_dataset
    from feedback_pipeline.entities import AssessmentSource
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.input_types import InputText
    from feedback_pipeline.schemas import create_label_schema
    from feedback_pipeline.sessions import create_labeling_session

    home = _use_home(work / "ours")
    quiet = lambda *a, **k: None  # noqa: E731
    write_jsonl(work / "traces.jsonl", synthetic_traces(n))
    import_traces([str(work / "traces.jsonl")], home.landing())
    create_label_schema(EXPECTATION, type="expectation", input=InputText(), home=home)
    _check(run_pending(home, echo=quiet))
    trace_ids = home.lake().read("traces", columns=["trace_id"])["trace_id"].to_list()
    assert len(trace_ids) == n, len(trace_ids)
    create_labeling_session(DATASET, label_schemas=[EXPECTATION], dataset=DATASET, home=home).add_traces(trace_ids)
    _check(run_pending(home, echo=quiet))
    source = AssessmentSource("HUMAN", "alice@example.com")

    started = time.perf_counter()
    for i, trace_id in enumerate(trace_ids):
        log_expectation(trace_id=trace_id, name=EXPECTATION, value=f"expected answer {i}", source=source, home=home)
    logged = time.perf_counter()
    _check(run_pending(home, echo=quiet))
    frame = load_evaluation_dataset(DATASET, home=home).to_polars()
    finished = time.perf_counter()
    assert frame.height == n, frame.height
    return {"seconds": finished - started, "log_seconds": logged - started, "build_seconds": finished - logged, "rows": frame.height}


def _check(report) -> None:
    if report.failures:
        raise SystemExit(f"run failed: {report.failures}")


def comparison(work: Path, n: int, child) -> list[str]:
    """Both workflows, each in its own process via `child`; the lines to print (a skip line without MLflow)."""
    if not mlflow_available():
        return [f"MLflow comparison skipped: mlflow is not importable in {sys.executable} (pip install -e '.[bench]')"]
    import mlflow

    work.mkdir(parents=True, exist_ok=True)
    theirs, ours = child("mlflow_workflow", work, n), child("ours_workflow", work, n)
    return [
        f"| workflow ({n:,} traces: log_expectation each, build dataset, load it) | wall s | log s | build + load s | records |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {r['seconds']:.2f} | {r['log_seconds']:.2f} | {r['build_seconds']:.2f} | {r['rows']:,} |"
            for name, r in ((f"MLflow {mlflow.__version__} (SQLite store)", theirs), ("feedback-pipeline", ours))
        ),
        "",
        f"MLflow wall s / ours wall s = {theirs['seconds'] / ours['seconds']:.1f} (target: >= 20)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000)
    args = parser.parse_args()
    from bench.run import child

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        print("\n".join(comparison(Path(tmp), args.n, child)))


if __name__ == "__main__":
    main()
