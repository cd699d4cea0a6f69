"""`feedback-pipeline mlflow pull|push|publish`: two-way sync with an MLflow tracking server."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.mlflow_server import MlflowNotInstalled, MlflowServer


@click.group("mlflow")
def mlflow_group() -> None:
    """Sync with an MLflow tracking server (FEEDBACK_MLFLOW_TRACKING_URI, FEEDBACK_MLFLOW_EXPERIMENT_IDS)."""


def server_options(command: Callable, *, experiments_required: bool = True) -> Callable:
    """--tracking-uri and --experiment-id (repeatable), over the environment; passes `server`."""

    @click.option("--tracking-uri", default=None, help="MLflow tracking server (default: $FEEDBACK_MLFLOW_TRACKING_URI).")
    @click.option("--experiment-id", "experiment_ids", multiple=True,
                  help="Experiment to sync; repeatable (default: $FEEDBACK_MLFLOW_EXPERIMENT_IDS).")
    @functools.wraps(command)
    def wrapper(tracking_uri: str | None, experiment_ids: tuple[str, ...], **kwargs):
        try:
            server = MlflowServer.from_env(tracking_uri, experiment_ids, experiments_required=experiments_required)
            return command(server=server, **kwargs)
        except (ValueError, MlflowNotInstalled) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@mlflow_group.command("pull")
@server_options
def pull_command(server: MlflowServer) -> None:
    """Land every trace that is new or changed on the server, with its assessment changes and label schemas."""
    from feedback_pipeline import mlflow_pull

    home = FeedbackHome.from_env()
    err = click.get_text_stream("stderr")

    def progress(report: mlflow_pull.PullReport) -> None:
        click.echo(f"\rpulling: {report.traces_seen:,} traces read, {report.traces_landed:,} landed", file=err, nl=False)

    report = mlflow_pull.pull(server, home.lake(), home.landing(), on_progress=progress)
    click.echo("", file=err)
    click.echo(
        f"pulled {report.traces_seen:,} traces from {server.tracking_uri} (experiments {', '.join(server.experiment_ids)}) "
        f"in {report.seconds:.1f} s ({report.traces_per_second:,.0f} traces/s): {report.traces_landed:,} new or changed landed; "
        f"assessments {report.assessments_created} new, {report.assessments_updated} updated, "
        f"{report.assessments_deleted} deleted; {report.label_schemas} label schemas; "
        "run `feedback-pipeline run` to ingest them"
    )


@mlflow_group.command("push")
@server_options
def push_command(server: MlflowServer) -> None:
    """Log our valid assessments MLflow lacks on their traces; overrides, updates and deletes follow."""
    from feedback_pipeline import mlflow_push

    home = FeedbackHome.from_env()
    report = mlflow_push.push(server, home.lake())
    click.echo(
        f"pushed to {server.tracking_uri}: {report.logged} logged ({report.overrides} as overrides), "
        f"{report.updated} updated, {report.deleted} deleted"
    )


@mlflow_group.command("publish")
@click.argument("dataset")
@click.option("--version", type=int, default=None, help="Delta version of the dataset (default: the current one).")
@click.option("--name", default=None, help="MLflow dataset name (default: datasets.yaml's mlflow.name, else DATASET).")
@functools.partial(server_options, experiments_required=False)
def publish_command(server: MlflowServer, dataset: str, version: int | None, name: str | None) -> None:
    """Write a dataset version into MLflow's evaluation datasets (experiment: --experiment-id, else datasets.yaml)."""
    from feedback_pipeline import datasets, mlflow_datasets

    home = FeedbackHome.from_env()
    configured = datasets.load_config(dataset, datasets.config_path(home.root), home.storage_options).mlflow
    experiment_id = server.experiment_ids[0] if server.experiment_ids else None
    if experiment_id is None and configured is None:
        raise click.ClickException(f"dataset {dataset!r} has no MLflow target: give --experiment-id or mlflow: in datasets.yaml")
    target = datasets.MlflowDatasetTarget(
        experiment_id or configured.experiment_id, name or (configured.name if configured else dataset)
    )
    try:
        loaded = datasets.load_evaluation_dataset(dataset, version=version, home=home)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    report = mlflow_datasets.publish(loaded, target, server)
    click.echo(
        f"published {dataset} version {report.version} to MLflow dataset {report.name} ({report.dataset_id}) "
        f"in experiment {target.experiment_id}: {report.merged} records merged, {report.deleted} deleted"
    )
