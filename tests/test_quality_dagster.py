"""Label quality in the pipeline: the assets on a real lake and Dagster instance, what is pending, the
sensor, the CLI, and datasets taking an adjudicated value."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import agreement, datasets, judge_alignment
from feedback_pipeline_dagster.sensors.quality import pending_run_requests, quality_on_assessments_sensor
from tests.datasets_world import label_schema, session, trace, write_world
from tests.quality_world import answer, gold

TOPIC = label_schema("topic", "categorical", {"options": ["billing", "shipping", "other"]})
VERDICT = label_schema("verdict", "pass_fail", {}, kind="feedback")


def world(lake, extra: list[dict] | None = None) -> None:
    """Session s1 (name session-s1): three reviewers on three traces, and a judge on the verdicts."""
    rows = []
    for who, topics, verdicts in (
        ("alice", ["billing", "billing", "other"], [True, False, True]),
        ("bob", ["billing", "shipping", "other"], [True, False, False]),
        ("carol", ["billing", "shipping", None], [True, True, None]),
    ):
        for index, (topic, verdict) in enumerate(zip(topics, verdicts, strict=True)):
            if topic is not None:
                rows.append(answer(who, f"tr-{index}", "topic", topic, session="session-s1", kind="expectation"))
                rows.append(answer(who, f"tr-{index}", "verdict", verdict, session="session-s1"))
    rows += [answer("judge-v1", f"tr-{i}", "verdict", v, session=None, source_type="LLM_JUDGE") for i, v in enumerate([True, True, True])]
    definition = {**session("s1", "summaries"), "label_schemas": ["topic", "verdict"], "reviews_per_item": 3}
    write_world(lake, [trace(f"tr-{i}", f"q{i}", "a") for i in range(3)], rows + (extra or []),
                sessions=[definition], schemas=[TOPIC, VERDICT])


def run(request: dg.RunRequest, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from feedback_pipeline_dagster.definitions import defs

    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags
    )


def test_quality_assets_compute_what_changed_and_report_numeric_metadata(home):
    lake = home.lake()
    world(lake)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("labeling_sessions", ["s1"])
        requests = pending_run_requests(lake, home.landing(), instance)
        assert sorted((r.job_name, r.partition_key) for r in requests) == [("judge_alignment_job", None), ("label_agreement_job", "s1")]
        results = {r.job_name: run(r, instance) for r in requests}
        assert all(result.success for result in results.values())
        assert pending_run_requests(lake, home.landing(), instance) == []

        metadata = results["label_agreement_job"].get_asset_materialization_events()[0].materialization.metadata
        assert isinstance(metadata["alpha/topic"].value, float) and isinstance(metadata["percent_agreement/verdict"].value, float)
        assert "krippendorff_alpha" in metadata["agreement"].value
        table = lake.read(agreement.TABLE)
        assert set(table.get_column("label_schema")) == {"topic", "verdict"}
        assert lake.read(agreement.PAIRS_TABLE).height == 6  # 3 reviewer pairs x 2 questions
        alignment = lake.read(judge_alignment.TABLE).to_dicts()
        assert [(r["name"], r["judge"], r["traces"]) for r in alignment] == [("verdict", "judge-v1", 3)]
        judged = results["judge_alignment_job"].get_asset_materialization_events()[0].materialization.metadata
        assert isinstance(judged["agreement/verdict/judge-v1"].value, float)

        world(lake, [answer("dave", "tr-2", "topic", "billing", session="session-s1", kind="expectation")])
        again = pending_run_requests(lake, home.landing(), instance)
        assert sorted((r.job_name, r.partition_key) for r in again) == [("judge_alignment_job", None), ("label_agreement_job", "s1")]

        context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource(uri=lake.uri)})
        assert isinstance(quality_on_assessments_sensor(context), dg.SkipReason)  # no input materialized yet
        instance.report_runless_asset_event(dg.AssetMaterialization("assessments"))
        result = quality_on_assessments_sensor(context)
        assert sorted(r.partition_key or "" for r in result.run_requests) == ["", "s1"]


def test_cli_prints_the_agreement_and_judge_tables(home, cli):
    lake = home.lake()
    world(lake)
    missing = cli("quality", "agreement", "session-s1", check=False)
    assert missing.returncode != 0 and b"no agreement computed for session 'session-s1'" in missing.stderr
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("labeling_sessions", ["s1"])
        for request in pending_run_requests(lake, home.landing(), instance):
            assert run(request, instance).success
    out = cli("quality", "agreement", "session-s1").stdout.decode()
    assert "| session-s1 | topic | nominal | krippendorff_alpha |" in out and "| topic | alice | bob |" in out
    judges = cli("quality", "judges", "--name", "verdict").stdout.decode()
    assert "| verdict | judge-v1 | 3 |" in judges
    assert cli("quality", "judges", "--name", "nope", check=False).returncode != 0


def test_datasets_take_the_adjudicated_value_and_count_what_is_unsettled(home):
    lake = home.lake()
    ids = ["a-topic-tr-1-alice", "a-topic-tr-1-bob", "a-topic-tr-1-carol"]
    world(lake, [gold("lead", "tr-1", "topic", "other", ids, session="session-s1", kind="expectation")])
    build = datasets.publish_version(lake, "summaries", now=datetime.now(UTC), config=datasets.DatasetConfig("majority")).build
    values = dict(build.expectation_values.join(build.records.select("dataset_record_id", "trace_id"), on="dataset_record_id")
                  .filter(pl.col("assessment_name") == "topic").select("trace_id", "value").iter_rows())
    assert values["tr-1"] == '"other"'  # the gold value, over the majority (shipping)
    assert build.disagreements == {}  # tr-1 was the only disagreement, and it is settled
    late = answer("dave", "tr-1", "topic", "billing", session="session-s1", kind="expectation", minutes=120)
    world(lake, [gold("lead", "tr-1", "topic", "other", ids, session="session-s1", kind="expectation"), late])
    build = datasets.publish_version(lake, "summaries", now=datetime.now(UTC)).build
    assert build.disagreements == {"topic": 1}  # a later answer differing from the gold value reopens tr-1
