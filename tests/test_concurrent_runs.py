"""Concurrent `feedback-pipeline run` processes, killed runs and failed stages, on real Delta tables and
a real Dagster instance: the tables end as one run would leave them, and nothing waits on a dead run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from bench.end_to_end import DATASET, EXPECTATION, FEEDBACK, REVIEWERS, submission_lines
from bench.synthetic import synthetic_traces, write_jsonl
from feedback_pipeline.exports import import_traces
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.input_types import InputCategorical, InputText
from feedback_pipeline.schemas import create_label_schema
from feedback_pipeline.sessions import create_labeling_session

REPO = Path(__file__).resolve().parents[1]
TRACES = 10_000
SESSION_ITEMS = 300
SUBMISSIONS = 2_000


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    return {**env, "FEEDBACK_HOME": str(root), "DAGSTER_HOME": str(root / "dagster"), "PYTHONPATH": str(REPO)}


def start_run(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "feedback_pipeline", "run", *args],
        cwd=REPO, env=environment(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"run exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
    return out.decode() + err.decode()


def run_once(root: Path) -> str:
    return finish(start_run(root))


def land_traces(root: Path, work: Path) -> FeedbackHome:
    home = FeedbackHome.from_env(environment(root))
    export = work / "traces.jsonl"
    if not export.exists():
        write_jsonl(export, synthetic_traces(TRACES))
    import_traces([str(export)], home.landing())
    return home


def land_definitions_and_submissions(home: FeedbackHome) -> None:
    create_label_schema(EXPECTATION, type="expectation", input=InputText(), home=home)
    create_label_schema(FEEDBACK, type="feedback", input=InputCategorical(options=["Yes", "No"]), home=home)
    ids = [f"tr-{0:04x}{i:028x}" for i in range(SESSION_ITEMS)]
    create_labeling_session(
        DATASET, assigned_users=REVIEWERS, label_schemas=[EXPECTATION, FEEDBACK], dataset=DATASET, home=home
    ).add_traces(ids)
    lines = submission_lines(pl.Series(ids), SUBMISSIONS)
    for start in range(0, lines.len(), 500):
        home.landing().write_lines("submissions", lines.slice(start, 500).to_list(), label="api")


def tables(root: Path) -> dict[str, object]:
    """What a run leaves, without run ids and times: row counts, distinct keys and the current state."""
    lake = FeedbackHome.from_env(environment(root)).lake()
    traces = lake.read("traces", columns=["trace_id"])
    items = lake.read("session_items", columns=["session_id", "item_id", "trace_id"])
    current = lake.read("assessments", columns=["assessment_id", "valid"]).sort("assessment_id")
    return {
        "traces": (traces.height, traces["trace_id"].n_unique()),
        "session_items": (items.height, items.select("session_id", "item_id").n_unique()),
        "submissions": lake.read("submissions", columns=["submission_id"]).height,
        "trace_rejections": lake.version("trace_rejections") is not None and lake.read("trace_rejections").height,
        "assessments": current.rows(),
        "history": lake.read("assessment_history", columns=["submission_id"]).height,
        "rejections": lake.read("rejections", schema={"submission_id": pl.String}).height,
        "dataset_records": lake.read(f"evaluation_datasets/{DATASET}", columns=["dataset_record_id"]).height,
    }


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    """A landing zone (traces, definitions, submissions) copied into each case's fresh home."""
    work = tmp_path_factory.mktemp("concurrent")
    home = land_traces(work / "template", work)
    land_definitions_and_submissions(home)
    return work / "template"


