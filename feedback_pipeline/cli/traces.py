"""`feedback-pipeline traces import` (MLflow trace exports into the landing zone) and `traces rejections`."""

from __future__ import annotations

import click

from feedback_pipeline.exports import TRACE_REJECTIONS, expand_paths, import_traces
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.landing import LandingWriteError


@click.group()
def traces() -> None:
    """MLflow traces."""


@traces.command("import")
@click.argument("paths", nargs=-1, required=True)
def import_command(paths: tuple[str, ...]) -> None:
    """Land MLflow trace exports (JSON, JSONL, JSON arrays, folders, `-` for stdin) for ingestion.

    The files are copied into the landing zone atomically; `feedback-pipeline run` (or the
    Dagster sensor) parses them into the `traces` table. Gzip-compressed exports are read as
    such; a file that is not UTF-8 text is refused with the reason, the others still land (exit 1).
    """
    home = FeedbackHome.from_env()
    try:
        files = expand_paths(paths)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="PATHS") from None
    with click.progressbar(length=len(files), label="importing", file=click.get_text_stream("stderr")) as bar:
        seen: set[str] = set()
        lines_done = {"n": 0}

        def advance(path: str, lines: int) -> None:
            lines_done["n"] += lines
            if path not in seen:
                seen.add(path)
                bar.update(1)
            bar.label = f"importing ({lines_done['n']:,} lines)"

        try:
            summary = import_traces(files, home.landing(), on_progress=advance)
        except LandingWriteError as exc:
            raise click.ClickException(str(exc)) from None
    for path, reason in summary.refused.items():
        click.echo(f"refused {path}: {reason}", err=True)
    click.echo(
        f"landed {summary.traces:,} traces from {summary.files} file(s) in {len(summary.landing_keys)} landing file(s) "
        f"under {home.landing_uri}/traces; run `feedback-pipeline run` to ingest them"
    )
    if summary.refused:
        raise click.ClickException(f"{len(summary.refused)} file(s) refused, nothing of them landed (reasons above)")


@traces.command("rejections")
@click.option("--limit", default=20, show_default=True)
def rejections_command(limit: int) -> None:
    """Print the latest refused trace lines: the landing file, the line and why."""
    from feedback_pipeline.cli.rejections import echo_rejections
    from feedback_pipeline.traces import REJECTIONS_SCHEMA

    columns = ["landing_key", "line_number", "reason"]
    table = FeedbackHome.from_env().lake().read(TRACE_REJECTIONS, columns=[*columns, "rejected_at"], schema=REJECTIONS_SCHEMA)
    echo_rejections(table, columns, limit, "rejected trace line(s)")
