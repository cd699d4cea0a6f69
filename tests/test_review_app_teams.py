"""HTTP tests of the Review App for teams: work shared out by reservations, and the defects issue 13 lists."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from feedback_pipeline.submission_contract import MAX_ID_CHARS, MAX_RATIONALE_CHARS
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.landing import LandingKey
from feedback_pipeline.review_app import create_app
from feedback_pipeline.review_app.access import AccessRegistry, create_api_key, revoke_api_key
from feedback_pipeline.review_app.reservations import Reservations
from tests.test_review_app import FULL_ANSWER, cli, csrf, post_item, seeded_home, sign_in, submissions


@pytest.fixture
def home(tmp_path, monkeypatch) -> FeedbackHome:
    return seeded_home(tmp_path, monkeypatch, items=4)


def next_item(client: TestClient) -> str | None:
    """Where the queue's start link sends the reviewer: an item id, or None for the queue."""
    location = client.get("/sessions/triage/next", follow_redirects=False).headers["location"]
    return location.rsplit("/items/", 1)[1] if "/items/" in location else None


def answers_per_item(home: FeedbackHome) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in submissions(home):
        if record["name"] == "quality":
            counts[record["trace_id"]] = counts.get(record["trace_id"], 0) + 1
    return counts


def test_next_shares_the_slots_out_across_processes_fewest_first(home):
    apps = [create_app(home, ttl=3600), create_app(home, ttl=3600)]
    reviewers = [sign_in(home, f"r{i}@example.com", apps[i % 2]) for i in range(9)]
    sent = [next_item(client) for client in reviewers]
    assert sent[8] is None, "4 items x 2 slots are all reserved: the ninth reviewer is told nothing is left"
    assert sorted(sent[:8]) == sorted(["it-0001", "it-0002", "it-0003", "it-0004"] * 2), sent
    assert len(set(sent[:4])) == 4, "every item gets one reviewer before any gets a second"
    assert "Nothing left" in reviewers[8].get("/sessions/triage?status=all").text


def test_nothing_left_is_said_only_after_reading_what_other_processes_landed(home):
    first, second = create_app(home, ttl=3600), create_app(home, ttl=3600)
    for app in (first, second):
        app.state.review.data.reservations.refresh_seconds = app.state.review.data.pending.refresh_seconds = 3600
    reviewers = [sign_in(home, f"r{i}@example.com", first) for i in range(8)]
    sent = [next_item(client) for client in reviewers]
    second.state.review.data.reservations.refresh(force=True)
    second.state.review.data.pending.refresh(force=True)
    assert post_item(reviewers[0], sent[0], {"action": "skip"}).headers["location"].endswith("?status=all")
    late = sign_in(home, "late@example.com", second)
    assert next_item(late) == sent[0], "the skip freed a slot: the second process's view, an hour old, is read again"


def test_answers_through_another_process_fill_their_item_before_its_files_are_read(home):
    first, second = create_app(home, ttl=3600), create_app(home, ttl=3600)
    second.state.review.data.pending.refresh()
    for name in ("alice", "bob"):
        client = sign_in(home, f"{name}@example.com", first)
        assert client.get("/sessions/triage/items/it-0001").status_code == 200
        assert post_item(client, "it-0001", FULL_ANSWER).status_code == 303
    sent = [next_item(sign_in(home, f"r{i}@example.com", second)) for i in range(6)]
    assert "it-0001" not in sent, "their next reservations announce the two answers: the item is full"
    assert sent.count(None) == 2, "alice's and bob's own next reservations hold two of the six free slots"


def test_submit_and_skip_release_the_reservation_and_the_next_goes_elsewhere(home):
    alice = sign_in(home, "alice@example.com")
    first = next_item(alice)
    done = post_item(alice, first, {"action": "skip"})
    after_skip = done.headers["location"].rsplit("/items/", 1)[1]
    assert after_skip != first, "the skip sends alice on (and reserves that item for her)"
    sent = [next_item(sign_in(home, f"r{i}@example.com")) for i in range(8)]
    assert sent.count(first) == 2, "alice's slot on the skipped item is free again"
    assert sent.count(after_skip) == 1 and sent.count(None) == 1, "her new reservation holds one slot"
    post_item(alice, after_skip, FULL_ANSWER)
    assert next_item(alice) is None, "alice is never sent back to what she skipped or answered"


