"""Submissions to assessments without Dagster: validation, MLflow semantics, idempotency, search."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest
from bench.assessments import process_pending_submissions
from assessments_world import build_world, label_schema_rows

from feedback_pipeline import assessments as core
from feedback_pipeline import assessment_tables as tables
from feedback_pipeline import submission_runs as runs
from feedback_pipeline import submission_watermarks as watermarks
from feedback_pipeline.search import search_assessments
from feedback_pipeline.submission_collection import collect_submissions
from feedback_pipeline.entities import AssessmentError, AssessmentSource, Feedback
from feedback_pipeline.submissions import (
    delete_assessment,
    land_lines,
    land_submissions,
    log_expectation,
    log_feedback,
    override_feedback,
    submission,
    update_assessment,
)

ALICE = AssessmentSource("HUMAN", "alice@example.com")
BOB = AssessmentSource("HUMAN", "bob@example.com")


@pytest.fixture
def world(tmp_path, monkeypatch):
    return build_world(tmp_path, monkeypatch)


def process(world) -> list[dict]:
    return process_pending_submissions(world.lake, world.landing)


def rejections(world) -> dict[str, str]:
    table = world.lake.read(tables.REJECTIONS)
    return dict(zip(table["submission_id"], table["reason"], strict=True))


def current(world, **filters) -> pl.DataFrame:
    return search_assessments(lake=world.lake, landing=world.landing, **filters)


def test_valid_submissions_become_assessments_with_schema_version(world):
    t = world.trace_ids
    log_feedback(trace_id=t[0], name="summary_quality", value="Yes", source=ALICE, session="review-1")
    log_feedback(trace_id=t[1], name="relevance", value=0.5, source=AssessmentSource("LLM_JUDGE", "judge-v1"))
    log_expectation(trace_id=t[2], name="expected_summary", value="A short summary.", source=BOB, session="review-1")
    log_feedback(trace_id=t[3], name="topics", value=["billing", "login"], source=ALICE)
    log_expectation(trace_id=t[4], name="key_facts", value=["one", "two"], source=ALICE)
    log_feedback(trace_id=t[5], name="correct", value=True, source=BOB, session="review-1")
    log_feedback(trace_id=t[6], name="user_satisfaction", value=True, source=AssessmentSource("HUMAN", "user_123"),
                 free_form=True)
    log_feedback(client_request_id=world.client_request_ids[7], name="relevance", value=1)

    [report] = process(world)
    assert report["accepted"] == 8 and report["rejected"] == 0 and report["accounted"]
    found = current(world)
    assert found.height == 8
    by_name = {row["assessment_name"]: row for row in found.iter_rows(named=True) if row["trace_id"] != t[7]}
    assert json.loads(by_name["summary_quality"]["assessment_value"]) == "Yes"
    assert by_name["summary_quality"]["session"] == "review-1"
    assert by_name["summary_quality"]["schema_version"] == 1
    assert by_name["user_satisfaction"]["schema_version"] is None
    assert by_name["relevance"]["source_type"] == "LLM_JUDGE"
    assert found.filter(pl.col("trace_id") == t[7]).height == 1, "client_request_id resolves to the trace"
    assert set(found["kind"]) == {"feedback", "expectation"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "summary_quality", "value": "Maybe"}, "value \"Maybe\" for 'summary_quality' is not one of its options: Yes, No"),
        ({"name": "summary_quality", "value": 3}, "is not one of its options"),
        ({"name": "relevance", "value": 1.5}, "value 1.5 for 'relevance' is above its maximum 1.0"),
        ({"name": "relevance", "value": -1}, "is below its minimum 0.0"),
        ({"name": "relevance", "value": "high"}, "value \"high\" for 'relevance' must be a number"),
        ({"name": "expected_summary", "kind": "expectation", "value": "x" * 201},
         "value for 'expected_summary' is 201 characters long: at most 200 are allowed"),
        ({"name": "topics", "value": ["billing", "weather"]}, "has items that are not options: weather"),
        ({"name": "topics", "value": "billing"}, "must be a list of options from: billing, login, other"),
        ({"name": "key_facts", "kind": "expectation", "value": ["a", "b", "c"]}, "has 3 items: at most 2 are allowed"),
        ({"name": "key_facts", "kind": "expectation", "value": ["x" * 21]}, "is 21 characters long: at most 20"),
        ({"name": "correct", "value": "yes"}, "must be true (pass) or false (fail)"),
        ({"name": "expected_summary", "kind": "feedback", "value": "text"},
         "kind is 'feedback' but label schema 'expected_summary' is a expectation"),
        ({"name": "summary_quality", "value": None}, "value is missing"),
        ({"name": None, "value": "Yes"}, "name is missing"),
        ({"name": "user_satisfaction", "value": {"a": [1, 2]}}, "nests lists or objects"),
        ({"name": "summary_quality", "value": "Yes", "trace_id": "tr-unknown"},
         "trace tr-unknown is not in the traces table"),
        ({"name": "summary_quality", "value": "Yes", "trace_id": None, "client_request_id": "req-none"},
         "client_request_id 'req-none' matches no trace"),
        ({"name": "summary_quality", "value": "Yes", "trace_id": None}, "trace_id is missing"),
        ({"name": "summary_quality", "value": "Yes", "session": "nope"}, "session 'nope' does not exist"),
        ({"name": "relevance", "value": 0.5, "session": "review-1"},
         "label schema 'relevance' is not one of session 'review-1''s questions: summary_quality, expected_summary, correct"),
        ({"name": "summary_quality", "value": "Yes", "session": "review-1", "trace": "outside"},
         "is not in session 'review-1''s snapshot"),
        ({"name": "summary_quality", "value": "Yes", "session": "review-1",
          "source": {"source_type": "HUMAN", "source_id": "mallory@example.com"}},
         "assessor 'mallory@example.com' is not assigned to session 'review-1' (assigned: alice@example.com, bob@example.com)"),
        ({"name": "summary_quality", "value": "Yes", "source": {"source_type": "ROBOT", "source_id": "r"}},
         "source.source_type 'ROBOT' is not one of: HUMAN, LLM_JUDGE, CODE"),
        ({"name": "summary_quality", "value": "Yes", "rationale": "r" * 10_001}, "rationale is 10001 characters long"),
        ({"name": "n" * 251, "value": "Yes"}, "name is 251 characters long: at most 250"),
        ({"kind": "skip", "value": "Yes"}, "a skip carries no value"),
        ({"name": "expected_summary", "kind": "expectation", "value": "x", "error": {"error_code": "TIMEOUT"}},
         "error is given but the kind is 'expectation': only a feedback carries an error"),
        ({"name": "relevance", "value": None, "error": "boom"}, 'error "boom" is not a JSON object'),
        ({"name": "relevance", "value": None, "error": {"error_message": "no code"}}, "error.error_code is missing"),
        ({"kind": "opinion", "name": "x", "value": 1}, "kind 'opinion' is not one of: feedback, expectation, skip"),
        ({"action": "upsert", "name": "x", "value": 1}, "action 'upsert' is not one of: create, update, delete"),
    ],
)
def test_each_invalid_submission_is_rejected_with_a_readable_reason(world, fields, expected):
    good = submission(trace_id=world.trace_ids[0], name="summary_quality", value="No", source=ALICE)
    trace = world.trace_ids[50] if fields.pop("trace", None) == "outside" else world.trace_ids[1]
    bad = {**submission(trace_id=trace, source=ALICE), **fields}
    land_submissions(world.landing, [good, bad])
    [report] = process(world)
    assert (report["accepted"], report["rejected"]) == (1, 1)
    reason = rejections(world)[bad["submission_id"]]
    assert expected in reason
    kept = current(world)
    assert kept["submission_id"].to_list() == [good["submission_id"]]


def test_a_feedback_with_an_error_needs_no_value_and_a_later_value_replaces_the_error(world):
    t = world.trace_ids
    timeout = AssessmentError("TIMEOUT", "judge took over 30 s", "Traceback ...")
    failed = log_feedback(trace_id=t[0], name="relevance", error=timeout, source=AssessmentSource("LLM_JUDGE", "judge-v1"))
    [report] = process(world)
    assert (report["accepted"], report["rejected"]) == (1, 0)
    row = current(world).row(0, named=True)
    assert row["assessment_value"] is None and json.loads(row["error"]) == timeout.to_dict()
    update_assessment(trace_id=t[0], assessment_id=failed.assessment_id, assessment=Feedback(name="relevance", value=0.7))
    process(world)
    row = current(world).row(0, named=True)
    assert (json.loads(row["assessment_value"]), row["error"]) == (0.7, None)


def test_tables_written_before_the_error_column_read_and_grow_it(world):
    log_feedback(trace_id=world.trace_ids[0], name="relevance", value=0.5)
    process(world)
    world.lake.overwrite(tables.ASSESSMENTS, world.lake.read(tables.ASSESSMENTS).drop("error"))
    assert "error" not in world.lake.scan(tables.ASSESSMENTS).collect_schema()
    assert current(world)["error"].to_list() == [None]
    log_feedback(trace_id=world.trace_ids[1], name="relevance", error=AssessmentError("TIMEOUT"))
    process(world)
    assert "error" in world.lake.scan(tables.ASSESSMENTS).collect_schema()
    assert set(current(world)["error"].to_list()) == {'{"error_code":"TIMEOUT"}', None}


def test_lines_that_are_not_submissions_are_rejected_and_nothing_else_is_lost(world):
    good = submission(trace_id=world.trace_ids[0], name="summary_quality", value="Yes", source=ALICE)
    key = land_lines(world.landing, ["{broken", json.dumps(good), "[1, 2]", '{"name": "no id"}',
                                     '{"submission_id": "s-1", "created_at": "yesterday"}'])[0]
    [report] = process(world)
    assert report["received"] == 5 and report["accepted"] == 1 and report["rejected"] == 4 and report["accounted"]
    reasons = rejections(world)
    assert reasons[f"line:{key}#1"] == "line 1 is not valid JSON: {broken"
    assert reasons[f"line:{key}#3"] == "line 3 is a JSON array: expected an object with a submission_id"
    assert reasons[f"line:{key}#4"].startswith("submission_id is missing")
    assert reasons["s-1"] == "created_at yesterday is not an ISO-8601 time or epoch milliseconds"
    raw = world.lake.read(tables.REJECTIONS).filter(pl.col("submission_id") == "s-1")["raw"].item()
    assert json.loads(raw)["created_at"] == "yesterday"


def test_a_create_without_assessment_id_gets_a_stable_one(world):
    line = {"submission_id": "s-plain", "trace_id": world.trace_ids[0], "name": "summary_quality", "value": "Yes",
            "source": {"source_type": "HUMAN", "source_id": "alice@example.com"}}
    other = {**line, "submission_id": "s-plain-2", "trace_id": world.trace_ids[1]}
    land_lines(world.landing, [json.dumps(line), json.dumps(other)])
    [report] = process(world)
    assert report["accepted"] == 2
    ids = current(world)["assessment_id"].to_list()
    assert len(set(ids)) == 2 and all(i.startswith("a-") and len(i) == 34 for i in ids)


def test_several_reasons_are_all_reported(world):
    bad = submission(trace_id="tr-ghost", name="summary_quality", value="Maybe", session="review-1",
                     source=AssessmentSource("HUMAN", "eve"))
    land_submissions(world.landing, [bad])
    process(world)
    reasons = world.lake.read(tables.REJECTIONS)["reasons"].item().to_list()
    assert any("tr-ghost is not in the traces table" in r for r in reasons)
    assert any("not one of its options" in r for r in reasons)
    assert any("assessor 'eve' is not assigned" in r for r in reasons)


def test_duplicate_files_and_duplicate_lines_are_no_ops(world):
    record = submission(trace_id=world.trace_ids[0], name="summary_quality", value="Yes", source=ALICE)
    land_submissions(world.landing, [record, record])
    land_submissions(world.landing, [record])
    [report] = process(world)
    assert (report["received"], report["accepted"], report["duplicates"]) == (3, 1, 2)
    versions = {t: world.lake.version(t) for t in (tables.SUBMISSIONS, tables.HISTORY, tables.ASSESSMENTS)}
    land_submissions(world.landing, [record])
    [again] = process(world)
    assert (again["received"], again["accepted"], again["duplicates"]) == (1, 0, 1)
    assert again["accounted"]
    assert {t: world.lake.version(t) for t in versions} == versions, "a duplicate file writes no new table version"
    assert current(world).height == 1


def test_a_newer_answer_from_the_same_assessor_supersedes_the_older(world):
    t = world.trace_ids[0]
    first = log_feedback(trace_id=t, name="summary_quality", value="Yes", source=ALICE, session="review-1")
    process(world)
    second = log_feedback(trace_id=t, name="summary_quality", value="No", source=ALICE, session="review-1")
    bob = log_feedback(trace_id=t, name="summary_quality", value="Yes", source=BOB, session="review-1")
    process(world)
    valid = current(world)
    assert set(valid["assessment_id"]) == {second.assessment_id, bob.assessment_id}
    everything = current(world, include_invalid=True)
    assert everything.filter(pl.col("assessment_id") == first.assessment_id)["valid"].item() is False


def test_override_marks_the_original_invalid_and_deleting_the_override_restores_it(world):
    t = world.trace_ids[1]
    judge = log_feedback(trace_id=t, name="relevance", value=0.2, source=AssessmentSource("LLM_JUDGE", "judge-v1"),
                         rationale="judge rationale")
    process(world)
    override = override_feedback(trace_id=t, assessment_id=judge.assessment_id, value=0.9, rationale="human says",
                                 source=ALICE, home=world.home)
    assert override.overrides == judge.assessment_id and override.name == "relevance"
    process(world)
    assert current(world)["assessment_id"].to_list() == [override.assessment_id]
    both = current(world, include_invalid=True).sort("created_at")
    assert both["valid"].to_list() == [False, True]
    assert both["overrides"].to_list() == [None, judge.assessment_id]

    delete_assessment(trace_id=t, assessment_id=override.assessment_id, home=world.home)
    process(world)
    restored = current(world, include_invalid=True)
    assert restored["assessment_id"].to_list() == [judge.assessment_id]
    assert restored["valid"].to_list() == [True]
    history = world.lake.read(tables.HISTORY).filter(pl.col("assessment_id") == override.assessment_id)
    assert sorted(history["action"]) == ["create", "delete"], "the deleted assessment's history stays"


def test_update_edits_in_place_merging_metadata_and_keeping_source_and_span(world):
    t = world.trace_ids[2]
    original = log_feedback(trace_id=t, name="summary_quality", value="Yes", source=ALICE, rationale="fine",
                            metadata={"round": "1", "tool": "sdk"}, span_id="span-1")
    process(world)
    updated = update_assessment(
        trace_id=t, assessment_id=original.assessment_id,
        assessment=Feedback(name="summary_quality", value="No", rationale="on reflection", metadata={"round": "2"}),
        home=world.home,
    )
    assert updated.metadata == {"round": "2", "tool": "sdk"} and updated.source == ALICE
    process(world)
    row = current(world).row(0, named=True)
    assert row["assessment_id"] == original.assessment_id
    assert json.loads(row["assessment_value"]) == "No"
    assert row["rationale"] == "on reflection"
    assert json.loads(row["metadata"]) == {"round": "2", "tool": "sdk"}
    assert (row["source_type"], row["assessor_id"], row["span_id"]) == ("HUMAN", "alice@example.com", "span-1")
    assert row["updated_at"] > row["created_at"]
    history = world.lake.read(tables.HISTORY).filter(pl.col("assessment_id") == original.assessment_id)
    assert history.sort("created_at")["action"].to_list() == ["create", "update"]


def test_invalid_updates_deletes_and_overrides_are_rejected(world):
    t = world.trace_ids[3]
    expectation = log_expectation(trace_id=t, name="expected_summary", value="Ground truth.", source=ALICE)
    process(world)
    switch = submission(action="update", assessment_id=expectation.assessment_id, kind="feedback", value="x")
    override = submission(trace_id=t, name="expected_summary", value="y", overrides=expectation.assessment_id)
    ghost = submission(action="delete", assessment_id="a-ghost")
    too_long = submission(action="update", assessment_id=expectation.assessment_id, value="z" * 201)
    land_submissions(world.landing, [switch, override, ghost, too_long])
    process(world)
    reasons = rejections(world)
    assert "cannot switch kind" in reasons[switch["submission_id"]]
    assert "only feedback can be overridden" in reasons[override["submission_id"]]
    assert reasons[ghost["submission_id"]] == "assessment a-ghost does not exist"
    assert "at most 200 are allowed" in reasons[too_long["submission_id"]]
    assert json.loads(current(world)["assessment_value"].item()) == "Ground truth."


def test_updates_and_deletes_in_the_same_batch_as_their_create_apply_in_order(world):
    t = world.trace_ids[4]
    create = submission(trace_id=t, name="summary_quality", value="Yes", source=ALICE,
                        created_at="2026-11-22T06:00:00.000Z")
    update = submission(action="update", assessment_id=create["assessment_id"], value="No",
                        created_at="2026-11-22T06:00:01.000Z")
    doomed = submission(trace_id=t, name="relevance", value=0.1, source=ALICE, created_at="2026-11-22T06:00:02.000Z")
    delete = submission(action="delete", assessment_id=doomed["assessment_id"], created_at="2026-11-22T06:00:03.000Z")
    land_submissions(world.landing, [create, update, doomed, delete])
    [report] = process(world)
    assert report["accepted"] == 4
    found = current(world)
    assert found["assessment_id"].to_list() == [create["assessment_id"]]
    assert json.loads(found["assessment_value"].item()) == "No"


def test_a_session_named_by_its_id_is_stored_by_name(world):
    land_submissions(world.landing, [submission(trace_id=world.trace_ids[0], name="summary_quality", value="Yes",
                                                source=ALICE, session="ls-1")])
    process(world)
    assert current(world)["session"].to_list() == ["review-1"]


def test_skips_are_recorded_without_schema_checks(world):
    skip = submission(trace_id=world.trace_ids[0], kind="skip", session="review-1", source=BOB, origin="review-app")
    land_submissions(world.landing, [skip])
    process(world)
    row = current(world, kind="skip").row(0, named=True)
    assert (row["valid"], row["assessor_id"], row["assessment_value"]) == (True, "bob@example.com", None)
    assert row["assessment_name"] == "skip" and row["session"] == "review-1"


def test_a_run_killed_between_its_writes_loses_nothing_and_duplicates_nothing(world):
    t = world.trace_ids
    records = [submission(trace_id=t[i], name="summary_quality", value="Yes" if i % 2 else "No", source=ALICE)
               for i in range(20)]
    records.append(submission(trace_id="tr-ghost", name="summary_quality", value="Yes"))
    land_submissions(world.landing, records)
    watermark = watermarks.processed_watermark(world.lake)
    [batch] = runs.batches(world.landing.list("submissions", after=watermark), watermark, 100)
    collect_submissions(world.lake, world.landing, batch.scope)  # the run dies here, before deriving
    assert not world.lake.exists(tables.ASSESSMENTS)
    assert watermarks.underived_dates(world.lake), "the half-done day is visible as pending"

    [report] = process(world)  # the file was never recorded as processed: the whole batch runs again
    assert report["collected"]["new"] == 0
    assert (report["received"], report["accepted"], report["rejected"], report["duplicates"]) == (21, 20, 1, 0)
    assert watermarks.underived_dates(world.lake) == []
    again = core.derive_assessments(world.lake, batch.scope)
    assert again["history_rows_written"] == 0 and again["assessments_written"] == 0
    assert current(world).height == 20
    assert world.lake.read(tables.SUBMISSIONS).height == 21
    assert world.lake.read(tables.REJECTIONS).height == 1
    assert core.accounting(world.lake) == {"submissions": 21, "accepted": 20, "rejected": 1, "in_both": 0, "in_neither": 0}


def test_rerunning_a_fully_processed_batch_changes_nothing(world):
    land_submissions(world.landing, [submission(trace_id=world.trace_ids[0], name="relevance", value=0.3)])
    watermark = watermarks.processed_watermark(world.lake)
    [batch] = runs.batches(world.landing.list("submissions", after=watermark), watermark, 10)
    process(world)
    versions = {t: world.lake.version(t) for t in (tables.SUBMISSIONS, tables.HISTORY, tables.ASSESSMENTS, tables.FILES)}
    collect_submissions(world.lake, world.landing, batch.scope)
    core.derive_assessments(world.lake, batch.scope)
    assert {t: world.lake.version(t) for t in versions} == versions


def test_a_schema_change_and_a_rederive_moves_rows_between_assessments_and_rejections(world):
    t = world.trace_ids
    maybe = submission(trace_id=t[0], name="summary_quality", value="Maybe", source=ALICE)
    yes = submission(trace_id=t[1], name="summary_quality", value="Yes", source=ALICE)
    land_submissions(world.landing, [maybe, yes])
    [report] = process(world)
    assert maybe["submission_id"] in rejections(world)
    widened = [("summary_quality", "feedback", "categorical", {"options": ["Maybe", "No"]})]
    world.lake.merge("label_schemas", label_schema_rows(widened, version=2), on=["name", "version"])
    day = world.lake.read(tables.SUBMISSIONS)["submission_date"].min()
    rederived = core.derive_assessments(world.lake, runs.Scope.dates(day, day + timedelta(days=1)))
    assert (rederived["accepted"], rederived["rejected"]) == (1, 1)
    assert rederived["moved_to_rejections"] == 1 and rederived["moved_to_assessments"] == 1
    found = current(world)
    assert found["submission_id"].to_list() == [maybe["submission_id"]]
    assert found["schema_version"].to_list() == [2]
    assert "not one of its options: Maybe, No" in rejections(world)[yes["submission_id"]]
    assert core.accounting(world.lake)["in_neither"] == 0


def test_search_filters(world):
    t = world.trace_ids
    judge = AssessmentSource("LLM_JUDGE", "judge")
    land_submissions(world.landing, [
        submission(trace_id=t[0], name="summary_quality", value="Yes", source=ALICE, session="review-1",
                   created_at="2026-11-22T06:00:00Z"),
        submission(trace_id=t[1], name="summary_quality", value="No", source=BOB, session="review-1",
                   created_at="2026-11-22T06:00:01Z"),
        submission(trace_id=t[2], name="expected_summary", kind="expectation", value="Truth.", source=ALICE,
                   session="review-1", created_at="2026-11-22T06:00:02Z"),
        judged := submission(trace_id=t[3], name="relevance", value=0.4, source=judge, created_at="2026-11-22T06:00:03Z"),
    ])
    process(world)
    assert current(world, session="review-1").height == 3
    assert current(world, name="summary_quality").height == 2
    assert current(world, assessor="alice@example.com").height == 2
    assert current(world, kind="expectation")["assessment_name"].to_list() == ["expected_summary"]
    assert current(world, trace_ids=[t[3]])["assessment_id"].to_list() == [judged["assessment_id"]]
    newest = current(world)["timestamp"].max()
    assert current(world, since=newest).height == 1
    assert current(world, until=newest).height == 3
    for column in ("trace_id", "session", "assessment_id", "assessment_name", "kind", "assessment_value", "rationale",
                   "source_type", "assessor_id", "timestamp", "valid"):
        assert column in current(world).columns


def test_search_with_pending_shows_my_answers_before_the_pipeline_runs(world):
    t = world.trace_ids
    first = log_feedback(trace_id=t[0], name="summary_quality", value="Yes", source=ALICE, session="review-1")
    process(world)
    newer = log_feedback(trace_id=t[0], name="summary_quality", value="No", source=ALICE, session="review-1")
    assert current(world)["assessment_id"].to_list() == [first.assessment_id]
    mine = current(world, assessor="alice@example.com", include_pending=True)
    assert mine["assessment_id"].to_list() == [newer.assessment_id]
    assert mine["pending"].to_list() == [True]
    pending = watermarks.pending_submissions(world.lake, world.landing)
    assert pending["submission_id"].to_list() == [newer.submission_id]


def test_sdk_rejects_obviously_bad_input_before_landing(world):
    with pytest.raises(ValueError, match="trace_id is None"):
        log_feedback(name="x", value=1)
    with pytest.raises(ValueError, match="value is None for expectation 'truth'"):
        log_expectation(trace_id=world.trace_ids[0], name="truth", value=None)
    with pytest.raises(ValueError, match="source_type 'ROBOT'"):
        AssessmentSource("ROBOT")
    with pytest.raises(ValueError, match="value .*JSON-serialisable"):
        log_feedback(trace_id=world.trace_ids[0], name="x", value=object())
    with pytest.raises(ValueError, match="no such assessment"):
        override_feedback(trace_id=world.trace_ids[0], assessment_id="a-none", value=1, home=world.home)
    assert world.landing.list("submissions") == []



def test_runs_are_cut_by_day_file_count_and_bytes():
    keys = [f"submissions/2026-11-2{day}/00/{n:04d}-aa.jsonl" for day, n in [(1, 1), (1, 2), (1, 3), (1, 4), (2, 5)]]
    by_count = runs.batches(keys, None, max_files=3)
    assert [(b.after_key, b.last_key, b.files) for b in by_count] == [
        (None, keys[2], 3), (keys[2], keys[3], 1), (None, keys[4], 1)
    ]
    by_bytes = runs.batches(keys, None, max_files=100, sizes=[40, 50, 200, 10, 10], max_bytes=100)
    assert [(b.last_key, b.files) for b in by_bytes] == [(keys[1], 2), (keys[2], 1), (keys[3], 1), (keys[4], 1)]
