"""Labeling assets: the `label_schemas` and `labeling_sessions` tables folded from definition events,
and `session_items`, one dynamic partition per labeling session (keyed by `labeling_session_id`)."""


import dagster as dg

from feedback_pipeline_dagster.assets.metadata import markdown_table
from feedback_pipeline_dagster.assets.resources import LakeResource, LandingResource
from feedback_pipeline import definition_events, revalidation, schemas, sessions

labeling_session_partitions = dg.DynamicPartitionsDefinition(name="labeling_sessions")


@dg.asset(group_name="labeling", kinds={"delta", "polars"})
def label_schemas(lake: LakeResource, landing: LandingResource) -> dg.MaterializeResult:
    """Every version of every label schema (one row per name and version; deletes are soft).

    A schema that changed asks for the answers it governs to be validated again (`revalidation`).
    If it fails: a definition file in the landing zone is unreadable; the error names it."""
    store = lake.lake()
    table = schemas.fold_label_schemas(definition_events.read_events(landing.landing()))
    changed = store.unseen(schemas.TABLE, table, on=["name", "version"], change_column="content_hash")
    result = store.merge(schemas.TABLE, table, on=["name", "version"], change_column="content_hash")
    requested = revalidation.after_schema_change(store, changed["name"].unique().to_list())
    return dg.MaterializeResult(
        metadata={
            "rows": table.height,
            "current_schemas": schemas.current_schemas(table).height,
            "rows_written": result.rows_written,
            "revalidation_dates_requested": requested,
            "delta_version": result.version,
        }
    )


@dg.asset(group_name="labeling", kinds={"delta", "polars"})
def labeling_sessions(lake: LakeResource, landing: LandingResource) -> dg.MaterializeResult:
    """Every labeling session as currently defined (deleted ones flagged).

    If it fails: a definition file in the landing zone is unreadable; the error names it."""
    table = sessions.fold_labeling_sessions(definition_events.read_events(landing.landing()))
    result = lake.lake().merge(sessions.TABLE, table, on=["labeling_session_id"], change_column="content_hash")
    return dg.MaterializeResult(
        metadata={
            "rows": table.height,
            "live_sessions": sessions.live_sessions(table).height,
            "rows_written": result.rows_written,
            "delta_version": result.version,
        }
    )


@dg.asset(
    group_name="labeling",
    kinds={"delta", "polars"},
    partitions_def=labeling_session_partitions,
    deps=[labeling_sessions, dg.AssetDep("traces", partition_mapping=dg.AllPartitionMapping())],
    retry_policy=dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def session_items(context: dg.AssetExecutionContext, lake: LakeResource, landing: LandingResource) -> dg.MaterializeResult:
    """Immutable copies of a session's traces: new matches are appended, existing items never change.

    The Delta table is partitioned by session_id and each run merges only into its own partition,
    so sessions refreshed at the same time do not conflict (the lake retries commits that race).
    If it fails, the session's assessments wait for its snapshot: fix the cause and re-run the partition.
    """
    handle = lake.lake()
    session_id = context.partition_key
    existing = sessions.existing_items(handle, session_id)
    snapshot = sessions.refresh_session(
        session_id, definition_events.read_events(landing.landing()), handle.scan("traces"), existing
    )
    if snapshot is None:
        return dg.MaterializeResult(
            metadata={"session_deleted_or_unknown": True, "items": existing.height, "delta_version": handle.version(sessions.ITEMS_TABLE)}
        )
    result = handle.merge(
        sessions.ITEMS_TABLE, snapshot.items, on=["session_id", "item_id"], update=False,
        partition_by=["session_id"], within={"session_id": session_id},
    )
    return dg.MaterializeResult(
        metadata={
            "items": existing.height + result.rows_inserted,
            "items_added": result.rows_inserted,
            "missing_trace_ids": len(snapshot.missing_trace_ids),
            "missing_trace_ids_sample": markdown_table(["trace_id"], ([trace_id] for trace_id in snapshot.missing_trace_ids[:20])),
            "delta_version": result.version,
        }
    )


labeling_definitions_job = dg.define_asset_job(
    "labeling_definitions_job",
    selection=[label_schemas, labeling_sessions],
    description="Fold the definition events into `label_schemas` and `labeling_sessions`. Safe to re-run.",
)
session_items_job = dg.define_asset_job(
    "session_items_job",
    selection=[session_items],
    partitions_def=labeling_session_partitions,
    description="Snapshot one labeling session's traces into `session_items` (append-only). Safe to re-run.",
)