def test_an_answer_after_the_item_filled_up_is_kept_and_counted(home):
    for name in ("alice", "bob", "carol"):
        client = sign_in(home, f"{name}@example.com")
        assert post_item(client, "it-0001", FULL_ANSWER).status_code == 303
    assert answers_per_item(home)["tr-triage-0001"] == 3
    queue = sign_in(home, "dave@example.com").get("/sessions/triage").text
    assert re.search(r'data-item="it-0001">.*?<td>3 / 2</td>', queue, re.S)


def test_a_reservation_is_seen_by_other_processes_until_it_expires(home):
    reservations = Reservations(home.landing(), refresh_seconds=0)
    reservations.reserve("triage", "it-0001", "tr-triage-0001", "alice@example.com", minutes=1)
    assert reservations.slots("triage").held == {"tr-triage-0001": ["alice@example.com"]}
    other = Reservations(home.landing(), refresh_seconds=0)
    other.refresh()
    assert other.held_by("triage", "alice@example.com").item_id == "it-0001", "another process sees it"
    reservations.reserve("triage", "it-0002", "tr-triage-0002", "alice@example.com", minutes=0, answered="tr-triage-0001")
    other.refresh()
    assert other.slots("triage") == ({}, {"tr-triage-0001": {"alice@example.com"}}), "expired; the answer is announced"


def test_reservations_have_their_own_area_and_one_landing_late_in_an_older_second_is_read(home):
    landing = home.landing()
    writer, reader = Reservations(landing, refresh_seconds=0), Reservations(landing, refresh_seconds=0)
    alice = writer.reserve("triage", "it-0001", "tr-triage-0001", "alice@example.com", minutes=1)
    reader.refresh()
    time.sleep(1.2)
    reader.refresh(force=True)
    reader.refresh(force=True)  # the folder of alice's second has settled: a stat says it did not change
    late = landing.new_key("reservations", when_ns=LandingKey.parse(alice.key).time_ns + 1)
    event = {"event": "item_reserved", "session": "triage", "item_id": "it-0002", "trace_id": "tr-triage-0002",
             "reviewer": "bob@example.com", "until_ns": time.time_ns() + 60_000_000_000, "answered": None}
    landing.put(late, (json.dumps(event) + "\n").encode())
    reader.refresh(force=True)
    assert reader.held_by("triage", "bob@example.com").item_id == "it-0002", "its folder changed: listed again"
    assert landing.list("reservations") == sorted([alice.key, late])
    assert not any("reserv" in key for key in landing.list("definitions")), "other readers of definitions never list them"


def test_assigned_items_come_first(home):
    dave = sign_in(home, "dave@example.com")
    assert next_item(dave) == "it-0003", "the seed assigns tr-triage-0003 to dave"
    queue = dave.get("/sessions/triage").text
    assert queue.index('data-item="it-0003"') < queue.index('data-item="it-0001"')
    assert "assigned to me" in queue


def test_guidelines_on_the_session_page_and_folded_on_each_item(home):
    alice = sign_in(home, "alice@example.com")
    assert "Judge <strong>only</strong> the final answer." in alice.get("/sessions/triage").text
    page = alice.get("/sessions/triage/items/it-0001").text
    assert '<details class="guidelines" id="guidelines"><summary>Guidelines</summary>' in page
    assert "<li>Cite the document id when it is wrong.</li>" in page


