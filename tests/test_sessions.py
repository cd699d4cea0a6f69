"""Labeling sessions: SDK, trace filters, snapshots, item status and the sessions CLI (no Dagster here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

import feedback_pipeline as fp
from feedback_pipeline import definition_events, item_status, schemas, sessions
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.labeling_file import apply_labeling_file
from tests.labeling_traces import trace_rows

REPO = Path(__file__).resolve().parents[1]




@pytest.fixture(autouse=True)
def default_review_app_url(monkeypatch) -> None:
    monkeypatch.delenv("FEEDBACK_REVIEW_APP_URL", raising=False)


def landed(home: FeedbackHome) -> list[str]:
    return home.landing().list(definition_events.AREA)


def quality_schema(home=None) -> None:
    fp.create_label_schema("summary_quality", type="feedback", title="Good?", input=fp.InputCategorical(["Yes", "No"]), home=home)


def test_create_session_returns_its_definition_and_review_app_link(home, monkeypatch):
    quality_schema()
    session = fp.create_labeling_session(
        "label_summaries", assigned_users=["alice@example.com"], label_schemas=["summary_quality", "expected_facts"],
        reviews_per_item=2, dataset="summaries",
    )
    assert session.labeling_session_id.startswith("ses-")
    assert session.label_schemas == ["summary_quality", "expected_facts"]
    assert session.url == "http://127.0.0.1:8000/sessions/label_summaries"
    monkeypatch.setenv("FEEDBACK_REVIEW_APP_URL", "https://review.example.com/")
    assert session.url == "https://review.example.com/sessions/label_summaries"
    assert fp.get_labeling_session("label_summaries") == session
    assert fp.get_labeling_session(session.labeling_session_id) == session
    assert [s.name for s in fp.get_labeling_sessions()] == ["label_summaries"]


def test_label_schema_objects_are_accepted_as_names(home):
    schema = fp.get_label_schema("expected_response")
    assert fp.create_labeling_session("s", label_schemas=[schema]).label_schemas == ["expected_response"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_schemas": ["nope"]}, r"label_schemas names \['nope'\]: expected existing label schemas"),
        ({"reviews_per_item": 0}, r"reviews_per_item is 0: expected a whole number >= 1"),
        ({"assigned_users": "alice"}, r"assigned_users is 'alice': expected a list"),
        ({"refresh_cron": "hourly"}, r"refresh_cron is 'hourly': expected five fields"),
        ({"refresh_cron": "61 * * * *"}, r"refresh_cron is '61 \* \* \* \*': .*out of range"),
        ({"trace_filter": {"tag": {"env": "prod"}}}, r"trace_filter keys \['tag'\]: expected only"),
        ({"trace_filter": {"state": "FINE"}}, r"trace_filter.state \['FINE'\]: expected among OK"),
        ({"trace_filter": {"sample": {"n": 0}}}, r"trace_filter.sample.n is 0"),
        ({"trace_filter": {"start_time": "yesterday"}}, r"trace_filter.start_time is 'yesterday': expected an ISO 8601 time"),
    ],
)
def test_bad_sessions_are_refused_and_nothing_is_written(home, kwargs, message):
    before = landed(home)
    with pytest.raises(ValueError, match=message):
        fp.create_labeling_session("s", **kwargs)
    assert landed(home) == before


def test_live_session_names_are_unique_and_delete_is_soft(home):
    first = fp.create_labeling_session("s")
    with pytest.raises(ValueError, match="name 's' is already a labeling session"):
        fp.create_labeling_session("s")
    fp.delete_labeling_session(first)
    with pytest.raises(ValueError, match="does not exist"):
        fp.get_labeling_session("s")
    second = fp.create_labeling_session("s")
    assert second.labeling_session_id != first.labeling_session_id
    table = sessions.session_table(home)
    assert table.select("labeling_session_id", "deleted").rows() == [(first.labeling_session_id, True), (second.labeling_session_id, False)]


def test_add_traces_accepts_ids_frames_and_mlflow_search_traces_output(home):
    session = fp.create_labeling_session("s")
    session.add_traces(["tr-a", "tr-b"])
    session.add_traces(pl.DataFrame({"trace_id": ["tr-c"]}))
    session.add_traces(pd.DataFrame({"trace_id": ["tr-d"], "state": ["OK"]}))
    session.add_traces(pd.DataFrame({"trace": [json.dumps({"info": {"trace_id": "tr-e"}, "data": {"spans": []}})]}))
    session.add_traces("tr-a")
    requested = sessions.requested_traces(definition_events.read_events(home.landing()))
    assert requested["trace_id"].to_list() == ["tr-a", "tr-b", "tr-c", "tr-d", "tr-e"]
    with pytest.raises(ValueError, match=r"expected a trace_id or trace column"):
        session.add_traces(pd.DataFrame({"id": ["x"]}))
    with pytest.raises(ValueError, match=r"expected a trace_id column"):
        session.add_traces(pl.DataFrame({"id": ["x"]}))


def test_set_assigned_users_replaces_the_reviewers(home):
    session = fp.create_labeling_session("s", assigned_users=["alice@example.com"])
    updated = session.set_assigned_users(["bob@example.com", "carol@example.com"])
    assert updated.assigned_users == ["bob@example.com", "carol@example.com"]
    assert fp.get_labeling_session("s").assigned_users == ["bob@example.com", "carol@example.com"]
    assert updated.labeling_session_id == session.labeling_session_id


def comparable(frame: pl.DataFrame, drop: list[str]) -> list[dict]:
    return frame.drop(drop).to_dicts()


def test_sdk_and_yaml_give_the_same_tables(tmp_path):
    sdk_home = FeedbackHome.from_env({"FEEDBACK_HOME": str(tmp_path / "sdk")})
    yaml_home = FeedbackHome.from_env({"FEEDBACK_HOME": str(tmp_path / "yaml")})
    fp.create_label_schema(
        "summary_quality", type="feedback", title="Is this summary concise and helpful?", input=fp.InputCategorical(["Yes", "No"]),
        instruction="Please provide a rationale below.", enable_comment=True, home=sdk_home,
    )
    fp.create_label_schema("expected_summary", type="expectation", title="Please provide the expected summary.", input=fp.InputText(), home=sdk_home)
    fp.create_labeling_session(
        "label_summaries", assigned_users=["alice@example.com", "bob@example.com"], label_schemas=["summary_quality", "expected_summary"],
        dataset="summaries", trace_filter={"tags": {"env": "staging"}, "state": "OK", "sample": {"n": 10, "seed": 7}}, home=sdk_home,
    )
    apply_labeling_file(REPO / "examples/labeling.yaml", home=yaml_home)
    volatile = ["schema_id", "created_at", "updated_at", "landing_key", "content_hash"]
    assert comparable(schemas.schema_table(sdk_home), volatile) == comparable(schemas.schema_table(yaml_home), volatile)
    volatile = ["labeling_session_id", "created_at", "updated_at", "landing_key", "content_hash"]
    assert comparable(sessions.session_table(sdk_home), volatile) == comparable(sessions.session_table(yaml_home), volatile)


def test_yaml_session_errors_name_the_line(home, tmp_path):
    path = tmp_path / "labeling.yaml"
    path.write_text("labeling_sessions:\n  - name: s\n    label_schemas: [missing]\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: label_schemas names \['missing'\]"):
        apply_labeling_file(path, home=home)
    path.write_text("labeling_sessions:\n  - name: s\n    trace_filter:\n      tags: {env: prod}\n      sample: {n: -1}\n")
    with pytest.raises(ValueError, match=rf"^{path}:5: trace_filter.sample.n is -1"):
        apply_labeling_file(path, home=home)
    assert landed(home) == []


# ---------------------------------------------------------------- trace filters


def test_trace_filter_selects_by_tags_metadata_model_state_time_and_text():
    traces = trace_rows(20)

    def ids(spec: dict) -> list[str]:
        return sessions.filter_traces(traces, sessions.validate_trace_filter(spec))["trace_id"].to_list()

    assert ids({"tags": {"env": "staging"}}) == [f"tr-{i:04d}" for i in range(0, 20, 2)]
    assert ids({"metadata": {"mlflow.trace.user": "user1"}}) == [f"tr-{i:04d}" for i in range(1, 20, 3)]
    assert ids({"model_id": ["m-1"], "state": "ERROR"}) == ["tr-0013"]
    assert ids({"start_time": "2026-11-20T12:00:00Z", "end_time": "2026-11-20T14:00:00+00:00"}) == ["tr-0003", "tr-0004"]
    assert ids({"text": "TICKET 17"}) == ["tr-0017"]
    assert ids({"text": "(5)"}) == ["tr-0005"]
    assert sessions.filter_traces(traces, None).height == 0


def session_row(spec: dict | None, sid: str = "ses-1", name: str = "s") -> dict:
    normal = sessions.validate_trace_filter(spec)
    return {"labeling_session_id": sid, "name": name, "trace_filter": json.dumps(normal) if normal else None}


def requested(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"trace_id": list(ids)}, schema={"trace_id": pl.String})


def test_snapshot_copies_explicit_and_matching_traces_and_reports_missing_ids():
    traces = trace_rows(6)
    snap = sessions.snapshot_items(session_row({"tags": {"env": "staging"}}), requested("tr-0001", "tr-9999"), traces, sessions.empty_items())
    assert snap.items.select("trace_id", "source").rows() == [("tr-0001", "added"), ("tr-0000", "filter"), ("tr-0002", "filter"), ("tr-0004", "filter")]
    assert snap.missing_trace_ids == ["tr-9999"]
    assert snap.items["item_id"].to_list()[0] == "ses-1:tr-0001"
    assert snap.items["response_preview"].to_list()[0] == "Summary: all good (1)"
    assert snap.items.schema == sessions.ITEMS_SCHEMA


def test_snapshot_is_a_copy_and_a_refresh_only_adds():
    traces = trace_rows(4)
    first = sessions.snapshot_items(session_row({"tags": {"env": "staging"}}), requested(), traces, sessions.empty_items()).items
    changed = pl.concat([trace_rows(4, answer="Rewritten"), trace_rows(2, start=4)])
    second = sessions.snapshot_items(session_row({"tags": {"env": "staging"}}), requested(), changed, first).items
    assert second["trace_id"].to_list() == ["tr-0004"]
    assert first.filter(pl.col("trace_id") == "tr-0000")["response_preview"].item() == "Summary: all good (0)"
    assert sessions.snapshot_items(session_row({"tags": {"env": "staging"}}), requested(), changed, pl.concat([first, second])).items.height == 0


def test_sample_is_reproducible_and_capped_over_refreshes():
    spec = {"tags": {"env": "staging"}, "sample": {"n": 3, "seed": 11}}
    traces = trace_rows(20)
    a = sessions.snapshot_items(session_row(spec), requested(), traces, sessions.empty_items()).items
    b = sessions.snapshot_items(session_row(spec), requested(), traces, sessions.empty_items()).items
    assert a["trace_id"].to_list() == b["trace_id"].to_list() and a.height == 3
    assert set(a["trace_id"]) <= {f"tr-{i:04d}" for i in range(0, 20, 2)}
    more = pl.concat([traces, trace_rows(10, start=20)])
    assert sessions.snapshot_items(session_row(spec), requested(), more, a).items.height == 0
    other_seed = sessions.snapshot_items(session_row({**spec, "sample": {"n": 3, "seed": 12}}), requested(), traces, sessions.empty_items()).items
    assert other_seed["trace_id"].to_list() != a["trace_id"].to_list()


# ---------------------------------------------------------------- item status

ASSESSMENT_SCHEMA = {"trace_id": pl.String, "session": pl.String, "assessment_name": pl.String, "kind": pl.String, "assessor_id": pl.String, "valid": pl.Boolean}


def assessments(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(ASSESSMENT_SCHEMA, r, strict=True)) for r in rows], schema=ASSESSMENT_SCHEMA)


def items_of(n: int) -> pl.DataFrame:
    return sessions.snapshot_items(session_row(None), requested(*[f"tr-{i:04d}" for i in range(n)]), trace_rows(n), sessions.empty_items()).items


def test_item_status_from_assessments():
    items = items_of(5)
    given = assessments(
        ("tr-0000", "s", "summary_quality", "feedback", "alice", True),
        ("tr-0000", "s", "expected_summary", "expectation", "alice", True),
        ("tr-0000", "s", "summary_quality", "feedback", "bob", True),
        ("tr-0001", "s", "summary_quality", "feedback", "alice", True),
        ("tr-0002", "s", "_skip", "skip", "bob", True),
        ("tr-0003", "s", "summary_quality", "feedback", "carol", False),
        ("tr-0004", "other", "summary_quality", "feedback", "alice", True),
    )
    status = item_status.item_status(items, given, reviews_per_item=2)
    assert status.select("trace_id", "status", "reviews").rows() == [
        ("tr-0000", "completed", 2),
        ("tr-0001", "in_progress", 1),
        ("tr-0002", "skipped", 0),
        ("tr-0003", "pending", 0),
        ("tr-0004", "pending", 0),
    ]
    assert status["reviewers"].to_list()[0] == ["alice", "bob"]
    assert status["skipped_by"].to_list()[2] == ["bob"]
    assert item_status.item_status(items, given, reviews_per_item=1)["status"].to_list()[:2] == ["completed", "completed"]
    assert item_status.reviewer_progress(items, given).rows() == [("alice", 2, 0), ("bob", 1, 1)]
    assert item_status.progress_counts(status) == {"items": 5, "pending": 2, "in_progress": 1, "completed": 1, "skipped": 1}
    assert item_status.item_status(items, assessments(), 1)["status"].unique().to_list() == ["pending"]


# ---------------------------------------------------------------- cron


def test_cron_matching_and_due_sessions(home):
    at = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # a Sunday
    assert sessions.cron_matches("0 * * * *", at)
    assert not sessions.cron_matches("0 * * * *", at.replace(minute=1))
    assert sessions.cron_matches("*/15 8-18 * * 0", at.replace(minute=45))
    assert sessions.cron_matches("30 14 * * 7", at.replace(minute=30))
    assert not sessions.cron_matches("0 14 * * 1-5", at)
    fp.create_labeling_session("hourly", trace_filter={"state": "OK"})
    fp.create_labeling_session("quarterly", trace_filter={"state": "OK"}, refresh_cron="*/15 * * * *")
    fp.create_labeling_session("manual")
    table = sessions.session_table(home)
    names = dict(table.select("labeling_session_id", "name").rows())
    assert sorted(names[s] for s in sessions.due_sessions(table, at)) == ["hourly", "quarterly"]
    assert [names[s] for s in sessions.due_sessions(table, at.replace(minute=15))] == ["quarterly"]


# ---------------------------------------------------------------- CLI


def test_sessions_cli_prints_progress_per_reviewer(home, cli):
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    session = fp.get_labeling_session("label_summaries")
    lake = home.lake()
    snap = sessions.snapshot_items(
        {"labeling_session_id": session.labeling_session_id, "name": session.name, "trace_filter": None},
        requested("tr-0000", "tr-0001", "tr-0002"), trace_rows(3), sessions.empty_items(),
    )
    lake.append(sessions.ITEMS_TABLE, snap.items)
    lake.append("assessments", assessments(
        ("tr-0000", "label_summaries", "summary_quality", "feedback", "alice@example.com", True),
        ("tr-0001", "label_summaries", "_skip", "skip", "bob@example.com", True),
    ))
    listed = cli("sessions", "list").stdout.decode()
    assert listed.splitlines()[1].split()[:6] == ["label_summaries", "3", "1", "0", "1", "1"]
    shown = cli("sessions", "show", "label_summaries").stdout.decode()
    assert "items            3: 1 completed, 0 in progress, 1 skipped, 1 pending" in shown
    assert "review app       http://127.0.0.1:8000/sessions/label_summaries" in shown
    lines = {line.split()[0]: line.split()[1:] for line in shown.splitlines() if "@example.com" in line.split()[0]}
    assert lines == {"alice@example.com": ["1", "0"], "bob@example.com": ["0", "1"]}
    missing = cli("sessions", "show", "nope", check=False)
    assert missing.returncode != 0 and b"labeling session 'nope' does not exist" in missing.stderr


def test_cron_expressions_are_read_by_croniter():
    at = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # a Sunday
    assert sessions.cron_matches("0 14 22 * 1", at), "day of month or day of week, as cron reads them"
    assert sessions.cron_matches("0 9-17/4 * * *", at.replace(hour=13))
    assert not sessions.cron_matches("0 9-17/4 * * *", at)
    for bad in ("0 * * *", "61 * * * *", "0 * * * mon-xyz", 5):
        with pytest.raises(ValueError, match="refresh_cron is .*expected five fields"):
            sessions.check_cron(bad)