@pytest.fixture(scope="module")
def single_run(landed, tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("single") / "feedback"
    shutil.copytree(landed, root)
    run_once(root)
    return tables(root)


def existing_homes(tmp_path: Path) -> tuple[Path, Path]:
    """Two homes with the same ingested traces and the same new definitions and submissions landed:
    the first already ran them once (the reference), the second has them pending."""
    template, single, other = (tmp_path / name / "feedback" for name in ("template", "single", "other"))
    land_traces(template, tmp_path)
    for root in (single, other):
        shutil.copytree(template, root)
        run_once(root)
    land_definitions_and_submissions(FeedbackHome.from_env(environment(single)))
    shutil.copytree(single / "landing", other / "landing", dirs_exist_ok=True)
    run_once(single)
    return single, other


def test_two_runs_at_once_on_a_new_home_leave_the_tables_of_one_run(landed, single_run, tmp_path):
    root = tmp_path / "feedback"
    shutil.copytree(landed, root)
    first, second = start_run(root), start_run(root)
    finish(first), finish(second)
    assert tables(root) == single_run
    assert single_run["traces"] == (TRACES, TRACES)
    assert "nothing pending" in run_once(root)


def test_two_runs_at_once_on_existing_tables_leave_the_tables_of_one_run(tmp_path):
    single, double = existing_homes(tmp_path)
    first, second = start_run(double), start_run(double)
    finish(first), finish(second)
    assert tables(double) == tables(single)


def test_a_run_killed_mid_stage_is_marked_failed_and_the_next_run_finishes_the_work(landed, single_run, tmp_path):
    import dagster as dg

    root = tmp_path / "feedback"
    shutil.copytree(landed, root)
    home = FeedbackHome.from_env(environment(root))
    home.ensure_dagster_home()
    instance = dg.DagsterInstance.from_config(home.dagster_home)
    started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], job_name="assessments_job")
    victim = start_run(root)
    deadline = time.monotonic() + 300
    while not instance.get_run_ids(filters=started) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()
    victim.wait()
    [dead] = instance.get_run_ids(filters=started)

    output = run_once(root)
    assert f"run {dead} (assessments_job) was left STARTED by process {victim.pid}, which is gone: marked failed" in output
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert not instance.get_run_ids(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert not instance.event_log_storage.get_concurrency_info("feedback_assessments").claimed_slots
    assert tables(root) == single_run


def test_a_run_killed_in_its_last_stage_is_marked_failed_even_when_the_lake_shows_nothing_pending(landed, tmp_path):
    """Only Dagster knows label quality is due (its fingerprints are on the last materialization), so
    the lake says "nothing pending" after this kill: the dead process's marker sends `run` to Dagster."""
    import dagster as dg

    root = tmp_path / "feedback"
    shutil.copytree(landed, root)
    home = FeedbackHome.from_env(environment(root))
    home.ensure_dagster_home()
    instance = dg.DagsterInstance.from_config(home.dagster_home)
    quality_jobs = ["label_agreement_job", "judge_alignment_job"]
    started = [dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], job_name=job) for job in quality_jobs]
    victim = start_run(root)
    deadline = time.monotonic() + 300
    while not any(instance.get_run_ids(filters=f) for f in started) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.kill()
    victim.wait()
    [dead] = [run_id for f in started for run_id in instance.get_run_ids(filters=f)]
    job = instance.get_run_by_id(dead).job_name

    output = run_once(root)
    assert f"run {dead} ({job}) was left STARTED by process {victim.pid}, which is gone: marked failed" in output
    assert not instance.get_run_ids(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    redone = instance.get_run_ids(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], job_name=job))
    assert redone, f"the killed {job} was requested again and succeeded"
    assert "nothing pending" in run_once(root)


def test_a_failed_stage_stops_the_stages_after_it_and_says_why_in_one_line(landed, tmp_path):
    root = tmp_path / "feedback"
    shutil.copytree(landed, root)
    lake = FeedbackHome.from_env(environment(root)).lake()
    lake.merge("session_items", pl.DataFrame({"session_id": ["other"], "item_id": [1]}), on=["session_id", "item_id"])
    done = subprocess.run(
        [sys.executable, "-m", "feedback_pipeline", "run"], cwd=REPO, env=environment(root), capture_output=True, timeout=600
    )
    err = done.stderr.decode()
    assert done.returncode == 1
    failed = [line for line in err.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("labeling"), err
    assert "stopped: labeling failed, so assessments, datasets, quality did not run" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 4, err
    assert not lake.exists("assessments") and not lake.exists("submissions")


def test_a_publish_gate_that_fails_again_on_the_same_inputs_is_a_note_not_a_failure(home):
    from feedback_pipeline.cli.pipeline import run_pending
    from tests.datasets_world import expectation, label_schema, trace, write_world

    lake, lines = home.lake(), []
    schemas = [label_schema("rating", "numeric", {"min_value": 1, "max_value": 5})]
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "rating", 9)], schemas=schemas)

    first = run_pending(home, echo=lambda line, err=False: lines.append(line), stages=("datasets",))
    assert first.runs == 1 and len(first.failures) == 1
    assert "values must be between 1.0 and 5.0" in first.failures[0] and "Traceback" not in first.failures[0]

    again = run_pending(home, echo=lambda line, err=False: lines.append(line), stages=("datasets",))
    assert (again.runs, again.failures) == (1, [])
    [note] = again.notes
    assert "the publish gate fails on these inputs again" in note and "current version is kept" in note


