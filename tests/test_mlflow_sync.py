"""Two-way sync against a real `mlflow server` (SQLite store) started for the session: pull, push, pull again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

import feedback_pipeline
from feedback_pipeline.entities import AssessmentSource
from tests.mlflow_world import QUIET_ENV, docs_app, mlflow_server

mlflow = pytest.importorskip("mlflow", reason="mlflow is in the test extra")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture
def experiment(mlflow_uri, request, monkeypatch):
    """A fresh experiment on the session's server, with the project pointed at it through the environment."""
    mlflow.set_tracking_uri(mlflow_uri)
    experiment_id = mlflow.create_experiment(f"{request.node.name}-{os.getpid()}")
    mlflow.set_experiment(experiment_id=experiment_id)
    monkeypatch.setenv("FEEDBACK_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("FEEDBACK_MLFLOW_EXPERIMENT_IDS", experiment_id)
    return experiment_id


def _sync(cli, *commands: str) -> None:
    for command in commands:
        if command == "run":
            cli("run")
        else:
            cli("mlflow", command)


def _ours(home) -> pl.DataFrame:
    return home.lake().read("assessments").sort("assessment_id")


def _theirs(trace_ids: list[str]) -> dict[str, object]:
    return {a.assessment_id: a for t in trace_ids for a in mlflow.get_trace(t).search_assessments(all=True)}


def test_pull_brings_traces_and_assessments_field_by_field(home, cli, experiment):
    run = docs_app()
    trace_ids = [run("Can I return shoes?", user="u-7", session="s-3"), run("Where is my order?")]
    trace = mlflow.get_trace(trace_ids[0])
    retriever = next(s for s in trace.data.spans if s.span_type == "RETRIEVER")
    human = mlflow.log_feedback(trace_id=trace_ids[0], name="correct", value=True, rationale="cites the policy",
                                source=mlflow.entities.AssessmentSource("HUMAN", "alice@example.com"))
    judge = mlflow.log_feedback(trace_id=trace_ids[1], name="relevance", value=0.4,
                                source=mlflow.entities.AssessmentSource("LLM_JUDGE", "gpt-4o"))
    override = mlflow.override_feedback(trace_id=trace_ids[1], assessment_id=judge.assessment_id, value=0.9,
                                        rationale="judge was harsh",
                                        source=mlflow.entities.AssessmentSource("HUMAN", "bob@example.com"))
    span_level = mlflow.log_feedback(trace_id=trace_ids[0], name="doc_relevant", value="yes", span_id=retriever.span_id,
                                     source=mlflow.entities.AssessmentSource("HUMAN", "alice@example.com"))
    expected = mlflow.log_expectation(trace_id=trace_ids[0], name="expected_order", value={"id": "o-42", "items": 2})

    _sync(cli, "pull", "run")

    traces = home.lake().read("traces").sort("trace_id")
    row = traces.filter(pl.col("trace_id") == trace_ids[0]).row(0, named=True)
    assert row["experiment_id"] == experiment
    assert (row["user_id"], row["session_id"]) == ("u-7", "s-3")
    assert row["state"] == "OK" and row["span_count"] == 4
    assert [d["id"] for d in row["retrieved_documents"]] == ["doc-1", "doc-2"]
    assert row["retrieved_documents"][0]["doc_uri"] == "https://docs/policy"
    assert [c["name"] for c in row["tool_calls"]] == ["lookup_order"]
    spans = json.loads(row["spans"])
    assert sorted(s["span_id"] for s in spans) == sorted(s.span_id for s in trace.data.spans)

    ours = _ours(home)
    theirs = _theirs(trace_ids)
    assert set(ours["assessment_id"]) == set(theirs) == {
        human.assessment_id, judge.assessment_id, override.assessment_id, span_level.assessment_id, expected.assessment_id}
    for mine in ours.iter_rows(named=True):
        other = theirs[mine["assessment_id"]]
        assert mine["trace_id"] == other.trace_id
        assert mine["assessment_name"] == other.name
        assert json.loads(mine["assessment_value"]) == (other.feedback or other.expectation).value
        assert mine["rationale"] == other.rationale
        assert (mine["source_type"], mine["assessor_id"]) == (other.source.source_type, other.source.source_id)
        assert mine["span_id"] == other.span_id
        assert mine["overrides"] == other.overrides
        assert mine["valid"] == (other.valid is not False)
    assert ours.filter(pl.col("assessment_id") == span_level.assessment_id)["span_id"].item() == retriever.span_id

    mlflow.update_assessment(trace_id=trace_ids[0], assessment_id=human.assessment_id,
                             assessment=mlflow.entities.Feedback(name="correct", value=False, rationale="outdated policy"))
    mlflow.delete_assessment(trace_id=trace_ids[0], assessment_id=expected.assessment_id)
    _sync(cli, "pull", "run")
    ours = _ours(home)
    updated = ours.filter(pl.col("assessment_id") == human.assessment_id).row(0, named=True)
    assert (json.loads(updated["assessment_value"]), updated["rationale"]) == (False, "outdated policy")
    assert expected.assessment_id not in set(ours["assessment_id"])

    done = cli("mlflow", "pull").stdout.decode()
    assert "0 new or changed landed" in done and "0 new, 0 updated, 0 deleted" in done


def test_pull_keeps_span_events_status_messages_and_every_attribute(home, cli, experiment):
    @mlflow.trace(span_type="TOOL")
    def flaky_lookup(order_id: str) -> dict:
        mlflow.get_current_active_span().set_attributes({"custom.retries": 2, "custom.region": "eu-north"})
        raise TimeoutError(f"order service timed out for {order_id}")

    @mlflow.trace
    def answer(question: str) -> str:
        span = mlflow.get_current_active_span()
        span.add_event(mlflow.entities.SpanEvent("cache_miss", attributes={"key": question, "size": 3}))
        try:
            flaky_lookup("o-9")
        except TimeoutError:
            return "Sorry, try again later."

    answer("Where is o-9?")
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    root = next(s for s in trace.data.spans if s.parent_id is None)
    failed = next(s for s in trace.data.spans if s.name == "flaky_lookup")
    assert failed.status.status_code == "ERROR"

    _sync(cli, "pull", "run")

    row = home.lake().read("traces").filter(pl.col("trace_id") == trace.info.trace_id).row(0, named=True)
    spans = {s["span_id"]: s for s in json.loads(row["spans"])}
    ours_root, ours_failed = spans[root.span_id], spans[failed.span_id]
    assert ours_root["events"] == [{"name": "cache_miss", "timestamp_ns": root.events[0].timestamp,
                                    "attributes": {"key": "Where is o-9?", "size": 3}}]
    assert (ours_failed["status"], ours_failed["status_message"]) == ("ERROR", failed.status.description)
    assert "timed out for o-9" in ours_failed["status_message"]
    [exception] = ours_failed["events"]
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "TimeoutError"
    assert "Traceback" in exception["attributes"]["exception.stacktrace"]
    assert ours_failed["attributes"]["custom.retries"] == 2
    assert ours_failed["attributes"]["custom.region"] == "eu-north"
    assert {k for k in failed.attributes if k not in ("mlflow.spanInputs", "mlflow.spanOutputs")} <= set(ours_failed["attributes"])
    assert ours_failed["inputs"] == {"order_id": "o-9"}
    assert ours_root["status_message"] is None and ours_root["status"] == "OK"


def test_label_in_ours_push_and_read_back(home, cli, experiment):
    run = docs_app()
    trace_ids = [run("Do you ship to Norway?"), run("What is the warranty?")]
    judge = mlflow.log_feedback(trace_id=trace_ids[0], name="helpful", value="no",
                                source=mlflow.entities.AssessmentSource("LLM_JUDGE", "gpt-4o"))
    _sync(cli, "pull", "run")

    expert = AssessmentSource(source_type="HUMAN", source_id="expert@example.com")
    mine = feedback_pipeline.log_feedback(trace_id=trace_ids[1], name="helpful", value="yes", rationale="clear",
                                          source=expert, metadata={"note": "checked"}, free_form=True)
    spanned = mlflow.get_trace(trace_ids[1]).data.spans[1]
    on_span = feedback_pipeline.log_feedback(trace_id=trace_ids[1], name="doc_ok", value=True, source=expert,
                                             span_id=spanned.span_id, free_form=True)
    truth = feedback_pipeline.log_expectation(trace_id=trace_ids[1], name="expected_response", value="2 years",
                                              source=expert)
    corrected = feedback_pipeline.override_feedback(trace_id=trace_ids[0], assessment_id=judge.assessment_id,
                                                    value="yes", rationale="judge missed it", source=expert)
    doomed = feedback_pipeline.log_feedback(trace_id=trace_ids[1], name="tone", value="ok", source=expert, free_form=True)
    _sync(cli, "run")
    pushed = cli("mlflow", "push").stdout.decode()
    assert "4 logged (1 as overrides), 0 updated" in pushed or "5 logged (1 as overrides)" in pushed

    theirs = {(a.metadata or {}).get("feedback_pipeline.assessment_id"): a
              for t in trace_ids for a in mlflow.get_trace(t).search_assessments(all=True)}
    helpful = theirs[mine.assessment_id]
    assert (helpful.name, helpful.feedback.value, helpful.rationale) == ("helpful", "yes", "clear")
    assert (helpful.source.source_type, helpful.source.source_id) == ("HUMAN", "expert@example.com")
    assert helpful.metadata["note"] == "checked"
    assert theirs[on_span.assessment_id].span_id == spanned.span_id
    assert theirs[truth.assessment_id].expectation.value == "2 years"
    assert theirs[corrected.assessment_id].overrides == judge.assessment_id
    assert mlflow.get_assessment(trace_ids[0], judge.assessment_id).valid is False

    feedback_pipeline.delete_assessment(trace_id=trace_ids[1], assessment_id=doomed.assessment_id)
    feedback_pipeline.update_assessment(trace_id=trace_ids[1], assessment_id=mine.assessment_id,
                                        assessment=feedback_pipeline.Feedback(name="helpful", value="very"))
    _sync(cli, "run")
    again = cli("mlflow", "push").stdout.decode()
    assert "0 logged (0 as overrides), 1 updated, 1 deleted" in again
    names = {a.name: a for a in mlflow.get_trace(trace_ids[1]).search_assessments(all=True)}
    assert "tone" not in names and names["helpful"].feedback.value == "very"

    before = _ours(home)
    assert "0 logged (0 as overrides), 0 updated, 0 deleted" in cli("mlflow", "push").stdout.decode()
    _sync(cli, "pull", "run")
    after = _ours(home)
    assert after.drop("updated_at").equals(before.drop("updated_at"))
    assert after.height == before.height


def test_feedback_with_an_error_is_kept_in_and_out(home, cli, experiment, tmp_path):
    from mlflow.entities import AssessmentError as MlflowAssessmentError

    run = docs_app()
    trace_ids = [run("Is the coat waterproof?"), run("Can I change my address?")]
    judge = mlflow.entities.AssessmentSource("LLM_JUDGE", "gpt-4o")
    failed = mlflow.log_feedback(trace_id=trace_ids[0], name="groundedness", source=judge,
                                 error=MlflowAssessmentError("RATE_LIMIT_EXCEEDED", "429 from the judge", "Traceback ..."))
    export = tmp_path / "trace.json"
    export.write_text(mlflow.get_trace(trace_ids[0]).to_json())
    cli("traces", "import", str(export))
    _sync(cli, "run", "pull", "run")

    ours = _ours(home).filter(pl.col("assessment_id") == failed.assessment_id).row(0, named=True)
    assert ours["assessment_value"] is None and ours["valid"]
    assert json.loads(ours["error"]) == {"error_code": "RATE_LIMIT_EXCEEDED", "error_message": "429 from the judge",
                                         "stack_trace": "Traceback ..."}
    assert _ours(home).height == 1
    found = feedback_pipeline.search_assessments(trace_ids=[trace_ids[0]])
    assert json.loads(found["error"].item())["error_code"] == "RATE_LIMIT_EXCEEDED"

    mine = feedback_pipeline.log_feedback(
        trace_id=trace_ids[1], name="groundedness", source=AssessmentSource("CODE", "our-judge"),
        error=feedback_pipeline.AssessmentError("TIMEOUT", "judge took over 30 s"), free_form=True)
    assert mine.value is None and mine.error.error_code == "TIMEOUT"
    assert mine.to_dictionary()["feedback"] == {"value": None, "error": {"error_code": "TIMEOUT",
                                                                           "error_message": "judge took over 30 s"}}
    with pytest.raises(ValueError, match="give a value, or an error"):
        feedback_pipeline.log_feedback(trace_id=trace_ids[1], name="groundedness", free_form=True)
    _sync(cli, "run", "push")
    link = home.lake().read("mlflow_assessment_links").filter(pl.col("assessment_id") == mine.assessment_id)
    pushed = mlflow.get_assessment(trace_ids[1], link["mlflow_assessment_id"].item())
    assert pushed.feedback.value is None
    assert (pushed.feedback.error.error_code, pushed.feedback.error.error_message) == ("TIMEOUT", "judge took over 30 s")

    mlflow.update_assessment(trace_id=trace_ids[0], assessment_id=failed.assessment_id,
                             assessment=mlflow.entities.Feedback(name="groundedness", value=0.8))
    _sync(cli, "pull", "run")
    retried = _ours(home).filter(pl.col("assessment_id") == failed.assessment_id).row(0, named=True)
    assert (json.loads(retried["assessment_value"]), retried["error"]) == (0.8, None)
    before = _ours(home)
    done = cli("mlflow", "push").stdout.decode()
    assert "0 logged (0 as overrides), 0 updated, 0 deleted" in done
    _sync(cli, "pull", "run")
    assert _ours(home).drop("updated_at").equals(before.drop("updated_at"))


def test_label_schemas_from_mlflow_become_ours(home, cli, experiment):
    from mlflow.genai import label_schemas

    label_schemas.create_label_schema("tone", type="feedback", experiment_id=experiment,
                                      input=label_schemas.InputCategorical(options=["friendly", "curt"]),
                                      instruction="How does the answer sound?")
    label_schemas.create_label_schema("passes", type="feedback", experiment_id=experiment,
                                      input=label_schemas.InputPassFail(positive_label="Good", negative_label="Bad"))
    cli("mlflow", "pull")
    tone = feedback_pipeline.get_label_schema("tone")
    assert (tone.type, tone.input.options, tone.instruction) == ("feedback", ["friendly", "curt"], "How does the answer sound?")
    assert feedback_pipeline.get_label_schema("passes").input.positive_label == "Good"


def test_missing_configuration_is_named(home, cli, monkeypatch):
    monkeypatch.delenv("FEEDBACK_MLFLOW_TRACKING_URI", raising=False)
    done = cli("mlflow", "pull", check=False)
    assert done.returncode != 0 and "FEEDBACK_MLFLOW_TRACKING_URI is not set" in done.stderr.decode()
    done = cli("mlflow", "push", "--tracking-uri", "http://127.0.0.1:1", "--experiment-id", "abc", check=False)
    assert "experiment id 'abc'" in done.stderr.decode()


def test_dataset_published_after_the_gate_and_evaluated_in_mlflow(home, cli, experiment):
    import dagster as dg

    from tests.datasets_world import expectation, materialize, trace, write_world

    Path(home.root).mkdir(parents=True, exist_ok=True)
    (Path(home.root) / "datasets.yaml").write_text(
        f"datasets:\n  summaries:\n    mlflow: {{experiment_id: '{experiment}', name: shop-summaries}}\n"
    )
    lake = home.lake()
    write_world(
        lake,
        [trace("tr-1", "refund?", "No refunds."), trace("tr-2", "ship?", "Tomorrow.")],
        [expectation("a-1", "tr-1", "expected_summary", "No refunds."),
         expectation("a-2", "tr-2", "expected_summary", "Next week.")],
    )
    with dg.instance_for_test() as instance:
        result = materialize(lake, "summaries", instance)
    assert result.success
    ours = feedback_pipeline.load_evaluation_dataset("summaries")

    from mlflow.genai import datasets as mlflow_datasets
    from mlflow.genai.scorers import scorer

    theirs = mlflow_datasets.get_dataset(name="shop-summaries")
    assert theirs.tags["feedback_pipeline.delta_version"] == str(ours.version)
    frame = theirs.to_df().sort_values("source_id")
    assert list(frame["source_type"]) == ["TRACE", "TRACE"] and list(frame["source_id"]) == ["tr-1", "tr-2"]
    assert [t["feedback_pipeline.dataset_record_id"] for t in frame["tags"]] == list(ours.to_df().sort_values("source_id")["dataset_record_id"])
    assert list(ours.to_df().columns) == list(theirs.to_df().columns)

    @scorer
    def matches_expected(outputs, expectations) -> bool:
        return outputs == expectations["expected_summary"]

    evaluated = mlflow.genai.evaluate(data=theirs, scorers=[matches_expected])
    assert evaluated.metrics["matches_expected/mean"] == pytest.approx(0.5)

    again = mlflow_datasets.create_dataset(name="raw-records", experiment_id=experiment)
    again.merge_records(ours.records(full=True))
    again.merge_records(ours.to_pandas())
    assert len(again.to_df()) == 2

    done = cli("mlflow", "publish", "summaries").stdout.decode()
    assert "2 records merged, 0 deleted" in done


def test_every_export_shape_an_mlflow_user_has_imports(home, cli, experiment, mlflow_uri, tmp_path):
    import subprocess
    import sys
    import urllib.request

    run = docs_app()
    trace_ids = [run("Is there a size guide?"), run("Can I pay by invoice?"), run("Do you gift wrap?")]
    wrapper = tmp_path / "search.json"
    subprocess.run([sys.executable, "-m", "mlflow", "traces", "search", "--experiment-id", experiment,
                    "--output", "json", "--max-results", "100"], check=True, stdout=wrapper.open("wb"),
                   env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    frame = tmp_path / "frame.json"
    mlflow.search_traces(locations=[experiment], filter_string=f"trace.request_id = '{trace_ids[1]}'").to_json(
        frame, orient="records")
    rest = tmp_path / "rest.json"
    with urllib.request.urlopen(f"{mlflow_uri}/api/3.0/mlflow/traces/{trace_ids[2]}") as answer:
        rest.write_bytes(answer.read())
    for path in (wrapper, frame, rest):
        cli("traces", "import", str(path))
    cli("run")
    traces = home.lake().read("traces")
    assert set(traces["trace_id"]) == set(trace_ids)
    assert home.lake().read("trace_rejections").height == 0
    chat = traces.filter(pl.col("trace_id") == trace_ids[0])["chat_messages"].item().to_list()
    assert [m["role"] for m in chat] == ["system", "user", "assistant"]
    assert chat[1]["content"] == "Is there a size guide?"


def test_sensor_pulls_and_the_asset_pushes(home, cli, experiment):
    import dagster as dg

    from feedback_pipeline_dagster.assets.mlflow import mlflow_assessments
    from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
    from feedback_pipeline_dagster.sensors import mlflow as mlflow_sensors

    run = docs_app()
    trace_ids = [run(f"Question {i}?") for i in range(3)]
    resources = {"lake": LakeResource(), "landing": LandingResource()}
    with dg.instance_for_test() as instance:
        tick = mlflow_sensors.mlflow_traces_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert "read 3 traces" in tick.skip_message and "3 landed" in tick.skip_message
        again = mlflow_sensors.mlflow_traces_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert "0 landed" in again.skip_message
        cli("run")
        mine = feedback_pipeline.log_feedback(trace_id=trace_ids[2], name="helpful", value=True, free_form=True,
                                              source=AssessmentSource(source_type="HUMAN", source_id="eve@example.com"))
        cli("run")
        result = dg.materialize([mlflow_assessments], resources=resources, instance=instance)
    metadata = result.asset_materializations_for_node("mlflow_assessments")[0].metadata
    assert metadata["logged"].value == 1 and metadata["deleted"].value == 0
    links = home.lake().read("mlflow_assessment_links")
    pushed = mlflow.get_assessment(trace_ids[2], links["mlflow_assessment_id"].item())
    assert pushed.metadata["feedback_pipeline.assessment_id"] == mine.assessment_id
