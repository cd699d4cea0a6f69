"""Adjudication end to end: two reviewers disagree, the adjudicator settles it in Debian's chromium
(Playwright), and the pipeline's next dataset version carries the gold value."""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest

from feedback_pipeline import load_evaluation_dataset
from feedback_pipeline.cli.pipeline import run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.labeling_file import apply_labeling_file
from feedback_pipeline.review_app.access import check_invitation, invite_reviewer
from feedback_pipeline.submissions import AssessmentSource, log_expectation
from tests.test_review_app_browser import page, serve  # noqa: F401 - `page` is the shared chromium fixture

pytestmark = pytest.mark.browser
SAMPLES = Path(__file__).resolve().parents[1] / "feedback_pipeline" / "sample_data"

LABELING = """
label_schemas:
  - name: topic
    type: expectation
    title: What is the request about?
    input: {type: categorical, options: [billing, shipping, other]}
labeling_sessions:
  - name: triage
    label_schemas: [topic]
    assigned_users: [alice@example.com, bob@example.com]
    adjudicators: [lead@example.com]
    owners: [owner@example.com]
    reviews_per_item: 2
    dataset: tickets
    trace_ids: [TRACES]
"""


def quiet(*_args, **_kwargs) -> None:
    return None


def test_an_adjudication_in_the_browser_changes_the_datasets_next_version(home, tmp_path, page):
    import_traces([str(SAMPLES / "mlflow_traces.jsonl")], home.landing())
    first, second = [json.loads(line)["info"]["trace_id"] for line in (SAMPLES / "mlflow_traces.jsonl").read_text().splitlines()[:2]]
    path = tmp_path / "labeling.yaml"
    path.write_text(LABELING.replace("TRACES", f"{first}, {second}"))
    apply_labeling_file(path, home=home)
    assert not run_pending(home, echo=quiet).failures
    for who, topic_first, topic_second in (("alice@example.com", "billing", "other"), ("bob@example.com", "shipping", "other")):
        for trace_id, topic in ((first, topic_first), (second, topic_second)):
            log_expectation(trace_id=trace_id, name="topic", value=topic, session="triage",
                            source=AssessmentSource("HUMAN", who), home=home)
        time.sleep(0.01)  # bob's answers are the later ones, to the millisecond, for `latest`
    assert not run_pending(home, echo=quiet).failures
    before = load_evaluation_dataset("tickets", home=home)
    by_trace = {r["source"]["source_data"]["trace_id"]: r["expectations"]["topic"] for r in before.records(full=True)}
    assert by_trace == {first: "shipping", second: "other"}  # `latest` picks bob's answer

    with serve(home) as base:
        page.goto(invite_reviewer(home.landing(), "alice@example.com", "triage", base_url=base).url)
        assert page.locator("#agreement").count() == 0, "reviewers do not see the agreement panel"
        assert page.goto(f"{base}/sessions/triage/disagreements").status == 403, "reviewers stay blind to each other"

        page.context.clear_cookies()
        page.goto(invite_reviewer(home.landing(), "lead@example.com", "triage", base_url=base).url)
        chart = page.locator("#agreement svg.agreement-chart")
        assert chart.count() == 1 and "topic" in chart.text_content()
        page.screenshot(path=str(tmp_path / "session.png"))
        page.click("#disagreements-link")
        page.wait_for_url("**/sessions/triage/disagreements")
        form = page.locator(f"form.disagreement[data-trace='{first}']")
        answers = form.locator("table.answers tbody tr").all_inner_texts()
        assert [a.split("\t") for a in answers] == [["alice@example.com", "billing"], ["bob@example.com", "shipping"]]
        assert page.locator("form.disagreement").count() == 1, "the agreeing item is not listed"
        form.locator("input[name=choice][value='\"billing\"']").check()
        page.screenshot(path=str(tmp_path / "disagreements.png"))
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#saved")
        item_id = home.lake().read("session_items").filter(pl.col("trace_id") == first).item(0, "item_id")
        refused = page.request.post(f"{base}/sessions/triage/items/{item_id}", form={"answer:topic": "other"})
        assert refused.status == 403 and "not assigned to answer" in refused.text(), "the door refuses what the pipeline would"

        for who in ("lead@example.com", "owner@example.com"):
            check_invitation(home, who, "triage")  # adjudicators and owners may be invited, though not assigned
        page.context.clear_cookies()
        page.goto(invite_reviewer(home.landing(), "owner@example.com", "triage", base_url=base).url)
        assert page.locator("#agreement svg.agreement-chart").count() == 1, "the session's owner sees its agreement"
        assert page.locator("#disagreements-link").count() == 0, "an owner watches; adjudicators settle"
        assert page.goto(f"{base}/sessions/triage/disagreements").status == 403

    assert not run_pending(home, echo=quiet).failures
    after = load_evaluation_dataset("tickets", home=home)
    assert after.version == before.version + 1
    by_trace = {r["source"]["source_data"]["trace_id"]: r["expectations"]["topic"] for r in after.records(full=True)}
    assert by_trace == {first: "billing", second: "other"}
    assessments = home.lake().read("assessments").filter(pl.col("trace_id") == first)
    reviews = assessments.filter(pl.col("assessor_id").is_in(["alice@example.com", "bob@example.com"]))
    [settled] = assessments.filter(pl.col("assessor_id") == "lead@example.com").to_dicts()
    assert (settled["source_type"], settled["session"], json.loads(settled["assessment_value"])) == ("HUMAN", None, "billing")
    assert sorted(json.loads(settled["metadata"])["adjudicates"]) == sorted(reviews.get_column("assessment_id").to_list())
