"""Historic labels through `feedback-pipeline assessments import`: JSONL, CSV and MLflow exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from bench.assessments import process_pending_submissions
from assessments_world import FIXTURES, build_world

from feedback_pipeline import assessments as core
from feedback_pipeline import assessment_tables as tables
from feedback_pipeline.search import search_assessments

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def world(tmp_path, monkeypatch):
    return build_world(tmp_path, monkeypatch)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "feedback_pipeline", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def embedded_assessments() -> list[dict]:
    infos = [json.loads(line)["info"] for line in (FIXTURES / "traces.jsonl").read_text().splitlines() if line.strip()]
    return [a for info in infos for a in info.get("assessments") or []]


def test_mlflow_export_with_embedded_assessments_imports_and_reimports_as_a_no_op(world):
    expected = embedded_assessments()
    out = cli("assessments", "import", str(FIXTURES / "traces.jsonl"), str(FIXTURES / "trace_2.json"))
    assert f"{len(expected)} submissions (mlflow)" in out.stdout
    process_pending_submissions(world.lake, world.landing)
    found = search_assessments(lake=world.lake, include_invalid=True)
    assert found.height == len(expected)
    assert set(found["assessment_name"]) == {"summary_quality", "expected_summary", "relevance"}
    by_id = {row["assessment_id"]: row for row in found.iter_rows(named=True)}
    for original in expected:
        row = by_id[original["assessment_id"]]
        kind = "feedback" if "feedback" in original else "expectation"
        assert row["kind"] == kind
        assert json.loads(row["assessment_value"]) == original[kind]["value"]
        assert row["assessor_id"] == original["source"]["source_id"]
        assert row["rationale"] == original.get("rationale")
    judged = found.filter(pl.col("assessment_name") == "relevance")
    assert set(judged["source_type"]) == {"LLM_JUDGE"}

    versions = {t: world.lake.version(t) for t in (tables.SUBMISSIONS, tables.ASSESSMENTS)}
    cli("assessments", "import", str(FIXTURES / "traces.jsonl"))
    [report] = process_pending_submissions(world.lake, world.landing)
    assert report["duplicates"] == len(expected) and report["accepted"] == 0
    assert {t: world.lake.version(t) for t in versions} == versions


def test_csv_import_with_documented_columns(world, tmp_path):
    t = world.trace_ids
    path = tmp_path / "labels.csv"
    path.write_text(
        "trace_id,name,kind,value,rationale,source_type,source_id,created_at\n"
        f"{t[0]},summary_quality,feedback,Yes,clear,HUMAN,carol,2025-03-01T10:00:00Z\n"
        f"{t[1]},relevance,feedback,0.75,,LLM_JUDGE,judge-v0,2025-03-01T10:00:01Z\n"
        f"{t[2]},correct,feedback,true,,HUMAN,carol,2025-03-01T10:00:02Z\n"
        f"{t[3]},expected_summary,expectation,\"The answer, in short.\",,HUMAN,carol,2025-03-01T10:00:03Z\n"
        f"{t[4]},summary_quality,feedback,Perhaps,,HUMAN,carol,2025-03-01T10:00:04Z\n"
    )
    out = cli("assessments", "import", str(path))
    assert "5 submissions (csv)" in out.stdout
    process_pending_submissions(world.lake, world.landing)
    found = search_assessments(lake=world.lake).sort("created_at")
    assert [json.loads(v) for v in found["assessment_value"]] == ["Yes", 0.75, True, "The answer, in short."]
    assert found["created_at"][0].year == 2025
    assert set(found["assessor_id"]) == {"carol", "judge-v0"}
    [reason] = world.lake.read(tables.REJECTIONS)["reason"].to_list()
    assert reason == "value \"Perhaps\" for 'summary_quality' is not one of its options: Yes, No"
    cli("assessments", "import", str(path))
    [again] = process_pending_submissions(world.lake, world.landing)
    assert again["duplicates"] == 5, "rows without submission_id get a content hash id: re-import is a no-op"


def test_csv_with_an_unknown_column_is_refused_naming_it(world, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("trace_id,label\ntr-1,Yes\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "feedback_pipeline", "assessments", "import", str(path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "unknown CSV columns ['label']" in result.stderr
    assert world.landing.list("submissions") == []


def test_jsonl_import_of_submissions_marks_their_origin(world, tmp_path):
    path = tmp_path / "history.jsonl"
    rows = [
        {"submission_id": "h-1", "assessment_id": "a-h1", "trace_id": world.trace_ids[0], "name": "summary_quality",
         "kind": "feedback", "value": "No", "source": {"source_type": "HUMAN", "source_id": "dan"},
         "created_at": "2025-01-05T08:00:00Z"},
        {"submission_id": "h-2", "trace_id": world.trace_ids[1], "name": "relevance", "value": 0.1, "origin": "api"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    out = cli("assessments", "import", str(path))
    assert "3 submissions (jsonl)" in out.stdout
    [report] = process_pending_submissions(world.lake, world.landing)
    assert (report["accepted"], report["rejected"]) == (2, 1)
    origins = dict(world.lake.read(tables.SUBMISSIONS).select("submission_id", "origin").iter_rows())
    assert origins["h-1"] == "import" and origins["h-2"] == "api"
    searched = cli("assessments", "search", "--assessor", "dan")
    assert "1 assessment(s)" in searched.stdout
    assert "assessment_id" in searched.stdout and "a-h1" in searched.stdout
    rejected = cli("assessments", "rejections")
    assert "not valid JSON" in rejected.stdout
