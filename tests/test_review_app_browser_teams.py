"""The Review App's layout and controls in Debian's chromium (Playwright): issue 13's defects, desktop and a 390 px phone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedback_pipeline.review_app.access import invite_reviewer
from tests.review_app_seed import LONG_INDEX
from tests.test_review_app_browser import home, landed, page, served  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(os.environ.get("REVIEW_APP_SCREENSHOTS") or "/tmp/review-app-screenshots")
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


def sign_in(page, home, base: str) -> None:  # noqa: F811 - `page` is the fixture's browser page
    page.goto(invite_reviewer(home.landing(), "alice@example.com", "triage", base_url=base).url)
    page.wait_for_url(f"{base}/sessions/triage")


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_long_unbroken_string_does_not_widen_the_page(served, page, device):  # noqa: F811
    home, base = served
    width, height = VIEWPORTS[device]
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, home, base)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in (("sessions", "/"), ("queue", "/sessions/triage"), ("item", f"/sessions/triage/items/it-{LONG_INDEX:04d}")):
        page.goto(base + path)
        page.wait_for_load_state("load")
        page.screenshot(path=str(SCREENSHOTS / f"{device}-{name}.png"))
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{path} is {scroll} px wide in a {width} px viewport"
    assert "a1b2c3d4a1b2c3d4" in page.inner_text("#final-answer")
    top = page.evaluate("document.querySelector('.questions').getBoundingClientRect().top + window.scrollY")
    assert top < height, f"the questions start {top:.0f} px down, below the first screen"


def test_add_another_disappears_at_the_lists_maximum(served, page):  # noqa: F811
    home, base = served
    sign_in(page, home, base)
    page.goto(f"{base}/sessions/triage/items/it-0001")
    button = page.locator("fieldset[data-question=expected_facts] .add-entry")
    assert button.is_visible()
    button.click()
    button.click()
    assert page.locator("fieldset[data-question=expected_facts] .text-list input").count() == 3
    assert button.is_hidden(), "max_count 3 reached"


def test_enter_in_a_single_line_field_does_not_submit(served, page):  # noqa: F811
    home, base = served
    sign_in(page, home, base)
    page.goto(f"{base}/sessions/triage/items/it-0001")
    page.wait_for_load_state("load")
    page.fill("input[name='answer:rating']", "4")
    page.keyboard.press("Enter")
    page.fill("fieldset[data-question=expected_facts] .text-list input >> nth=0", "A fact")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.url.endswith("/items/it-0001") and landed(home) == []
    assert page.locator("#errors").count() == 0


def test_reloading_an_error_page_does_not_resubmit(served, page):  # noqa: F811
    home, base = served
    sign_in(page, home, base)
    page.goto(f"{base}/sessions/triage/items/it-0001")
    page.wait_for_load_state("load")
    page.click("#submit")
    page.wait_for_selector("#errors")
    page.wait_for_load_state("load")
    methods: list[str] = []
    page.on("request", lambda request: methods.append(request.method) if "/items/" in request.url else None)
    page.reload()
    page.wait_for_load_state("load")
    assert methods == ["GET"], methods
    assert landed(home) == []
