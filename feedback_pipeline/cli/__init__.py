"""The `feedback-pipeline` command. Each group of subcommands lives in its own module here."""

from __future__ import annotations

import warnings

import click

from feedback_pipeline.cli import assessments, datasets, demo, labeling, mlflow, pipeline, review_app, traces


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-pipeline")
def main() -> None:
    """Turn human feedback on LLM traces into versioned evaluation datasets."""
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")


main.add_command(traces.traces)
main.add_command(labeling.apply)
main.add_command(labeling.sessions_group)
main.add_command(assessments.assessments_group)
main.add_command(pipeline.run)
main.add_command(pipeline.status)
main.add_command(demo.demo)
main.add_command(datasets.datasets_group)
main.add_command(review_app.review_app)
main.add_command(review_app.reviewers)
main.add_command(review_app.api_keys)
main.add_command(mlflow.mlflow_group)
