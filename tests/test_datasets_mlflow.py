"""Round trip: a dataset version fed unchanged to `mlflow.genai.evaluate` with a code-based scorer."""

from __future__ import annotations

import dagster as dg
import pytest

import feedback_pipeline
from feedback_pipeline.home import FeedbackHome
from tests.datasets_world import expectation, materialize, trace, write_world

mlflow = pytest.importorskip("mlflow", reason="mlflow is in the test extra")


def test_records_evaluate_unchanged_in_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    lake = FeedbackHome.from_env().lake()
    write_world(
        lake,
        [trace("tr-1", "refund?", "No refunds."), trace("tr-2", "ship?", "Tomorrow."), trace("tr-3", "hours?", "9-5")],
        [
            expectation("a-1", "tr-1", "expected_summary", "No refunds."),
            expectation("a-2", "tr-2", "expected_summary", "Next week."),
            expectation("a-3", "tr-3", "expected_summary", "9-5"),
        ],
    )
    with dg.instance_for_test() as instance:
        assert materialize(lake, "summaries", instance).success
    dataset = feedback_pipeline.load_evaluation_dataset("summaries", version=0)

    from mlflow.genai.scorers import scorer

    @scorer
    def matches_expected(outputs, expectations) -> bool:
        return outputs == expectations["expected_summary"]

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("regression")
    result = mlflow.genai.evaluate(data=dataset.records(), scorers=[matches_expected])
    assert sorted(result.result_df["matches_expected/value"].tolist()) == [False, True, True]
    assert result.metrics["matches_expected/mean"] == pytest.approx(2 / 3)
