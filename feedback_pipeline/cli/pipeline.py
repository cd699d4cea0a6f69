"""`feedback-pipeline run` and `status`: the sensors' work done once, in-process, for cron, CI and scripts.

The library does not import the Dagster shell: the shell hands in its `code_location.CodeLocation`,
and `run` asks each of its stages what is pending, the same function the stage's sensor asks."""

from __future__ import annotations

import fcntl
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from feedback_pipeline import live_runs
from feedback_pipeline.code_location import CodeLocation, load_code_location
from feedback_pipeline.home import FeedbackHome

if TYPE_CHECKING:
    import dagster

MAX_ROUNDS = 10_000


@dataclass
class RunReport:
    """What `run_pending` did: runs executed, failures (one line each), notes a person should read."""

    runs: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_INSTANCES: dict[str, Any] = {}


def instance_for(home: FeedbackHome) -> dagster.DagsterInstance:
    """The persistent Dagster instance under `home` (its DAGSTER_HOME), opened once per process:
    opening one checks the storage's migrations, which costs more than a small run. Processes
    opening it at once take turns (a lock file in DAGSTER_HOME), so two first runs on a new home
    do not both create its storage."""
    import dagster as dg

    os.environ.setdefault("DAGSTER_HOME", home.ensure_dagster_home())
    if home.dagster_home not in _INSTANCES:
        with open(Path(home.ensure_dagster_home()) / ".open.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _INSTANCES[home.dagster_home] = dg.DagsterInstance.from_config(home.dagster_home)
    return _INSTANCES[home.dagster_home]


SHOWN_COUNTS = (
    "received", "ingested", "accepted", "rejected", "duplicates", "rows", "items", "items_added", "record_count"
)
REJECTIONS_COMMAND = {"traces": "feedback-pipeline traces rejections", "assessments": "feedback-pipeline assessments rejections"}


@dataclass
class StageCounts:
    """The counts of a stage's runs, summed per asset; a run over a partition range counts once
    (Dagster records one materialization per partition, all with the run's metadata)."""

    runs: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, result: Any) -> None:
        self.runs += 1
        seen = set()
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            asset = materialization.asset_key.to_user_string()
            if asset in seen:
                continue
            seen.add(asset)
            totals = self.counts.setdefault(asset, {})
            for key in SHOWN_COUNTS:
                entry = materialization.metadata.get(key)
                if entry is not None and isinstance(entry.value, int):
                    totals[key] = totals.get(key, 0) + entry.value

    def line(self, stage: str) -> str:
        parts = [f"{asset} " + " ".join(f"{k}={v:,}" for k, v in totals.items()) for asset, totals in self.counts.items()]
        return f"{stage}: {self.runs} run(s); " + "; ".join(part.strip() for part in parts)

    def pointers(self) -> list[str]:
        return [
            f"{totals['rejected']:,} {asset} rejected: `{REJECTIONS_COMMAND[asset]}` shows why"
            for asset, totals in self.counts.items()
            if totals.get("rejected") and asset in REJECTIONS_COMMAND
        ]


def failure_cause(result: Any, verbose: bool = False) -> str:
    """The cause of a failed run in one line (the innermost error's type and first line), or the
    whole chain of tracebacks with `verbose`."""
    failure = next(iter(result.get_step_failure_events()), None)
    if failure is None:
        return "the run failed without a step failure: see the Dagster UI"
    error = failure.event_specific_data.error
    if verbose:
        return error.to_string()
    while error.cause is not None:
        error = error.cause
    return _one_line(error.cls_name, error.message or "")


def _one_line(kind: str, message: str) -> str:
    """`Kind: first line of the message`, without repeating a kind the message already names."""
    lines = message.strip().splitlines()
    text = lines[0] if lines else kind
    return text if text.startswith(f"{kind}:") or kind in ("Failure", "DagsterError") else f"{kind}: {text}"


