"""Evaluation datasets: what goes in, how versions grow, the publish gate, disagreement rules, loading."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest

import feedback_pipeline
from feedback_pipeline import datasets
from tests.datasets_world import disagreeing_world, expectation, item, label_schema, materialize, session, trace, write_world

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def build(lake, name="summaries", config=None, previous=None):
    return datasets.build_dataset(
        name,
        traces=lake.read("traces"),
        assessments=lake.read("assessments"),
        labeling_sessions=lake.read("labeling_sessions"),
        session_items=lake.read("session_items"),
        label_schemas=lake.read("label_schemas"),
        previous=previous,
        now=NOW,
        config=config,
    )


def expectations_by_trace(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["trace_id"]: json.loads(row["expectations"]) for row in frame.iter_rows(named=True)}


def test_records_hold_exactly_the_valid_human_expectations(home):
    lake = home.lake()
    write_world(
        lake,
        [trace("tr-1", "refund?", "No refunds."), trace("tr-2", "ship?", "Tomorrow.", 1)],
        [
            expectation("a-1", "tr-1", "expected_summary", "Refunds are not offered", 0),
            expectation("a-2", "tr-1", "topic", "billing", 1),
            expectation("a-3", "tr-2", "topic", "shipping", 0, valid=False),
            expectation("a-4", "tr-2", "topic", "other", 1, overrides="a-3"),
            expectation("a-5", "tr-2", "expected_summary", "judge says", 2, source_type="LLM_JUDGE"),
            expectation("a-6", "tr-2", "expected_summary", "code says", 2, source_type="CODE"),
            expectation("a-7", "tr-2", "helpfulness", "yes", 3, kind="feedback"),
        ],
    )
    result = build(lake)
    assert expectations_by_trace(result.records) == {
        "tr-1": {"expected_summary": "Refunds are not offered", "topic": "billing"},
        "tr-2": {"topic": "other"},
    }
    by_trace = {r["trace_id"]: r for r in result.records.iter_rows(named=True)}
    assert json.loads(by_trace["tr-2"]["expectation_assessment_ids"]) == {"topic": ["a-4"]}
    assert json.loads(by_trace["tr-1"]["source"]) == {"trace_id": "tr-1", "session": "session-s1"}
    assert json.loads(by_trace["tr-1"]["outputs"]) == "No refunds."
    assert (result.added, result.updated, result.removed) == (2, 0, 0)
    assert result.coverage == {"expected_summary": 1, "topic": 2}


def test_record_ids_are_mlflows_input_hash_and_shared_inputs_merge(home):
    lake = home.lake()
    write_world(
        lake,
        [
            trace("tr-old", "same question", "old answer", 0, tags={"a": "1", "b": "old"}),
            trace("tr-new", "same question", "new answer", 5, tags={"b": "new", "c": "3"}),
        ],
        [
            expectation("a-1", "tr-old", "expected_summary", "first", 0),
            expectation("a-2", "tr-new", "topic", "billing", 1),
        ],
    )
    [record] = build(lake).records.iter_rows(named=True)
    digest = hashlib.sha256(json.dumps({"question": "same question"}, sort_keys=True).encode()).hexdigest()
    assert record["dataset_record_id"] == "dr-" + digest[:32]
    assert json.loads(record["outputs"]) == "new answer"
    assert json.loads(record["expectations"]) == {"expected_summary": "first", "topic": "billing"}
    assert json.loads(record["tags"]) == {"a": "1", "b": "new", "c": "3"}
    assert record["trace_id"] == "tr-new"


def test_a_dataset_draws_on_every_live_session_that_names_it(home):
    lake = home.lake()
    write_world(
        lake,
        [trace("tr-1", "q1", "a"), trace("tr-2", "q2", "b"), trace("tr-3", "q3", "c"), trace("tr-4", "q4", "d")],
        [expectation(f"a-{i}", f"tr-{i}", "topic", "billing") for i in range(1, 5)],
        sessions=[
            session("s1", "summaries"),
            session("s2", "summaries"),
            session("s3", "summaries", deleted=True),
            session("s4", "other-dataset"),
        ],
        items=[item("s1", "tr-1"), item("s2", "tr-2"), item("s3", "tr-3"), item("s4", "tr-4")],
    )
    result = build(lake)
    assert sorted(result.records.get_column("trace_id").to_list()) == ["tr-1", "tr-2"]
    assert result.sessions == ["session-s1", "session-s2"]
    assert datasets.named_datasets(lake.read("labeling_sessions")) == ["other-dataset", "summaries"]


def test_latest_wins_by_default_and_disagreements_are_counted(home):
    lake = home.lake()
    disagreeing_world(lake)
    result = build(lake)
    [record] = result.records.iter_rows(named=True)
    assert json.loads(record["expectations"]) == {"expected_summary": "long", "topic": "shipping"}
    assert json.loads(record["expectation_assessment_ids"]) == {"expected_summary": ["a-5"], "topic": ["a-3"]}
    assert result.disagreements == {"expected_summary": 1, "topic": 1}
    metadata = datasets.build_metadata(result, datasets.AuditResult(True), 0)
    assert metadata["disagreement_total"] == 2


def test_majority_applies_to_categorical_schemas_and_latest_to_free_text(home):
    lake = home.lake()
    disagreeing_world(lake)
    result = build(lake, config=datasets.DatasetConfig(disagreement="majority"))
    [record] = result.records.iter_rows(named=True)
    assert json.loads(record["expectations"]) == {"expected_summary": "long", "topic": "billing"}
    assert json.loads(record["expectation_assessment_ids"]) == {"expected_summary": ["a-5"], "topic": ["a-1", "a-2"]}


def test_disagreement_rule_comes_from_datasets_yaml(home, tmp_path, monkeypatch):
    config = tmp_path / "datasets.yaml"
    config.write_text("datasets:\n  summaries:\n    disagreement: majority\n")
    assert datasets.load_config("summaries", config) == datasets.DatasetConfig(disagreement="majority")
    assert datasets.load_config("other", config) == datasets.DatasetConfig()
    config.write_text("datasets:\n  summaries:\n    disagreement: loudest\n")
    with pytest.raises(ValueError, match="disagreement 'loudest': expected one of latest, majority"):
        datasets.load_config("summaries", config)


def test_versions_grow_only_on_change_and_old_versions_read_back(home, instance):
    lake = home.lake()
    traces = [trace("tr-1", "q1", "a"), trace("tr-2", "q2", "b", 1)]
    write_world(lake, traces, [expectation("a-1", "tr-1", "topic", "billing")])
    first = materialize(lake, "summaries", instance)
    assert first.success
    v0 = feedback_pipeline.load_evaluation_dataset("summaries")
    assert v0.version == 0
    v0_frame = v0.to_polars()

    again = materialize(lake, "summaries", instance)
    assert again.success
    assert lake.version("evaluation_datasets/summaries") == 0
    [event] = again.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["changed"].value is False and metadata["delta_version"].value == 0

    write_world(
        lake,
        traces,
        [expectation("a-1", "tr-1", "topic", "billing"), expectation("a-2", "tr-2", "topic", "shipping", 2)],
    )
    third = materialize(lake, "summaries", instance)
    metadata = third.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["delta_version"].value == 1
    assert (metadata["added"].value, metadata["updated"].value, metadata["removed"].value) == (1, 0, 0)
    assert metadata["record_count"].value == 2
    assert "| dataset_record_id |" in metadata["preview"].value

    current = feedback_pipeline.load_evaluation_dataset("summaries")
    assert current.version == 1
    assert expectations_by_trace(current.to_polars())["tr-2"] == {"topic": "shipping"}
    old = feedback_pipeline.load_evaluation_dataset("summaries", version=0)
    assert old.to_polars().equals(v0_frame)
    assert v0_frame.get_column("trace_id").to_list() == ["tr-1"]
    assert current.to_polars().filter(pl.col("trace_id") == "tr-1").equals(v0_frame)
    assert feedback_pipeline.list_evaluation_datasets() == ["summaries"]


def test_removed_expectations_leave_the_next_version(home, instance):
    lake = home.lake()
    traces = [trace("tr-1", "q1", "a")]
    write_world(lake, traces, [expectation("a-1", "tr-1", "topic", "billing"), expectation("a-2", "tr-1", "expected_summary", "x")])
    materialize(lake, "summaries", instance)
    write_world(lake, traces, [expectation("a-1", "tr-1", "topic", "billing"), expectation("a-2", "tr-1", "expected_summary", "x", valid=False)])
    materialize(lake, "summaries", instance)
    assert feedback_pipeline.load_evaluation_dataset("summaries").records() == [
        {"inputs": {"question": "q1"}, "outputs": "a", "expectations": {"topic": "billing"}}
    ]
    write_world(lake, traces, [], sessions=[session("s1", "summaries")], items=[])
    result = materialize(lake, "summaries", instance)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert (metadata["removed"].value, metadata["record_count"].value, metadata["delta_version"].value) == (1, 0, 2)


def test_gate_blocks_a_bad_candidate_and_keeps_the_current_version(home, instance):
    lake = home.lake()
    schemas = [
        label_schema("topic", "categorical", {"options": ["billing", "shipping"]}),
        label_schema("rating", "numeric", {"min_value": 1, "max_value": 5}),
        label_schema("tags", "categorical_list", {"options": ["a", "b"]}),
    ]
    traces = [trace("tr-1", "q1", "a"), trace("tr-2", "q2", "b")]
    good = [
        expectation("a-1", "tr-1", "topic", "billing"),
        expectation("a-2", "tr-1", "rating", 4),
        expectation("a-3", "tr-2", "tags", ["a", "b"]),
    ]
    write_world(lake, traces, good, schemas=schemas)
    assert materialize(lake, "summaries", instance).success
    before = feedback_pipeline.load_evaluation_dataset("summaries").to_polars()

    bad = [
        expectation("a-1", "tr-1", "topic", "refunds"),
        expectation("a-2", "tr-1", "rating", 9),
        expectation("a-3", "tr-2", "tags", ["a", "z"]),
        expectation("a-4", "tr-2", "rating", "five"),
    ]
    write_world(lake, traces, bad, schemas=schemas)
    result = materialize(lake, "summaries", instance)
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "publish_gate" and not check.passed
    assert "expectation 'topic': values must be one of" in check.description
    assert "refunds" in check.description
    assert "expectation 'rating': values must be between 1.0 and 5.0" in check.description
    assert "expectation 'rating': values must be number" in check.description
    assert "expectation 'tags': values must be one of" in check.description
    assert result.get_asset_materialization_events() == []
    assert lake.version("evaluation_datasets/summaries") == 0
    assert feedback_pipeline.load_evaluation_dataset("summaries").to_polars().equals(before)


def test_gate_blocks_missing_inputs_and_duplicate_keys(home):
    lake = home.lake()
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "topic", "billing")])
    result = build(lake)
    doubled = pl.concat([result.records, result.records.with_columns(pl.lit("{}").alias("inputs"))])
    broken = datasets.DatasetBuild(
        name="summaries", records=doubled, expectation_values=result.expectation_values,
        added=2, updated=0, removed=0, disagreements={}, coverage={}, sessions=[],
    )
    audit = datasets.audit_dataset(broken, lake.read("label_schemas"))
    assert not audit.passed
    assert any(f.startswith("inputs empty") for f in audit.failures)
    assert any(f.startswith("duplicate record keys") for f in audit.failures)
    assert datasets.audit_dataset(result, lake.read("label_schemas")).passed


def test_loading_unknown_dataset_says_which_exist(home, instance):
    lake = home.lake()
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "topic", "billing")])
    materialize(lake, "summaries", instance)
    with pytest.raises(LookupError, match=r"'nope' does not exist .*\(datasets: summaries\)"):
        feedback_pipeline.load_evaluation_dataset("nope")
    with pytest.raises(ValueError, match="dataset name '../x'"):
        feedback_pipeline.load_evaluation_dataset("../x")


def test_records_and_pandas_are_mlflow_shaped(home, instance):
    lake = home.lake()
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "topic", "billing")])
    materialize(lake, "summaries", instance, run_config={"ops": {"evaluation_datasets": {"config": {"include_outputs": False}}}})
    dataset = feedback_pipeline.load_evaluation_dataset("summaries")
    assert dataset.records() == [{"inputs": {"question": "q1"}, "expectations": {"topic": "billing"}}]
    frame = dataset.to_pandas()
    assert {"dataset_record_id", "inputs", "outputs", "expectations", "tags", "source", "created_time"} <= set(frame.columns)
    assert frame.loc[0, "source"] == {"source_type": "TRACE", "source_data": {"trace_id": "tr-1", "session": "session-s1"}}
