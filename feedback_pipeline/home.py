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
DAGSTER_YAML = """\
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
    """The resolved locations of one installation: `FeedbackHome("/data/feedback")` puts the lake,
    the landing zone and Dagster's home under that root, as an unset environment would."""

    root: str
    lake_uri: str = ""
    landing_uri: str = ""
    dagster_home: str = ""
    storage_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        root = _absolute(self.root)
        object.__setattr__(self, "root", root)
        for name, default in (("lake_uri", "lake"), ("landing_uri", "landing"), ("dagster_home", "dagster")):
            object.__setattr__(self, name, _absolute(getattr(self, name) or f"{root}/{default}"))

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
        every second) so runs, cursors and partitions persist; an existing dagster.yaml is left alone."""
        path = Path(self.dagster_home)
        path.mkdir(parents=True, exist_ok=True)
        config = path / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML)
        return str(path)
