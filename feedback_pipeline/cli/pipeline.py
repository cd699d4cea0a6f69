"""`feedback-pipeline run` and `status`: the sensors' work done once, in-process, for cron, CI and scripts."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from feedback_pipeline.home import FeedbackHome

if TYPE_CHECKING:
    import dagster

STAGES = ("sensors.traces", "sensors.labeling", "sensors.assessments", "sensors.datasets", "sensors.quality")
MAX_ROUNDS = 10_000


@dataclass
class RunReport:
    """What `run_pending` did."""

    runs: int = 0
    failures: list[str] = field(default_factory=list)


_INSTANCES: dict[str, Any] = {}


def instance_for(home: FeedbackHome) -> dagster.DagsterInstance:
    """The persistent Dagster instance under `home` (its DAGSTER_HOME), opened once per process:
    opening one checks the storage's migrations, which costs more than a small run."""
    import dagster as dg

    os.environ.setdefault("DAGSTER_HOME", home.ensure_dagster_home())
    if home.dagster_home not in _INSTANCES:
        _INSTANCES[home.dagster_home] = dg.DagsterInstance.from_config(home.ensure_dagster_home())
    return _INSTANCES[home.dagster_home]


def _summary(result) -> str:
    parts = []
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        shown = {
            key: value.value
            for key, value in materialization.metadata.items()
            if key in {"received", "ingested", "accepted", "rejected", "duplicates", "records", "items", "rows", "delta_version", "record_count"}
        }
        parts.append(f"{materialization.asset_key.to_user_string()} " + " ".join(f"{k}={v}" for k, v in shown.items()))
    return "; ".join(parts)


def run_pending(
    home: FeedbackHome, echo=click.echo, log_level: str = "WARNING", stages: tuple[str, ...] = STAGES
) -> RunReport:
    """Execute every stage's pending runs, in order, on the persistent Dagster instance."""
    from feedback_pipeline.definitions import defs

    instance = instance_for(home)
    lake, landing = home.lake(), home.landing()
    report = RunReport()
    for stage_name in stages:
        stage = importlib.import_module(stage_name)
        for _ in range(MAX_ROUNDS):
            requests = stage.pending_run_requests(lake, landing, instance)
            if not requests:
                break
            failed = False
            for request in requests:
                job = defs.resolve_job_def(request.job_name)
                result = job.execute_in_process(
                    run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": log_level}}}},
                    tags={k: v for k, v in request.tags.items() if k != "dagster/run_key"},
                    partition_key=request.partition_key,
                    instance=instance,
                    raise_on_error=False,
                )
                report.runs += 1
                where = request.partition_key or request.tags.get("dagster/asset_partition_range_start", "")
                if result.success:
                    echo(f"{request.job_name} {where}: {_summary(result)}")
                else:
                    failed = True
                    failure = next(iter(result.get_step_failure_events()), None)
                    reason = failure.event_specific_data.error.message.strip() if failure else "see the Dagster UI"
                    report.failures.append(f"{request.job_name} {where} (run {result.run_id}): {reason}")
                    echo(f"{request.job_name} {where}: FAILED: {reason}", err=True)
            if failed:
                break
    return report


def print_tables(home: FeedbackHome, echo=click.echo) -> None:
    """Each table of the lake with its row count, Delta version and location."""
    lake = home.lake()
    names = lake.tables()
    if not names:
        echo(f"no tables yet under {lake.uri}")
        return
    width = max(len(name) for name in names)
    echo(f"{'table':<{width}}  {'rows':>9}  {'version':>7}  location")
    for name in names:
        table = lake.table(name)
        echo(f"{name:<{width}}  {table.count():>9,}  {table.version():>7}  {lake.table_uri(name)}")


@click.command()
@click.option("--verbose", is_flag=True, help="Show Dagster's run logs.")
def run(verbose: bool) -> None:
    """Process everything pending once (the work the sensors would trigger), then exit."""
    home = FeedbackHome.from_env()
    report = run_pending(home, log_level="DEBUG" if verbose else "WARNING")
    if report.failures:
        click.echo(f"{len(report.failures)} of {report.runs} runs failed:", err=True)
        for failure in report.failures:
            click.echo(f"  {failure}", err=True)
        sys.exit(1)
    click.echo("nothing pending" if report.runs == 0 else f"{report.runs} run(s) succeeded")


@click.command()
def status() -> None:
    """The tables of the lake and the files waiting in the landing zone."""
    home = FeedbackHome.from_env()
    print_tables(home)
    from feedback_pipeline.landing import processed_high_water

    lake, landing = home.lake(), home.landing()
    for area in ("traces", "submissions"):
        waiting = sum(1 for _ in landing.iter_keys(area, after=processed_high_water(lake, area)))
        click.echo(f"landing/{area}: {waiting} file(s) waiting")
