"""Storage options said once in delta-rs names (`feedback_pipeline.storage`), and the managed dagster.yaml."""

from __future__ import annotations

import pytest
import yaml

from feedback_pipeline.home import MANAGED_MARK, POSTGRES_URL_VARIABLE, FeedbackHome, dagster_yaml
from feedback_pipeline.storage import delta_options, fsspec_options, parse_options

S3_OPTIONS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
    "AWS_ACCESS_KEY_ID": "key-id",
    "aws_secret_access_key": "secret",
    "AWS_REGION": "eu-west-1",
    "AWS_ALLOW_HTTP": "true",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
}


def test_one_set_of_options_becomes_fsspec_keywords():
    assert fsspec_options(S3_OPTIONS) == {
        "endpoint_url": "http://127.0.0.1:8333",
        "key": "key-id",
        "secret": "secret",
        "client_kwargs": {"region_name": "eu-west-1"},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }
    assert fsspec_options({"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "k"}) == {
        "account_name": "acct", "account_key": "k",
    }  # fmt: skip


def test_delta_rs_gets_the_options_as_given_with_conditional_puts_on_s3(monkeypatch):
    monkeypatch.delenv("AWS_CONDITIONAL_PUT", raising=False)
    assert delta_options("s3://bucket/lake", S3_OPTIONS) == {**S3_OPTIONS, "aws_conditional_put": "etag"}
    assert delta_options("s3://bucket/lake", {"AWS_CONDITIONAL_PUT": "etag"}) == {"AWS_CONDITIONAL_PUT": "etag"}
    assert delta_options("/tmp/lake", {}) is None
    monkeypatch.setenv("AWS_CONDITIONAL_PUT", "etag")
    assert delta_options("s3://bucket/lake", {}) is None, "the environment's choice is delta-rs's to read"


def test_options_in_fsspec_names_or_with_unsafe_renames_are_refused_at_the_door():
    with pytest.raises(ValueError, match="key 'endpoint_url': an fsspec name.*AWS_ENDPOINT"):
        parse_options('{"endpoint_url": "http://x"}', {})
    with pytest.raises(ValueError, match="AWS_S3_ALLOW_UNSAFE_RENAME is 'true': unsafe renames"):
        parse_options('{"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}', {})
    with pytest.raises(ValueError, match="AWS_S3_ALLOW_UNSAFE_RENAME is 'true'"):
        FeedbackHome.from_env({"AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
    assert parse_options('{"AWS_REGION": "eu-west-1"}', {}) == {"AWS_REGION": "eu-west-1"}


def test_dagster_home_stays_local_when_the_data_is_on_a_store():
    home = FeedbackHome.from_env({"FEEDBACK_HOME": "s3://bucket/prefix"})
    assert home.lake_uri == "s3://bucket/prefix/lake" and not home.dagster_home.startswith("s3://")


def test_postgres_storage_is_a_section_of_the_managed_dagster_yaml(tmp_path):
    url = "postgresql+psycopg2://u:p@db:5432/dagster"
    plain, with_postgres = yaml.safe_load(dagster_yaml({})), yaml.safe_load(dagster_yaml({POSTGRES_URL_VARIABLE: url}))
    assert "storage" not in plain and plain["run_queue"] == {"dequeue_interval_seconds": 1}
    assert with_postgres == {**plain, "storage": {"postgres": {"postgres_url": {"env": POSTGRES_URL_VARIABLE}}}}
    assert url not in dagster_yaml({POSTGRES_URL_VARIABLE: url}), "the password stays in the environment"

    env = {"FEEDBACK_HOME": str(tmp_path)}
    config = tmp_path / "dagster" / "dagster.yaml"
    FeedbackHome.from_env(env).ensure_dagster_home()
    assert "storage" not in yaml.safe_load(config.read_text())
    FeedbackHome.from_env({**env, POSTGRES_URL_VARIABLE: url}).ensure_dagster_home()
    assert config.read_text().startswith(MANAGED_MARK) and "postgres" in yaml.safe_load(config.read_text())["storage"]
    config.write_text("# mine\ntelemetry:\n  enabled: true\n")
    FeedbackHome.from_env(env).ensure_dagster_home()
    assert config.read_text() == "# mine\ntelemetry:\n  enabled: true\n", "a file without the mark is the user's"


def test_a_postgres_url_without_the_psycopg2_driver_is_refused():
    with pytest.raises(ValueError, match=r"FEEDBACK_DAGSTER_POSTGRES_URL starts postgresql://: expected postgresql\+psycopg2://"):
        FeedbackHome.from_env({POSTGRES_URL_VARIABLE: "postgresql://u@h/db"})
