"""`feedback-pipeline demo`: the whole pipeline, end to end, on the sample data bundled with the package."""

from __future__ import annotations

import os
import sys
from importlib import resources

import click

from feedback_pipeline.cli.pipeline import print_tables, run_pending
from feedback_pipeline.exports import import_traces
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.labeling_file import apply_labeling_file
from feedback_pipeline.review_app.access import invite_reviewer


def sample_path(name: str):
    return resources.files("feedback_pipeline.sample_data") / name


def _run(home: FeedbackHome) -> None:
    report = run_pending(home, echo=lambda line, err=False: click.echo(f"   {line}", err=err))
    if report.failures:
        sys.exit(f"demo failed: {report.failures}")


def answer_as_reviewer(home: FeedbackHome, session: str, reviewer: str, count: int) -> int:
    """Answer the first `count` items of a session's snapshot with the SDK, the way a reviewer would."""
    import polars as pl

    from feedback_pipeline.entities import AssessmentSource
    from feedback_pipeline.submissions import log_expectation, log_feedback

    items = (
        home.lake()
        .read("session_items", columns=["session_name", "trace_id", "response_preview"])
        .filter(pl.col("session_name") == session)
        .sort("trace_id")
        .head(count)
    )
    source = AssessmentSource("HUMAN", reviewer)
    for index, (trace_id, answer) in enumerate(items.select("trace_id", "response_preview").iter_rows()):
        verdict = "Yes" if index % 2 == 0 else "No"
        log_feedback(
            trace_id=trace_id, name="summary_quality", value=verdict, source=source, session=session, home=home,
            rationale="Concise and grounded in the retrieved document." if verdict == "Yes" else "Repeats the question.",
        )
        expected = (answer or "").split("context:")[-1].split("Now summarize")[0].strip() or "No issue reported."
        log_expectation(
            trace_id=trace_id, name="expected_summary", value=expected, source=source, session=session, home=home
        )
    return items.height


@click.command()
def demo() -> None:
    """Import the sample MLflow traces, run the pipeline, and print where the results are."""
    home = FeedbackHome.from_env()
    click.echo(f"FEEDBACK_HOME = {home.root}\n")

    click.echo("1. importing 200 sample MLflow traces into the landing zone")
    with resources.as_file(sample_path("mlflow_traces.jsonl")) as traces_file:
        summary = import_traces([str(traces_file)], home.landing())
    click.echo(f"   landed {summary.traces} traces\n")

    click.echo("   applying labeling.yaml (label schemas and the label_summaries session)")
    with resources.as_file(sample_path("labeling.yaml")) as labeling_file:
        for change in apply_labeling_file(labeling_file, home=home) or ["no changes"]:
            click.echo(f"   {change}")
    click.echo()

    click.echo("2. running the pipeline (the work the Dagster sensors trigger)")
    _run(home)

    click.echo("\n3. alice, a domain expert, answers half of the session through the SDK (as the Review App would)")
    answered = answer_as_reviewer(home, "label_summaries", "alice@example.com", count=5)
    click.echo(f"   {answered} items answered: summary_quality feedback and an expected_summary each")
    _run(home)

    click.echo("\n4. results")
    print_tables(home, echo=lambda line: click.echo(f"   {line}"))
    from feedback_pipeline.search import search_assessments

    found = search_assessments(include_invalid=True, home=home)
    click.echo(f"   assessments: {found.height} (the sample's embedded ones and alice's), valid {found['valid'].sum()}; "
               "feedback-pipeline assessments search --name summary_quality")
    from feedback_pipeline.datasets import list_evaluation_datasets, load_evaluation_dataset

    relative = os.path.relpath(sys.executable)
    python = sys.executable if relative.startswith("..") else relative

    for name in list_evaluation_datasets(home):
        dataset = load_evaluation_dataset(name, home=home)
        click.echo(
            f"\n   dataset {name} version {dataset.version}: {len(dataset)} records. Load it pinned:\n"
            f"   {python} -c \"import feedback_pipeline as fp; print(fp.load_evaluation_dataset('{name}', version={dataset.version}).records()[:1])\""
        )
    click.echo(
        f"\nRead a table:  {python} -c \"import polars as pl; print(pl.read_delta('{home.lake_uri}/traces'))\"\n"
        f"Sessions:      feedback-pipeline sessions show label_summaries\n"
        f"Dagster UI:    make up   (DAGSTER_HOME={home.dagster_home})"
    )
    invitation = invite_reviewer(home.landing(), "alice@example.com", session="label_summaries")
    click.echo(f"Review App:    feedback-pipeline review-app, then open (as alice) {invitation.url}")
