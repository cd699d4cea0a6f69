"""Input types are defined once: the pipeline's polars rules, the one-value check, the GX suite, the
publish gate and the Review App's form reading all come from `feedback_pipeline.input_types`."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from feedback_pipeline import datasets, input_types, suites, validation
from feedback_pipeline.input_types import (
    InputCategorical,
    InputCategoricalList,
    InputNumeric,
    InputPassFail,
    InputText,
    InputTextList,
    check_value,
)
from feedback_pipeline.json_values import value_facts
from feedback_pipeline.labeling_file import apply_labeling_file
from feedback_pipeline.review_app.answers import Question, parse_answers
from feedback_pipeline.schemas import get_label_schema
from tests.datasets_world import expectation, label_schema, trace, write_world

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
INPUTS = [
    InputCategorical(["Yes", "No"]),
    InputCategoricalList(["billing", "login"]),
    InputNumeric(min_value=0, max_value=10),
    InputNumeric(),
    InputText(max_length=5),
    InputTextList(max_length_each=4, max_count=2),
    InputPassFail(),
]
VALUES = ["Yes", "Maybe", 3, -1, 11, 2.5, True, False, None, ["billing"], ["billing", "weather"], ["a", 1],
          "abcdef", ["abc", "abcdef", "x"], [], {"a": 1}]


def _pipeline_reasons(answer_input: input_types.Input, values: list) -> list[list[str]]:
    """The reasons pipeline validation's polars rules give each value (the frame as validation builds it)."""
    parameters = json.dumps(answer_input.parameters())
    frame = pl.DataFrame(
        {"name": ["q"] * len(values), "value": [None if v is None else json.dumps(v, separators=(",", ":")) for v in values],
         "input_type": [answer_input.input_type] * len(values), "input": [parameters] * len(values)},
        schema={"name": pl.String, "value": pl.String, "input_type": pl.String, "input": pl.String},
    )
    frame = value_facts(frame).with_columns(pl.col("input").str.json_decode(input_types.PARAMETERS_DTYPE).alias("p")).unnest("p")
    rules = input_types.value_rules(pl.col("name"), input_types.shown_column("value"))
    checked = frame.with_columns(
        pl.concat_list([pl.when(condition.fill_null(False) & pl.col("value").is_not_null()).then(message)
                        for condition, message in rules]).list.drop_nulls().alias("reasons")
    )
    return checked["reasons"].to_list()


@pytest.mark.parametrize("answer_input", INPUTS, ids=lambda i: f"{i.input_type}{i.parameters()}")
def test_the_plain_check_says_what_the_pipeline_says(answer_input):
    assert [answer_input.check(v, "q") for v in VALUES] == _pipeline_reasons(answer_input, VALUES)


def test_check_value_takes_a_label_schema_or_an_input(home):
    apply_labeling_file(_labeling_file(home), home=home)
    schema = get_label_schema("quality", home=home)
    assert check_value(schema, "Good") == []
    assert check_value(schema, "Great") == ["value \"Great\" for 'quality' is not one of its options: Good, Bad"]
    assert check_value(InputNumeric(max_value=5), 6) == ["value 6 for 'value' is above its maximum 5.0"]


def _labeling_file(home) -> Path:
    path = Path(home.root) / "labeling.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "label_schemas:\n"
        "  - name: quality\n    input: {type: categorical, options: [Good, Bad]}\n"
        "  - name: note\n    input: {type: text, max_length: 40, required: false}\n"
    )
    return path


def test_required_false_is_accepted_by_apply_and_reaches_the_review_app(home):
    apply_labeling_file(_labeling_file(home), home=home)
    note, quality = get_label_schema("note", home=home), get_label_schema("quality", home=home)
    assert (note.input.required, quality.input.required) == (False, True)
    assert note.input.parameters() == {"max_length": 40, "required": False}
    assert quality.input.parameters() == {"options": ["Good", "Bad"]}
    questions = [Question.from_row({"name": s.name, "input_type": s.input.input_type, "input": json.dumps(s.input.parameters())})
                 for s in (quality, note)]
    assert [q.required for q in questions] == [True, False]
    answers, errors = parse_answers(questions, {"answer:quality": ["Good"]})
    assert (list(answers), errors) == (["quality"], {})
    with pytest.raises(ValueError, match="InputText.required is 'no': expected true or false"):
        InputText(required="no")


def test_parameter_columns_are_the_input_types_parameters():
    """The orphan `multi_select` (no input type has it) is gone from what validation decodes."""
    declared = {f.name for cls in input_types.INPUT_CLASSES.values() for f in fields(cls)}
    assert set(input_types.PARAMETERS_DTYPE.to_schema()) == declared
    empty = validation.latest_schemas(pl.DataFrame())
    assert "multi_select" not in empty.columns and declared <= set(empty.columns)


def _schemas_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"name": pl.String, "version": pl.Int64, "type": pl.String,
                                      "input_type": pl.String, "input": pl.String, "deleted": pl.Boolean})


def test_the_assessments_suite_checks_categorical_list_options():
    schemas = validation.latest_schemas(_schemas_frame([label_schema("tags", "categorical_list", {"options": ["a", "b"]}, kind="feedback")]))
    assessments = pl.DataFrame([
        {**expectation("a-1", "tr-1", "tags", ["a", "b"], kind="feedback")},
        {**expectation("a-2", "tr-1", "tags", ["a", "z"], kind="feedback"), "assessor_id": "bob@example.com"},
    ])
    outcome = suites.check_assessments(assessments, schemas)
    assert not outcome.success
    [failed] = outcome.failures
    assert (failed["suite"], failed["column"], failed["unexpected_count"]) == ("schema:tags", "items_in_options", 1)
    assert suites.check_assessments(assessments.head(1), schemas).success


def test_the_publish_gate_checks_text_length(home):
    lake = home.lake()
    schemas = [label_schema("expected_summary", "text", {"max_length": 10}), label_schema("facts", "text_list", {"max_count": 1})]
    write_world(lake, [trace("tr-1", "q1", "a")], [expectation("a-1", "tr-1", "expected_summary", "far too long a summary"),
                                                   expectation("a-2", "tr-1", "facts", ["one", "two"])], schemas=schemas)
    build = datasets.build_dataset(
        "summaries", traces=lake.read("traces"), assessments=lake.read("assessments"),
        labeling_sessions=lake.read("labeling_sessions"), session_items=lake.read("session_items"),
        label_schemas=lake.read("label_schemas"), previous=None, now=NOW,
    )
    audit = datasets.audit_dataset(build, lake.read("label_schemas"))
    assert not audit.passed
    assert any(f.startswith("expectation 'expected_summary': values must be at most 10 characters long") for f in audit.failures)
    assert any(f.startswith("expectation 'facts': values must have at most 1 items") for f in audit.failures)


def test_the_review_app_reads_forms_through_the_input_type():
    question = Question.from_row({"name": "rating", "input_type": "numeric", "input": json.dumps({"min_value": 1, "max_value": 5})})
    assert question.input == InputNumeric(1, 5)
    assert question.input.read_form(["4"]) == (4, None)
    assert question.input.read_form(["9"]) == (None, "9 is out of range: expected a number between 1 and 5")
    unknown = Question.from_row({"name": "x", "input_type": "slider", "input": "{}"})
    assert unknown.input is None
    _, errors = parse_answers([unknown], {"answer:x": ["1"]})
    assert errors["x"].startswith("input type 'slider' is not supported")
