"""Push our assessments to the MLflow tracking server the traces came from, so MLflow sees expert labels.

What is pushed: every valid feedback or expectation in `assessments` that was not imported from
MLflow, on a trace a pull brought from the server (`mlflow_pulled_traces`). Each becomes an MLflow
assessment on its trace (and span) with its source type and id, rationale, and metadata holding
our metadata plus `feedback_pipeline.assessment_id` and `feedback_pipeline.session`; an override
of ours becomes an override there (`overrides` names the MLflow id of the target), a change of
ours an `update_assessment`, a delete of ours a `delete_assessment` (also of an imported one).

`mlflow_assessment_links` records which of our assessments is which MLflow assessment:
assessment_id (ours), mlflow_assessment_id, trace_id, content_hash (ours, as pushed), deleted,
pushed_at. It is written every LINK_BATCH pushes, so a push that dies re-pushes at most that many;
the pull also skips everything carrying our id, so pushing twice or pulling after a push changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from feedback_pipeline.assessments import ASSESSMENTS, HISTORY
from feedback_pipeline.lake import Lake
from feedback_pipeline.mlflow_pull import PULLED_ASSESSMENTS, PULLED_TRACES
from feedback_pipeline.mlflow_server import MlflowServer
from feedback_pipeline.traces import PUSHED_ASSESSMENT_KEY, UTC_TIME

LINKS = "mlflow_assessment_links"
SESSION_KEY = "feedback_pipeline.session"
LINK_BATCH = 50
IMPORTED = "mlflow-import"
PUSHED_KINDS = ("feedback", "expectation")

LINKS_SCHEMA = pl.Schema(
    {
        "assessment_id": pl.String,
        "mlflow_assessment_id": pl.String,
        "trace_id": pl.String,
        "content_hash": pl.String,
        "deleted": pl.Boolean,
        "pushed_at": UTC_TIME,
    }
)


@dataclass
class PushReport:
    """What one push changed on the server."""

    logged: int = 0
    overrides: int = 0
    updated: int = 0
    deleted: int = 0
    links_version: int | None = None


def pending(lake: Lake, server: MlflowServer) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(to log, to update, to delete) for this server: what MLflow does not have as we have it."""
    ours = _pushable(lake, server)
    links = lake.read(LINKS, schema=LINKS_SCHEMA).filter(~pl.col("deleted"))
    to_log = ours.join(links, on="assessment_id", how="anti").sort("created_at", "assessment_id")
    to_update = ours.join(
        links.select("assessment_id", "mlflow_assessment_id", pl.col("content_hash").alias("pushed_hash")),
        on="assessment_id",
    ).filter(pl.col("content_hash") != pl.col("pushed_hash"))
    live = lake.read(ASSESSMENTS, columns=["assessment_id"], schema={"assessment_id": pl.String})
    gone_links = links.join(live, on="assessment_id", how="anti").select("assessment_id", "mlflow_assessment_id", "trace_id")
    done = lake.read(LINKS, schema=LINKS_SCHEMA).filter(pl.col("deleted")).select("assessment_id")
    gone_imported = _imported_deleted_here(lake, live).join(done, on="assessment_id", how="anti")
    return to_log, to_update, pl.concat([gone_links, gone_imported]).unique("mlflow_assessment_id", maintain_order=True)


def push(
    server: MlflowServer, lake: Lake, *, on_progress: Callable[[PushReport], None] | None = None
) -> PushReport:
    """Make the server hold our assessments as we hold them (see the module docstring)."""
    to_log, to_update, to_delete = pending(lake, server)
    report = PushReport()
    if to_log.is_empty() and to_update.is_empty() and to_delete.is_empty():
        report.links_version = lake.version(LINKS)
        return report
    mlflow_ids = _mlflow_ids(lake)
    links: list[dict] = []

    def flush() -> None:
        if links:
            report.links_version = lake.merge(LINKS, pl.DataFrame(links, schema=LINKS_SCHEMA), on=["assessment_id"]).version
            links.clear()

    with server.active() as mlflow:
        for row in to_log.iter_rows(named=True):
            target = mlflow_ids.get(row["overrides"]) if row["overrides"] else None
            logged = mlflow.log_assessment(row["trace_id"], _assessment(mlflow, row, overrides=target))
            mlflow_ids[row["assessment_id"]] = logged.assessment_id
            links.append(_link(row, logged.assessment_id))
            report.logged += 1
            report.overrides += target is not None
            if len(links) >= LINK_BATCH:
                flush()
                if on_progress:
                    on_progress(report)
        for row in to_update.iter_rows(named=True):
            mlflow.update_assessment(row["trace_id"], row["mlflow_assessment_id"], _assessment(mlflow, row, overrides=None))
            links.append(_link(row, row["mlflow_assessment_id"]))
            report.updated += 1
        for row in to_delete.iter_rows(named=True):
            mlflow.delete_assessment(row["trace_id"], row["mlflow_assessment_id"])
            links.append({**_link(row, row["mlflow_assessment_id"]), "deleted": True, "content_hash": None})
            report.deleted += 1
    flush()
    if on_progress:
        on_progress(report)
    return report


