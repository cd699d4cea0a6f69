"""The README's Python and shell blocks run as written, in order, in a fresh FEEDBACK_HOME after the demo.

Like a new user: a copy of the repository as the working directory, the virtualenv's programs on PATH
(`source .venv/bin/activate`), no FEEDBACK_HOME set (so `./.feedback`), `feedback-pipeline demo`
first (what `make demo` runs once installed), the Review App running for the API examples. A block
preceded by `<!-- readme-test: skip: REASON -->` is not run (servers and the long benchmarks). After
the blocks a pipeline run must refuse nothing the README submitted.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from feedback_pipeline.home import FeedbackHome
from tests.conftest import REPO

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!-- readme-test: skip: (.+?) -->\s*$")
LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The runnable fenced blocks of a markdown text, in order, with the skip reason written above each."""
    blocks = []
    for match in FENCE.finditer(text):
        language = LANGUAGES.get(match.group(1).lower())
        if language is None:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, language, match.group(2), skip and skip.group(1)))
    return blocks


def test_readme_blocks_are_found_and_every_skip_says_why():
    blocks = readme_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert sum(b.language == "python" for b in blocks) >= 5 and sum(b.language == "bash" for b in blocks) >= 5
    skipped = [b for b in blocks if b.skip]
    assert all(len(b.skip) > 10 for b in skipped)
    assert len(skipped) < len(blocks) / 3, "most blocks run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Review App exited"
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds}s")


@pytest.fixture
def user_shell(tmp_path):
    """A copy of the repository and the environment of a user who sourced .venv/bin/activate."""
    work = tmp_path / "feedback-pipeline"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", ".feedback", "__pycache__", "*.egg-info",
                                                              ".pytest_cache", "mlruns"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDBACK_", "DAGSTER_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = sys.prefix
    env["GX_ANALYTICS_ENABLED"] = "false"
    return work, env


def test_readme_examples_run_as_written(user_shell):
    work, env = user_shell
    demo = subprocess.run(["feedback-pipeline", "demo"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lake = FeedbackHome(str(work / ".feedback")).lake()
    rejected_before = lake.read("rejections").height

    port = _free_port()
    env["FEEDBACK_REVIEW_APP_URL"] = f"http://127.0.0.1:{port}"
    app = subprocess.Popen(["feedback-pipeline", "review-app", "--port", str(port)], cwd=work, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/openapi.json", app)
        for block in readme_blocks((work / "README.md").read_text(encoding="utf-8")):
            if block.skip:
                continue
            command = ["bash", "-e", "-o", "pipefail", "-c", block.code] if block.language == "bash" else [sys.executable, "-"]
            done = subprocess.run(command, cwd=work, env=env, input=None if block.language == "bash" else block.code,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"README.md:{block.line} ({block.language}) failed:\n{block.code}\n" \
                                         f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    finally:
        app.terminate()
        app.wait(timeout=30)

    final = subprocess.run(["feedback-pipeline", "run"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    rejections = lake.read("rejections")
    assert rejections.height == rejected_before, rejections.tail(rejections.height - rejected_before)["reason"].to_list()