def test_figures_reviewed_by_me_numbers_and_earlier_answers(home):
    bob, carol, alice = (sign_in(home, f"{n}@example.com") for n in ("bob", "carol", "alice"))
    post_item(bob, "it-0002", FULL_ANSWER)
    post_item(carol, "it-0002", FULL_ANSWER)
    page = alice.get("/sessions/triage/items/it-0001").text
    assert "0 of 4 answered or skipped by me" in page, "items others completed are not mine"
    queue = alice.get("/sessions/triage").text
    numbers = dict(re.findall(r'data-item="(it-\d+)">\s*<td class="number">(\d+)</td>', queue))
    assert numbers == {"it-0001": "1", "it-0002": "2", "it-0003": "3", "it-0004": "4"}, "as the item page numbers them"
    post_item(alice, "it-0001", {**FULL_ANSWER, "answer:summary": "Zoë", "answer:correct": "false"})
    page = alice.get("/sessions/triage/items/it-0001").text
    shown = re.findall(r'<span class="earlier-value">([^<]*)</span>', page)
    assert "Zoë" in shown and "Wrong" in shown and "City 1 is the capital" in shown and "Too long" in shown
    assert "\\u00eb" not in page and "false" not in shown


def test_the_review_app_enforces_the_pipeline_limits_where_the_answer_is_given(home):
    alice = sign_in(home, "alice@example.com")
    long_comment = {**FULL_ANSWER, "comment:quality": "x" * (2 * MAX_RATIONALE_CHARS)}
    response = post_item(alice, "it-0001", long_comment)
    assert response.status_code == 422
    assert f"the comment has {2 * MAX_RATIONALE_CHARS} characters: at most {MAX_RATIONALE_CHARS} are allowed" in response.text
    assert f'maxlength="{MAX_RATIONALE_CHARS}"' in response.text
    assert submissions(home) == []


def test_sign_out_invalidates_the_cookie_everywhere(home):
    first, second = create_app(home, ttl=0), create_app(home, ttl=0)
    alice = sign_in(home, "alice@example.com", first)
    cookie = alice.cookies["fp_session"]
    page = alice.get("/").text
    assert alice.post("/logout", data={"csrf_token": csrf(page)}, follow_redirects=False).status_code == 303
    replay = TestClient(first, cookies={"fp_session": cookie})
    assert replay.get("/").status_code == 401, "a replayed cookie is refused"
    second.state.review.access.refresh(force=True)
    assert TestClient(second, cookies={"fp_session": cookie}).get("/").status_code == 401, "in every process"


def test_api_keys_list_and_revoke_and_one_live_key_per_name(home):
    key = create_api_key(home.landing(), "shop")
    with pytest.raises(ValueError, match="'shop' already has a live API key"):
        create_api_key(home.landing(), "shop")
    listed = cli(home, "api-keys", "list")
    assert listed.returncode == 0 and re.search(r"^shop\t\S+\tlive$", listed.stdout, re.M) and key not in listed.stdout
    client = TestClient(create_app(home, ttl=0))
    body = {"trace_id": "t", "name": "x", "value": 1, "user_id": "u"}
    assert client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 202
    assert cli(home, "api-keys", "revoke", "shop").returncode == 0
    assert "shop\t" in cli(home, "api-keys", "list").stdout and "revoked" in cli(home, "api-keys", "list").stdout
    client.app.state.review.access.refresh(force=True)
    assert client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 401
    with pytest.raises(ValueError, match="'shop' has no live API key"):
        revoke_api_key(home.landing(), "shop")
    assert create_api_key(home.landing(), "shop").startswith("fpk_"), "a revoked name can have a new key"
    assert [k.revoked for k in AccessRegistry(home.landing(), environ={}).api_keys()] == [True, False]


