"""Dagster wiring: dynamic partitions per dataset name, the sensor, pending run requests, the code location."""

from __future__ import annotations

import dagster as dg

from assets.resources import LakeResource
from sensors.datasets import evaluation_datasets_sensor, pending_run_requests
from tests.datasets_world import disagreeing_world, expectation, materialize, session, trace, write_world


def test_code_location_has_the_asset_blocking_gate_job_and_sensor():
    from feedback_pipeline.definitions import defs

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
        assert metadata["disagreements"].value == {"expected_summary": 1, "topic": 1}
    from feedback_pipeline import load_evaluation_dataset

    assert load_evaluation_dataset("summaries").records()[0]["expectations"] == {"expected_summary": "long", "topic": "billing"}


def test_feedback_pipeline_run_builds_pending_datasets_once(home, cli):
    lake = home.lake()
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "topic", "billing")])
    first = cli("run")
    assert "evaluation_datasets_job summaries:" in first.stdout.decode()
    assert "record_count=1" in first.stdout.decode()
    assert cli("run").stdout.decode().strip() == "nothing pending"
    listed = cli("datasets", "list").stdout.decode().splitlines()
    assert listed[1].split() == ["summaries", "0", "1"]