def dagster_dev(root: Path, log: Path) -> subprocess.Popen:
    """`dagster dev` (webserver, daemon and its sensors) on the home, as `make up` starts it, in its own
    process group; returns once the webserver listens."""
    from tests.servers import free_ports, wait_for_port

    FeedbackHome.from_env(environment(root)).ensure_dagster_home()
    [port] = free_ports(1)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=environment(root), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    wait_for_port(port, process, "dagster dev", log, timeout=300)
    return process


def settle_and_stop(process: subprocess.Popen, root: Path, log: Path, quiet_seconds: float = 45.0) -> list:
    """Wait until the daemon has started no run for `quiet_seconds` and none is queued or running (every
    sensor ticked at least once in that time), stop `dagster dev` by its process group, and return its runs."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(root / "dagster"))
    busy = dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                   dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    deadline, quiet_since, count = time.monotonic() + 600, time.monotonic(), -1
    while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_seconds:
        assert process.poll() is None, log.read_text()[-3000:]
        runs = instance.get_runs()
        if len(runs) != count or instance.get_run_ids(filters=busy):
            quiet_since, count = time.monotonic(), len(runs)
        time.sleep(1)
    os.killpg(process.pid, 15)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(10)
    return instance.get_runs()


def assert_daemon_runs_green(runs: list, log: Path) -> None:
    import dagster as dg

    daemon_runs = [run for run in runs if "feedback_pipeline/pid" not in run.tags]
    failed = [(run.job_name, run.status.value) for run in daemon_runs if run.status != dg.DagsterRunStatus.SUCCESS]
    assert not failed, f"daemon runs not green: {failed}\n{log.read_text()[-3000:]}"


def test_dagster_dev_beside_a_run_on_a_new_home_leaves_the_tables_of_one_run(landed, single_run, tmp_path):
    root, log = tmp_path / "feedback", tmp_path / "dagster-dev.log"
    shutil.copytree(landed, root)
    dev = dagster_dev(root, log)
    try:
        output = run_once(root)
    finally:
        runs = settle_and_stop(dev, root, log)
    assert "run(s) succeeded" in output
    assert_daemon_runs_green(runs, log)
    assert tables(root) == single_run
    assert "nothing pending" in run_once(root)


def test_dagster_dev_beside_a_run_on_existing_tables_leaves_the_tables_of_one_run(tmp_path):
    single, shared = existing_homes(tmp_path)
    log = tmp_path / "dagster-dev.log"
    dev = dagster_dev(shared, log)
    try:
        run_once(shared)
    finally:
        runs = settle_and_stop(dev, shared, log)
    assert_daemon_runs_green(runs, log)
    assert tables(shared) == tables(single)


def test_a_run_says_which_run_holds_the_pool_it_waits_for_and_goes_on_when_it_is_freed(landed, single_run, tmp_path):
    from feedback_pipeline_dagster.assets.assessments import POOL
    from feedback_pipeline.cli.pipeline import instance_for

    root = tmp_path / "feedback"
    shutil.copytree(landed, root)
    instance = instance_for(FeedbackHome.from_env(environment(root)))
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    holder = "another-run-holding-the-pool"
    assert storage.claim_concurrency_slot(POOL, holder, "submissions").is_claimed
    waiting = start_run(root)
    try:
        lines = []
        for raw in waiting.stderr:
            lines.append(raw.decode())
            if "waiting for run" in lines[-1]:
                break
        assert lines and lines[-1].strip() == f"waiting for run {holder} to finish (pool {POOL}, limit 1)", lines
        time.sleep(2)
        assert waiting.poll() is None, "the run went on while the pool was held"
    finally:
        storage.free_concurrency_slots_for_run(holder)
    finish(waiting)
    assert tables(root) == single_run
