"""`feedback-pipeline demo` (what `make demo` runs) works end to end on the bundled sample data,
and the commands it closes with work as printed."""

import os
import re
import subprocess
import sys

import polars as pl

from tests.conftest import REPO


def test_demo_runs_the_whole_pipeline_and_says_where_results_are(cli, home, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "feedback_pipeline", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for table in ("traces", "session_items", "assessments", "evaluation_datasets/summaries"):
        assert f"{home.lake_uri}/{table}" in out, f"the demo does not show where {table} is"
    assert 'load_evaluation_dataset("summaries", version=1)' in out
    assert "/invite/" in out
    records = pl.read_delta(f"{home.lake_uri}/evaluation_datasets/summaries")
    assert records.height > 0
    assert cli("run").stdout.decode().strip().endswith("nothing pending")

    # A user's shell: no FEEDBACK_HOME exported, the virtualenv not on PATH, the same working directory.
    shell_env = {key: value for key, value in os.environ.items() if not key.startswith(("FEEDBACK_", "DAGSTER_"))}
    shell_env["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(sys.prefix))
    shell_env["PYTHONPATH"] = str(REPO)
    commands = re.findall(r"^(?:[A-Z][\w ]*:)?\s*(FEEDBACK_HOME=\S+ .+)$", out, flags=re.MULTILINE)
    assert len(commands) == 6, out
    for command in commands:
        if command.endswith((" review-app", " up")):
            command = command.replace(" make ", " make -n ") if "make" in command else f"{command} --help"
        ran = subprocess.run(command, shell=True, cwd=tmp_path, env=shell_env, capture_output=True, text=True,
                             timeout=120)
        assert ran.returncode == 0, f"{command}\n{ran.stdout}\n{ran.stderr}"
    activate = re.search(r"`source (\S+)`", out)
    assert activate and os.path.isfile(tmp_path / activate.group(1)) or os.path.isfile(activate.group(1))
