"""`feedback-pipeline assessments ...`: import historic labels, look at assessments and rejections."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("assessments")
def assessments_group() -> None:
    """Assessments: import historic labels, search what was recorded."""


@assessments_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(files: tuple[Path, ...]) -> None:
    """Land historic labels as submissions: submission JSONL, CSV, or MLflow trace exports (JSON/JSONL)
    with embedded assessments. The pipeline then validates them like any other submission."""
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.landing import slug
    from feedback_pipeline.submissions import import_file_lines, land_lines

    landing = FeedbackHome.from_env().landing()
    for path in files:
        try:
            kind, lines = import_file_lines(path)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        keys = land_lines(landing, lines, label=f"import-{slug(path.stem, 32)}") if lines else []
        click.echo(f"{path}: {len(lines)} submissions ({kind}) landed in {len(keys)} file(s)")
    click.echo("run `feedback-pipeline run` (or let the Dagster sensor pick them up) to validate them")


@assessments_group.command("search")
@click.option("--session", default=None, help="labeling session name")
@click.option("--name", default=None, help="assessment (label schema) name")
@click.option("--assessor", default=None, help="source_id of the assessor")
@click.option("--kind", type=click.Choice(["feedback", "expectation", "skip"]), default=None)
@click.option("--all", "include_invalid", is_flag=True, help="include overridden and superseded assessments")
@click.option("--pending", "include_pending", is_flag=True, help="fold in submissions not yet processed")
@click.option("--limit", default=20, show_default=True)
def search_command(session: str | None, name: str | None, assessor: str | None, kind: str | None,
                   include_invalid: bool, include_pending: bool, limit: int) -> None:
    """Print recorded assessments, newest first."""
    import polars as pl

    from feedback_pipeline.search import search_assessments

    found = search_assessments(session=session, name=name, assessor=assessor, kind=kind,
                               include_invalid=include_invalid, include_pending=include_pending)
    with pl.Config(tbl_rows=limit, tbl_width_chars=160, fmt_str_lengths=40):
        click.echo(found.select("trace_id", "assessment_name", "assessment_value", "assessor_id", "valid", "pending",
                                "timestamp").head(limit))
    click.echo(f"{found.height} assessment(s)")


@assessments_group.command("rejections")
@click.option("--limit", default=20, show_default=True)
def rejections_command(limit: int) -> None:
    """Print the latest rejected submissions with their reasons."""
    import polars as pl

    from feedback_pipeline.assessment_tables import REJECTION_SCHEMA, REJECTIONS
    from feedback_pipeline.home import FeedbackHome

    table = FeedbackHome.from_env().lake().read(REJECTIONS, schema=REJECTION_SCHEMA)
    with pl.Config(tbl_rows=limit, tbl_width_chars=160, fmt_str_lengths=100):
        click.echo(table.sort("rejected_at", descending=True).select("submission_id", "reason").head(limit))
    click.echo(f"{table.height} rejection(s)")
