"""Where the data lives: one root (`FEEDBACK_HOME`) holding the lake, the landing zone and Dagster's home.

The lake and the landing zone may each be moved to an object store (`s3://`, `gs://`, `az://`)
through their own variables (or all of `FEEDBACK_HOME` at once); credentials come from the environment
as delta-rs and fsspec read it, or from `FEEDBACK_STORAGE_OPTIONS` (see `storage`). Dagster's home
stays a local folder; its storage moves to PostgreSQL with `FEEDBACK_DAGSTER_POSTGRES_URL`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline.storage import parse_options

DEFAULT_HOME = ".feedback"
POSTGRES_URL_VARIABLE = "FEEDBACK_DAGSTER_POSTGRES_URL"
MANAGED_MARK = "# Managed by feedback-pipeline: rewritten when it changes. Delete this line to keep your own edits."
TELEMETRY_SECTION = """\
telemetry:
  enabled: false
"""
RUN_QUEUE_SECTION = """\
# The daemon looks at the run queue every second (Dagster's default: 5), so a run a sensor
# requests starts at once: a new submission reaches its dataset through two runs.
run_queue:
  dequeue_interval_seconds: 1
"""
CONCURRENCY_SECTION = """\
# One step at a time per pool (the assessments assets share `feedback_assessments`): runs of
# this instance (sensors, backfills, `feedback-pipeline run`) take turns folding assessments.
# Writers on other instances are kept right by the lake (Delta commits retried on conflict).
concurrency:
  pools:
    default_limit: 1
"""
RUN_MONITORING_SECTION = """\
# The daemon marks failed the runs whose worker stopped answering and frees the pool slots of
# finished runs; runs left STARTED by a dead process on this host are failed by `sensors.run_health`.
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
"""
POSTGRES_STORAGE_SECTION = f"""\
# Runs, event logs and schedules (sensor cursors, partitions) in PostgreSQL, shared by every
# webserver, daemon and run worker; the URL is read from the environment when Dagster starts.
storage:
  postgres:
    postgres_url:
      env: {POSTGRES_URL_VARIABLE}
"""
# What earlier releases wrote (and said "edit freely" about): replaced only while unedited.
_EARLIER_DAGSTER_YAML = """\
# Written by feedback-pipeline when DAGSTER_HOME is first created; edit freely.
""" + TELEMETRY_SECTION + RUN_QUEUE_SECTION


def dagster_yaml(environ: dict[str, str] | None = None) -> str:
    """The managed dagster.yaml: one section per concern, the storage one chosen by the environment."""
    env = os.environ if environ is None else environ
    sections = [TELEMETRY_SECTION, RUN_QUEUE_SECTION, CONCURRENCY_SECTION, RUN_MONITORING_SECTION]
    if env.get(POSTGRES_URL_VARIABLE):
        sections.append(POSTGRES_STORAGE_SECTION)
    return MANAGED_MARK + "\n" + "".join(sections)


DAGSTER_YAML = dagster_yaml({})


def is_uri(location: str) -> bool:
    """True for object-store URIs (`s3://…`), false for local paths (`file://` counts as local)."""
    return "://" in location and not location.startswith("file://")


def _absolute(location: str) -> str:
    if is_uri(location):
        return location.rstrip("/")
    if location.startswith("file://"):
        location = location[len("file://") :]
    return str(Path(location).expanduser().resolve())


def _postgres_url_checked(url: str | None) -> bool:
    """True when Dagster is to use PostgreSQL; the URL must name the psycopg2 driver, which
    dagster-postgres needs (SQLAlchemy 2.1 hands bare `postgresql://` URLs to psycopg 3)."""
    if not url:
        return False
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme != "postgresql+psycopg2":
        raise ValueError(
            f"{POSTGRES_URL_VARIABLE} starts {scheme + '://' if scheme else repr(url[:20])}: "
            "expected postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return True


@dataclass(frozen=True)
class FeedbackHome:
    """The resolved locations of one installation: `FeedbackHome("/data/feedback")` puts the lake,
    the landing zone and Dagster's home under that root, as an unset environment would."""

    root: str
    lake_uri: str = ""
    landing_uri: str = ""
    dagster_home: str = ""
    storage_options: dict[str, str] = field(default_factory=dict)
    dagster_postgres: bool = False

    def __post_init__(self) -> None:
        root = _absolute(self.root)
        object.__setattr__(self, "root", root)
        for name, default in (("lake_uri", "lake"), ("landing_uri", "landing"), ("dagster_home", "dagster")):
            object.__setattr__(self, name, _absolute(getattr(self, name) or f"{root}/{default}"))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FeedbackHome:
        env = os.environ if environ is None else environ
        root = _absolute(env.get("FEEDBACK_HOME") or DEFAULT_HOME)
        local_root = _absolute(DEFAULT_HOME) if is_uri(root) else root  # Dagster's home is always a local folder
        return cls(
            root=root,
            lake_uri=_absolute(env.get("FEEDBACK_LAKE_URI") or f"{root}/lake"),
            landing_uri=_absolute(env.get("FEEDBACK_LANDING_URI") or f"{root}/landing"),
            dagster_home=_absolute(env.get("DAGSTER_HOME") or f"{local_root}/dagster"),
            storage_options=parse_options(env.get("FEEDBACK_STORAGE_OPTIONS"), env),
            dagster_postgres=_postgres_url_checked(env.get(POSTGRES_URL_VARIABLE)),
        )

    def lake(self) -> Lake:
        return Lake(self.lake_uri, self.storage_options)

    def landing(self) -> LandingZone:
        return LandingZone(self.landing_uri, self.storage_options)

    def ensure_dagster_home(self) -> str:
        """Create `DAGSTER_HOME` and its dagster.yaml (`dagster_yaml`: telemetry off, a run queue checked
        every second, pool limits, run monitoring, PostgreSQL storage when FEEDBACK_DAGSTER_POSTGRES_URL
        is set) so runs, cursors and partitions persist. A dagster.yaml that carries MANAGED_MARK (or is
        an earlier release's, unedited) is brought up to date; any other is the user's and left alone."""
        if self.dagster_postgres:
            try:
                import dagster_postgres  # noqa: F401
            except ImportError:
                raise RuntimeError(
                    f"{POSTGRES_URL_VARIABLE} is set but dagster-postgres is not installed: "
                    "pip install 'feedback-pipeline[postgres]'"
                ) from None
        path = Path(self.dagster_home)
        path.mkdir(parents=True, exist_ok=True)
        config = path / "dagster.yaml"
        wanted = dagster_yaml({POSTGRES_URL_VARIABLE: "1"} if self.dagster_postgres else {})
        current = config.read_text() if config.exists() else None
        if current != wanted and (current is None or current == _EARLIER_DAGSTER_YAML or current.startswith(MANAGED_MARK)):
            staged = path / f".dagster.yaml.{os.getpid()}"
            staged.write_text(wanted)
            staged.replace(config)
        return str(path)
