"""The MLflow tracking server the project syncs with: where it is, which experiments, and MLflow's own client.

`FEEDBACK_MLFLOW_TRACKING_URI` and `FEEDBACK_MLFLOW_EXPERIMENT_IDS` (comma-separated) configure it;
every command can override them. Authentication is MLflow's own (`MLFLOW_TRACKING_TOKEN`,
`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`), read by its client. MLflow is the
optional extra `feedback-pipeline[mlflow]`, imported only when a sync runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

TRACKING_URI_VARIABLE = "FEEDBACK_MLFLOW_TRACKING_URI"
EXPERIMENT_IDS_VARIABLE = "FEEDBACK_MLFLOW_EXPERIMENT_IDS"


class MlflowNotInstalled(RuntimeError):
    """MLflow's client is not installed."""


def import_mlflow() -> Any:
    """The `mlflow` module, or a clear error naming the extra to install."""
    try:
        import mlflow
    except ImportError:
        raise MlflowNotInstalled(
            "MLflow's client is not installed: pip install 'feedback-pipeline[mlflow]'"
        ) from None
    return mlflow


def configured() -> bool:
    """Whether an MLflow tracking server is configured in the environment."""
    return bool(os.environ.get(TRACKING_URI_VARIABLE, "").strip())


@dataclass(frozen=True)
class MlflowServer:
    """A tracking server and the experiments of it that we read and write."""

    tracking_uri: str
    experiment_ids: tuple[str, ...]

    @classmethod
    def from_env(
        cls, tracking_uri: str | None = None, experiment_ids: Iterable[str] = (), *, experiments_required: bool = True
    ) -> MlflowServer:
        """Arguments first, then the environment; ValueError naming what is missing."""
        uri = (tracking_uri or os.environ.get(TRACKING_URI_VARIABLE, "")).strip()
        if not uri:
            raise ValueError(
                f"{TRACKING_URI_VARIABLE} is not set: give the MLflow tracking server "
                "(e.g. http://127.0.0.1:5000) with --tracking-uri or in the environment"
            )
        given = [e.strip() for raw in experiment_ids for e in str(raw).split(",") if e.strip()]
        if not given:
            given = [e.strip() for e in os.environ.get(EXPERIMENT_IDS_VARIABLE, "").split(",") if e.strip()]
        if not given and experiments_required:
            raise ValueError(
                f"{EXPERIMENT_IDS_VARIABLE} is not set: give the experiment ids to sync "
                "(comma-separated) with --experiment-id or in the environment"
            )
        bad = [e for e in given if not e.isdigit()]
        if bad:
            raise ValueError(f"experiment id {bad[0]!r}: expected MLflow's numeric experiment id, such as '1'")
        return cls(uri, tuple(dict.fromkeys(given)))

    def client(self) -> Any:
        """MLflow's `MlflowClient` for this server."""
        return import_mlflow().MlflowClient(tracking_uri=self.tracking_uri)

    @contextmanager
    def active(self) -> Iterator[Any]:
        """`mlflow` with this server as its tracking URI (its fluent APIs read the global URI); restored after."""
        mlflow = import_mlflow()
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield mlflow
        finally:
            mlflow.set_tracking_uri(previous)

