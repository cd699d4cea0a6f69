"""Label quality: agreement between a session's reviewers, and how far judges agree with people.

`label_agreement` (with the table `label_agreement_pairs`) is partitioned like `session_items`, one
key per labeling_session_id, and reads only that session's assessments; `judge_alignment` is one
table over every judged name. Both follow `assessments` materializations (`sensors/quality.py`).
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from feedback_pipeline_dagster.assets.labeling import labeling_session_partitions
from feedback_pipeline_dagster.assets.resources import LakeResource
from feedback_pipeline import agreement, judge_alignment as alignment

ASSESSMENTS = dg.AssetDep("assessments", partition_mapping=dg.AllPartitionMapping())
FINGERPRINT = "source_fingerprint"


def _figures(rows: pl.DataFrame, label: str, keys: list[str]) -> dict[str, float]:
    """Numeric metadata `<label>/<key values…>` for each row with a figure (Dagster plots them over time)."""
    return {
        "/".join([label, *(str(row[k]) for k in keys)]): float(row["value"])
        for row in rows.drop_nulls("value").iter_rows(named=True)
    }


@dg.asset(group_name="quality", kinds={"delta", "polars"}, partitions_def=labeling_session_partitions, deps=[ASSESSMENTS])
def label_agreement(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Krippendorff's alpha, percent agreement (or exact match) per question of one session, and
    pairwise Cohen's kappa between its reviewers in `label_agreement_pairs`."""
    store = lake.lake()
    fingerprint = agreement.session_fingerprints(store).get(context.partition_key, "")
    name, metrics, pairs = agreement.compute_session(store, context.partition_key, datetime.now(UTC))
    if name is None:
        return dg.MaterializeResult(metadata={"session_deleted_or_unknown": True, FINGERPRINT: fingerprint})
    written = {}
    for table, frame, key in ((agreement.TABLE, metrics, ["label_schema", "metric"]),
                              (agreement.PAIRS_TABLE, pairs, ["label_schema", "reviewer_a", "reviewer_b"])):
        result = store.merge(table, frame, on=["session", *key], change_column="content_hash",
                             partition_by=["session"], within={"session": name})
        written[table] = result
    alpha = metrics.filter(pl.col("metric") != "percent_agreement")
    return dg.MaterializeResult(
        metadata={
            "session": name,
            "questions": metrics.get_column("label_schema").n_unique(),
            "items": int(metrics.get_column("items").max() or 0),
            "reviewer_pairs": pairs.height,
            **_figures(alpha, "alpha", ["label_schema"]),
            **_figures(metrics.filter(pl.col("metric") == "percent_agreement"), "percent_agreement", ["label_schema"]),
            "agreement": dg.MetadataValue.md(agreement.markdown(metrics)),
            "rows_written": sum(r.rows_written for r in written.values()),
            "delta_version": written[agreement.TABLE].version,
            "pairs_delta_version": written[agreement.PAIRS_TABLE].version,
            FINGERPRINT: fingerprint,
        }
    )


@dg.asset(group_name="quality", kinds={"delta", "polars"}, deps=[ASSESSMENTS])
def judge_alignment(lake: LakeResource) -> dg.MaterializeResult:
    """Per assessment name and judge: traces compared with people, agreement, Cohen's kappa, the
    confusion matrix or error figures, and the traces where they disagree."""
    store = lake.lake()
    fingerprint = alignment.source_fingerprint(store)
    frame = alignment.compute(store, datetime.now(UTC))
    version = store.overwrite(alignment.TABLE, frame).version
    figures = frame.select("name", "judge", pl.col("agreement").alias("value"))
    kappas = frame.select("name", "judge", pl.col("cohen_kappa").alias("value"))
    return dg.MaterializeResult(
        metadata={
            "judges": frame.height,
            "traces_compared": int(frame.get_column("traces").sum()),
            **_figures(figures, "agreement", ["name", "judge"]),
            **_figures(kappas, "cohen_kappa", ["name", "judge"]),
            "alignment": dg.MetadataValue.md(alignment.markdown(frame)),
            "delta_version": version,
            FINGERPRINT: fingerprint,
        }
    )


quality_agreement_job = dg.define_asset_job(
    "label_agreement_job", selection=[label_agreement], partitions_def=labeling_session_partitions
)
judge_alignment_job = dg.define_asset_job("judge_alignment_job", selection=[judge_alignment])
