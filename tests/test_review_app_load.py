"""Load test: 10 reviewers following "next" through two real Review App processes share a session's work out.

Two `feedback-pipeline review-app` processes (uvicorn) on free loopback ports serve one FEEDBACK_HOME;
each reviewer's requests alternate between them, as behind a load balancer. With
`reviews_per_item=2`, afterwards no item has more than two answers, every item has two, and every
submit that was answered 303 is in the landing zone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.review_app import wait_until_serving
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.review_app.access import invite_reviewer
from tests.review_app_seed import seed
from tests.test_review_app import FULL_ANSWER
from tests.test_review_app_browser import free_port

REPO = Path(__file__).resolve().parents[1]
ITEMS = 12
REVIEWERS = 10


@pytest.fixture
def two_apps(tmp_path) -> Iterator[tuple[FeedbackHome, list[str]]]:
    env = {**os.environ, "FEEDBACK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "FEEDBACK_SECRET_KEY": "load-test-key"}
    for name in ("FEEDBACK_TRUSTED_USER_HEADER", "FEEDBACK_REVIEW_APP_URL", "FEEDBACK_API_KEYS"):
        env.pop(name, None)
    home = FeedbackHome.from_env(env)
    seed(home.lake(), items=ITEMS)
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "feedback_pipeline", "review-app", "--port", str(port)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, process in zip(bases, processes, strict=True):
            wait_until_serving(base, process)
        yield home, bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)


def review_until_done(home: FeedbackHome, bases: list[str], email: str, accepted: list[str], errors: list[str]) -> None:
    """Sign in, then follow "next" (alternating app processes) and answer each item until none is left."""
    link = invite_reviewer(home.landing(), email, "triage", base_url=bases[0]).url
    clients = [httpx.Client(base_url=base, timeout=60) for base in bases]
    try:
        invited = clients[0].get(link.replace(bases[0], ""))
        if invited.status_code != 303:
            errors.append(f"{email}: invitation answered {invited.status_code}")
            return
        turn = 0
        location = "/sessions/triage/next"
        idle = 0
        while idle < 3:
            client = clients[turn % 2]
            turn += 1
            client.cookies = clients[0].cookies
            if "/items/" not in location:
                location = client.get("/sessions/triage/next").headers["location"]
                if "/items/" not in location:
                    idle += 1
                    time.sleep(0.3)
                    location = "/sessions/triage/next"
                    continue
            idle = 0
            page = client.get(location)
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
            if page.status_code != 200 or token is None:
                errors.append(f"{email}: {location} answered {page.status_code}")
                return
            done = client.post(location, data={**FULL_ANSWER, "csrf_token": token.group(1)})
            if done.status_code != 303:
                errors.append(f"{email}: submit to {location} answered {done.status_code}: {done.text[:200]}")
                return
            accepted.append(location.rsplit("/", 1)[1])
            clients[0].cookies = client.cookies
            location = done.headers["location"]
    finally:
        for client in clients:
            client.close()


def test_ten_reviewers_on_two_processes_fill_every_item_to_two_and_no_more(two_apps):
    home, bases = two_apps
    accepted: list[str] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=review_until_done, args=(home, bases, f"reviewer{i}@example.com", accepted, errors))
        for i in range(REVIEWERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []
    landing = home.landing()
    records = [json.loads(line) for key in landing.list("submissions") for line in landing.read_bytes(key).decode().splitlines()]
    per_item = Counter(r["metadata"]["item_id"] for r in records if r["name"] == "quality")
    assert sum(per_item.values()) == len(accepted), "every submit answered 303 is in the landing zone"
    assert max(per_item.values()) <= 2, per_item
    assert per_item == {f"it-{i:04d}": 2 for i in range(1, ITEMS + 1)}, per_item
    pairs = Counter((r["metadata"]["item_id"], r["source"]["source_id"]) for r in records if r["name"] == "quality")
    assert max(pairs.values()) == 1, "nobody answered an item twice"
