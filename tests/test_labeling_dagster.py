"""The labeling assets, sensor and schedule on a real DagsterInstance and real Delta tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

import feedback_pipeline as fp
from feedback_pipeline_dagster.assets.labeling import label_schemas, labeling_sessions, session_items
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import item_status, sessions
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.labeling_file import apply_labeling_file
from feedback_pipeline_dagster.sensors.labeling import labeling_definitions_sensor, pending_run_requests, session_refresh_schedule
from tests.labeling_traces import trace_rows, write_traces

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = "labeling_sessions"




@pytest.fixture()
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def resources(home: FeedbackHome) -> dict:
    return {"lake": LakeResource(uri=home.lake_uri), "landing": LandingResource(uri=home.landing_uri)}


def materialize_definitions(home, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize([label_schemas, labeling_sessions], resources=resources(home), instance=instance)


def materialize_items(home, instance, session_id: str) -> dict:
    result = dg.materialize([session_items], partition_key=session_id, resources=resources(home), instance=instance)
    assert result.success
    return result.asset_materializations_for_node("session_items")[0].metadata


def items(home, session_id: str) -> pl.DataFrame:
    return home.lake().read(sessions.ITEMS_TABLE).filter(pl.col("session_id") == session_id).sort("trace_id")


def test_definition_assets_write_the_folded_tables_and_rerunning_writes_no_version(home, instance):
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    fp.create_label_schema("summary_quality", title="Better?", input=fp.InputCategorical(["Yes", "No", "Unsure"]), overwrite=True)
    assert materialize_definitions(home, instance).success
    lake = home.lake()
    table = lake.read("label_schemas").filter(pl.col("name") == "summary_quality").sort("version")
    assert table.select("version", "title", "input_type", "deleted").rows() == [
        (1, "Is this summary concise and helpful?", "categorical", False),
        (2, "Better?", "categorical", False),
    ]
    assert lake.read("labeling_sessions")["name"].to_list() == ["label_summaries"]
    versions = (lake.version("label_schemas"), lake.version("labeling_sessions"))
    again = materialize_definitions(home, instance)
    assert (lake.version("label_schemas"), lake.version("labeling_sessions")) == versions
    metadata = again.asset_materializations_for_node("label_schemas")[0].metadata
    assert metadata["rows_written"].value == 0 and metadata["delta_version"].value == versions[0]


def test_sensor_adds_a_partition_per_new_session_and_requests_runs(home, instance):
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    session = fp.get_labeling_session("label_summaries")
    context = dg.build_sensor_context(instance=instance, resources={"landing": LandingResource(uri=home.landing_uri)})
    result = labeling_definitions_sensor(context)
    assert [r.job_name for r in result.run_requests] == ["labeling_definitions_job", "session_items_job"]
    assert result.run_requests[1].partition_key == session.labeling_session_id
    assert list(result.dynamic_partitions_requests[0].partition_keys) == [session.labeling_session_id]
    instance.add_dynamic_partitions(PARTITIONS, list(result.dynamic_partitions_requests[0].partition_keys))
    assert instance.get_dynamic_partitions(PARTITIONS) == [session.labeling_session_id]

    quiet = labeling_definitions_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={"landing": LandingResource(uri=home.landing_uri)}))
    assert isinstance(quiet, dg.SkipReason)

    session.add_traces(["tr-0001"])
    later = labeling_definitions_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={"landing": LandingResource(uri=home.landing_uri)}))
    assert [r.partition_key for r in later.run_requests if r.job_name == "session_items_job"] == [session.labeling_session_id]
    assert later.dynamic_partitions_requests == []
    assert later.run_requests[0].run_key != result.run_requests[0].run_key


def test_session_items_snapshot_refresh_and_immutability(home, instance):
    write_traces(home.lake(), trace_rows(10))
    fp.create_label_schema("summary_quality", title="Good?", input=fp.InputCategorical(["Yes", "No"]))
    session = fp.create_labeling_session("s", label_schemas=["summary_quality"], trace_filter={"tags": {"env": "staging"}})
    session.add_traces(["tr-0001", "tr-0100"])
    sid = session.labeling_session_id
    instance.add_dynamic_partitions(PARTITIONS, [sid])

    metadata = materialize_items(home, instance, sid)
    assert metadata["items_added"].value == 6 and metadata["missing_trace_ids"].value == 1
    first = items(home, sid)
    assert first["trace_id"].to_list() == ["tr-0000", "tr-0001", "tr-0002", "tr-0004", "tr-0006", "tr-0008"]
    version = home.lake().version(sessions.ITEMS_TABLE)

    # a later change to a trace does not alter the copy; a refresh with nothing new writes no version
    write_traces(home.lake(), trace_rows(10, answer="Rewritten later"))
    metadata = materialize_items(home, instance, sid)
    assert metadata["items_added"].value == 0 and metadata["delta_version"].value == version
    assert items(home, sid).equals(first)

    # new matching traces (and the once-missing id) are appended; labeled items stay
    home.lake().append("assessments", pl.DataFrame({"trace_id": ["tr-0000"], "session": ["s"], "kind": ["feedback"], "assessor_id": ["alice"], "valid": [True]}))
    write_traces(home.lake(), trace_rows(4, start=10).vstack(trace_rows(1, start=100)))
    metadata = materialize_items(home, instance, sid)
    assert metadata["items_added"].value == 3 and metadata["missing_trace_ids"].value == 0
    after = items(home, sid)
    assert after["trace_id"].to_list() == ["tr-0000", "tr-0001", "tr-0002", "tr-0004", "tr-0006", "tr-0008", "tr-0010", "tr-0012", "tr-0100"]
    assert after.filter(pl.col("trace_id") == "tr-0000")["response_preview"].item() == "Summary: all good (0)"
    status = item_status.item_status(after, home.lake().read("assessments"), 1)
    assert status.filter(pl.col("trace_id") == "tr-0000")["status"].item() == "completed"


def test_a_deleted_session_keeps_its_items_and_is_not_refreshed(home, instance):
    write_traces(home.lake(), trace_rows(4))
    session = fp.create_labeling_session("s", trace_filter={"state": "OK"})
    instance.add_dynamic_partitions(PARTITIONS, [session.labeling_session_id])
    materialize_items(home, instance, session.labeling_session_id)
    fp.delete_labeling_session("s")
    write_traces(home.lake(), trace_rows(2, start=4))
    metadata = materialize_items(home, instance, session.labeling_session_id)
    assert metadata["session_deleted_or_unknown"].value is True
    assert items(home, session.labeling_session_id).height == 4


def test_schedule_requests_refreshes_for_due_sessions_with_a_filter(home, instance):
    hourly = fp.create_labeling_session("hourly", trace_filter={"tags": {"env": "staging"}})
    quarter = fp.create_labeling_session("quarter", trace_filter={"state": "OK"}, refresh_cron="*/15 * * * *")
    fp.create_labeling_session("no_filter").add_traces(["tr-0001"])
    landing = {"landing": LandingResource(uri=home.landing_uri)}

    top = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    runs = session_refresh_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=top, resources=landing))
    assert sorted(r.partition_key for r in runs) == sorted([hourly.labeling_session_id, quarter.labeling_session_id])
    assert all(r.run_key.endswith("2026-11-22T10:00") for r in runs)
    assert set(instance.get_dynamic_partitions(PARTITIONS)) == {hourly.labeling_session_id, quarter.labeling_session_id}

    runs = session_refresh_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=top.replace(minute=15), resources=landing))
    assert [r.partition_key for r in runs] == [quarter.labeling_session_id]
    skipped = session_refresh_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=top.replace(minute=7), resources=landing))
    assert isinstance(skipped, dg.SkipReason)


def test_pending_run_requests_until_everything_is_processed(home, instance):
    write_traces(home.lake(), trace_rows(12))
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    sid = fp.get_labeling_session("label_summaries").labeling_session_id
    runs = pending_run_requests(home.lake(), home.landing(), instance)
    assert [(r.job_name, r.partition_key) for r in runs] == [("labeling_definitions_job", None), ("session_items_job", sid)]
    assert instance.get_dynamic_partitions(PARTITIONS) == [sid]
    assert pending_run_requests(home.lake(), home.landing(), instance)[0].run_key == runs[0].run_key

    materialize_definitions(home, instance)
    materialize_items(home, instance, sid)
    assert pending_run_requests(home.lake(), home.landing(), instance) == []
    assert items(home, sid)["trace_id"].to_list() == ["tr-0000", "tr-0002", "tr-0004", "tr-0008", "tr-0010"]  # staging and OK

    fp.get_labeling_session("label_summaries").set_assigned_users(["carol@example.com"])
    assert [r.job_name for r in pending_run_requests(home.lake(), home.landing(), instance)] == ["labeling_definitions_job"]


def test_the_code_location_loads_with_the_labeling_definitions(instance):
    from feedback_pipeline_dagster.definitions import defs

    repository = defs.get_repository_def()
    assert {"label_schemas", "labeling_sessions", "session_items"} <= {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    assert repository.get_sensor_def("labeling_definitions_sensor")
    assert repository.get_schedule_def("session_refresh_schedule")
    assert repository.get_job("session_items_job").partitions_def.name == PARTITIONS


def test_feedback_pipeline_run_snapshots_the_example_session_from_real_ingested_traces(home):
    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces

    import_traces([str(REPO / "tests/fixtures/traces.jsonl")], home.landing())
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    report = run_pending(home, echo=lambda *args, **kwargs: None)
    assert not report.failures and report.runs >= 3  # traces, definitions, the session partition (and later stages)
    session = fp.get_labeling_session("label_summaries")
    snapshot = items(home, session.labeling_session_id)
    assert snapshot.height == 10 and snapshot["source"].unique().to_list() == ["filter"]
    assert snapshot["tags"].str.json_path_match("$.env").unique().to_list() == ["staging"]
    assert snapshot["state"].unique().to_list() == ["OK"]
    assert snapshot["chat_messages"].list.len().min() > 0
    assert run_pending(home, echo=lambda *args, **kwargs: None).runs == 0


def test_sessions_refreshed_at_the_same_time_all_get_their_items(home, instance):
    from concurrent.futures import ThreadPoolExecutor

    write_traces(home.lake(), trace_rows(30))
    first = fp.create_labeling_session("first", trace_filter={"tags": {"env": "prod"}})
    instance.add_dynamic_partitions(PARTITIONS, [first.labeling_session_id])
    materialize_items(home, instance, first.labeling_session_id)  # creates the table
    others = [fp.create_labeling_session(f"s{i}", trace_filter={"model_id": f"m-{i % 2}"}) for i in range(4)]

    def refresh(session) -> bool:
        with dg.DagsterInstance.ephemeral() as own:
            own.add_dynamic_partitions(PARTITIONS, [session.labeling_session_id])
            result = dg.materialize([session_items], partition_key=session.labeling_session_id, resources=resources(home), instance=own)
            return result.success and not result.filter_events(lambda e: e.event_type_value == "STEP_UP_FOR_RETRY")

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(refresh, others))
    counts = home.lake().read(sessions.ITEMS_TABLE).group_by("session_name").len().sort("session_name").rows()
    assert counts == [("first", 15), ("s0", 15), ("s1", 15), ("s2", 15), ("s3", 15)]
