"""Review App latency: item page and submit, p50/p95, with concurrent reviewers on loopback.

Starts `feedback-pipeline review-app` (a real uvicorn server in its own process) on a temporary
FEEDBACK_HOME seeded with one session, invites the reviewers, and has each one (an httpx async
client) open an item page and submit a full answer, item after item.

    /work/main/.venv/bin/python bench/review_app.py [--reviewers 20] [--items 40] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback_pipeline.home import FeedbackHome  # noqa: E402
from feedback_pipeline.review_app.access import invite_reviewer  # noqa: E402
from tests.review_app_seed import seed  # noqa: E402

ANSWER = {
    "answer:quality": "Good", "comment:quality": "fine", "answer:issues": ["Too long"], "answer:rating": "4",
    "answer:summary": "ok", "answer:expected_facts": ["a fact"], "answer:correct": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def reviewer(base: str, link: str, rounds: int, pages: list[float], submits: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        queue = await client.get(link.replace(base, ""), follow_redirects=True)
        url = base + re.search(r'id="start" href="([^"]+)"', queue.text).group(1)
        for _ in range(rounds):
            path = httpx.URL(url).path
            started = time.perf_counter()
            page = await client.get(path)
            pages.append(time.perf_counter() - started)
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
            started = time.perf_counter()
            done = await client.post(path, data={**ANSWER, "csrf_token": token}, follow_redirects=False)
            submits.append(time.perf_counter() - started)
            if done.status_code != 303:
                raise RuntimeError(f"submit answered {done.status_code}: {done.text[:300]}")
            url = base + done.headers["location"]
            if "/items/" not in url:
                break


async def run(base: str, links: list[str], rounds: int) -> tuple[list[float], list[float], float]:
    pages: list[float] = []
    submits: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(reviewer(base, link, rounds, pages, submits) for link in links))
    return pages, submits, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10, help="items each reviewer answers")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "FEEDBACK_HOME": root, "PYTHONPATH": str(REPO)}
        home = FeedbackHome.from_env(env)
        seed(home.lake(), items=args.items)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        links = [invite_reviewer(home.landing(), f"reviewer{i}@example.com", "triage", base_url=base).url
                 for i in range(args.reviewers)]
        server = subprocess.Popen(
            [sys.executable, "-m", "feedback_pipeline", "review-app", "--port", str(port), "--workers", str(args.workers)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            pages, submits, elapsed = asyncio.run(run(base, links, args.rounds))
        finally:
            server.terminate()
            server.wait(10)
    print(f"Review App on loopback ({args.workers} server process(es)): {args.reviewers} concurrent reviewers, {args.items} items, {len(pages)} page views, "
          f"{len(submits)} submits in {elapsed:.1f} s ({(len(pages) + len(submits)) / elapsed:.0f} requests/s)")
    for label, values in (("item page", pages), ("submit", submits)):
        print(f"  {label:<10} p50 {1000 * statistics.median(values):7.1f} ms   p95 {1000 * percentile(values, 0.95):7.1f} ms"
              f"   max {1000 * max(values):7.1f} ms")


if __name__ == "__main__":
    main()
