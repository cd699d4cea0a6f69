"""Label quality follows the assessments: a session's `label_agreement` and the `judge_alignment`
table are recomputed when what they are computed from changed.

As for datasets (`sensors/datasets.py`) the state is durable, not a cursor: a session is pending
when the fingerprint of its assessments (`pending.quality_work`) differs from the one its
last materialization recorded, and `judge_alignment` when the assessments or label schemas moved
since its last one. `quality_on_assessments_sensor` asks right after `assessments` (or the session
and schema tables) materialize; `feedback-pipeline run` asks `pending_run_requests`.
"""

from __future__ import annotations

import dagster as dg

from feedback_pipeline_dagster.assets import quality as quality_assets
from feedback_pipeline_dagster.assets.labeling import labeling_session_partitions
from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import pending
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline_dagster.sensors.datasets import FOLLOW_SECONDS, follow_materializations

LABEL_AGREEMENT = dg.AssetKey("label_agreement")
JUDGE_ALIGNMENT = dg.AssetKey("judge_alignment")


def _recorded(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> str | None:
    """The source fingerprint the asset's (partition's) last materialization recorded."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    entry = records[0].asset_materialization.metadata.get(quality_assets.FINGERPRINT) if records else None
    return entry.value if entry is not None else None


def _requests(lake: Lake, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """The label_agreement partitions and the judge_alignment run whose inputs changed."""
    work = pending.quality_work(lake)
    requests = []
    for session_id, fingerprint in sorted(work.sessions.items()):
        if not instance.has_dynamic_partition(labeling_session_partitions.name, session_id):
            continue
        if _recorded(instance, LABEL_AGREEMENT, session_id) != fingerprint:
            requests.append(dg.RunRequest(job_name=quality_assets.quality_agreement_job.name, partition_key=session_id,
                                          run_key=f"label_agreement:{session_id}:{fingerprint}"))
    if work.judge_alignment is not None and _recorded(instance, JUDGE_ALIGNMENT) != work.judge_alignment:
        requests.append(
            dg.RunRequest(job_name=quality_assets.judge_alignment_job.name, run_key=f"judge_alignment:{work.judge_alignment}")
        )
    return requests


def pending_run_requests(lake: Lake, landing: LandingZone, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Agreement of the sessions whose assessments changed, and judge alignment when assessments moved."""
    return _requests(lake, instance)


@dg.sensor(
    jobs=[quality_assets.quality_agreement_job, quality_assets.judge_alignment_job],
    minimum_interval_seconds=FOLLOW_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def quality_on_assessments_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """After assessments, sessions or label schemas materialize: recompute what they changed. The
    cursor is the event-log storage id of the last materialization acted on."""
    skipped = follow_materializations(context)
    if skipped:
        return skipped
    requests = _requests(lake.lake(), context.instance)
    return dg.SensorResult(run_requests=requests) if requests else dg.SkipReason("label quality is computed from the current assessments")
