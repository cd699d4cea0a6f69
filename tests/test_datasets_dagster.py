"""Dagster wiring: dynamic partitions per dataset name, the sensor, pending run requests, the code location."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl

from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import load_evaluation_dataset
from feedback_pipeline_dagster.sensors.datasets import evaluation_datasets_sensor, pending_run_requests
from tests.datasets_world import disagreeing_world, expectation, materialize, session, trace, write_world

REPO = Path(__file__).resolve().parents[1]


def test_code_location_has_the_asset_blocking_gate_job_and_sensor():
    from feedback_pipeline_dagster.definitions import defs

    job = defs.resolve_job_def("evaluation_datasets_job")
    assert job.partitions_def.name == "evaluation_datasets"
    assert defs.get_sensor_def("evaluation_datasets_sensor")
    [spec] = defs.get_assets_def("evaluation_datasets").check_specs
    assert spec.name == "publish_gate" and spec.blocking


def test_sensor_adds_partitions_and_requests_builds_only_when_inputs_change(home):
    lake = home.lake()
    write_world(
        lake,
        [trace("tr-1", "q1", "a"), trace("tr-2", "q2", "b")],
        [expectation("a-1", "tr-1", "topic", "billing")],
        sessions=[session("s1", "summaries"), session("s2", None), session("s3", "faq", deleted=True)],
    )
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource(uri=lake.uri)})
        result = evaluation_datasets_sensor(context)
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["summaries"]]
        [request] = result.run_requests
        assert (request.partition_key, request.job_name) == ("summaries", "evaluation_datasets_job")

        assert [r.run_key for r in pending_run_requests(lake, home.landing(), instance)] == [request.run_key]
        assert instance.get_dynamic_partitions("evaluation_datasets") == ["summaries"]

        assert materialize(lake, "summaries", instance).success
        assert pending_run_requests(lake, home.landing(), instance) == []
        assert isinstance(evaluation_datasets_sensor(context), dg.SkipReason)

        write_world(
            lake,
            [trace("tr-1", "q1", "a"), trace("tr-2", "q2", "b")],
            [expectation("a-1", "tr-1", "topic", "billing"), expectation("a-2", "tr-2", "topic", "other")],
            sessions=[session("s1", "summaries")],
        )
        [again] = pending_run_requests(lake, home.landing(), instance)
        assert again.partition_key == "summaries" and again.run_key != request.run_key
        assert materialize(lake, "summaries", instance).success
        assert pending_run_requests(lake, home.landing(), instance) == []
        assert lake.version("evaluation_datasets/summaries") == 1


def test_run_config_overrides_the_disagreement_rule(home):
    lake = home.lake()
    disagreeing_world(lake)
    with dg.instance_for_test() as instance:
        result = materialize(
            lake, "summaries", instance, run_config={"ops": {"evaluation_datasets": {"config": {"disagreement": "majority"}}}}
        )
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["disagreement_total"].value == 2
        assert metadata["disagreements"].value == (
            "| expectation | records whose reviewers disagree |\n|---|---|\n| expected_summary | 1 |\n| topic | 1 |"
        )

    assert load_evaluation_dataset("summaries").records()[0]["expectations"] == {"expected_summary": "long", "topic": "billing"}


def test_run_builds_the_sample_dataset_from_real_ingestion_labeling_and_assessments(home, cli):
    samples = REPO / "feedback_pipeline" / "sample_data"
    cli("traces", "import", str(samples / "mlflow_traces.jsonl"))
    cli("apply", str(samples / "labeling.yaml"))
    first = cli("run").stdout.decode()
    assert "datasets: 1 run(s); evaluation_datasets record_count=" in first

    lake = home.lake()
    items = lake.read("session_items").get_column("trace_id")
    expected = (
        lake.read("assessments")
        .filter(
            pl.col("trace_id").is_in(items.implode())
            & (pl.col("kind") == "expectation") & pl.col("valid") & (pl.col("source_type") == "HUMAN")
        )
        .select("trace_id", "assessment_name", "assessment_value")
    )
    assert expected.height > 0
    dataset = load_evaluation_dataset("summaries")
    stored = dataset.to_polars()
    assert sorted(stored.get_column("trace_id").to_list()) == sorted(expected.get_column("trace_id").unique().to_list())
    by_trace = dict(zip(stored.get_column("trace_id").to_list(), dataset.records(), strict=True))
    for trace_id, name, value in expected.iter_rows():
        assert by_trace[trace_id]["expectations"][name] == json.loads(value)

    assert cli("run").stdout.decode().strip() == "nothing pending"
    listed = cli("datasets", "list").stdout.decode().splitlines()
    assert listed[1].split() == ["summaries", "0", str(stored.height)]
