"""Label schemas through the SDK and labeling.yaml: versions, soft deletes, validation, idempotent apply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import feedback_pipeline as fp
from feedback_pipeline import definition_events, schemas
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.labeling_file import LabelingFileError, apply_labeling_file

REPO = Path(__file__).resolve().parents[1]




def landed(home: FeedbackHome) -> list[str]:
    return home.landing().list(definition_events.AREA)


def test_create_then_get_reads_its_own_write_without_a_pipeline_run(home):
    created = fp.create_label_schema(
        "summary_quality", type="feedback", title="Is this summary good?",
        input=fp.InputCategorical(["Yes", "No"]), instruction="Please provide a rationale below.", enable_comment=True,
    )
    got = fp.get_label_schema("summary_quality")
    assert got == created
    assert got.version == 1 and got.schema_id.startswith("ls-")
    assert got.input == fp.InputCategorical(["Yes", "No"]) and got.enable_comment
    assert "summary_quality" in [s.name for s in fp.list_label_schemas()]


def test_built_in_schemas_are_ready_and_can_be_overwritten(home):
    names = {s.name: s for s in fp.list_label_schemas()}
    assert {fp.EXPECTED_FACTS, fp.EXPECTED_RESPONSE, fp.GUIDELINES} <= set(names)
    assert names["expected_facts"].input.input_type == "text_list" and names["expected_facts"].type == "expectation"
    assert names["expected_response"].input == fp.InputText()
    assert names["guidelines"].input.input_type == "text_list"
    changed = fp.create_label_schema("guidelines", type="expectation", title="Rules", input=fp.InputTextList(max_count=5), overwrite=True)
    assert changed.version == 2 and changed.schema_id == "ls-guidelines"


def test_every_change_makes_a_new_version_and_an_identical_overwrite_does_not(home):
    fp.create_label_schema("score", title="Score", input=fp.InputNumeric(1, 5))
    second = fp.create_label_schema("score", title="Score (1-10)", input=fp.InputNumeric(1, 10), overwrite=True)
    files = len(landed(home))
    again = fp.create_label_schema("score", title="Score (1-10)", input=fp.InputNumeric(1, 10), overwrite=True)
    assert second.version == again.version == 2
    assert len(landed(home)) == files  # nothing landed for a no-op
    table = schemas.schema_table(home).filter(pl.col("name") == "score")
    assert table["version"].to_list() == [1, 2]
    assert table["input"].to_list() == ['{"max_value": 5, "min_value": 1}', '{"max_value": 10, "min_value": 1}']
    assert table["schema_id"].n_unique() == 1


def test_delete_is_soft_and_keeps_every_version(home):
    fp.create_label_schema("tone", title="Tone", input=fp.InputPassFail("Friendly", "Rude"))
    fp.delete_label_schema("tone")
    with pytest.raises(ValueError, match="'tone' does not exist"):
        fp.get_label_schema("tone")
    assert "tone" not in [s.name for s in fp.list_label_schemas()]
    table = schemas.schema_table(home).filter(pl.col("name") == "tone")
    assert table.select("version", "deleted").rows() == [(1, True)]
    recreated = fp.create_label_schema("tone", title="Tone", input=fp.InputPassFail("Friendly", "Rude"))
    assert recreated.version == 2
    assert schemas.current_schemas(schemas.schema_table(home)).filter(pl.col("name") == "tone")["version"].to_list() == [2]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: fp.InputCategorical([]), r"InputCategorical.options has 0 options: expected 1 to 10"),
        (lambda: fp.InputCategorical([str(i) for i in range(11)]), r"has 11 options: expected 1 to 10"),
        (lambda: fp.InputCategorical(["Yes", "Yes"]), r"repeats \['Yes'\]: expected distinct options"),
        (lambda: fp.InputCategoricalList(["x" * 65]), r"expected a non-empty string of at most 64 characters"),
        (lambda: fp.InputNumeric(5, 1), r"min_value 5 is above max_value 1"),
        (lambda: fp.InputText(max_length=0), r"InputText.max_length is 0"),
        (lambda: fp.InputPassFail("Ok", "Ok"), r"expected two different labels"),
        (lambda: fp.create_label_schema("q", type="opinion", title="Q", input=fp.InputText()), r"type is 'opinion': expected 'feedback' or 'expectation'"),
        (lambda: fp.create_label_schema("n" * 251, title="Q", input=fp.InputText()), r"name is 'nnn.*at most 250 characters"),
        (lambda: fp.create_label_schema("q", title="Q", input=fp.InputText(), instruction="i" * 1001), r"instruction .*at most 1000 characters"),
        (lambda: fp.create_label_schema("q", title="Q", input=["Yes", "No"]), r"input is \['Yes', 'No'\]: expected one of InputCategorical"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_message_and_nothing_is_written(home, build, message):
    with pytest.raises(ValueError, match=message):
        build()
    assert landed(home) == []


def test_an_existing_name_without_overwrite_is_refused_and_nothing_changes(home):
    fp.create_label_schema("q", title="Q", input=fp.InputText())
    before = landed(home)
    with pytest.raises(ValueError, match=r"name 'q' is already a label schema \(version 1\): pass overwrite=True"):
        fp.create_label_schema("q", title="Other", input=fp.InputText())
    assert landed(home) == before
    assert fp.get_label_schema("q").title == "Q"


def test_the_fold_ignores_other_writers_of_the_definitions_area(home):
    home.landing().write_lines("definitions", ['{"event": "reviewer.invite", "email": "x@example.com"}'], label="invitation")
    fp.create_label_schema("q", title="Q", input=fp.InputText())
    assert [s.name for s in fp.list_label_schemas()].count("q") == 1


def test_import_is_lazy():
    code = "import sys, feedback_pipeline as fp; assert 'feedback_pipeline.input_types' not in sys.modules; fp.InputText; assert 'feedback_pipeline.input_types' in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)


BAD_FILES = [
    ("label_schemas:\n  - name: q\n    type: opinion\n    input: {type: text}\n", 3, "type is 'opinion'"),
    ("label_schemas:\n  - name: q\n    input:\n      type: categorical\n      options: []\n", 5, "InputCategorical.options has 0 options"),
    ("label_schemas:\n  - name: q\n    input:\n      type: numeric\n      min_value: 3\n      max_value: 1\n", 5, "min_value 3 is above max_value 1"),
    ("label_schemas:\n  - name: q\n    input: {type: slider}\n", 3, "input type 'slider'"),
    ("label_schemas:\n  - name: q\n    colour: red\n    input: {type: text}\n", 3, "key 'colour'"),
    ("label_schemas:\n  - name: q\n    input: {type: text}\n  - name: q\n    input: {type: text}\n", 4, "appears twice"),
    ("label_schemas:\n  - name: q\n    input: {type: text\n", 4, "not valid YAML"),
    ("schemas: []\n", 1, "top-level key 'schemas'"),
    ("label_schemas:\n  - name: q\n    input:\n      type: categorical\n      options: [Yes, No]\n", 5, 'option True: expected a string (in YAML, quote yes/no options: "Yes")'),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_FILES)
def test_an_invalid_file_names_the_line_at_fault_and_writes_nothing(home, tmp_path, text, line, message):
    path = tmp_path / "labeling.yaml"
    path.write_text(text)
    with pytest.raises(LabelingFileError) as caught:
        apply_labeling_file(path, home=home)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)
    assert landed(home) == []


def test_cli_apply_is_idempotent_and_refuses_bad_files(home, cli, tmp_path):
    first = cli("apply", "examples/labeling.yaml")
    assert first.stdout.decode().splitlines() == [
        "label schema summary_quality: created",
        "label schema expected_summary: created",
        "labeling session label_summaries: created",
    ]
    files = landed(home)
    second = cli("apply", "examples/labeling.yaml")
    assert second.stdout.decode().strip() == "no changes" and landed(home) == files

    bad = tmp_path / "bad.yaml"
    bad.write_text("label_schemas:\n  - name: q\n    type: feedback\n    input: {type: categorical, options: [a, a]}\n")
    refused = cli("apply", str(bad), check=False)
    assert refused.returncode != 0
    assert f"{bad}:4: InputCategorical.options repeats ['a']" in refused.stderr.decode()
    assert landed(home) == files


def test_changing_the_file_prints_what_changed(home, tmp_path):
    apply_labeling_file(REPO / "examples/labeling.yaml", home=home)
    text = (REPO / "examples/labeling.yaml").read_text().replace("Please provide a rationale below.", "Explain briefly.")
    text = text.replace("[alice@example.com, bob@example.com]", "[alice@example.com]")
    changed = tmp_path / "labeling.yaml"
    changed.write_text(text)
    assert apply_labeling_file(changed, home=home) == [
        "label schema summary_quality: new version 2",
        "labeling session label_summaries: updated assigned_users",
    ]
    assert fp.get_label_schema("summary_quality", home=home).instruction == "Explain briefly."
