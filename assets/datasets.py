"""Evaluation datasets: one dynamic partition per dataset name, one Delta version per content change.

Write-audit-publish: the candidate is built in memory and checked by the blocking `publish_gate`
(Great Expectations) before it is written, so a failed gate leaves the current version as it was.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.resources import LakeResource
from feedback_pipeline import datasets, mlflow_datasets
from feedback_pipeline.home import FeedbackHome

evaluation_datasets_partitions = dg.DynamicPartitionsDefinition(name="evaluation_datasets")


class EvaluationDatasetConfig(dg.Config):
    """Per-run settings; unset fields come from the `datasets:` section of datasets.yaml, else the defaults."""

    disagreement: str | None = None
    include_outputs: bool | None = None

    def resolve(self, name: str) -> datasets.DatasetConfig:
        base = datasets.load_config(name, datasets.config_path(FeedbackHome.from_env().root))
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
            description="Inputs present, no duplicate record keys, expectation values of their label schema's type.",
        )
    ],
    group_name="datasets",
    kinds={"delta", "polars"},
)
def evaluation_datasets(context: dg.AssetExecutionContext, config: EvaluationDatasetConfig, lake: LakeResource):
    """Records in MLflow's shape at lake/evaluation_datasets/<name>; the Delta version is the dataset version."""
    name = context.partition_key
    store = lake.lake()
    settings = config.resolve(name)
    fingerprint = datasets.source_fingerprint(store, settings)
    build, audit = datasets.prepare_version(store, name, now=datetime.now(UTC), config=settings)
    check = dg.AssetCheckResult(
        check_name="publish_gate",
        passed=audit.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failures": "\n".join(audit.failures) or "none", "candidate_records": build.records.height},
        description=audit.message,
    )
    if not audit.passed:
        yield check
        raise dg.Failure(
            description=f"dataset {name!r}: the candidate failed the publish gate, current version kept: {audit.message}",
            metadata={"current_version": store.version(datasets.table_name(name))},
        )
    version = store.version(datasets.table_name(name))
    if build.changed:
        version = store.overwrite(
            datasets.table_name(name),
            build.records,
            commit_metadata={
                "record_count": build.records.height,
                "added": build.added,
                "updated": build.updated,
                "removed": build.removed,
                "source_fingerprint": fingerprint,
                "dagster_run_id": context.run_id,
            },
        ).version
    metadata = datasets.build_metadata(build, audit, version)
    if settings.mlflow is not None and version is not None:
        frame = store.read(datasets.table_name(name), version=version).sort("dataset_record_id")
        published = mlflow_datasets.publish(datasets.EvaluationDataset(name, version, frame), settings.mlflow)
        metadata.update(published.metadata())
    metadata["preview"] = dg.MetadataValue.md(metadata["preview"])
    metadata["coverage"] = dg.MetadataValue.json(metadata["coverage"])
    metadata["disagreements"] = dg.MetadataValue.json(metadata["disagreements"])
    metadata["source_fingerprint"] = fingerprint
    yield dg.MaterializeResult(metadata=metadata, check_results=[check])
