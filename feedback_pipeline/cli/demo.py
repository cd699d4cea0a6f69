"""`feedback-pipeline demo`: the whole pipeline, end to end, on the sample data bundled with the package."""

from __future__ import annotations

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
    report = run_pending(home, echo=lambda line, err=False: click.echo(f"   {line}", err=err))
    if report.failures:
        sys.exit(f"demo failed: {report.failures}")

    click.echo("\n3. results")
    print_tables(home, echo=lambda line: click.echo(f"   {line}"))
    from feedback_pipeline.assessments import search_assessments

    found = search_assessments(include_invalid=True, home=home)
    click.echo(f"   assessments (embedded in the sample traces): {found.height}, valid {found['valid'].sum()}; "
               "feedback-pipeline assessments search --name summary_quality")
    from feedback_pipeline.datasets import list_evaluation_datasets, load_evaluation_dataset

    for name in list_evaluation_datasets(home):
        dataset = load_evaluation_dataset(name, home=home)
        click.echo(
            f"\n   dataset {name} version {dataset.version}: {len(dataset)} records. Load it pinned:\n"
            f"   python -c \"import feedback_pipeline as fp; print(fp.load_evaluation_dataset('{name}', version={dataset.version}).records()[:1])\""
        )
    click.echo(
        f"\nRead a table:  python -c \"import polars as pl; print(pl.read_delta('{home.lake_uri}/traces'))\"\n"
        f"Sessions:      feedback-pipeline sessions show label_summaries\n"
        f"Dagster UI:    make up   (DAGSTER_HOME={home.dagster_home})"
    )
    invitation = invite_reviewer(home.landing(), "alice@example.com", session="label_summaries")
    click.echo(f"Review App:    feedback-pipeline review-app, then open (as alice) {invitation.url}")
