"""`feedback-pipeline apply labeling.yaml` and `feedback-pipeline sessions list|show`."""

from __future__ import annotations

import json

import click
import polars as pl

from feedback_pipeline.home import FeedbackHome

ASSESSMENT_COLUMNS = {"trace_id": pl.String, "session": pl.String, "kind": pl.String, "assessor_id": pl.String, "valid": pl.Boolean}


@click.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def apply(path: str) -> None:
    """Make label schemas and labeling sessions match a labeling.yaml (idempotent)."""
    from feedback_pipeline.labeling_file import LabelingFileError, apply_labeling_file

    try:
        changes = apply_labeling_file(path)
    except LabelingFileError as exc:
        raise click.ClickException(str(exc)) from None
    for change in changes:
        click.echo(change)
    if not changes:
        click.echo("no changes")


def _lake_frames(home: FeedbackHome) -> tuple[pl.DataFrame, pl.DataFrame]:
    from feedback_pipeline import sessions

    lake = home.lake()
    items = lake.read(sessions.ITEMS_TABLE, columns=["session_id", "session_name", "item_id", "trace_id"], schema={
        "session_id": pl.String, "session_name": pl.String, "item_id": pl.String, "trace_id": pl.String})
    assessments = lake.read("assessments", schema=ASSESSMENT_COLUMNS)
    return items, assessments


@click.group("sessions")
def sessions_group() -> None:
    """Labeling sessions and their progress (items, completed, per reviewer)."""


@sessions_group.command("list")
def list_sessions() -> None:
    """One line per live session: items and their status."""
    from feedback_pipeline import item_status, sessions

    home = FeedbackHome.from_env()
    items, assessments = _lake_frames(home)
    found = sessions.get_labeling_sessions(home=home)
    if not found:
        click.echo("no labeling sessions (define some with `feedback-pipeline apply labeling.yaml`)")
        return
    click.echo(f"{'name':<28} {'items':>6} {'completed':>9} {'in progress':>11} {'skipped':>7} {'pending':>7}  reviewers")
    for session in found:
        mine = items.filter(pl.col("session_id") == session.labeling_session_id)
        counts = item_status.progress_counts(item_status.item_status(mine, assessments, session.reviews_per_item))
        click.echo(
            f"{session.name:<28} {counts['items']:>6} {counts['completed']:>9} {counts['in_progress']:>11} "
            f"{counts['skipped']:>7} {counts['pending']:>7}  {', '.join(session.assigned_users) or '-'}"
        )


@sessions_group.command("show")
@click.argument("name")
def show_session(name: str) -> None:
    """A session's definition, item status and per-reviewer progress."""
    from feedback_pipeline import item_status, sessions

    home = FeedbackHome.from_env()
    try:
        session = sessions.get_labeling_session(name, home=home)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    items, assessments = _lake_frames(home)
    mine = items.filter(pl.col("session_id") == session.labeling_session_id)
    status = item_status.item_status(mine, assessments, session.reviews_per_item)
    counts = item_status.progress_counts(status)
    click.echo(f"session          {session.name} ({session.labeling_session_id})")
    click.echo(f"review app       {session.url}")
    click.echo(f"label schemas    {', '.join(session.label_schemas) or '-'}")
    click.echo(f"assigned users   {', '.join(session.assigned_users) or '-'}")
    click.echo(f"reviews per item {session.reviews_per_item}")
    click.echo(f"dataset          {session.dataset or '-'}")
    click.echo(f"trace filter     {json.dumps(session.trace_filter) if session.trace_filter else '-'}")
    click.echo(f"refresh cron     {session.refresh_cron} (UTC)")
    click.echo(
        f"items            {counts['items']}: {counts['completed']} completed, {counts['in_progress']} in progress, "
        f"{counts['skipped']} skipped, {counts['pending']} pending"
    )
    progress = item_status.reviewer_progress(mine, assessments)
    reviewers = list(dict.fromkeys(session.assigned_users + progress["assessor_id"].to_list()))
    if reviewers:
        click.echo(f"{'reviewer':<32} {'answered':>8} {'skipped':>7}")
        for reviewer in reviewers:
            row = progress.filter(pl.col("assessor_id") == reviewer)
            answered, skipped = (row["answered"][0], row["skipped"][0]) if row.height else (0, 0)
            click.echo(f"{reviewer:<32} {answered:>8} {skipped:>7}")
