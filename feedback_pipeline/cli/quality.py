"""`feedback-pipeline quality`: agreement between a session's reviewers, and judges against people."""

from __future__ import annotations

import click
import polars as pl

from feedback_pipeline import agreement, judge_alignment
from feedback_pipeline.home import FeedbackHome


@click.group("quality")
def quality_group() -> None:
    """Label quality tables (`label_agreement`, `label_agreement_pairs`, `judge_alignment`), as the pipeline last computed them."""


def _table(name: str) -> pl.DataFrame | None:
    lake = FeedbackHome.from_env().lake()
    return lake.read(name) if lake.exists(name) else None


@quality_group.command("agreement")
@click.argument("session")
def agreement_command(session: str) -> None:
    """Krippendorff's alpha, percent agreement and pairwise Cohen's kappa per question of SESSION."""
    metrics = _table(agreement.TABLE)
    rows = None if metrics is None else metrics.filter(pl.col("session") == session)
    if rows is None or rows.height == 0:
        raise click.ClickException(
            f"no agreement computed for session {session!r} yet: expected a session name whose assessments the pipeline "
            "processed (run `feedback-pipeline run`)"
        )
    click.echo(agreement.markdown(rows))
    pairs = _table(agreement.PAIRS_TABLE)
    pairs = None if pairs is None else pairs.filter(pl.col("session") == session)
    if pairs is not None and pairs.height:
        click.echo("")
        click.echo(agreement.pairs_markdown(pairs))


@quality_group.command("judges")
@click.option("--name", default=None, help="Only this assessment name.")
def judges_command(name: str | None) -> None:
    """Per assessment name and judge: traces compared with people, agreement, Cohen's kappa, MAE, Spearman."""
    rows = _table(judge_alignment.TABLE)
    if rows is not None and name:
        rows = rows.filter(pl.col("name") == name)
    if rows is None or rows.height == 0:
        what = f"the name {name!r}" if name else "any name"
        raise click.ClickException(
            f"no judge alignment for {what} yet: expected traces with both HUMAN and LLM_JUDGE or CODE feedback of the "
            "same name (run `feedback-pipeline run`)"
        )
    click.echo(judge_alignment.markdown(rows))
