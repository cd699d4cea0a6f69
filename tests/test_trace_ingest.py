"""Trace ingestion end to end: import into the landing zone, the sensor, the `traces` asset, `run`."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl

from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.exports import TraceFileLabel, import_traces
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline.landing import processed_high_water
from tests.conftest import FIXTURES


def _quiet(*_args, **_kwargs):
    return None


def test_import_accepts_jsonl_pretty_json_arrays_and_folders(home, tmp_path):
    single = json.loads((FIXTURES / "trace_0.json").read_text())
    second = json.loads((FIXTURES / "trace_1.json").read_text())
    folder = tmp_path / "exports" / "nested"
    folder.mkdir(parents=True)
    (folder / "pretty.json").write_text(json.dumps(single, indent=2))
    (folder / "array.json").write_text(json.dumps([single, second]))
    (tmp_path / "exports" / "notes.txt").write_text("not an export")
    summary = import_traces([str(tmp_path / "exports"), str(FIXTURES / "traces.jsonl")], home.landing())
    assert (summary.files, summary.traces) == (3, 203)
    label = TraceFileLabel.parse(summary.landing_keys[-1])
    assert label.source == "traces.jsonl" and label.line_offset == 0
    assert label.first_date <= label.last_date


def test_import_reads_standard_input(cli, home):
    data = (FIXTURES / "trace_2.json").read_bytes()
    done = cli("traces", "import", "-", input=data)
    assert b"landed 1 traces" in done.stdout
    assert len(home.landing().list("traces")) == 1


def test_import_of_a_missing_path_names_it(cli):
    done = cli("traces", "import", "/no/such/export.jsonl", check=False)
    assert done.returncode != 0 and b"/no/such/export.jsonl" in done.stderr


def test_run_ingests_everything_pending_and_rerun_is_a_no_op(home):
    import_traces([str(FIXTURES / "traces.jsonl")], home.landing())
    report = run_pending(home, echo=_quiet)
    assert report.runs >= 1 and not report.failures
    lake = home.lake()
    traces = lake.read("traces")
    assert traces.height == 200 and traces["trace_id"].n_unique() == 200
    assert traces.schema["request_time"] == pl.Datetime("us", "UTC")
    assert lake.version("traces") == 0

    assert run_pending(home, echo=_quiet).runs == 0, "nothing is pending after a run"

    import_traces([str(FIXTURES / "traces.jsonl")], home.landing())
    report = run_pending(home, echo=_quiet)
    assert report.runs == 1 and not report.failures
    assert lake.version("traces") == 0, "the same traces again change nothing"
    assert lake.read("traces").height == 200


def test_embedded_assessments_land_as_historic_submissions(home):
    import_traces([str(FIXTURES / "traces.jsonl")], home.landing())
    run_pending(home, echo=_quiet)
    landing = home.landing()
    keys = landing.list("submissions")
    assert keys
    submissions = [json.loads(line) for key in keys for line in landing.read_bytes(key).decode().splitlines()]
    assert len(submissions) == 213
    assert {s["origin"] for s in submissions} == {"mlflow-import"}
    assert {s["name"] for s in submissions} == {"summary_quality", "expected_summary", "relevance"}
    assert all(s["submission_id"] == s["assessment_id"] for s in submissions)


def test_malformed_lines_are_rejected_with_file_line_and_reason_while_good_lines_land(cli, home, tmp_path):
    good = (FIXTURES / "traces.jsonl").read_text().splitlines()[:3]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([good[0], "{not json", good[1], '{"info": {}}', good[2]]) + "\n")
    import_traces([str(mixed)], home.landing())
    report = run_pending(home, echo=_quiet)
    assert not report.failures
    lake = home.lake()
    assert lake.read("traces").height == 3
    rejections = lake.read("trace_rejections").sort("line_number")
    assert rejections["line_number"].to_list() == [2, 4]
    assert all("mixed.jsonl" in key for key in rejections["landing_key"])
    assert all(len(reason) > 10 for reason in rejections["reason"])
    assert processed_high_water(lake, "traces") == home.landing().list("traces")[-1]
    shown = cli("traces", "rejections").stdout.decode()
    assert "mixed.jsonl" in shown and "is not valid JSON" in shown
    assert shown.strip().endswith("2 rejected trace line(s)")


def test_a_newer_export_of_the_same_trace_updates_its_row(home, tmp_path):
    trace = json.loads((FIXTURES / "trace_0.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps(trace))
    import_traces([str(tmp_path / "a.json")], home.landing())
    run_pending(home, echo=_quiet)
    trace["info"]["tags"]["reviewed"] = "yes"
    (tmp_path / "b.json").write_text(json.dumps(trace))
    import_traces([str(tmp_path / "b.json")], home.landing())
    run_pending(home, echo=_quiet)
    rows = home.lake().read("traces")
    assert rows.height == 1
    assert json.loads(rows["tags"][0])["reviewed"] == "yes"
    assert home.lake().version("traces") == 1


def test_sensor_requests_bounded_batches_with_deterministic_run_keys_and_advances_its_cursor(home):
    from feedback_pipeline_dagster.sensors import traces as trace_sensors

    for _ in range(3):
        import_traces([str(FIXTURES / "trace_0.json")], home.landing())
    keys = home.landing().list("traces")
    with dg.instance_for_test() as instance:
        landing = LandingResource(uri=home.landing_uri)
        first = trace_sensors.trace_files_sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing, "lake": LakeResource(uri=home.lake_uri)}))
        assert first.cursor == keys[-1]
        assert [r.run_key for r in first.run_requests] == [f"traces:{keys[0]}..{keys[-1]}"]
        request = first.run_requests[0]
        assert request.run_config["ops"]["traces"]["config"]["landing_keys"] == keys
        day = TraceFileLabel.parse(keys[0]).first_date
        assert request.tags["dagster/asset_partition_range_start"] == day
        again = trace_sensors.trace_files_sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing, "lake": LakeResource(uri=home.lake_uri)}))
        assert again.run_requests == first.run_requests, "the same cursor gives the same run keys"
        after = trace_sensors.trace_files_sensor(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"landing": landing, "lake": LakeResource(uri=home.lake_uri)})
        )
        assert isinstance(after, dg.SkipReason)
    many = [f"{key[:-6]}{n:03d}.jsonl" for n in range(40) for key in keys]
    assert len(trace_sensors.trace_run_requests(sorted(many))) == -(-len(many) // trace_sensors.FILES_PER_RUN)


def test_run_exits_non_zero_with_a_clear_message_when_a_run_fails(cli, home):
    import_traces([str(FIXTURES / "trace_0.json")], home.landing())
    blocker = Path(home.lake_uri) / "traces"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the traces table should be")
    done = cli("run", check=False)
    assert done.returncode == 1
    assert b"traces 2026-11-22: FAILED (run " in done.stderr and b"DeltaError" in done.stderr
    assert b"Traceback" not in done.stderr, "the cause in one line; the traceback behind --verbose"


def test_code_location_loads():
    from feedback_pipeline_dagster.definitions import defs

    defs.validate_loadable(defs)
    assert defs.resolve_job_def("ingest_traces") is not None
    assert defs.resolve_sensor_def("trace_files_sensor") is not None


def test_backfill_of_a_day_reingests_that_days_files(home):
    import_traces([str(FIXTURES / "traces.jsonl")], home.landing())
    run_pending(home, echo=_quiet)
    from feedback_pipeline_dagster.definitions import defs

    day = home.lake().read("traces")["request_date"].cast(pl.String).min()
    job = defs.resolve_job_def("ingest_traces")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": day, "dagster/asset_partition_range_end": day},
        )
    assert result.success
    materialization = result.get_asset_materialization_events()[0].event_specific_data.materialization
    assert materialization.metadata["received"].value == 200
    assert materialization.metadata["new_or_updated"].value == 0


def test_batches_by_size_keeps_order_and_bounds_each_batch():
    from feedback_pipeline.exports import batches_by_size

    keys = ["a", "b", "c", "d", "e"]
    assert batches_by_size(keys, [40, 50, 200, 10, 10], max_bytes=100) == [["a", "b"], ["c"], ["d", "e"]]
    assert batches_by_size([], [], max_bytes=100) == []


def test_ingest_in_small_batches_gives_the_same_table_and_records_every_file(home, tmp_path):
    from feedback_pipeline.exports import ingest_trace_files

    lines = (FIXTURES / "traces.jsonl").read_text().splitlines()
    for part in range(4):
        (tmp_path / f"part{part}.jsonl").write_text("\n".join(lines[part * 50 : (part + 1) * 50] + ["not json"]))
    keys = import_traces([str(tmp_path / f"part{part}.jsonl") for part in range(4)], home.landing()).landing_keys
    lake = home.lake()
    report = ingest_trace_files(lake, home.landing(), keys, run_id="r1", max_batch_bytes=1)
    assert (report.batches, report.received, report.ingested, report.rejected) == (4, 204, 200, 4)
    assert (report.new_or_updated, report.delta_version) == (200, 3)
    traces = lake.read("traces")
    assert traces.height == 200 and traces["trace_id"].n_unique() == 200
    assert lake.table("traces").metadata().partition_columns == ["request_date"]
    assert lake.read("trace_rejections").height == 4
    assert processed_high_water(lake, "traces") == keys[-1]

    again = ingest_trace_files(lake, home.landing(), keys, max_batch_bytes=1)
    assert again.new_or_updated == 0 and lake.version("traces") == 3


def test_a_trace_re_exported_with_another_request_date_keeps_one_row(home, tmp_path):
    from feedback_pipeline.exports import ingest_trace_files

    trace = json.loads((FIXTURES / "trace_0.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps(trace))
    first = import_traces([str(tmp_path / "a.json")], home.landing()).landing_keys
    ingest_trace_files(home.lake(), home.landing(), first)
    trace["info"]["request_time"] = "2025-01-02T03:04:05.000Z"
    (tmp_path / "b.json").write_text(json.dumps(trace))
    second = import_traces([str(tmp_path / "b.json")], home.landing()).landing_keys
    ingest_trace_files(home.lake(), home.landing(), second)
    rows = home.lake().read("traces")
    assert rows.height == 1 and str(rows["request_date"][0]) == "2025-01-02"