def test_invite_refuses_unknown_sessions_and_unassigned_users(home):
    unknown = cli(home, "reviewers", "invite", "alice@example.com", "--session", "nope")
    assert unknown.returncode != 0 and "session 'nope' is not a labeling session" in unknown.stderr
    unassigned = cli(home, "reviewers", "invite", "alice@example.com", "--session", "restricted")
    assert unassigned.returncode != 0 and "'alice@example.com' is not assigned to the session 'restricted'" in unassigned.stderr
    assert cli(home, "reviewers", "invite", "bob@example.com", "--session", "restricted").returncode == 0
    assert home.landing().list("definitions")  # the accepted invitation landed
    long_email = "a" * MAX_ID_CHARS + "@example.com"
    refused = cli(home, "reviewers", "invite", long_email, "--session", "triage")
    assert refused.returncode != 0 and f"expected at most {MAX_ID_CHARS}" in refused.stderr


# The feedback API


def api(home: FeedbackHome) -> tuple[TestClient, dict[str, str]]:
    key = create_api_key(home.landing(), "shop-assistant")
    return TestClient(create_app(home, ttl=0)), {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def test_an_oversized_body_gets_413_before_it_is_read_whole(home):
    client, auth = api(home)
    huge = json.dumps({"trace_id": "t", "name": "x", "value": "v" * 10_000_000, "user_id": "u"})
    response = client.post("/api/v1/feedback", content=huge, headers=auth)
    assert response.status_code == 413 and "at most" in response.json()["detail"]
    unknown = json.dumps({"trace_id": "t", "name": "x", "value": 1, "user_id": "u", "colour": "r" * 10_000_000})
    response = client.post("/api/v1/feedback", content=unknown, headers=auth)
    assert response.status_code == 413 and len(response.content) < 1000

    def chunks():
        yield b'{"trace_id": "t", "name": "x", "value": "'
        for _ in range(100):
            yield b"v" * 100_000
        yield b'", "user_id": "u"}'

    streamed = httpx.Request("POST", "http://testserver/api/v1/feedback", content=chunks(), headers=auth)
    assert "content-length" not in streamed.headers
    assert client.send(streamed).status_code == 413, "a chunked body is counted as it arrives"
    assert submissions(home) == []


def test_a_422_does_not_echo_a_large_input(home):
    client, auth = api(home)
    body = json.dumps({"trace_id": "t", "name": "x", "value": 1, "user_id": "u", "colour": "r" * 100_000})
    response = client.post("/api/v1/feedback", content=body, headers=auth)
    assert response.status_code == 422 and len(response.content) < 2000
    assert "colour" in response.text and "100" in response.text


def test_value_null_is_one_message(home):
    client, auth = api(home)
    response = client.post("/api/v1/feedback", json={"trace_id": "t", "name": "x", "value": None, "user_id": "u"}, headers=auth)
    (error,) = response.json()["detail"]
    assert response.status_code == 422 and error["loc"] == ["body", "value"]
    assert "value is null: expected true/false, a number, a label or a list of labels" in error["msg"]


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [("user_id", "u" * (MAX_ID_CHARS + 1), MAX_ID_CHARS), ("comment", "c" * (MAX_RATIONALE_CHARS + 1), MAX_RATIONALE_CHARS)],
)
def test_the_api_refuses_at_the_door_what_the_pipeline_would_reject(home, field, value, limit):
    client, auth = api(home)
    body = {"trace_id": "t", "name": "x", "value": 1, "user_id": "u", field: value}
    response = client.post("/api/v1/feedback", json=body, headers=auth)
    assert response.status_code == 422 and str(limit) in response.text and field in response.text
    assert submissions(home) == []


def test_a_reused_submission_id_with_other_content_gets_409(home):
    client, auth = api(home)
    body = {"trace_id": "tr-1", "name": "thumbs", "value": True, "user_id": "u", "submission_id": "s-client-0001"}
    first = client.post("/api/v1/feedback", json=body, headers=auth)
    again = client.post("/api/v1/feedback", json=body, headers=auth)
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert len(submissions(home)) == 1, "a retry is stored once"
    changed = client.post("/api/v1/feedback", json={**body, "value": False}, headers=auth)
    assert changed.status_code == 409
    detail = changed.json()["detail"]
    assert "s-client-0001" in detail["message"] and "value" in detail["message"] and detail["stored"]["value"] is True
    assert len(submissions(home)) == 1
