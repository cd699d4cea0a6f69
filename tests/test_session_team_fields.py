"""A session's team settings: reservation_minutes, guidelines, per-item assignments, adjudicators and owners
(SDK and labeling.yaml), and who may do what (`session_roles`)."""

from __future__ import annotations

import pytest

import feedback_pipeline as fp
from feedback_pipeline import session_roles, sessions
from feedback_pipeline.labeling_file import apply_labeling_file


def test_sdk_sets_reservation_minutes_guidelines_and_assignments(home):
    session = fp.create_labeling_session("s", label_schemas=["expected_facts"], reservation_minutes=30, guidelines="Be **brief**.")
    assert (session.reservation_minutes, session.guidelines, session.assignments) == (30, "Be **brief**.", {})
    assigned = session.assign({"tr-1": ["Alice@Example.com"], "tr-2": ["bob@example.com"]})
    assert assigned.assignments == {"tr-1": ["alice@example.com"], "tr-2": ["bob@example.com"]}
    again = fp.get_labeling_session("s").assign({"tr-2": []})
    assert again.assignments == {"tr-1": ["alice@example.com"]}, "an empty list removes a trace's assignment"
    assert fp.create_labeling_session("t", label_schemas=["expected_facts"]).reservation_minutes == sessions.DEFAULT_RESERVATION_MINUTES


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reservation_minutes", 0, "reservation_minutes is 0: expected a whole number from 1 to 1440"),
        ("reservation_minutes", "15", "reservation_minutes is '15'"),
        ("guidelines", 7, "guidelines is '7'"),
        ("assignments", {"tr-1": "alice@example.com"}, "assignments\\['tr-1'\\] is 'alice@example.com': expected a list"),
    ],
)
def test_bad_team_settings_name_the_field(home, field, value, message):
    with pytest.raises(ValueError, match=message):
        fp.create_labeling_session("s", label_schemas=["expected_facts"], **{field: value})


def test_labeling_yaml_carries_the_team_settings_and_applies_idempotently(home, tmp_path):
    path = tmp_path / "labeling.yaml"
    path.write_text(
        "labeling_sessions:\n"
        "  - name: s\n"
        "    label_schemas: [expected_facts]\n"
        "    reservation_minutes: 5\n"
        "    guidelines: |\n"
        "      Judge the *answer* only.\n"
        "    assignments: {tr-1: [alice@example.com]}\n"
    )
    assert apply_labeling_file(path, home=home)
    session = fp.get_labeling_session("s")
    assert session.reservation_minutes == 5 and session.guidelines == "Judge the *answer* only.\n"
    assert session.assignments == {"tr-1": ["alice@example.com"]}
    assert apply_labeling_file(path, home=home) == [], "applying again changes nothing"
    row = sessions.session_table(home).row(0, named=True)
    assert row["reservation_minutes"] == 5 and row["assignments"] == '{"tr-1": ["alice@example.com"]}'
    path.write_text("labeling_sessions:\n  - name: s\n    label_schemas: [expected_facts]\n    reservation_minutes: 2000\n")
    with pytest.raises(ValueError, match=rf"^{path}:4: reservation_minutes is 2000"):
        apply_labeling_file(path, home=home)


def test_owners_and_adjudicators_open_the_session_and_only_reviewers_answer(home, tmp_path):
    session = fp.create_labeling_session(
        "s", label_schemas=["expected_facts"], assigned_users=["alice@example.com"],
        adjudicators=["lead@example.com"], owners=["Owner@Example.com"],
    )
    assert (session.adjudicators, session.owners) == (["lead@example.com"], ["Owner@Example.com"])
    row = sessions.session_table(home).row(0, named=True)
    roles = {who: (session_roles.may_open(row, who), session_roles.may_answer(row, who), session_roles.sees_agreement(row, who))
             for who in ("alice@example.com", "lead@example.com", "owner@example.com", "eve@example.com")}
    assert roles == {
        "alice@example.com": (True, True, False),
        "lead@example.com": (True, False, True),
        "owner@example.com": (True, False, True),
        "eve@example.com": (False, False, False),
    }
    with pytest.raises(ValueError, match="owners is 'dana@example.com': expected a list"):
        fp.create_labeling_session("t", label_schemas=["expected_facts"], owners="dana@example.com")
    path = tmp_path / "labeling.yaml"
    path.write_text("labeling_sessions:\n  - name: u\n    label_schemas: [expected_facts]\n    owners: [dana@example.com]\n")
    assert apply_labeling_file(path, home=home)
    assert fp.get_labeling_session("u").owners == ["dana@example.com"]
