"""The SDK checks at the call (`feedback_pipeline.assessment_checks`): what the pipeline would refuse raises
`InvalidAssessment` (a ValueError) naming the field, the value, what was expected and the close name."""

from __future__ import annotations

import pytest
from assessments_world import build_world

from feedback_pipeline import InvalidAssessment
from feedback_pipeline.entities import AssessmentSource, Feedback
from feedback_pipeline.exports import import_traces
from feedback_pipeline.input_types import InputCategorical
from feedback_pipeline.schemas import create_label_schema
from feedback_pipeline.sessions import create_labeling_session
from feedback_pipeline.submissions import log_expectation, log_feedback, override_feedback, update_assessment
from tests.conftest import FIXTURES

ALICE = AssessmentSource("HUMAN", "alice@example.com")


@pytest.fixture
def world(tmp_path, monkeypatch):
    return build_world(tmp_path, monkeypatch)


def refused(world, call, **fields) -> InvalidAssessment:
    with pytest.raises(InvalidAssessment) as raised:
        call(**fields)
    assert isinstance(raised.value, ValueError)
    assert world.landing.list("submissions") == [], "a refused assessment lands nothing"
    return raised.value


@pytest.mark.parametrize(
    ("call", "fields", "field", "message"),
    [
        (log_feedback, {"name": "summary_qualty", "value": "Yes"}, "name",
         "name 'summary_qualty': expected a label schema (correct, expected_facts, expected_response, "
         "expected_summary, guidelines, key_facts, relevance, "
         "summary_quality, topics), or free_form=True for a name without one; did you mean 'summary_quality'?"),
        (log_feedback, {"name": "summary_quality", "value": "Yse"}, "value",
         "value \"Yse\" for 'summary_quality' is not one of its options: Yes, No; did you mean 'Yes'?"),
        (log_feedback, {"name": "relevance", "value": 1.5}, "value", "value 1.5 for 'relevance' is above its maximum 1.0"),
        (log_feedback, {"name": "relevance", "value": "high"}, "value", "value \"high\" for 'relevance' must be a number"),
        (log_expectation, {"name": "key_facts", "value": ["a", "b", "c"]}, "value",
         "value for 'key_facts' has 3 items: at most 2 are allowed"),
        (log_feedback, {"name": "expected_summary", "value": "text"}, "name",
         "name 'expected_summary': label schema 'expected_summary' is of type expectation: expected log_expectation"),
        (log_feedback, {"name": "summary_quality", "value": "Yes", "trace_id": "tr-nope"}, "trace_id",
         "trace_id 'tr-nope': expected the trace_id of a trace in"),
        (log_feedback, {"name": "summary_quality", "value": "Yes", "trace_id": None, "client_request_id": "req-nope"},
         "client_request_id", "client_request_id 'req-nope': expected the client_request_id of a trace in"),
        (log_feedback, {"name": "summary_quality", "value": "Yes", "session": "review-2"}, "session",
         "session 'review-2': expected a live labeling session (review-1); did you mean 'review-1'?"),
        (log_feedback, {"name": "relevance", "value": 0.5, "session": "review-1"}, "name",
         "name 'relevance': expected one of session 'review-1''s questions (summary_quality, expected_summary, correct)"),
        (log_feedback, {"name": "summary_quality", "value": "Yes", "session": "review-1",
                        "source": AssessmentSource("HUMAN", "alice@exmaple.com")}, "source.source_id",
         "source.source_id 'alice@exmaple.com': expected one of session 'review-1''s assigned users "
         "(alice@example.com, bob@example.com); did you mean 'alice@example.com'?"),
        (log_feedback, {"name": "user_satisfaction", "value": True}, "name", "or free_form=True for a name without one"),
    ],
)
def test_what_the_pipeline_would_refuse_raises_at_the_call(world, call, fields, field, message):
    given = {"trace_id": world.trace_ids[0], "source": ALICE, **fields}
    error = refused(world, call, **given)
    assert error.field == field
    assert message in str(error), str(error)


def test_free_form_names_are_allowed_explicitly(world):
    logged = log_feedback(trace_id=world.trace_ids[0], name="user_satisfaction", value=True, free_form=True)
    assert logged.name == "user_satisfaction"
    log_expectation(trace_id=world.trace_ids[0], name="truth", value={"a": 1}, free_form=True)
    assert len(world.landing.list("submissions")) == 2


def test_override_and_update_check_the_new_value_and_name(world):
    t = world.trace_ids[1]
    judge = log_feedback(trace_id=t, name="relevance", value=0.2, source=AssessmentSource("LLM_JUDGE", "judge-v1"))
    landed = world.landing.list("submissions")
    with pytest.raises(InvalidAssessment, match="value 2 for 'relevance' is above its maximum 1.0"):
        override_feedback(trace_id=t, assessment_id=judge.assessment_id, value=2, source=ALICE)
    with pytest.raises(InvalidAssessment, match="did you mean 'relevance'"):
        update_assessment(trace_id=t, assessment_id=judge.assessment_id, assessment=Feedback(name="relevanse", value=0.3))
    assert world.landing.list("submissions") == landed
    update_assessment(trace_id=t, assessment_id=judge.assessment_id, assessment=Feedback(name="relevance", value=0.3))


def test_definitions_made_a_moment_ago_are_known_before_any_run(world):
    create_label_schema("tone", input=InputCategorical(["calm", "rude"]))
    create_labeling_session("review-2", assigned_users=["carol@example.com"], label_schemas=["tone"])
    log_feedback(trace_id=world.trace_ids[0], name="tone", value="calm", session="review-2",
                 source=AssessmentSource("HUMAN", "carol@example.com"))
    with pytest.raises(InvalidAssessment, match="did you mean 'calm'"):
        log_feedback(trace_id=world.trace_ids[0], name="tone", value="clam")


def test_a_trace_still_waiting_in_the_landing_zone_is_not_refused(world, tmp_path):
    import json

    line = json.loads((FIXTURES / "traces.jsonl").read_text().splitlines()[0])
    line["info"]["trace_id"] = "tr-arriving"
    (tmp_path / "new.jsonl").write_text(json.dumps(line) + "\n")
    import_traces([str(tmp_path / "new.jsonl")], world.landing)
    log_feedback(trace_id="tr-arriving", name="summary_quality", value="Yes")
    assert len(world.landing.list("submissions")) == 1
