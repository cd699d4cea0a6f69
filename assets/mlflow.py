"""The push to MLflow: our assessments onto the traces of the configured tracking server, after each `assessments` run."""


import dagster as dg

from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import mlflow_push
from feedback_pipeline.mlflow_server import MlflowServer


@dg.asset(
    deps=[dg.AssetKey("assessments")],
    group_name="mlflow",
    kinds={"mlflow", "delta"},
    description="Our valid assessments logged onto their MLflow traces; `mlflow_assessment_links` maps the ids.",
)
def mlflow_assessments(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    server = MlflowServer.from_env()
    report = mlflow_push.push(server, lake.lake())
    context.log.info(
        f"pushed to {server.tracking_uri}: {report.logged} logged ({report.overrides} overrides), "
        f"{report.updated} updated, {report.deleted} deleted"
    )
    return dg.MaterializeResult(
        metadata={
            "logged": report.logged,
            "overrides": report.overrides,
            "updated": report.updated,
            "deleted": report.deleted,
            "links_delta_version": report.links_version,
            "tracking_uri": server.tracking_uri,
        }
    )