def _wait_line(instance: dagster.DagsterInstance, job: Any) -> str | None:
    """"waiting for run … to finish" when the job's pool is full (its slots held by other runs)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    pools = {node.definition.pool for node in job.graph.node_dict.values() if getattr(node.definition, "pool", None)}
    for pool in sorted(pools):
        info = storage.get_concurrency_info(pool)
        if info.limit is not None and len(info.claimed_slots) >= info.limit:
            holders = ", ".join(sorted(info.active_run_ids))
            return f"waiting for run {holders} to finish (pool {pool}, limit {info.limit})"
    return None


def _execute(instance: dagster.DagsterInstance, request: Any, job: Any, log_level: str, tags: dict[str, str]) -> Any:
    return job.execute_in_process(
        run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": log_level}}}},
        tags={**{k: v for k, v in request.tags.items() if k != "dagster/run_key"}, **tags},
        partition_key=request.partition_key,
        instance=instance,
        raise_on_error=False,
    )


def _identity(request: Any) -> tuple:
    """What makes two requests the same work: a stage asked again in this invocation does not
    repeat a request it already executed (a build whose gate failed stays pending)."""
    return (request.job_name, request.partition_key, request.run_key, tuple(sorted(request.tags.items())))


def run_pending(
    home: FeedbackHome,
    echo=click.echo,
    log_level: str = "WARNING",
    stages: tuple[str, ...] | None = None,
    verbose: bool = False,
    location: CodeLocation | None = None,
) -> RunReport:
    """Execute every stage's pending runs (or those of the stages named), in order, on the persistent
    Dagster instance. A failed stage stops the stages after it (each depends on the one before). Runs
    a dead process left STARTED on this host are marked failed first, so nothing waits on them."""
    location = location or load_code_location()
    known = [stage.name for stage in location.stages]
    unknown = sorted(set(stages or ()) - set(known))
    if unknown:
        raise ValueError(f"stages: {unknown} are not stages of the code location; expected some of {known}")
    chosen = [stage for stage in location.stages if stages is None or stage.name in stages]
    instance = instance_for(home)
    report = RunReport()
    left = live_runs.dead(home.dagster_home)
    for line in location.fail_dead_runs(instance):
        report.notes.append(line)
        echo(line, err=True)
    live_runs.clear(left)
    with live_runs.holding(home.dagster_home):
        _run_stages(home, location, instance, chosen, report, echo, log_level, verbose)
    return report


def _run_stages(
    home: FeedbackHome, location: CodeLocation, instance: dagster.DagsterInstance, chosen: list[Any],
    report: RunReport, echo: Any, log_level: str, verbose: bool,
) -> None:
    """`run_pending`'s stages, in order, while this process holds its `live_runs` marker."""
    tags = location.process_tags()
    lake, landing = home.lake(), home.landing()
    for position, stage in enumerate(chosen):
        name = stage.name
        counts, failed, attempted = StageCounts(), False, set()
        for _ in range(MAX_ROUNDS):
            try:
                requests = stage.pending_run_requests(lake, landing, instance)
            except Exception as exc:  # noqa: BLE001 - any error here is this stage's failure, told in one line
                failed = True
                cause = traceback.format_exc() if verbose else _one_line(type(exc).__name__, str(exc))
                report.failures.append(f"{name}: finding what is pending: {cause}")
                echo(f"{name}: FAILED finding what is pending: {cause}", err=True)
                break
            requests = [request for request in requests if _identity(request) not in attempted]
            if not requests:
                break
            attempted.update(_identity(request) for request in requests)
            hidden = len(requests) < 2 or not sys.stderr.isatty()
            with click.progressbar(requests, label=name, file=sys.stderr, hidden=hidden) as bar:
                for request in bar:
                    job = location.defs.resolve_job_def(request.job_name)
                    waiting = _wait_line(instance, job)
                    if waiting:
                        echo(waiting, err=True)
                    result = _execute(instance, request, job, log_level, tags)
                    report.runs += 1
                    if result.success:
                        counts.add(result)
                        continue
                    where = request.partition_key or request.tags.get("dagster/asset_partition_range_start", "")
                    cause = failure_cause(result, verbose)
                    earlier = location.repeated_gate_failure(instance, dict(request.tags), result.run_id)
                    if earlier:
                        note = (
                            f"{name} {where}: the publish gate fails on these inputs again (as in run {earlier}); "
                            f"the current version is kept: {failure_cause(result)}"
                        )
                        report.notes.append(note)
                        echo(note, err=True)
                        continue
                    failed = True
                    report.failures.append(f"{name} {where} (run {result.run_id}): {cause}")
                    echo(f"{name} {where}: FAILED (run {result.run_id}): {cause}", err=True)
            if failed:
                break
        if counts.runs:
            echo(counts.line(name))
            for pointer in counts.pointers():
                report.notes.append(pointer)
                echo(pointer)
        if failed:
            later = [later_stage.name for later_stage in chosen[position + 1 :]]
            if later:
                stopped = f"stopped: {name} failed, so {', '.join(later)} did not run (they depend on it)"
                report.notes.append(stopped)
                echo(stopped, err=True)
            break


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
@click.option("--verbose", is_flag=True, help="Show Dagster's run logs and the full traceback of a failure.")
def run(verbose: bool) -> None:
    """Process everything pending once (the work the sensors would trigger), then exit."""
    home = FeedbackHome.from_env()
    from feedback_pipeline.pending import anything_pending

    if not live_runs.dead(home.dagster_home) and not anything_pending(home.lake(), home.landing(), home.root):
        click.echo("nothing pending")
        return
    report = run_pending(home, log_level="DEBUG" if verbose else "CRITICAL", verbose=verbose)
    if report.failures:
        more = "" if verbose else " (`feedback-pipeline run --verbose` or the run in the Dagster UI shows the traceback)"
        click.echo(f"{len(report.failures)} of {report.runs} run(s) failed{more}", err=True)
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


@click.command("dagster-home")
def dagster_home() -> None:
    """Write DAGSTER_HOME's dagster.yaml from the environment (PostgreSQL storage when
    FEEDBACK_DAGSTER_POSTGRES_URL is set) and print the folder: run it before `dagster-webserver`
    and `dagster-daemon` on each host."""
    try:
        home = FeedbackHome.from_env()
        click.echo(home.ensure_dagster_home())
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
