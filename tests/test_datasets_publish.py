"""Publishing a dataset version is a library call: build, gate and commit without Dagster."""

from __future__ import annotations

from datetime import UTC, datetime

from feedback_pipeline import datasets
from tests.datasets_world import expectation, label_schema, trace, write_world

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SCHEMAS = [label_schema("topic", "categorical", {"options": ["billing", "shipping"]})]


def test_publish_version_commits_a_passing_candidate_once_and_keeps_the_version_on_a_failed_gate(home):
    lake = home.lake()
    traces = [trace("tr-1", "q1", "a")]
    write_world(lake, traces, [expectation("a-1", "tr-1", "topic", "billing")], schemas=SCHEMAS)
    first = datasets.publish_version(lake, "summaries", now=NOW, run_id="run-1")
    assert (first.published, first.committed, first.version) == (True, True, 0)
    assert first.metadata()["record_count"] == 1 and first.metadata()["source_fingerprint"] == first.fingerprint
    assert lake.history("evaluation_datasets/summaries", 1)[0]["dagster_run_id"] == "run-1"

    again = datasets.publish_version(lake, "summaries", now=NOW)
    assert (again.published, again.committed, again.version) == (True, False, 0)

    write_world(lake, traces, [expectation("a-1", "tr-1", "topic", "refunds")], schemas=SCHEMAS)
    blocked = datasets.publish_version(lake, "summaries", now=NOW)
    assert (blocked.published, blocked.committed, blocked.version) == (False, False, 0)
    assert any("values must be one of" in failure for failure in blocked.audit.failures)
    assert lake.version("evaluation_datasets/summaries") == 0
