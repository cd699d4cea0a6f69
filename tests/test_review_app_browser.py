"""The Review App in Debian's chromium (Playwright): sign in, answer every input type, keyboard, progress, XSS."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
import uvicorn

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.review_app import create_app
from feedback_pipeline.review_app.access import invite_reviewer
from tests.review_app_seed import seed

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); set CI=1 to make this a failure", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(home: FeedbackHome) -> Iterator[str]:
    """A real uvicorn server for `home` on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(home, ttl=0), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def home(tmp_path, monkeypatch) -> FeedbackHome:
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "home"))
    for name in ("FEEDBACK_SECRET_KEY", "FEEDBACK_TRUSTED_USER_HEADER", "FEEDBACK_REVIEW_APP_URL"):
        monkeypatch.delenv(name, raising=False)
    return FeedbackHome.from_env()


@pytest.fixture
def served(home) -> Iterator[tuple[FeedbackHome, str]]:
    seed(home.lake())
    with serve(home) as base:
        yield home, base


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page()
        yield page
        browser.close()


def landed(home: FeedbackHome) -> list[dict]:
    landing = home.landing()
    return [json.loads(line) for key in landing.list("submissions") for line in landing.read_bytes(key).decode().splitlines()]


def test_reviewer_answers_every_input_type_with_mouse_and_keyboard(served, page):
    home, base = served
    link = invite_reviewer(home.landing(), "alice@example.com", "triage", base_url=base).url
    page.goto(link)
    assert page.url == f"{base}/sessions/triage"
    assert page.inner_text("#my-progress-text").startswith("0 of 3")
    page.click("#start")
    page.wait_for_url("**/items/it-0001")
    page.wait_for_load_state("load")
    assert "1–9" in page.inner_text(".shortcuts") or "9" in page.inner_text(".shortcuts")

    page.click("#submit")
    page.wait_for_selector("#errors")
    page.wait_for_load_state("load")
    assert "an answer is required" in page.inner_text("fieldset[data-question=quality]")

    page.keyboard.press("2")
    assert page.is_checked("input[name='answer:quality'][value=Okay]")
    page.keyboard.press("1")
    page.keyboard.press("3")
    assert page.is_checked("input[name='answer:issues'][value=Hallucination]")
    assert page.is_checked("input[name='answer:issues'][value='Too long']")
    page.fill("textarea[name='comment:quality']", "Reads well")
    page.fill("input[name='answer:rating']", "5")
    page.fill("textarea[name='answer:summary']", "x" * 60)
    assert len(page.input_value("textarea[name='answer:summary']")) == 40, "maxlength bounds the text"
    page.fill("textarea[name='answer:summary']", "Short and right")
    page.fill("fieldset[data-question=expected_facts] .text-list input >> nth=0", "City 1 is the capital")
    page.click("fieldset[data-question=expected_facts] .add-entry")
    page.keyboard.type("It has 1000 people")
    page.click("input[name='answer:correct'][value=false]")
    page.focus("input[name='answer:correct'][value=false]")
    page.keyboard.press("1")
    assert page.is_checked("input[name='answer:correct'][value=true]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/items/it-0002")
    assert page.inner_text("#my-progress-text").startswith("1 of 3")

    answers = {s["name"]: s for s in landed(home)}
    assert answers["quality"]["value"] == "Okay" and answers["quality"]["rationale"] == "Reads well"
    assert answers["issues"]["value"] == ["Hallucination", "Too long"]
    assert answers["rating"]["value"] == 5 and answers["summary"]["value"] == "Short and right"
    assert answers["expected_facts"]["value"] == ["City 1 is the capital", "It has 1000 people"]
    assert answers["correct"]["value"] is True
    assert {s["source"]["source_id"] for s in answers.values()} == {"alice@example.com"}

    page.keyboard.press("s")
    page.wait_for_url("**/items/it-0003")
    assert page.inner_text("#my-progress-text").startswith("2 of 3")
    assert landed(home)[-1]["kind"] == "skip"
    page.keyboard.press("k")
    page.wait_for_url("**/items/it-0002")
    assert page.inner_text("#item-status") == "skipped"
    page.keyboard.press("k")
    page.wait_for_url("**/items/it-0001")
    assert page.is_checked("input[name='answer:quality'][value=Okay]"), "my earlier answer is shown"
    assert "Your earlier answer" in page.inner_text("fieldset[data-question=quality]")
    page.check("input[name='answer:quality'][value=Bad]")
    page.click("#submit")
    page.wait_for_url("**/items/it-0003")
    change = landed(home)[-1]
    assert change["name"] == "quality" and change["value"] == "Bad" and change["overrides"] == answers["quality"]["assessment_id"]
    page.keyboard.press("j")
    page.goto(f"{base}/")
    assert page.inner_text("tr[data-session=triage] .mine-count") == "2 of 3"


def test_script_in_a_trace_stays_inert_and_visible(served, page):
    home, base = served
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(invite_reviewer(home.landing(), "alice@example.com", base_url=base).url)
    page.goto(f"{base}/sessions/triage/items/it-0002")
    page.click("summary:has-text('agent')")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned"
    assert "<script>document.title='pwned'" in page.inner_text(".doc-content >> nth=0")
    assert "<script>" in page.inner_text("#final-answer")
    assert page.locator("a[href^='javascript:']").count() == 0


def test_answers_become_assessments_after_run(home, page):
    from importlib import resources

    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.labeling_file import apply_labeling_file

    samples = resources.files("feedback_pipeline.sample_data")
    with resources.as_file(samples / "mlflow_traces.jsonl") as traces, resources.as_file(samples / "labeling.yaml") as spec:
        import_traces([str(traces)], home.landing())
        apply_labeling_file(spec, home=home)
    assert not run_pending(home, echo=lambda *a, **k: None).failures
    with serve(home) as base:
        page.goto(invite_reviewer(home.landing(), "alice@example.com", "label_summaries", base_url=base).url)
        page.click("#start")
        page.wait_for_url("**/items/**")
        page.wait_for_load_state("load")
        first = page.url
        page.keyboard.press("1")
        page.fill("textarea[name='comment:summary_quality']", "to the point")
        page.fill("textarea[name='answer:expected_summary']", "Initech has API limit issues.")
        page.click("#submit")
        page.wait_for_url(lambda url: url != first)
        assert page.inner_text("#my-progress-text").startswith("1 of 10")
        assert not run_pending(home, echo=lambda *a, **k: None).failures
        assert home.lake().read("rejections", schema={"submission_id": pl.String}).height == 0
        stored = home.lake().read("assessments").filter(pl.col("session") == "label_summaries")
        assert sorted(stored["assessment_name"]) == ["expected_summary", "summary_quality"]
        assert set(stored["assessor_id"]) == {"alice@example.com"} and stored["valid"].all()
        quality = stored.filter(pl.col("assessment_name") == "summary_quality").row(0, named=True)
        assert json.loads(quality["assessment_value"]) == "Yes" and quality["rationale"] == "to the point"
        page.goto(first)
        assert page.inner_text("#item-status") == "answered"
        assert page.is_checked("input[name='answer:summary_quality'][value=Yes]")
