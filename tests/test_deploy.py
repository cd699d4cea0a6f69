"""deploy/compose.yaml: valid for a compose client, and consistent with the code it starts (the variables
the code reads, the services' hosts, ports, credentials and commands)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from feedback_pipeline.home import POSTGRES_URL_VARIABLE, FeedbackHome

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "deploy" / "compose.yaml"
APP_SERVICES = ("dagster-webserver", "dagster-daemon", "review-app")
SOURCES = [*(REPO / "feedback_pipeline").rglob("*.py"), *(REPO / "feedback_pipeline_dagster").rglob("*.py"), *(REPO / "assets").rglob("*.py"), *(REPO / "sensors").rglob("*.py")]


def compose_client() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_a_compose_client_accepts_the_file():
    client = compose_client()
    if client is None:
        pytest.skip("no docker compose client (make compose installs Debian's docker-compose)")
    done = subprocess.run([*client, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_part_is_there_and_the_app_services_run_our_commands(spec):
    services = spec["services"]
    assert {"postgres", "s3", *APP_SERVICES} <= set(services)
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile" and (REPO / service["build"]["dockerfile"]).exists()
        command = " ".join(service["command"])
        assert command.startswith(("feedback-pipeline", "sh -c feedback-pipeline dagster-home &&")), command
    assert "dagster-webserver" in " ".join(services["dagster-webserver"]["command"])
    assert "dagster-daemon run" in " ".join(services["dagster-daemon"]["command"])
    assert (REPO / "workspace.yaml").exists()
    assert services["dagster-webserver"]["ports"] == ["3000:3000"] and services["review-app"]["ports"] == ["8000:8000"]


def test_the_environment_is_what_the_code_reads_and_points_at_the_services(spec):
    services = spec["services"]
    env = services["review-app"]["environment"]
    assert all(services[name]["environment"] == env for name in APP_SERVICES), "one environment for every host"
    code = "\n".join(path.read_text() for path in SOURCES)
    for variable in env:
        if variable.startswith("FEEDBACK_"):
            assert f'"{variable}"' in code, f"{variable} is not read by the code"
    home = FeedbackHome.from_env(env)
    assert home.lake_uri.startswith("s3://") and home.dagster_home == env["DAGSTER_HOME"] and home.dagster_postgres

    database = urlsplit(env[POSTGRES_URL_VARIABLE])
    postgres = services["postgres"]["environment"]
    assert database.hostname == "postgres" and database.port == 5432
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"],
    )  # fmt: skip

    store = services["s3"]
    command = " ".join(store["command"])
    endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
    assert endpoint.hostname == "s3" and f"-s3.port={endpoint.port}" in command
    bucket = urlsplit(env["FEEDBACK_HOME"]).netloc
    assert f"-bucket={bucket}" in command
    config_mount = next(v for v in store["volumes"] if v.endswith(":/etc/seaweedfs/s3.json:ro"))
    identities = json.loads((COMPOSE.parent / config_mount.split(":")[0]).read_text())["identities"]
    credentials = {(c["accessKey"], c["secretKey"]) for i in identities for c in i["credentials"]}
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) in credentials


def test_deploy_md_names_every_variable_of_the_compose_file(spec):
    text = (REPO / "docs" / "DEPLOY.md").read_text()
    for variable in spec["services"]["review-app"]["environment"]:
        assert re.search(rf"`{variable}`", text), f"docs/DEPLOY.md does not describe {variable}"
