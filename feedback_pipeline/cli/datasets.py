"""`feedback-pipeline datasets`: list, show and export evaluation datasets at any version."""

from __future__ import annotations

import json
from pathlib import Path

import click
import polars as pl

from feedback_pipeline import datasets

@click.group("datasets")
def datasets_group() -> None:
    """Evaluation datasets built from reviewers' expectations (lake/evaluation_datasets/<name>)."""


@datasets_group.command("list")
def list_command() -> None:
    """Every dataset with its current version and record count."""
    names = datasets.list_evaluation_datasets()
    if not names:
        click.echo("no evaluation datasets yet (a labeling session with `dataset: NAME` creates one)")
        return
    click.echo(f"{'dataset':<30} {'version':>7} {'records':>8}")
    for name in names:
        dataset = datasets.load_evaluation_dataset(name)
        click.echo(f"{name:<30} {dataset.version:>7} {len(dataset):>8}")


def _load(name: str, version: int | None) -> datasets.EvaluationDataset:
    try:
        return datasets.load_evaluation_dataset(name, version=version)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@datasets_group.command("show")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Delta version (default: the current one).")
@click.option("--limit", type=int, default=5, show_default=True, help="Records to print.")
def show_command(name: str, version: int | None, limit: int) -> None:
    """A dataset's version, coverage per expectation name, versions and first records."""
    dataset = _load(name, version)
    frame = dataset.to_polars()
    click.echo(f"dataset {name} version {dataset.version}: {frame.height} records")
    if frame.height and frame.get_column("expectation_assessment_ids").ne("{}").any():
        ids = frame.get_column("expectation_assessment_ids").str.json_decode().struct.unnest()
        counts = ids.select(pl.all().is_not_null().sum()).row(0, named=True)
        click.echo("coverage: " + ", ".join(f"{k} {v}/{frame.height}" for k, v in sorted(counts.items())))
    click.echo("versions: " + ", ".join(str(v["version"]) for v in datasets.dataset_versions(name)))
    for record in dataset.records()[:limit]:
        click.echo(json.dumps(record, ensure_ascii=False))


@datasets_group.command("export")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Delta version (default: the current one).")
@click.option("--format", "fmt", type=click.Choice(datasets.EXPORT_FORMATS), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def export_command(name: str, version: int | None, fmt: str, output: Path, force: bool) -> None:
    """Write one version to a file: jsonl (decoded records, MLflow's shape), parquet or csv (the table).

    An existing file is kept unless --force; the file's folder must exist.
    """
    dataset = _load(name, version)
    try:
        dataset.export(output, fmt, overwrite=force)
    except FileExistsError as exc:
        raise click.ClickException(f"{exc} (pass --force)") from None
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(dataset)} records of {name} version {dataset.version} to {output}")
