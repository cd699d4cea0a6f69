"""Pull rate from a local `mlflow server`: `feedback-pipeline mlflow pull` beside MLflow's own `search_traces`.

    .venv/bin/python bench/mlflow_pull.py --traces 10000

Makes N traces with the docs-style app (retriever, tool and chat-model spans; a human feedback on
every tenth) straight into a SQLite store (from `--makers` processes sharing it; on a busy 2-core
machine one process was faster than two, whose SQLite writes wait on each other), starts
`mlflow server` over it on a free loopback port, then times, in the same run: MLflow's `search_traces` reading every trace with its spans, page by
page (the floor: what any client must transfer), our first pull (everything lands), and a second
pull (nothing changed: info pages only). Prints traces/s for each.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.mlflow_world import QUIET_ENV, docs_app, mlflow_server  # noqa: E402


def _make_slice(root: str, experiment_id: str, first: int, count: int) -> None:
    """One maker process: traces first .. first+count-1 into the shared SQLite store."""
    import mlflow
    from mlflow.entities import AssessmentSource

    os.environ.update(QUIET_ENV)
    mlflow.set_tracking_uri(f"sqlite:///{Path(root) / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=experiment_id)
    run = docs_app()
    for i in range(first, first + count):
        trace_id = run(f"question {i}: where is order o-{i}?", user=f"u-{i % 50}", session=f"s-{i % 200}")
        if i % 10 == 0:
            mlflow.log_feedback(trace_id=trace_id, name="correct", value=i % 20 == 0,
                                source=AssessmentSource("HUMAN", "alice@example.com"))


def make_traces(root: Path, count: int, makers: int) -> str:
    """Log `count` traces into the SQLite store the server will serve, from `makers` processes; returns the experiment id."""
    import mlflow

    root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment("bench", artifact_location=str(root / "artifacts"))
    started = time.monotonic()
    size = -(-count // makers)
    slices = [(str(root), experiment_id, first, min(size, count - first)) for first in range(0, count, size)]
    with multiprocessing.get_context("spawn").Pool(len(slices)) as pool:
        pool.starmap(_make_slice, slices)
    seconds = time.monotonic() - started
    print(f"made {count:,} traces with {len(slices)} processes in {seconds:.0f} s ({count / seconds:,.0f}/s)", file=sys.stderr)
    return experiment_id


def search_all(uri: str, experiment_id: str, page_size: int) -> int:
    """MLflow's own client reading every trace with spans, page by page."""
    import mlflow

    client, token, seen = mlflow.MlflowClient(tracking_uri=uri), None, 0
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=page_size, page_token=token,
                                    order_by=["timestamp_ms ASC"])
        seen += len(page)
        token = page.token
        if not token:
            return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--makers", type=int, default=1, help="processes creating the traces (into one SQLite file)")
    parser.add_argument("--store", type=Path, help="serve the store an earlier run made (its `server` folder) "
                        "instead of making traces: to measure again without waiting for MLflow to log them")
    args = parser.parse_args()
    os.environ.update(QUIET_ENV)
    root = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    os.environ["FEEDBACK_HOME"] = str(root / "feedback")
    store = args.store or root / "server"
    if args.store:
        import mlflow

        experiment_id = mlflow.MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_experiment_by_name("bench").experiment_id
    else:
        experiment_id = make_traces(store, args.traces, args.makers)

    from feedback_pipeline import mlflow_pull
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.mlflow_server import MlflowServer

    with mlflow_server(store) as uri:
        home = FeedbackHome.from_env()
        started = time.monotonic()
        floor = search_all(uri, experiment_id, args.page_size)
        floor_seconds = time.monotonic() - started
        server = MlflowServer(uri, (experiment_id,))
        first = mlflow_pull.pull(server, home.lake(), home.landing(), page_size=args.page_size)
        second = mlflow_pull.pull(server, home.lake(), home.landing(), page_size=args.page_size)
    print(f"machine: {os.cpu_count()} cores; {floor:,} traces, page size {args.page_size}")
    print(f"mlflow search_traces (spans, the floor): {floor:,} traces in {floor_seconds:.1f} s = {floor / floor_seconds:,.0f} traces/s")
    print(f"feedback-pipeline mlflow pull, first:    {first.traces_seen:,} read, {first.traces_landed:,} landed, "
          f"{first.assessments_created:,} assessments in {first.seconds:.1f} s = {first.traces_per_second:,.0f} traces/s")
    print(f"feedback-pipeline mlflow pull, again:    {second.traces_seen:,} read, {second.traces_landed:,} landed "
          f"in {second.seconds:.1f} s = {second.traces_per_second:,.0f} traces/s")


if __name__ == "__main__":
    main()
