"""The layering and the install: the library never imports the Dagster shell, and the shell installs
under the project-owned name `feedback_pipeline_dagster` (no top-level `assets` or `sensors` in
site-packages), both from a built wheel and editable."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from feedback_pipeline.code_location import CODE_LOCATION_GROUP

REPO = Path(__file__).resolve().parents[1]
SHELL = ("feedback_pipeline_dagster", "assets", "sensors")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_nothing_in_the_library_imports_the_dagster_shell():
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in imported_modules(path) if m.split(".")[0] in SHELL)
        for path in (REPO / "feedback_pipeline").rglob("*.py")
    }
    assert not {path: found for path, found in offenders.items() if found}


def test_the_wheel_has_no_top_level_assets_or_sensors(tmp_path):
    """Built from a copy of the sources, so the build leaves nothing in the repository."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    for folder in ("feedback_pipeline", "feedback_pipeline_dagster", "assets", "sensors"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = tmp_path.glob("feedback_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == {"feedback_pipeline", "feedback_pipeline_dagster"}
    assert {
        "feedback_pipeline_dagster/definitions.py",
        "feedback_pipeline_dagster/assets/resources.py",
        "feedback_pipeline_dagster/sensors/run_health.py",
        "feedback_pipeline/review_app/templates/base.html",
        "feedback_pipeline/review_app/static/review.js",
        "feedback_pipeline/sample_data/mlflow_traces.jsonl",
    } <= set(names)


def test_the_editable_install_serves_the_code_location_away_from_the_source_tree(tmp_path):
    """From a folder other than the repository (so the source tree is not on sys.path): the shell
    imports under its own name, the top-level folder names do not import, and Dagster validates
    the code location the workspace names."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": ""}
    probe = "import importlib.util as u; print(u.find_spec('feedback_pipeline_dagster.assets') is not None, u.find_spec('assets'), u.find_spec('sensors'))"
    shown = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert shown.stdout.split() == ["True", "None", "None"]
    module = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["module_name"]
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-m", module], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_workspace_and_the_entry_point_name_one_code_location_whose_stages_are_the_sensors():
    (point,) = entry_points(group=CODE_LOCATION_GROUP)
    module = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["module_name"]
    assert point.module == module
    location = point.load()
    assert [stage.name for stage in location.stages] == ["traces", "labeling", "assessments", "datasets", "quality"]
    for stage in location.stages:
        sensor_module = importlib.import_module(f"feedback_pipeline_dagster.sensors.{stage.name}")
        assert stage.pending_run_requests is sensor_module.pending_run_requests, "run asks what the stage's sensor asks"
