"""`feedback-pipeline demo` (what `make demo` runs) works end to end on the bundled sample data."""

import polars as pl


def test_demo_runs_the_whole_pipeline_and_says_where_results_are(cli, home):
    done = cli("demo")
    out = done.stdout.decode()
    for table in ("traces", "session_items", "assessments", "evaluation_datasets/summaries"):
        assert f"{home.lake_uri}/{table}" in out, f"the demo does not show where {table} is"
    assert "load_evaluation_dataset('summaries', version=1)" in out
    assert "/invite/" in out
    records = pl.read_delta(f"{home.lake_uri}/evaluation_datasets/summaries")
    assert records.height > 0
    assert cli("run").stdout.decode().strip().endswith("nothing pending")
