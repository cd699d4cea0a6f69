"""Review App latency: item page and submit, p50/p95/max, with concurrent reviewers on loopback.

Starts `feedback-pipeline review-app` (a real uvicorn server in its own process) on a temporary
FEEDBACK_HOME seeded with one session, invites the reviewers and signs each one in through their
invitation link, then has wrk (Debian's `wrk`, driven by bench/review_app.lua) keep one connection
per reviewer busy: open an item page, submit an answer to it (the page's form, valid answers, a new
rating each round so every submit lands), next item. The latencies per request kind are measured in
the Lua script; wrk's own summary is printed with --verbose.

    /work/main/.venv/bin/python bench/review_app.py [--reviewers 20] [--items 40] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback_pipeline.home import FeedbackHome  # noqa: E402
from feedback_pipeline.review_app import CSRF_COOKIE, SESSION_COOKIE  # noqa: E402
from feedback_pipeline.review_app.access import invite_reviewer  # noqa: E402
from tests.review_app_seed import seed  # noqa: E402

SESSION = "triage"
LUA_SCRIPT = REPO / "bench" / "review_app.lua"
KINDS = (("page", "item page"), ("submit", "submit"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the Review App did not answer {base}/healthz within {seconds:.0f} s")


def sign_in(base: str, link: str, first_item: str) -> tuple[str, str]:
    """Follow an invitation link like a browser and open one item page: (Cookie header, csrf_token)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        invited = client.get(link.replace(base, ""))
        if invited.status_code != 303 or SESSION_COOKIE not in client.cookies:
            raise RuntimeError(f"invitation answered {invited.status_code}: {invited.text[:300]}")
        page = client.get(f"/sessions/{SESSION}/items/{first_item}")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"item page answered {page.status_code}: {page.text[:300]}")
        cookie = "; ".join(f"{name}={client.cookies[name]}" for name in (SESSION_COOKIE, CSRF_COOKIE))
        return cookie, token.group(1)


def write_plan(path: Path, item_ids: list[str], reviewers: list[tuple[str, str]]) -> None:
    """The plan bench/review_app.lua reads: item path prefix, item ids, one reviewer per line."""
    lines = [f"/sessions/{SESSION}/items/", " ".join(item_ids), *(f"{cookie}\t{token}" for cookie, token in reviewers)]
    path.write_text("\n".join(lines) + "\n")


def wrk_command(wrk: str, base: str, reviewers: int, seconds: int) -> list[str]:
    """One thread per connection, so each connection (one reviewer) has its own Lua state."""
    return [wrk, f"-t{reviewers}", f"-c{reviewers}", f"-d{seconds}s", "--timeout", "30s", "-s", str(LUA_SCRIPT), f"{base}/"]


def parse_wrk(output: str) -> tuple[float, dict[str, dict[str, float]], str | None]:
    """(seconds, figures per request kind, first failure) from the lines done() prints."""
    seconds = 0.0
    figures: dict[str, dict[str, float]] = {}
    failure = None
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] != ["review_app"]:
            continue
        if parts[1] == "seconds":
            seconds = float(parts[2])
        elif parts[1] == "failure":
            failure = line.split("failure", 1)[1].strip()
        else:
            figures[parts[1]] = {parts[i]: float(parts[i + 1]) for i in range(2, len(parts) - 1, 2)}
    return seconds, figures, failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviewers", type=int, default=20, help="concurrent reviewers (wrk connections)")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk keeps the reviewers busy")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--verbose", action="store_true", help="also print wrk's own output")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("bench/review_app.py needs wrk (the HTTP load generator): install it with `apt-get install wrk`")
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "FEEDBACK_HOME": root, "PYTHONPATH": str(REPO)}
        home = FeedbackHome.from_env(env)
        seed(home.lake(), items=args.items)
        item_ids = home.lake().read("session_items").filter(session_name=SESSION).sort("added_at")["item_id"].to_list()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        links = [invite_reviewer(home.landing(), f"reviewer{i}@example.com", SESSION, base_url=base).url
                 for i in range(args.reviewers)]
        server = subprocess.Popen(
            [sys.executable, "-m", "feedback_pipeline", "review-app", "--port", str(port), "--workers", str(args.workers)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_serving(base)
            plan = Path(root) / "wrk-plan.tsv"
            write_plan(plan, item_ids, [sign_in(base, link, item_ids[0]) for link in links])
            command = wrk_command(wrk, base, args.reviewers, args.seconds)
            done = subprocess.run(
                command, env={**os.environ, "REVIEW_APP_BENCH_PLAN": str(plan)}, capture_output=True, text=True, check=False
            )
        finally:
            server.terminate()
            server.wait(10)
    if args.verbose:
        print(done.stdout, done.stderr, sep="\n")
    seconds, figures, failure = parse_wrk(done.stdout)
    if done.returncode != 0 or set(figures) != {kind for kind, _ in KINDS}:
        sys.exit(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    if failure:
        sys.exit(f"a request did not get the expected answer: {failure}")
    pages, submits = int(figures["page"]["count"]), int(figures["submit"]["count"])
    print(f"Review App on loopback ({args.workers} server process(es)): {args.reviewers} concurrent reviewers, {args.items} items, "
          f"{pages} page views, {submits} submits in {seconds:.1f} s ({(pages + submits) / seconds:.0f} requests/s)")
    for kind, label in KINDS:
        row = figures[kind]
        print(f"  {label:<10} p50 {row['p50_us'] / 1000:7.1f} ms   p95 {row['p95_us'] / 1000:7.1f} ms   max {row['max_us'] / 1000:7.1f} ms")
    shown = " ".join(command).replace(str(REPO) + "/", "").replace(base, "http://127.0.0.1:PORT")
    print(f"  load: {shown} (one reviewer per connection)")


if __name__ == "__main__":
    main()
