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


def server_options(command: Callable) -> Callable:
    """--tracking-uri and --experiment-id (repeatable), over the environment; passes `server`."""

    @click.option("--tracking-uri", default=None, help="MLflow tracking server (default: $FEEDBACK_MLFLOW_TRACKING_URI).")
    @click.option("--experiment-id", "experiment_ids", multiple=True,
                  help="Experiment to sync; repeatable (default: $FEEDBACK_MLFLOW_EXPERIMENT_IDS).")
    @functools.wraps(command)
    def wrapper(tracking_uri: str | None, experiment_ids: tuple[str, ...], **kwargs):
        try:
            server = MlflowServer.from_env(tracking_uri, experiment_ids)
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
