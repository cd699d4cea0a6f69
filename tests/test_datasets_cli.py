"""The evaluator's side: CLI list/show/export, readers named in the README, the pytest helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from feedback_pipeline.home import FeedbackHome
from tests.datasets_world import expectation, materialize, trace, write_world

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset_home(tmp_path_factory) -> FeedbackHome:
    """A home with dataset `summaries` at versions 0 (one record) and 1 (two records)."""
    root = tmp_path_factory.mktemp("home")
    previous = os.environ.get("FEEDBACK_HOME")
    os.environ["FEEDBACK_HOME"] = str(root)
    home = FeedbackHome.from_env()
    lake = home.lake()
    traces = [trace("tr-1", "refund?", "No refunds."), trace("tr-2", "ship?", "Tomorrow.", 1)]
    with dg.instance_for_test() as instance:
        write_world(lake, traces, [expectation("a-1", "tr-1", "expected_summary", "No refunds.")])
        assert materialize(lake, "summaries", instance).success
        write_world(
            lake,
            traces,
            [expectation("a-1", "tr-1", "expected_summary", "No refunds."), expectation("a-2", "tr-2", "expected_summary", "Tomorrow.")],
        )
        assert materialize(lake, "summaries", instance).success
    yield home
    if previous is None:
        os.environ.pop("FEEDBACK_HOME", None)
    else:
        os.environ["FEEDBACK_HOME"] = previous


def run_cli(home: FeedbackHome, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FEEDBACK_HOME": home.root, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "feedback_pipeline", "datasets", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_list_and_show(dataset_home):
    listed = run_cli(dataset_home, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == ["summaries", "1", "2"]
    shown = run_cli(dataset_home, "show", "summaries", "--version", "0")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "dataset summaries version 0: 1 records"
    assert lines[1] == "coverage: expected_summary 1/1"
    assert lines[2] == "versions: 1, 0"
    assert json.loads(lines[3]) == {"inputs": {"question": "refund?"}, "outputs": "No refunds.", "expectations": {"expected_summary": "No refunds."}}
    missing = run_cli(dataset_home, "show", "nope")
    assert missing.returncode != 0 and "'nope' does not exist" in missing.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_export_formats_hold_the_pinned_version(dataset_home, tmp_path, fmt):
    out = tmp_path / f"summaries.{fmt}"
    done = run_cli(dataset_home, "export", "summaries", "--version", "0", "--format", fmt, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote 1 records of summaries version 0" in done.stdout
    if fmt == "jsonl":
        [record] = [json.loads(line) for line in out.read_text().splitlines()]
        assert record["inputs"] == {"question": "refund?"}
        assert record["expectations"] == {"expected_summary": "No refunds."}
        assert record["source"] == {"source_type": "TRACE", "source_data": {"trace_id": "tr-1", "session": "session-s1"}}
        assert record["dataset_record_id"].startswith("dr-")
    else:
        frame = pl.read_parquet(out) if fmt == "parquet" else pl.read_csv(out)
        assert frame.height == 1
        assert json.loads(frame.get_column("expectations")[0]) == {"expected_summary": "No refunds."}


def test_export_keeps_an_existing_file_unless_forced(dataset_home, tmp_path):
    out = tmp_path / "summaries.jsonl"
    out.write_text("an earlier export\n")
    refused = run_cli(dataset_home, "export", "summaries", "--format", "jsonl", "-o", str(out))
    assert refused.returncode != 0
    assert f"'{out}' already exists" in refused.stderr and "--force" in refused.stderr
    assert out.read_text() == "an earlier export\n"
    forced = run_cli(dataset_home, "export", "summaries", "--format", "jsonl", "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(out.read_text().splitlines()) == 2


def test_export_does_not_create_missing_folders(dataset_home, tmp_path):
    out = tmp_path / "no" / "such" / "summaries.csv"
    refused = run_cli(dataset_home, "export", "summaries", "--format", "csv", "-o", str(out))
    assert refused.returncode != 0
    assert f"folder '{out.parent}'" in refused.stderr and "does not exist" in refused.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("version", [-1, 2, 99])
def test_a_version_that_does_not_exist_names_the_versions_that_do(dataset_home, version):
    from feedback_pipeline.datasets import load_evaluation_dataset

    expected = f"version {version} of evaluation dataset 'summaries' does not exist: expected one of 0, 1"
    with pytest.raises(LookupError) as raised:
        load_evaluation_dataset("summaries", version=version, home=dataset_home)
    assert str(raised.value) == expected
    for command in ("show", "export"):
        extra = ["--format", "csv", "-o", "/nonexistent/x.csv"] if command == "export" else []
        done = run_cli(dataset_home, command, "summaries", "--version", str(version), *extra)
        assert done.returncode == 1 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_readers_from_the_readme(dataset_home):
    import deltalake
    import duckdb

    path = f"{dataset_home.lake_uri}/evaluation_datasets/summaries"
    assert pl.read_delta(path, version=0).height == 1
    assert pl.read_delta(path).height == 2
    records = deltalake.DeltaTable(path, version=0).to_pyarrow_dataset()
    rows = duckdb.sql(
        "SELECT trace_id, json_extract_string(expectations, '$.expected_summary') AS expected FROM records"
    ).fetchall()
    assert rows == [("tr-1", "No refunds.")]


def test_pytest_helper_parametrizes_over_a_pinned_version(dataset_home, tmp_path):
    (tmp_path / "test_regression.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from feedback_pipeline.testing import dataset_records

            @pytest.mark.parametrize("record", dataset_records("summaries", version=0))
            def test_pinned(record):
                assert record["outputs"] == record["expectations"]["expected_summary"]

            @pytest.mark.parametrize("record", dataset_records("summaries", version=1))
            def test_current(record):
                assert record["outputs"] == "No refunds."
            """
        )
    )
    env = {**os.environ, "FEEDBACK_HOME": dataset_home.root, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path / "test_regression.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert "1 failed, 2 passed" in done.stdout, done.stdout + done.stderr
    assert "test_current[dr-" in done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "test_current[dr-" in failed[0]
