"""`feedback-pipeline run` with nothing pending answers without starting Dagster or importing the heavy
stage libraries (Great Expectations, MLflow, scikit-learn), which only stages with work load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("dagster", "great_expectations", "mlflow", "sklearn")
PROGRAM = f"""
import sys
from click.testing import CliRunner
from feedback_pipeline.cli import main
result = CliRunner().invoke(main, ["run"])
print(result.output.strip())
print(",".join(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_run_with_nothing_pending_imports_no_stage_library(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDBACK_", "DAGSTER_"))}
    env |= {"FEEDBACK_HOME": str(tmp_path / "feedback"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said, imported = done.stdout.splitlines()[-2:]
    assert (said, imported) == ("nothing pending", ""), done.stdout
