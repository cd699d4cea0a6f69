"""Publish a dataset version into MLflow's evaluation datasets, so `mlflow.genai.evaluate(data=...)` runs on it there.

Called after the publish gate passed (the `evaluation_datasets` asset, for datasets configured with
`mlflow: {experiment_id, name}` in datasets.yaml) or by `feedback-pipeline mlflow publish DATASET`.
The MLflow dataset is created on first publish, then kept equal to the version: records are upserted
with `merge_records` (MLflow keys them by their inputs, as we do), each with a TRACE source naming
its trace and our `dataset_record_id` in its tags; records the version no longer holds are deleted;
the dataset's tags name our dataset and Delta version. MLflow merges expectations and tags by key,
so a key we dropped from a record stays there (MLflow OSS datasets have no versions to replace).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from feedback_pipeline.datasets import EvaluationDataset, MlflowDatasetTarget
from feedback_pipeline.mlflow_server import MlflowServer

TAG_DATASET = "feedback_pipeline.dataset"
TAG_VERSION = "feedback_pipeline.delta_version"
TAG_RECORD_ID = "feedback_pipeline.dataset_record_id"
MERGE_BATCH = 500


@dataclass
class PublishReport:
    """What a publish did to the MLflow dataset."""

    dataset_id: str
    name: str
    version: int
    merged: int
    deleted: int

    def metadata(self) -> dict[str, Any]:
        return {"mlflow_dataset_id": self.dataset_id, "mlflow_dataset_name": self.name,
                "mlflow_records_merged": self.merged, "mlflow_records_deleted": self.deleted}


def inputs_key(inputs: dict) -> str:
    """The key MLflow and we both give a record: sha256 of its inputs as sorted-key JSON."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def mlflow_records(dataset: EvaluationDataset) -> list[dict[str, Any]]:
    """The version's records as `merge_records` takes them: inputs, outputs, expectations, tags, TRACE source."""
    records = []
    for row in dataset.records(full=True):
        record = {
            "inputs": row["inputs"],
            "expectations": row["expectations"],
            "tags": {**{k: str(v) for k, v in (row["tags"] or {}).items()}, TAG_RECORD_ID: row["dataset_record_id"]},
            "source": row["source"],
        }
        if row["outputs"] is not None:
            record["outputs"] = row["outputs"]
        records.append(record)
    return records


def publish(dataset: EvaluationDataset, target: MlflowDatasetTarget, server: MlflowServer | None = None) -> PublishReport:
    """Make MLflow dataset `target.name` hold `dataset`'s records (see the module docstring)."""
    server = server or MlflowServer.from_env(experiment_ids=[target.experiment_id])
    records = mlflow_records(dataset)
    with server.active():
        from mlflow.genai import datasets as mlflow_datasets

        from mlflow.exceptions import MlflowException

        try:
            remote = mlflow_datasets.get_dataset(name=target.name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            remote = mlflow_datasets.create_dataset(name=target.name, experiment_id=target.experiment_id,
                                                    tags={TAG_DATASET: dataset.name})
        for start in range(0, len(records), MERGE_BATCH):
            remote.merge_records(records[start : start + MERGE_BATCH])
        ours = {inputs_key(r["inputs"]) for r in records}
        frame = remote.to_df()
        stale = [] if frame.empty else [
            record_id for record_id, inputs in zip(frame["dataset_record_id"], frame["inputs"], strict=True)
            if inputs_key(inputs) not in ours
        ]
        if stale:
            remote.delete_records(stale)
        mlflow_datasets.set_dataset_tags(dataset_id=remote.dataset_id,
                                         tags={TAG_DATASET: dataset.name, TAG_VERSION: str(dataset.version)})
    return PublishReport(remote.dataset_id, target.name, dataset.version, len(records), len(stale))
