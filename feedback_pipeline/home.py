"""Where the data lives: one root (`FEEDBACK_HOME`) holding the lake, the landing zone and Dagster's home.

The lake and the landing zone may each be moved to an object store (`s3://`, `gs://`, `az://`)
through their own variables; credentials come from the environment as delta-rs and fsspec read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone

DEFAULT_HOME = ".feedback"
MANAGED_MARK = "# Managed by feedback-pipeline: rewritten when it changes. Delete this line to keep your own edits."
DAGSTER_YAML = f"""\
{MANAGED_MARK}
telemetry:
  enabled: false
# The daemon looks at the run queue every second (Dagster's default: 5), so a run a sensor
# requests starts at once: a new submission reaches its dataset through two runs.
run_queue:
  dequeue_interval_seconds: 1
# One step at a time per pool (the assessments assets share `feedback_assessments`): runs of
# this instance (sensors, backfills, `feedback-pipeline run`) take turns folding assessments.
# Writers on other instances are kept right by the lake (Delta commits retried on conflict).
concurrency:
  pools:
    default_limit: 1
# The daemon marks failed the runs whose worker stopped answering and frees the pool slots of
# finished runs; runs left STARTED by a dead process on this host are failed by `sensors.run_health`.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""
# What earlier releases wrote (and said "edit freely" about): replaced only while unedited.
_EARLIER_DAGSTER_YAML = """\
# Written by feedback-pipeline when DAGSTER_HOME is first created; edit freely.
telemetry:
  enabled: false
# The daemon looks at the run queue every second (Dagster's default: 5), so a run a sensor
# requests starts at once: a new submission reaches its dataset through two runs.
run_queue:
  dequeue_interval_seconds: 1
"""


def is_uri(location: str) -> bool:
    """True for object-store URIs (`s3://…`), false for local paths (`file://` counts as local)."""
    return "://" in location and not location.startswith("file://")


def _absolute(location: str) -> str:
    if is_uri(location):
        return location.rstrip("/")
    if location.startswith("file://"):
        location = location[len("file://") :]
    return str(Path(location).expanduser().resolve())


@dataclass(frozen=True)
class FeedbackHome:
    """The resolved locations of one installation."""

    root: str
    lake_uri: str
    landing_uri: str
    dagster_home: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FeedbackHome:
        env = os.environ if environ is None else environ
        root = _absolute(env.get("FEEDBACK_HOME") or DEFAULT_HOME)
        raw_options = env.get("FEEDBACK_STORAGE_OPTIONS") or "{}"
        try:
            options = json.loads(raw_options)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"FEEDBACK_STORAGE_OPTIONS is {raw_options!r}: expected a JSON object of strings ({exc.msg})"
            ) from None
        if not isinstance(options, dict):
            raise ValueError(f"FEEDBACK_STORAGE_OPTIONS is {raw_options!r}: expected a JSON object of strings")
        return cls(
            root=root,
            lake_uri=_absolute(env.get("FEEDBACK_LAKE_URI") or f"{root}/lake"),
            landing_uri=_absolute(env.get("FEEDBACK_LANDING_URI") or f"{root}/landing"),
            dagster_home=_absolute(env.get("DAGSTER_HOME") or f"{root}/dagster"),
            storage_options={str(k): str(v) for k, v in options.items()},
        )

    def lake(self) -> Lake:
        return Lake(self.lake_uri, self.storage_options)

    def landing(self) -> LandingZone:
        return LandingZone(self.landing_uri, self.storage_options)

    def ensure_dagster_home(self) -> str:
        """Create `DAGSTER_HOME` and its dagster.yaml (DAGSTER_YAML: telemetry off, a run queue checked
        every second, pool limits, run monitoring) so runs, cursors and partitions persist. A
        dagster.yaml that carries MANAGED_MARK (or is an earlier release's, unedited) is brought up
        to date; any other is the user's and left alone."""
        path = Path(self.dagster_home)
        path.mkdir(parents=True, exist_ok=True)
        config = path / "dagster.yaml"
        current = config.read_text() if config.exists() else None
        if current != DAGSTER_YAML and (
            current is None or current == _EARLIER_DAGSTER_YAML or current.startswith(MANAGED_MARK)
        ):
            staged = path / f".dagster.yaml.{os.getpid()}"
            staged.write_text(DAGSTER_YAML)
            staged.replace(config)
        return str(path)
