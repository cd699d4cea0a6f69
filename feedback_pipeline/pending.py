"""What each stage has to do: one function per stage, asked alike by the Dagster sensors (which map
the answer to run requests) and by `feedback-pipeline run` (which, when no stage has anything to
do, says so without starting Dagster).

A sensor passes its cursor as `after`; `feedback-pipeline run` passes nothing, which means "after
the last file a completed run recorded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from feedback_pipeline import datasets, definition_events, revalidation, schemas, sessions
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone, processed_high_water
from feedback_pipeline.submission_contract import AREA as SUBMISSIONS_AREA
from feedback_pipeline.submission_runs import Batch, batches
from feedback_pipeline.submission_watermarks import processed_watermark, ready_keys, underived_dates

TRACE_FILES_PER_LOOK = 1_000
SUBMISSION_FILES_PER_RUN = 2_000
SUBMISSION_FILES_PER_LOOK = 10_000


def trace_files(lake: Lake, landing: LandingZone, after: str | None = None, limit: int = TRACE_FILES_PER_LOOK) -> list[str]:
    """Trace files waiting to be ingested (at most `limit`, in arrival order)."""
    start = after if after is not None else processed_high_water(lake, "traces")
    return landing.list("traces", after=start, limit=limit)


@dataclass(frozen=True)
class SubmissionWork:
    """Runs of submission files to collect and derive, and whole days collected but never derived
    (a run died between its two steps); `listed` counts the files seen, ready or not."""

    batches: list[Batch]
    underived_days: list[date]
    listed: int
    last_key: str | None

    def __bool__(self) -> bool:
        return bool(self.batches or self.underived_days)


def submission_work(
    lake: Lake,
    landing: LandingZone,
    after: str | None = None,
    limit: int | None = None,
    *,
    files_per_run: int = SUBMISSION_FILES_PER_RUN,
    with_underived: bool = True,
) -> SubmissionWork:
    """The submission files after `after` that can be processed now (files that arrived after a trace
    file still waiting wait too), cut into runs; with `with_underived`, the days never derived."""
    start = after if after is not None else processed_watermark(lake)
    listed = landing.list(SUBMISSIONS_AREA, after=start, limit=limit)
    keys = ready_keys(lake, landing, listed) if listed else []
    runs = batches(keys, start, files_per_run, landing.sizes(keys)) if keys else []
    covered = {batch.day for batch in runs}
    wanted = sorted(set(underived_dates(lake)) | set(revalidation.pending_dates(lake))) if with_underived else []
    days = [day for day in wanted if day.isoformat() not in covered]
    return SubmissionWork(runs, days, len(listed), keys[-1] if keys else None)


@dataclass(frozen=True)
class LabelingWork:
    """Whether the definition tables lag the definition events, and the live sessions whose
    snapshot would gain items. `last_key`: the newest definition event's landing key."""

    definitions_stale: bool
    sessions_due: list[str]
    last_key: str

    def __bool__(self) -> bool:
        return self.definitions_stale or bool(self.sessions_due)


def labeling_work(lake: Lake, landing: LandingZone) -> LabelingWork:
    """Nothing is due before the first schema or session event (the built-in schemas are published
    with the first definition)."""
    events = definition_events.read_events(landing)
    if events.height == 0:
        return LabelingWork(False, [], "none")
    table = sessions.fold_labeling_sessions(events)
    stale = bool(
        lake.unseen(schemas.TABLE, schemas.fold_label_schemas(events), on=["name", "version"], change_column="content_hash").height
        or lake.unseen(sessions.TABLE, table, on=["labeling_session_id"], change_column="content_hash").height
    )
    traces = lake.scan("traces")
    due = []
    for sid in sessions.live_sessions(table)["labeling_session_id"].to_list():
        snapshot = sessions.refresh_session(sid, events, traces, sessions.existing_items(lake, sid))
        if snapshot is not None and snapshot.items.height:
            due.append(sid)
    return LabelingWork(stale, due, events["landing_key"].max())


@dataclass(frozen=True)
class DatasetWork:
    """The datasets live sessions name, and those whose inputs' fingerprint differs from the one
    their last Delta version was built from (name -> fingerprint). A build that changed nothing
    makes no version, so the Dagster shell also compares with the last materialization."""

    names: list[str]
    builds: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.builds)


def dataset_work(lake: Lake, root: str) -> DatasetWork:
    names = datasets.named_datasets(lake.read("labeling_sessions", schema=datasets.INPUT_SCHEMAS["labeling_sessions"]))
    builds = {}
    for name in names:
        fingerprint = datasets.source_fingerprint(lake, datasets.load_config(name, datasets.config_path(root), lake.storage_options))
        history = lake.history(datasets.table_name(name), limit=1)
        if not history or history[0].get("source_fingerprint") != fingerprint:
            builds[name] = fingerprint
    return DatasetWork(names, builds)


@dataclass(frozen=True)
class QualityWork:
    """The fingerprints label quality is computed from now: each session's assessments and, when
    there are assessments, judge alignment's sources. A result is due where its fingerprint differs
    from the one its last materialization recorded (in Dagster, so the sensor compares)."""

    sessions: dict[str, str]
    judge_alignment: str | None


def quality_work(lake: Lake) -> QualityWork:
    """What label agreement and judge alignment would be computed from (their modules load numpy
    and krippendorff, so they are imported only when asked)."""
    from feedback_pipeline import agreement, judge_alignment

    fingerprint = judge_alignment.source_fingerprint(lake) if lake.exists("assessments") else None
    return QualityWork(agreement.session_fingerprints(lake), fingerprint)


def anything_pending(lake: Lake, landing: LandingZone, root: str) -> bool:
    """Whether any stage may have work: false means `feedback-pipeline run` has nothing to do."""
    return bool(
        trace_files(lake, landing, limit=1)
        or submission_work(lake, landing, limit=1)
        or labeling_work(lake, landing)
        or dataset_work(lake, root)
    )
