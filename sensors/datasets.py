"""Datasets follow their sessions: a partition per dataset a live session names, a run when inputs moved.

The durable state is in the lake and the instance, not in a cursor: a dataset is pending when the
fingerprint of its inputs (the input tables' versions and its settings) matches neither its last
Delta commit nor its last materialization. The run_key is that fingerprint, so a tick that
repeats itself while a run is queued requests nothing new.
"""

from __future__ import annotations

import json

import dagster as dg

from assets import datasets as dataset_assets
from assets.resources import LakeResource
from feedback_pipeline import datasets
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone

PARTITIONS = "evaluation_datasets"
MAX_RUNS_PER_TICK = 50

evaluation_datasets_job = dg.define_asset_job(
    "evaluation_datasets_job",
    selection=dg.AssetSelection.assets(dataset_assets.evaluation_datasets),
    partitions_def=dataset_assets.evaluation_datasets_partitions,
)


def _last_fingerprint(lake: Lake, instance: dg.DagsterInstance, name: str) -> set[str]:
    """Fingerprints the dataset was last built from: its last Delta commit, and its last materialization."""
    seen: set[str] = set()
    history = lake.history(datasets.table_name(name), limit=1)
    if history and history[0].get("source_fingerprint"):
        seen.add(history[0]["source_fingerprint"])
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("evaluation_datasets"), asset_partitions=[name]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get("source_fingerprint") if materialization else None
    if entry is not None:
        seen.add(entry.value)
    return seen


def _requests(lake: Lake, instance: dg.DagsterInstance) -> tuple[list[str], list[dg.RunRequest]]:
    names = datasets.named_datasets(lake.read("labeling_sessions", schema=datasets.INPUT_SCHEMAS["labeling_sessions"]))
    root = FeedbackHome.from_env().root
    requests = []
    for name in names:
        fingerprint = datasets.source_fingerprint(lake, datasets.load_config(name, datasets.config_path(root)))
        if fingerprint in _last_fingerprint(lake, instance, name):
            continue
        requests.append(
            dg.RunRequest(
                job_name=evaluation_datasets_job.name,
                partition_key=name,
                run_key=f"{name}:{json.dumps(json.loads(fingerprint), sort_keys=True, separators=(',', ':'))}",
                tags={"feedback_pipeline/dataset": name},
            )
        )
    return names, requests[:MAX_RUNS_PER_TICK]


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """The dataset builds whose inputs changed since they were last built; adds the missing partitions."""
    names, requests = _requests(lake, instance)
    missing = [n for n in names if not instance.has_dynamic_partition(PARTITIONS, n)]
    if missing:
        instance.add_dynamic_partitions(PARTITIONS, missing)
    return requests


@dg.sensor(job=evaluation_datasets_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def evaluation_datasets_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """Adds a partition per dataset that sessions name, and requests a build when its inputs changed."""
    names, requests = _requests(lake.lake(), context.instance)
    missing = [n for n in names if not context.instance.has_dynamic_partition(PARTITIONS, n)]
    if not requests and not missing:
        return dg.SkipReason("every dataset is built from the current inputs")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[dataset_assets.evaluation_datasets_partitions.build_add_request(missing)] if missing else [],
    )
