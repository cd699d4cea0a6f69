"""MLflow sync triggers, on by default when FEEDBACK_MLFLOW_TRACKING_URI is set.

`mlflow_traces_sensor` pulls a bounded slice of the server per tick (PAGES_PER_TICK pages of
traces, resuming where the last tick stopped) into the landing zone, where `trace_files_sensor`
and `submissions_sensor` take over. `mlflow_push_sensor` runs the push after every `assessments`
materialization.
"""


import dagster as dg

from feedback_pipeline_dagster.assets.mlflow import mlflow_assessments
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import mlflow_pull, mlflow_server

PAGES_PER_TICK = 4
INTERVAL_SECONDS = 60

mlflow_push_job = dg.define_asset_job("mlflow_push_job", selection=[mlflow_assessments])


def _default_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if mlflow_server.configured() else dg.DefaultSensorStatus.STOPPED


@dg.sensor(
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=_default_status(),
    description="Pulls new or changed MLflow traces and assessment changes into the landing zone, a bounded slice per tick.",
)
def mlflow_traces_sensor(
    context: dg.SensorEvaluationContext, lake: LakeResource, landing: LandingResource
) -> dg.SkipReason:
    server = mlflow_server.MlflowServer.from_env()
    report = mlflow_pull.pull(server, lake.lake(), landing.landing(), max_pages=PAGES_PER_TICK)
    return dg.SkipReason(
        f"read {report.traces_seen} traces from {server.tracking_uri}: {report.traces_landed} landed, "
        f"assessments {report.assessments_created} new, {report.assessments_updated} updated, "
        f"{report.assessments_deleted} deleted{'; pass complete' if report.complete else ''}"
    )


@dg.asset_sensor(
    asset_key=dg.AssetKey("assessments"),
    job=mlflow_push_job,
    default_status=_default_status(),
    description="Pushes our assessments to MLflow after each assessments materialization.",
)
def mlflow_push_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"mlflow_push:{asset_event.run_id}:{asset_event.timestamp}")
