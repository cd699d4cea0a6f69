"""Review App work distribution and latency: reviewers following "next" on one session, on loopback.

Starts `feedback-pipeline review-app` (a real uvicorn server in its own process) on a temporary
FEEDBACK_HOME seeded with one session (`reviews_per_item=2`), invites the reviewers and signs each
one in through their invitation link, then has wrk (Debian's `wrk`, driven by bench/review_app.lua)
keep one connection per reviewer busy following "next": the start link, the item page it sends them
to, an answer to it (the page's form), the item the answer's redirect names, until the app sends
them back to the queue. Prints how many answers each item got (the target: every item exactly 2)
and the latencies per request kind (measured in the Lua script; wrk's own summary with --verbose).

    .venv/bin/python bench/review_app.py [--reviewers 20] [--items 1000] [--seconds 300] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback_pipeline.home import FeedbackHome  # noqa: E402
from feedback_pipeline.review_app import CSRF_COOKIE, SESSION_COOKIE  # noqa: E402
from feedback_pipeline.review_app.access import invite_reviewer  # noqa: E402
from feedback_pipeline.review_app.reservations import AREA as RESERVATIONS  # noqa: E402
from tests.review_app_seed import seed  # noqa: E402

SESSION = "triage"
LUA_SCRIPT = REPO / "bench" / "review_app.lua"
KINDS = (("next", "next"), ("page", "item page"), ("submit", "submit"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(base: str, process: subprocess.Popen | None = None, seconds: float = 90) -> None:
    """Return once the app at `base` answers /healthz; RuntimeError when `process` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Review App at {base} exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the Review App did not answer {base}/healthz within {seconds:.0f} s")


def sign_in(base: str, link: str) -> tuple[str, str]:
    """Follow an invitation link like a browser and open the session's page: (Cookie header, csrf_token)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        invited = client.get(link.replace(base, ""))
        if invited.status_code != 303 or SESSION_COOKIE not in client.cookies:
            raise RuntimeError(f"invitation answered {invited.status_code}: {invited.text[:300]}")
        page = client.get(f"/sessions/{SESSION}")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"session page answered {page.status_code}: {page.text[:300]}")
        cookie = "; ".join(f"{name}={client.cookies[name]}" for name in (SESSION_COOKIE, CSRF_COOKIE))
        return cookie, token.group(1)


def cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) the process `root_pid` and its live descendants have used (Linux /proc)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {root_pid}, True
    while grown:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return sum(used.get(pid, 0.0) for pid in tree)


def write_plan(path: Path, reviewers: list[tuple[str, str]]) -> None:
    """The plan bench/review_app.lua reads: the session's path, then one reviewer per line."""
    path.write_text("\n".join([f"/sessions/{SESSION}", *(f"{cookie}\t{token}" for cookie, token in reviewers)]) + "\n")


def run_until_settled(command: list[str], home: FeedbackHome, env: dict[str, str], quiet_seconds: float = 3.0) -> subprocess.CompletedProcess:
    """Run wrk until no submission has landed for `quiet_seconds` (every reviewer stopped), then stop it
    as Ctrl-C does, so it reports (wrk's threads stop, but wrk itself waits out its duration)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    landing, count, changed = home.landing(), 0, time.monotonic()
    while process.poll() is None:
        time.sleep(0.5)
        now = len(landing.list("submissions"))
        if now != count:
            count, changed = now, time.monotonic()
        elif count and time.monotonic() - changed > quiet_seconds:
            process.send_signal(signal.SIGINT)
            break
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def answers_per_item(home: FeedbackHome) -> Counter[int]:
    """How many items got each number of answers (reviewers who answered the session's first question)."""
    landing = home.landing()
    per_item = Counter(
        record["metadata"]["item_id"]
        for key in landing.list("submissions")
        for record in map(json.loads, landing.read_bytes(key).decode().splitlines())
        if record.get("name") == "quality"
    )
    return Counter(per_item.values())


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
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=300, help="at most this long (reviewers stop when nothing is left)")
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
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        links = [invite_reviewer(home.landing(), f"reviewer{i}@example.com", SESSION, base_url=base).url
                 for i in range(args.reviewers)]
        server = subprocess.Popen(
            [sys.executable, "-m", "feedback_pipeline", "review-app", "--port", str(port), "--workers", str(args.workers)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_serving(base, server)
            plan = Path(root) / "wrk-plan.tsv"
            write_plan(plan, [sign_in(base, link) for link in links])
            command = wrk_command(wrk, base, args.reviewers, args.seconds)
            cpu_before = cpu_seconds(server.pid)
            done = run_until_settled(command, home, {**os.environ, "REVIEW_APP_BENCH_PLAN": str(plan)})
            server_cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(10)
        distribution = answers_per_item(home)
        reservations = sum(1 for _ in home.landing().iter_keys(RESERVATIONS))
    if args.verbose:
        print(done.stdout, done.stderr, sep="\n")
    seconds, figures, failure = parse_wrk(done.stdout)
    if done.returncode != 0 or set(figures) != {kind for kind, _ in KINDS}:
        sys.exit(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
    if failure:
        sys.exit(f"a request did not get the expected answer: {failure}")
    pages, submits = int(figures["page"]["count"]), int(figures["submit"]["count"])
    print(f"Review App on loopback ({args.workers} server process(es)): {args.reviewers} reviewers following next, "
          f"{args.items} items, reviews_per_item=2: {pages} page views, {submits} submits in {seconds:.1f} s "
          f"({(pages + submits) / seconds:.0f} requests/s)")
    unreached = args.items - sum(distribution.values())
    shown = ", ".join(f"{count} items {answers}" for answers, count in sorted(distribution.items()))
    print(f"  answers per item: {shown}" + (f", {unreached} items 0" if unreached else ""))
    print(f"  reservations landed: {reservations} ({reservations / max(submits, 1):.2f} per submit)")
    requests = sum(int(figures[kind]["count"]) for kind, _ in KINDS)
    print(f"  server CPU: {server_cpu:.1f} s ({1000 * server_cpu / max(requests, 1):.2f} ms per request; "
          f"the latencies below are mostly waiting for it, 20 requests at a time)")
    for kind, label in KINDS:
        row = figures[kind]
        print(f"  {label:<10} p50 {row['p50_us'] / 1000:7.1f} ms   p95 {row['p95_us'] / 1000:7.1f} ms   max {row['max_us'] / 1000:7.1f} ms")
    shown = " ".join(command).replace(str(REPO) + "/", "").replace(base, "http://127.0.0.1:PORT")
    print(f"  load: {shown} (one reviewer per connection)")


if __name__ == "__main__":
    main()
