"""Labeling triggers: a sensor on definition events, a schedule refreshing sessions with a trace_filter,
and `pending_run_requests` for `feedback-pipeline run`."""


from datetime import UTC, datetime

import dagster as dg

from feedback_pipeline_dagster.assets.labeling import (
    labeling_definitions_job,
    labeling_session_partitions,
    session_items_job,
)
from feedback_pipeline_dagster.assets.resources import LandingResource
from feedback_pipeline import definition_events, pending, sessions
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline_dagster.sensors.partitions import add_partitions

BATCH = 200
PARTITIONS = labeling_session_partitions.name


def _session_runs(session_ids: list[str], suffix: str) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(job_name=session_items_job.name, partition_key=sid, run_key=f"session_items:{sid}:{suffix}")
        for sid in session_ids
    ]


@dg.sensor(
    name="labeling_definitions_sensor",
    jobs=[labeling_definitions_job, session_items_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New label-schema or session events: refresh the definition tables and snapshot the sessions. "
    "If a tick fails, a definition file is unreadable: the error names it.",
)
def labeling_definitions_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult | dg.SkipReason:
    """New schema or session events: refresh the definition tables, add session partitions, snapshot sessions.
    If a tick fails, a definition file is unreadable: the error names it."""
    keys = landing.landing().list(definition_events.AREA, after=context.cursor or None, limit=BATCH)
    if not keys:
        return dg.SkipReason("no new definition files")
    mine = [key for key in keys if definition_events.is_labeling_key(key)]
    session_ids = list(dict.fromkeys(sid for sid in map(definition_events.session_id_of_key, mine) if sid))
    known = set(context.instance.get_dynamic_partitions(PARTITIONS))
    new = [sid for sid in session_ids if sid not in known]
    runs = []
    if mine:
        runs.append(dg.RunRequest(job_name=labeling_definitions_job.name, run_key=f"labeling_definitions:{mine[-1]}"))
        runs += _session_runs(session_ids, mine[-1])
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[labeling_session_partitions.build_add_request(new)] if new else [],
        cursor=keys[-1],
    )


@dg.schedule(
    name="session_refresh_schedule",
    cron_schedule="* * * * *",
    job=session_items_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
    description="Each minute: refresh the sessions with a trace_filter whose refresh_cron is due. If a tick "
    "fails, a definition file is unreadable or a refresh_cron is invalid: the error names it.",
)
def session_refresh_schedule(context: dg.ScheduleEvaluationContext, landing: LandingResource) -> list[dg.RunRequest] | dg.SkipReason:
    """Each minute, refresh the sessions with a trace_filter whose refresh_cron (UTC, hourly by default) is due."""
    when = context.scheduled_execution_time or datetime.now(UTC)
    table = sessions.fold_labeling_sessions(definition_events.read_events(landing.landing()))
    due = sessions.due_sessions(table, when)
    if not due:
        return dg.SkipReason(f"no session is due at {when:%Y-%m-%d %H:%M} UTC")
    known = set(context.instance.get_dynamic_partitions(PARTITIONS))
    add_partitions(context.instance, PARTITIONS, [sid for sid in due if sid not in known])
    return _session_runs(due, f"{when.astimezone(UTC):%Y-%m-%dT%H:%M}")


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Runs that bring the labeling tables up to date with the definition events and the traces
    table (`pending.labeling_work`); adds the partitions of the sessions due."""
    work = pending.labeling_work(lake, landing)
    runs: list[dg.RunRequest] = []
    if work.definitions_stale:
        runs.append(dg.RunRequest(job_name=labeling_definitions_job.name, run_key=f"labeling_definitions:{work.last_key}"))
    add_partitions(instance, PARTITIONS, work.sessions_due)
    return runs + _session_runs(work.sessions_due, f"{work.last_key}:{lake.version('traces')}")