def _pushable(lake: Lake, server: MlflowServer) -> pl.DataFrame:
    """Our valid feedback and expectations on traces pulled from this server's experiments."""
    traces = lake.read(PULLED_TRACES, columns=["trace_id", "experiment_id"],
                       schema={"trace_id": pl.String, "experiment_id": pl.String})
    traces = traces.filter(pl.col("experiment_id").is_in(list(server.experiment_ids))).select("trace_id")
    scan = lake.scan(ASSESSMENTS)
    if scan is None or traces.is_empty():
        return pl.DataFrame(schema={"assessment_id": pl.String, "trace_id": pl.String, "content_hash": pl.String,
                                    "created_at": UTC_TIME, "overrides": pl.String})
    return (
        scan.filter(pl.col("valid") & pl.col("kind").is_in(PUSHED_KINDS) & (pl.col("origin").fill_null("") != IMPORTED))
        .collect()
        .join(traces, on="trace_id", how="semi")
    )


def _imported_deleted_here(lake: Lake, live: pl.DataFrame) -> pl.DataFrame:
    """MLflow assessments a pull brought in that we deleted since (a delete not made by the pull)."""
    empty = pl.DataFrame(schema={"assessment_id": pl.String, "mlflow_assessment_id": pl.String, "trace_id": pl.String})
    history, pulled = lake.scan(HISTORY), lake.scan(PULLED_ASSESSMENTS)
    if history is None or pulled is None:
        return empty
    deleted_here = history.filter((pl.col("action") == "delete") & (pl.col("origin").fill_null("") != IMPORTED))
    return (
        pulled.filter(~pl.col("deleted"))
        .join(deleted_here.select("assessment_id"), on="assessment_id", how="semi")
        .collect()
        .join(live, on="assessment_id", how="anti")
        .select("assessment_id", pl.col("assessment_id").alias("mlflow_assessment_id"), "trace_id")
    )


def _mlflow_ids(lake: Lake) -> dict[str, str]:
    """Our id -> MLflow id, for every assessment MLflow holds: pushed ones (links) and pulled ones (same id)."""
    ids: dict[str, str] = {}
    pulled = lake.read(PULLED_ASSESSMENTS, columns=["assessment_id"], schema={"assessment_id": pl.String})
    ids.update((a, a) for a in pulled["assessment_id"].to_list())
    links = lake.read(LINKS, schema=LINKS_SCHEMA).filter(~pl.col("deleted"))
    ids.update(zip(links["assessment_id"].to_list(), links["mlflow_assessment_id"].to_list(), strict=True))
    return ids


def _assessment(mlflow: Any, row: dict, overrides: str | None) -> Any:
    """The MLflow Feedback or Expectation for one of our assessment rows."""
    from mlflow.entities import AssessmentError, AssessmentSource, Expectation, Feedback

    metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(row["metadata"] or "{}").items()}
    metadata[PUSHED_ASSESSMENT_KEY] = row["assessment_id"]
    if row["session"]:
        metadata[SESSION_KEY] = row["session"]
    source = AssessmentSource(source_type=row["source_type"], source_id=row["assessor_id"] or "default")
    value = json.loads(row["assessment_value"]) if row["assessment_value"] is not None else None
    common = {"name": row["assessment_name"], "value": value, "source": source, "metadata": metadata,
              "span_id": row["span_id"], "trace_id": row["trace_id"]}
    if row["kind"] == "expectation":
        return Expectation(**common)
    error = json.loads(row["error"]) if row.get("error") else None
    return Feedback(**common, rationale=row["rationale"], overrides=overrides,
                    error=AssessmentError(**error) if error else None)


def _link(row: dict, mlflow_assessment_id: str) -> dict:
    return {
        "assessment_id": row["assessment_id"],
        "mlflow_assessment_id": mlflow_assessment_id,
        "trace_id": row["trace_id"],
        "content_hash": row.get("content_hash"),
        "deleted": False,
        "pushed_at": datetime.now(UTC),
    }
