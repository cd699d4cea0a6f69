"""Evaluation datasets: one dynamic partition per dataset name, one Delta version per content change.

Write-audit-publish lives in the library (`datasets.publish_version`: the candidate is built in
memory and checked by the gate before it is written, so a failed gate leaves the current version
as it was); the asset maps its outcome to the blocking `publish_gate` check, metadata or `Failure`.
"""

from datetime import UTC, datetime

import dagster as dg

from feedback_pipeline_dagster.assets.metadata import counts_table
from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import datasets, mlflow_datasets
from feedback_pipeline.home import FeedbackHome

evaluation_datasets_partitions = dg.DynamicPartitionsDefinition(name="evaluation_datasets")


class EvaluationDatasetConfig(dg.Config):
    """Per-run settings; unset fields come from the `datasets:` section of datasets.yaml, else the defaults."""

    disagreement: str | None = None
    include_outputs: bool | None = None

    def resolve(self, name: str) -> datasets.DatasetConfig:
        home = FeedbackHome.from_env()
        base = datasets.load_config(name, datasets.config_path(home.root), home.storage_options)
        return datasets.DatasetConfig(
            disagreement=self.disagreement or base.disagreement,
            include_outputs=base.include_outputs if self.include_outputs is None else self.include_outputs,
            mlflow=base.mlflow,
        )


@dg.asset(
    partitions_def=evaluation_datasets_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            "publish_gate",
            asset="evaluation_datasets",
            blocking=True,
            description="Inputs present, no duplicate record keys, expectation values of their label schema's type. "
            "Blocking: on failure nothing is published; read its `failures` metadata.",
        )
    ],
    group_name="datasets",
    kinds={"delta", "polars"},
)
def evaluation_datasets(context: dg.AssetExecutionContext, config: EvaluationDatasetConfig, lake: LakeResource):
    """Records in MLflow's shape at lake/evaluation_datasets/<name>; the Delta version is the dataset version.

    If the publish gate fails the current version is kept: its metadata lists the failures (duplicate
    record keys, expectation values of the wrong type, missing inputs); fix the answers or the label
    schema, and the next change of the inputs builds again."""
    name = context.partition_key
    store = lake.lake()
    settings = config.resolve(name)
    outcome = datasets.publish_version(store, name, now=datetime.now(UTC), config=settings, run_id=context.run_id)
    audit = outcome.audit
    check = dg.AssetCheckResult(
        check_name="publish_gate",
        passed=audit.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failures": "\n".join(audit.failures) or "none", "candidate_records": outcome.build.records.height},
        description=audit.message,
    )
    if not outcome.published:
        yield check
        raise dg.Failure(
            description=f"dataset {name!r}: the candidate failed the publish gate, current version kept: {audit.message}",
            metadata={"current_version": outcome.version},
        )
    metadata = outcome.metadata()
    if settings.mlflow is not None and outcome.version is not None:
        frame = store.read(datasets.table_name(name), version=outcome.version).sort("dataset_record_id")
        published = mlflow_datasets.publish(datasets.EvaluationDataset(name, outcome.version, frame), settings.mlflow)
        metadata.update(published.metadata())
    metadata["preview"] = dg.MetadataValue.md(metadata["preview"])
    metadata["coverage"] = counts_table("expectation", metadata["coverage"], "records with it")
    metadata["disagreements"] = counts_table("expectation", metadata["disagreements"], "records whose reviewers disagree")
    yield dg.MaterializeResult(metadata=metadata, check_results=[check])
