"""HTTP tests of the Review App and the feedback API: every route and every access rule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio.to_thread
import polars as pl
import pytest
from fastapi.testclient import TestClient

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.review_app import create_app
from feedback_pipeline.review_app.access import create_api_key, invite_reviewer, revoke_reviewer
from tests.review_app_seed import SCRIPT, assessment_rows, seed

REPO = Path(__file__).resolve().parents[1]
FULL_ANSWER = {
    "answer:quality": "Good",
    "comment:quality": "Clear and short.",
    "answer:issues": ["Too long"],
    "answer:rating": "4",
    "answer:summary": "Fine answer",
    "answer:expected_facts": ["City 1 is the capital", ""],
    "answer:correct": "true",
}


@pytest.fixture
def home(tmp_path, monkeypatch) -> FeedbackHome:
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "home"))
    for name in ("FEEDBACK_SECRET_KEY", "FEEDBACK_API_KEYS", "FEEDBACK_TRUSTED_USER_HEADER", "FEEDBACK_REVIEW_APP_URL"):
        monkeypatch.delenv(name, raising=False)
    home = FeedbackHome.from_env()
    seed(home.lake())
    return home


def sign_in(home: FeedbackHome, email: str, app=None) -> TestClient:
    client = TestClient(app or create_app(home, ttl=0))
    link = invite_reviewer(home.landing(), email).url
    response = client.get(link.replace("http://127.0.0.1:8000", ""), follow_redirects=False)
    assert response.status_code == 303
    return client


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)


def submissions(home: FeedbackHome) -> list[dict]:
    landing = home.landing()
    return [json.loads(line) for key in landing.list("submissions") for line in landing.read_bytes(key).decode().splitlines()]


def post_item(client: TestClient, item: str, data: dict, session: str = "triage"):
    page = client.get(f"/sessions/{session}/items/{item}").text
    return client.post(f"/sessions/{session}/items/{item}", data={**data, "csrf_token": csrf(page)}, follow_redirects=False)


def test_invitation_link_signs_in_and_lands_on_its_session(home):
    client = TestClient(create_app(home, ttl=0))
    link = invite_reviewer(home.landing(), "Alice@Example.com", session="triage").url
    assert link.startswith("http://127.0.0.1:8000/invite/") and link.endswith("?session=triage")
    response = client.get(link.replace("http://127.0.0.1:8000", ""), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sessions/triage"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    stored = home.landing().read_bytes(home.landing().list("definitions")[0]).decode()
    assert link.split("/invite/")[1].split("?")[0] not in stored, "only the hash of the secret is stored"
    page = client.get("/")
    assert page.status_code == 200 and "alice@example.com" in page.text


def test_unknown_or_revoked_invitation_is_refused(home):
    client = TestClient(create_app(home, ttl=0))
    assert client.get("/invite/not-a-real-secret").status_code == 404
    signed_in = sign_in(home, "alice@example.com", client.app)
    assert signed_in.get("/").status_code == 200
    revoke_reviewer(home.landing(), "alice@example.com")
    client.app.state.review.access.refresh(force=True)
    assert signed_in.get("/").status_code == 401


def test_pages_need_a_reviewer(home):
    client = TestClient(create_app(home, ttl=0))
    for path in ("/", "/sessions/triage", "/sessions/triage/items/it-0001"):
        response = client.get(path)
        assert response.status_code == 401 and "invitation" in response.text
    assert client.post("/sessions/triage/items/it-0001", data={"action": "skip"}).status_code == 401
    client.cookies.set("fp_session", "forged.cookie.value")
    assert client.get("/").status_code == 401


def test_sessions_are_visible_to_assigned_users_only(home):
    alice = sign_in(home, "alice@example.com")
    bob = sign_in(home, "bob@example.com")
    alice_home, bob_home = alice.get("/").text, bob.get("/").text
    assert 'data-session="triage"' in alice_home and 'data-session="restricted"' not in alice_home
    assert 'data-session="restricted"' in bob_home and 'data-session="gone"' not in bob_home
    assert alice.get("/sessions/restricted").status_code == 403
    assert alice.get("/sessions/restricted/items/it-0001").status_code == 403
    assert bob.get("/sessions/restricted/items/it-0001").status_code == 200
    assert alice.get("/sessions/gone").status_code == 404
    assert alice.get("/sessions/nope").status_code == 404
    assert alice.get("/sessions/triage/items/it-9999").status_code == 404
    page = bob.get("/sessions/restricted/items/it-0001").text
    refused = alice.post("/sessions/restricted/items/it-0001", data={"action": "skip", "csrf_token": csrf(page)})
    assert refused.status_code == 403
    assert submissions(home) == []


def test_submit_lands_one_submission_per_answer_and_opens_the_next_item(home):
    alice = sign_in(home, "alice@example.com")
    response = post_item(alice, "it-0001", FULL_ANSWER)
    assert response.status_code == 303 and response.headers["location"] == "/sessions/triage/items/it-0002"
    landed = {s["name"]: s for s in submissions(home)}
    assert set(landed) == {"quality", "issues", "rating", "summary", "expected_facts", "correct"}
    quality = landed["quality"]
    assert quality["origin"] == "review-app" and quality["session"] == "triage" and quality["action"] == "create"
    assert quality["source"] == {"source_type": "HUMAN", "source_id": "alice@example.com"}
    assert quality["trace_id"] == "tr-triage-0001" and quality["rationale"] == "Clear and short."
    assert quality["submission_id"].startswith("s-") and quality["assessment_id"].startswith("a-")
    assert landed["rating"]["value"] == 4 and landed["correct"]["value"] is True
    assert landed["issues"]["value"] == ["Too long"] and landed["expected_facts"]["value"] == ["City 1 is the capital"]
    assert landed["expected_facts"]["kind"] == "expectation" and landed["quality"]["kind"] == "feedback"
    queue = alice.get("/sessions/triage?status=answered").text
    assert 'data-item="it-0001"' in queue and 'data-item="it-0002"' not in queue
    assert '<progress id="my-progress" value="1" max="3">' in queue


def test_invalid_answers_get_clear_messages_and_nothing_lands(home):
    alice = sign_in(home, "alice@example.com")
    bad = {**FULL_ANSWER, "answer:quality": "Great", "answer:rating": "9", "answer:summary": "x" * 41,
           "answer:expected_facts": ["a", "b", "c", "d"], "answer:correct": ""}
    response = post_item(alice, "it-0001", bad)
    assert response.status_code == 422
    text = response.text
    assert "&#39;Great&#39; is not one of the options (Good, Okay, Bad)" in text
    assert "9 is out of range: expected a number between 1 and 5" in text
    assert "the text has 41 characters: at most 40 are allowed" in text
    assert "4 entries given: at most 3 are allowed" in text
    assert "an answer is required" in text
    assert 'value="9"' in text, "what the reviewer typed is kept"
    assert post_item(alice, "it-0001", {"answer:rating": "many"}).status_code == 422
    assert submissions(home) == []


def test_a_comment_longer_than_a_rationale_may_be_is_refused_at_the_form(home):
    alice = sign_in(home, "alice@example.com")
    response = post_item(alice, "it-0001", {**FULL_ANSWER, "comment:quality": "c" * 10_001})
    assert response.status_code == 422
    assert "the comment has 10001 characters: at most 10000 are allowed" in response.text
    assert submissions(home) == []


def test_forms_need_the_csrf_token(home):
    alice = sign_in(home, "alice@example.com")
    for token in ("", "0" * 64):
        response = alice.post("/sessions/triage/items/it-0001", data={**FULL_ANSWER, "csrf_token": token})
        assert response.status_code == 403
    other = sign_in(home, "bob@example.com")
    stolen = csrf(other.get("/").text)
    assert alice.post("/sessions/triage/items/it-0001", data={"action": "skip", "csrf_token": stolen}).status_code == 403
    assert submissions(home) == []


def test_skip_then_change_an_answer_with_an_override(home):
    alice = sign_in(home, "alice@example.com")
    assert post_item(alice, "it-0001", {"action": "skip"}).status_code == 303
    (skip,) = submissions(home)
    assert skip["kind"] == "skip" and skip["name"] == "_skip" and skip["value"] is None
    assert 'data-item="it-0001"' in alice.get("/sessions/triage?status=skipped").text

    post_item(alice, "it-0001", FULL_ANSWER)
    first = {s["name"]: s for s in submissions(home)[1:]}
    page = alice.get("/sessions/triage/items/it-0001").text
    assert "Your earlier answer" in page and 'value="Good" checked' in page and "Clear and short." in page

    post_item(alice, "it-0001", {**FULL_ANSWER, "answer:quality": "Bad", "answer:expected_facts": ["Better fact"]})
    changed = {s["name"]: s for s in submissions(home)[1 + len(first):]}
    assert set(changed) == {"quality", "expected_facts"}, "unchanged answers are not sent again"
    assert changed["quality"]["overrides"] == first["quality"]["assessment_id"] and changed["quality"]["value"] == "Bad"
    assert changed["expected_facts"]["overrides"] is None, "a newer expectation supersedes; only feedback is overridden"
    page = alice.get("/sessions/triage/items/it-0001").text
    assert 'value="Bad" checked' in page and 'value="Better fact"' in page and 'value="City 1 is the capital"' not in page
    assert 'data-item="it-0001"' in alice.get("/sessions/triage?status=answered").text


def test_a_fresh_process_reads_pending_submissions_from_the_landing_zone(home):
    alice = sign_in(home, "alice@example.com")
    post_item(alice, "it-0002", FULL_ANSWER)
    again = sign_in(home, "alice@example.com", create_app(home, ttl=0))
    assert 'data-item="it-0002"' in again.get("/sessions/triage?status=answered").text
    assert 'value="Good" checked' in again.get("/sessions/triage/items/it-0002").text


def test_a_submit_is_seen_at_once_by_another_app_process(home):
    first, second = create_app(home, ttl=3600), create_app(home, ttl=3600)
    alice = sign_in(home, "alice@example.com", first)
    second.state.review.data.pending.refresh()
    post_item(alice, "it-0001", FULL_ANSWER)
    other = TestClient(second, cookies=alice.cookies)
    assert 'data-item="it-0001"' in other.get("/sessions/triage?status=answered").text, "no waiting for a refresh"


def test_lake_assessments_count_but_other_reviewers_answers_stay_hidden(home):
    lake = home.lake()
    bob_says = "Bob-only-rationale"
    lake.append("assessments", assessment_rows([
        {"assessment_id": "a-bob1", "trace_id": "tr-triage-0001", "session": "triage", "assessment_name": "quality",
         "kind": "feedback", "assessment_value": json.dumps("Bad"), "rationale": bob_says, "assessor_id": "bob@example.com",
         "submission_id": "s-bob1"},
        {"assessment_id": "a-al1", "trace_id": "tr-triage-0003", "session": "triage", "assessment_name": "rating",
         "kind": "feedback", "assessment_value": "2", "rationale": None, "assessor_id": "alice@example.com",
         "submission_id": "s-al1"},
        {"assessment_id": "a-al0", "trace_id": "tr-triage-0003", "session": "triage", "assessment_name": "rating",
         "kind": "feedback", "assessment_value": "5", "rationale": None, "assessor_id": "alice@example.com",
         "submission_id": "s-al0", "valid": False},
    ]))
    alice = sign_in(home, "alice@example.com")
    page = alice.get("/sessions/triage/items/it-0001").text
    assert bob_says not in page and "Your earlier answer" not in page
    queue = alice.get("/sessions/triage").text
    assert re.search(r'data-item="it-0001">.*?<td>1 / 2</td>', queue, re.S)
    mine = alice.get("/sessions/triage/items/it-0003").text
    assert 'name="answer:rating" step="any" value="2"' in mine
    post_item(alice, "it-0003", {**FULL_ANSWER, "answer:rating": "3"})
    rating = next(s for s in submissions(home) if s["name"] == "rating")
    assert rating["overrides"] == "a-al1"
    assert 'value="3"' in alice.get("/sessions/triage/items/it-0003").text

    bob = sign_in(home, "bob@example.com")
    post_item(bob, "it-0003", FULL_ANSWER)
    home_page = alice.get("/").text
    assert "1 of 3 complete" in home_page, "two reviewers answered it-0003, the session asks for 2"


def test_status_filter_and_pending_first(home):
    alice = sign_in(home, "alice@example.com")
    post_item(alice, "it-0001", FULL_ANSWER)
    queue = alice.get("/sessions/triage").text
    assert queue.index('data-item="it-0002"') < queue.index('data-item="it-0001"')
    pending = alice.get("/sessions/triage?status=pending").text
    assert 'data-item="it-0001"' not in pending and 'data-item="it-0003"' in pending
    assert alice.get("/sessions/triage?status=bogus").status_code == 400
    post_item(alice, "it-0002", FULL_ANSWER)
    last = post_item(alice, "it-0003", FULL_ANSWER)
    assert last.headers["location"].startswith("/sessions/triage?")
    assert "Nothing left for you" in alice.get(last.headers["location"]).text


def test_trace_content_is_escaped_and_pages_carry_a_strict_csp(home):
    alice = sign_in(home, "alice@example.com")
    response = alice.get("/sessions/triage/items/it-0002")
    page = response.text
    assert SCRIPT not in page
    assert "&lt;script&gt;document.title=" in page
    assert len(re.findall(r"<script", page)) == 1 and '<script src="/static/review.js" defer></script>' in page
    assert 'href="javascript:' not in page and "javascript:alert(1)</span>" in page
    assert '<a href="https://example.com/capitals" rel="noopener noreferrer nofollow"' in page
    assert "<strong>City 2</strong>" in page, "markdown is rendered"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert 'name="answer:quality" value="Good"' in page and "* required" in page
    assert "lookup_population" in page and "RETRIEVER" in page and "Final answer" in page
    assert response.headers["cache-control"] == "no-store" and response.headers["x-frame-options"] == "DENY"
    static = alice.get("/static/review.js")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")
    assert static.headers["content-security-policy"] == csp


def test_an_item_page_shows_the_current_version_of_the_session_items(home):
    alice = sign_in(home, "alice@example.com")
    assert "land number" not in alice.get("/sessions/triage/items/it-0001").text
    lake = home.lake()
    items = lake.read("session_items").with_columns(
        pl.col("chat_messages").list.eval(
            pl.element().struct.with_fields(pl.field("content").str.replace("country number", "land number"))
        )
    )
    lake.overwrite("session_items", items)
    assert "capital of land number 1?" in alice.get("/sessions/triage/items/it-0001").text, "not a kept view of the old row"


def test_worker_threads_are_limited_at_startup(home, monkeypatch):
    with TestClient(create_app(home, threads=3)) as client:
        assert client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens) == 3
    monkeypatch.setenv("FEEDBACK_REVIEW_APP_THREADS", "0")
    with pytest.raises(ValueError, match="FEEDBACK_REVIEW_APP_THREADS '0': expected a whole number of at least 1"):
        create_app(home)


def test_trusted_proxy_header_identifies_the_reviewer(home):
    client = TestClient(create_app(home, trusted_header="X-Forwarded-Email", ttl=0))
    assert client.get("/").status_code == 401
    headers = {"X-Forwarded-Email": "bob@example.com"}
    assert 'data-session="restricted"' in client.get("/", headers=headers).text
    page = client.get("/sessions/restricted/items/it-0001", headers=headers).text
    done = client.post("/sessions/restricted/items/it-0001", headers=headers,
                       data={"answer:quality": "Okay", "csrf_token": csrf(page)}, follow_redirects=False)
    assert done.status_code == 303
    assert submissions(home)[0]["source"]["source_id"] == "bob@example.com"
    stolen = client.post("/sessions/restricted/items/it-0001", headers={"X-Forwarded-Email": "eve@example.com"},
                         data={"answer:quality": "Okay", "csrf_token": csrf(page)})
    assert stolen.status_code == 403


def test_logout_clears_the_sign_in(home):
    alice = sign_in(home, "alice@example.com")
    page = alice.get("/").text
    assert alice.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    response = alice.post("/logout", data={"csrf_token": csrf(page)}, follow_redirects=False)
    assert response.status_code == 303
    assert alice.get("/").status_code == 401


def test_healthz_and_favicon(home):
    client = TestClient(create_app(home))
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/favicon.ico").status_code == 204


# End-user feedback API


def api_client(home: FeedbackHome) -> tuple[TestClient, dict[str, str]]:
    key = create_api_key(home.landing(), "shop-assistant")
    return TestClient(create_app(home, ttl=0)), {"Authorization": f"Bearer {key}"}


def test_feedback_api_lands_a_submission_and_answers_202(home):
    client, auth = api_client(home)
    body = {"trace_id": "tr-triage-0001", "name": "user_satisfaction", "value": True, "comment": "helpful",
            "user_id": "user-42", "metadata": {"channel": "web"}}
    response = client.post("/api/v1/feedback", json=body, headers=auth)
    assert response.status_code == 202
    ids = response.json()
    (landed,) = submissions(home)
    assert landed["assessment_id"] == ids["assessment_id"] and landed["submission_id"] == ids["submission_id"]
    assert landed["origin"] == "api" and landed["kind"] == "feedback" and landed["value"] is True
    assert landed["source"] == {"source_type": "HUMAN", "source_id": "user-42"} and landed["rationale"] == "helpful"
    assert landed["metadata"]["channel"] == "web" and landed["metadata"]["api_key_name"] == "shop-assistant"
    assert home.landing().list("submissions")[0].endswith("_api.jsonl")


def test_expectations_api_and_client_request_id(home):
    client, auth = api_client(home)
    body = {"client_request_id": "req-7", "name": "expected_response", "value": {"answer": "Paris"}, "user_id": "u1"}
    first = client.post("/api/v1/expectations", json={**body, "submission_id": "s-retry-000001"}, headers=auth)
    again = client.post("/api/v1/expectations", json={**body, "submission_id": "s-retry-000001"}, headers=auth)
    assert first.status_code == again.status_code == 202
    assert first.json()["assessment_id"] == again.json()["assessment_id"], "a retry reports the same ids"
    landed = submissions(home)[0]
    assert landed["kind"] == "expectation" and landed["client_request_id"] == "req-7" and landed["trace_id"] is None
    assert landed["value"] == {"answer": "Paris"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "value": 1, "user_id": "u"}, "trace_id / client_request_id"),
        ({"trace_id": "t", "client_request_id": "r", "name": "x", "value": 1, "user_id": "u"}, "trace_id / client_request_id"),
        ({"trace_id": "t", "value": 1, "user_id": "u"}, "name"),
        ({"trace_id": "t", "name": "x", "user_id": "u"}, "value"),
        ({"trace_id": "t", "name": "x", "value": None, "user_id": "u"}, "value"),
        ({"trace_id": "t", "name": "x", "value": {"a": 1}, "user_id": "u"}, "value"),
        ({"trace_id": "t", "name": "x", "value": 1}, "user_id"),
        ({"trace_id": "t", "name": "", "value": 1, "user_id": "u"}, "name"),
        ({"trace_id": "t", "name": "x", "value": 1, "user_id": "u", "colour": "red"}, "colour"),
        ({"trace_id": "t", "name": "x", "value": 1, "user_id": "u", "submission_id": "bad"}, "submission_id"),
        ({"trace_id": "t", "name": "x", "value": 1, "user_id": "u" * 257}, "user_id"),
        ({"trace_id": "t", "name": "x", "value": 1, "user_id": "u", "comment": "c" * 10_001}, "comment"),
    ],
)
def test_feedback_api_names_the_bad_field(home, body, field):
    client, auth = api_client(home)
    response = client.post("/api/v1/feedback", json=body, headers=auth)
    assert response.status_code == 422
    named = [".".join(str(p) for p in error["loc"]) + " " + error["msg"] for error in response.json()["detail"]]
    assert any(field in text for text in named), named
    assert submissions(home) == []


def test_feedback_api_refuses_numbers_json_cannot_hold(home):
    client, auth = api_client(home)
    body = '{"trace_id": "t", "name": "x", "value": 1.5e999, "user_id": "u"}'
    response = client.post("/api/v1/feedback", content=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert any("value" in ".".join(map(str, e["loc"])) + e["msg"] for e in response.json()["detail"])
    assert submissions(home) == []


def test_feedback_api_needs_a_valid_key(home, monkeypatch):
    client, _ = api_client(home)
    body = {"trace_id": "t", "name": "x", "value": 1, "user_id": "u"}
    assert client.post("/api/v1/feedback", json=body).status_code == 401
    wrong = client.post("/api/v1/feedback", json=body, headers={"Authorization": "Bearer fpk_wrong"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    monkeypatch.setenv("FEEDBACK_API_KEYS", "env-key-1, env-key-2")
    env_client = TestClient(create_app(home, ttl=0))
    assert env_client.post("/api/v1/feedback", json=body, headers={"Authorization": "Bearer env-key-2"}).status_code == 202
    assert len(submissions(home)) == 1


def test_openapi_is_served_and_docs_are_off(home):
    client = TestClient(create_app(home))
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/feedback", "/api/v1/expectations"} <= set(spec["paths"])
    assert not any(p.startswith("/sessions") for p in spec["paths"])
    assert "FeedbackIn" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


# Command line


def cli(home: FeedbackHome, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FEEDBACK_HOME": home.root, "FEEDBACK_REVIEW_APP_URL": "https://review.example.org/"}
    return subprocess.run([sys.executable, "-m", "feedback_pipeline", *args], cwd=REPO, env=env, capture_output=True, text=True)


def test_cli_invite_revoke_and_api_keys(home):
    done = cli(home, "reviewers", "invite", "carol@example.com", "--session", "triage")
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith("https://review.example.org/invite/")
    client = TestClient(create_app(home, ttl=0))
    response = client.get(link.replace("https://review.example.org", ""), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sessions/triage"
    bad = cli(home, "reviewers", "invite", "not-an-address")
    assert bad.returncode != 0 and "not-an-address" in bad.stderr and "expected an address" in bad.stderr
    assert cli(home, "reviewers", "revoke", "carol@example.com").returncode == 0
    client.app.state.review.access.refresh(force=True)
    assert client.get("/").status_code == 401
    key = cli(home, "api-keys", "create", "mobile-app").stdout.strip()
    assert key.startswith("fpk_")
    body = {"trace_id": "t", "name": "x", "value": 1, "user_id": "u"}
    assert client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 202
    assert cli(home, "review-app", "--help").returncode == 0


def test_review_a_session_built_by_the_labeling_pipeline(tmp_path, monkeypatch):
    from importlib import resources

    from feedback_pipeline.cli.pipeline import run_pending
    from feedback_pipeline.exports import import_traces
    from feedback_pipeline.labeling_file import apply_labeling_file

    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path / "real"))
    monkeypatch.delenv("FEEDBACK_SECRET_KEY", raising=False)
    home = FeedbackHome.from_env()
    samples = resources.files("feedback_pipeline.sample_data")
    with resources.as_file(samples / "mlflow_traces.jsonl") as traces, resources.as_file(samples / "labeling.yaml") as spec:
        import_traces([str(traces)], home.landing())
        apply_labeling_file(spec, home=home)
    assert not run_pending(home, echo=lambda *a, **k: None).failures

    app = create_app(home, ttl=0)
    assert sign_in(home, "carol@example.com", app).get("/sessions/label_summaries").status_code == 403
    alice = sign_in(home, "alice@example.com", app)
    queue = alice.get("/sessions/label_summaries").text
    first = re.search(r'id="start" href="([^"]+)"', queue).group(1)
    page = alice.get(first).text
    assert "Is this summary concise and helpful?" in page and "Please provide the expected summary." in page
    assert "Final answer" in page and "Spans" in page
    response = alice.post(first, data={"answer:summary_quality": "Yes", "comment:summary_quality": "concise",
                                       "answer:expected_summary": "A short summary.", "csrf_token": csrf(page)},
                          follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] != first
    landed = {s["name"]: s for s in submissions(home)}
    assert landed["summary_quality"]["kind"] == "feedback" and landed["expected_summary"]["kind"] == "expectation"
    assert landed["summary_quality"]["session"] == "label_summaries"
    bob = sign_in(home, "bob@example.com", app)
    assert "1 of 10 complete" in bob.get("/").text, "one review per item is enough in this session"


def test_pending_submissions_give_way_to_the_lake_once_processed(home):
    app = create_app(home, ttl=0)
    alice = sign_in(home, "alice@example.com", app)
    post_item(alice, "it-0001", {"action": "skip"})
    (skip,) = submissions(home)
    lake = home.lake()
    lake.append("assessments", assessment_rows([
        {"assessment_id": skip["assessment_id"], "trace_id": "tr-triage-0001", "session": "triage",
         "assessment_name": "_skip", "kind": "skip", "assessment_value": None, "assessor_id": "alice@example.com",
         "submission_id": skip["submission_id"]},
    ]))
    assert 'data-item="it-0001"' in alice.get("/sessions/triage?status=skipped").text
    lake.delete("assessments", f"assessment_id = '{skip['assessment_id']}'")
    assert 'data-item="it-0001"' in alice.get("/sessions/triage?status=pending").text, "a deleted answer stays deleted"
