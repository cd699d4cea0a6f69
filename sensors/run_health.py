"""Dead runs: a run left STARTED by a process that died (`kill -9`, a crash, a reboot) is marked
failed and its pool slots are freed, so nothing waits on it and its work is requested again.

A run knows its process from its tags (`feedback-pipeline run` tags the runs it executes with
its host, pid and process start time) or, for runs the daemon launched on this host, from the
"(pid: N)" of its first engine event. Only runs on the judging host are judged; runs of other
hosts and other run launchers are left to Dagster's run monitoring (on in the managed dagster.yaml).
"""

from __future__ import annotations

import os
import re
import socket

import dagster as dg

from feedback_pipeline import live_runs

TAG_HOST = "feedback_pipeline/host"
TAG_PID = "feedback_pipeline/pid"
TAG_PROCESS_START = "feedback_pipeline/process_start"
TAG_DIED = "feedback_pipeline/process_died"
_PID_IN_MESSAGE = re.compile(r"\(pid: (\d+)\)")
CHECK_SECONDS = 30


def process_tags() -> dict[str, str]:
    """Tags that name this process, for the runs it executes in-process."""
    pid = os.getpid()
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(pid), TAG_PROCESS_START: live_runs.process_start(pid) or ""}


def _daemon_run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = _PID_IN_MESSAGE.search(entry.message or "")
        if found:
            return int(found.group(1))
    return None


def fail_dead_runs(instance: dg.DagsterInstance, *, judge_daemon_runs: bool) -> list[str]:
    """Mark failed each STARTED run of this host whose process is gone, free its pool slots, and
    return a line per run. `judge_daemon_runs`: also judge untagged runs by their engine event's
    pid (true in the daemon's sensors, whose host launches those runs)."""
    host = socket.gethostname()
    lines = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if run.tags.get(TAG_HOST):
            if run.tags[TAG_HOST] != host:
                continue
            pid, start_time = int(run.tags[TAG_PID]), run.tags.get(TAG_PROCESS_START)
        elif judge_daemon_runs:
            pid, start_time = _daemon_run_pid(instance, run.run_id), None
            if pid is None:
                continue
        else:
            continue
        if live_runs.alive(pid, start_time):
            continue
        message = f"run {run.run_id} ({run.job_name}) was left STARTED by process {pid}, which is gone: marked failed"
        instance.add_run_tags(run.run_id, {TAG_DIED: str(pid)})
        instance.report_run_failed(run, message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        lines.append(message)
    return lines


@dg.sensor(
    minimum_interval_seconds=CHECK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs left STARTED by a process that died on this host, and frees their "
    "pool slots, so the sensors request their work again. If it reports a run, look at that run's last "
    "logs for why its process died (out of memory, a kill, a reboot).",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = fail_dead_runs(context.instance, judge_daemon_runs=True)
    for line in failed:
        context.log.warning(line)
    return dg.SkipReason("; ".join(failed) or "no run was left STARTED by a dead process")
