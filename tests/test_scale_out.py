"""The scale-out path on real servers: Dagster's storage in PostgreSQL, the lake, the landing zone and
datasets.yaml on an S3-compatible store (SeaweedFS), reached through FEEDBACK_STORAGE_OPTIONS in
delta-rs names. The demo flow, concurrent writers and runs, and two Review App processes sharing it."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import polars as pl
import pytest

from bench.synthetic import synthetic_traces, write_jsonl
from feedback_pipeline.exports import import_traces
from feedback_pipeline.home import FeedbackHome
from tests.servers import postgres_server, s3_server, stop, wait_for_port  # noqa: F401 - fixtures
from tests.servers import free_ports
from tests.test_concurrent_runs import land_definitions_and_submissions

REPO = Path(__file__).resolve().parents[1]
SESSION = "label_summaries"
IDS = {"submission_id": pl.String}


def scale_out_env(s3, postgres, dagster_home: Path, prefix: str | None = None) -> dict[str, str]:
    """A host's environment: all of FEEDBACK_HOME on the store, Dagster's home local, its storage in Postgres."""
    prefix = prefix or "home-" + secrets.token_hex(4)
    database = prefix.replace("-", "_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDBACK_", "AWS_"))}
    return {
        **env,
        "PYTHONPATH": str(REPO),
        "FEEDBACK_HOME": f"s3://{s3.bucket}/{prefix}",
        "DAGSTER_HOME": str(dagster_home),
        "FEEDBACK_STORAGE_OPTIONS": json.dumps(s3.storage_options),
        "FEEDBACK_DAGSTER_POSTGRES_URL": postgres.create_database(database),
    }


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "feedback_pipeline", *args], cwd=REPO, env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, f"feedback-pipeline {' '.join(args)} exited {done.returncode}:\n{done.stdout.decode()}\n{done.stderr.decode()}"
    return done.stdout.decode()


def dagster_runs(url: str) -> int:
    import psycopg2

    with psycopg2.connect(url.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs")
        return cursor.fetchone()[0]


@pytest.fixture(scope="module")
def demo_home(s3_server, postgres_server, tmp_path_factory) -> dict[str, str]:
    """The demo, run once on the store and Postgres, with a datasets.yaml on the store."""
    env = scale_out_env(s3_server, postgres_server, tmp_path_factory.mktemp("dagster") / "home")
    home = FeedbackHome.from_env(env)
    landing = home.landing()
    landing.fs.pipe_file(f"{landing.fs._strip_protocol(home.root)}/datasets.yaml", b"datasets:\n  summaries:\n    include_outputs: false\n")
    env["DEMO_OUTPUT"] = cli(env, "demo")
    return env


def test_the_demo_runs_on_postgres_and_the_object_store(demo_home):
    home = FeedbackHome.from_env(demo_home)
    assert home.lake_uri.startswith("s3://") and home.landing_uri.startswith("s3://")
    assert "env: FEEDBACK_DAGSTER_POSTGRES_URL" in (Path(home.dagster_home) / "dagster.yaml").read_text()
    assert dagster_runs(demo_home["FEEDBACK_DAGSTER_POSTGRES_URL"]) >= 4, "Dagster's runs are in PostgreSQL"
    assert not list(Path(home.dagster_home).rglob("*.db")), "no SQLite storage beside the Postgres one"
    lake = home.lake()
    assert lake.read("traces", columns=["trace_id"]).height == 200
    assert {"traces", "assessments", "evaluation_datasets/summaries"} <= set(lake.tables())
    records = lake.read("evaluation_datasets/summaries")
    assert records.height > 0 and records["outputs"].is_null().all(), "datasets.yaml on the store was applied"
    assert "nothing pending" in cli(demo_home, "run")


def test_concurrent_appends_on_the_store_lose_no_commit(s3_server):
    """Four processes append to one table at once: conditional puts make every commit count."""
    uri = f"s3://{s3_server.bucket}/appends-{secrets.token_hex(4)}"
    worker = (
        "import json, sys, polars as pl\n"
        "from feedback_pipeline.lake import Lake\n"
        "lake = Lake(sys.argv[1], json.loads(sys.argv[2]))\n"
        "for i in range(10):\n"
        "    lake.append('counted', pl.DataFrame({'writer': [int(sys.argv[3])], 'i': [i]}))\n"
    )
    options = json.dumps(s3_server.storage_options)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    writers = [subprocess.Popen([sys.executable, "-c", worker, uri, options, str(n)], env=env, stderr=subprocess.PIPE) for n in range(4)]
    errors = [w.communicate(timeout=300)[1].decode() for w in writers]
    assert [w.returncode for w in writers] == [0] * 4, errors
    from feedback_pipeline.lake import Lake

    lake = Lake(uri, s3_server.storage_options)
    rows = lake.read("counted")
    assert rows.height == 40 and rows.select("writer", "i").n_unique() == 40
    assert lake.version("counted") == 39, "one version per append: none overwritten"


def lake_state(home: FeedbackHome) -> dict[str, object]:
    lake = home.lake()
    traces = lake.read("traces", columns=["trace_id"])
    return {
        "traces": (traces.height, traces["trace_id"].n_unique()),
        "submissions": lake.read("submissions", columns=["submission_id"], schema=IDS).height,
        "assessments": lake.read("assessments", columns=["assessment_id", "valid"]).sort("assessment_id").rows(),
        "rejections": lake.read("rejections", columns=["submission_id"], schema=IDS).height,
    }


def test_two_runs_at_once_on_postgres_and_the_store_leave_the_tables_of_one_run(s3_server, postgres_server, tmp_path):
    export = tmp_path / "traces.jsonl"
    write_jsonl(export, synthetic_traces(2_000))
    states = []
    for runs in (1, 2):
        env = scale_out_env(s3_server, postgres_server, tmp_path / f"dagster-{runs}")
        home = FeedbackHome.from_env(env)
        import_traces([str(export)], home.landing())
        land_definitions_and_submissions(home)
        started = [
            subprocess.Popen([sys.executable, "-m", "feedback_pipeline", "run"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(runs)
        ]  # fmt: skip
        for process in started:
            out, err = process.communicate(timeout=600)
            assert process.returncode == 0, f"run exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
        assert "nothing pending" in cli(env, "run")
        states.append(lake_state(home))
    assert states[0] == states[1]
    assert states[0]["traces"] == (2_000, 2_000)


def start_review_app(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "feedback_pipeline", "review-app", "--port", str(port)],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port(port, process, "the Review App", log)
    return process


def sign_in(env: dict[str, str], port: int, email: str) -> httpx.Client:
    base = f"http://127.0.0.1:{port}"
    link = cli(env, "reviewers", "invite", email, "--session", SESSION, "--base-url", base).strip()
    client = httpx.Client(base_url=base, timeout=60)
    response = client.get(link[len(base) :], follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def answer_first_pending(client: httpx.Client, verdict: str) -> str:
    queue = client.get(f"/sessions/{SESSION}?status=pending")
    assert queue.status_code == 200, queue.text
    item = re.search(r'data-item="([^"]+)"', queue.text).group(1)
    page = client.get(f"/sessions/{SESSION}/items/{item}").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    done = client.post(
        f"/sessions/{SESSION}/items/{item}",
        data={"answer:summary_quality": verdict, "answer:expected_summary": f"{verdict} summary", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return item


def test_two_review_app_processes_share_the_store(demo_home, tmp_path):
    env = {k: v for k, v in demo_home.items() if k != "DEMO_OUTPUT"}
    ports = free_ports(2)
    apps = [start_review_app(env, port, tmp_path / f"app-{port}.log") for port in ports]
    try:
        alice, bob = sign_in(env, ports[0], "alice@example.com"), sign_in(env, ports[1], "bob@example.com")
        answered = {answer_first_pending(alice, "Yes"), answer_first_pending(bob, "No")}
        on_other = httpx.Client(base_url=f"http://127.0.0.1:{ports[1]}", cookies=alice.cookies, timeout=60)
        assert on_other.get(f"/sessions/{SESSION}").status_code == 200, "a session cookie is good on every host"
    finally:
        for app in apps:
            stop(app)
    cli(env, "run")
    current = FeedbackHome.from_env(env).lake().read("assessments").filter(
        pl.col("assessment_name") == "summary_quality", pl.col("session") == SESSION, pl.col("valid")
    )
    by_reviewer = dict(current.group_by("assessor_id").len().rows())
    assert by_reviewer.get("alice@example.com") == 6, "the demo's 5 through the SDK, one through the first app"
    assert by_reviewer.get("bob@example.com") == 1, "one through the second app"
    assert len(answered) == 2, "each app reserved a different pending item"
