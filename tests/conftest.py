"""Shared fixtures: a temporary FEEDBACK_HOME per test and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedback_pipeline.home import FeedbackHome

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def home(tmp_path, monkeypatch) -> FeedbackHome:
    """An empty data home under tmp_path, exported to the environment like a user would."""
    root = tmp_path / "feedback"
    monkeypatch.setenv("FEEDBACK_HOME", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster"))
    for variable in ("FEEDBACK_LAKE_URI", "FEEDBACK_LANDING_URI", "FEEDBACK_STORAGE_OPTIONS", "FEEDBACK_DAGSTER_POSTGRES_URL"):
        monkeypatch.delenv(variable, raising=False)
    resolved = FeedbackHome.from_env()
    resolved.ensure_dagster_home()
    return resolved


@pytest.fixture
def cli(home):
    """Run `feedback-pipeline ...` as a real subprocess against the test's data home."""

    def run(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        done = subprocess.run(
            [sys.executable, "-m", "feedback_pipeline", *args],
            cwd=REPO,
            env=env,
            input=input,
            capture_output=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"feedback-pipeline {' '.join(args)} exited {done.returncode}:\n{done.stderr.decode()}")
        return done

    return run
