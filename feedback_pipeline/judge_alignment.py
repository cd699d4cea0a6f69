"""How far LLM judges (and code scorers) agree with people, per assessment name and judge.

Where a trace carries valid HUMAN feedback or expectations and valid LLM_JUDGE or CODE feedback of
the same name, the judge's latest value on the trace is compared with the human value: the
adjudicated one when an adjudication settled it (`feedback_pipeline.adjudication`), else the
majority of the reviewers' answers (ties to the latest), else the only answer.

Per (name, judge `source_id`): traces compared, agreement rate (same value), Cohen's kappa with
the human value (scikit-learn; quadratic-weighted for numbers), for categorical and pass/fail
values the confusion matrix (rows: human, columns: judge), for numbers mean absolute error and
Spearman correlation (SciPy), and the trace ids where judge and human differ: the traces to hand
to MLflow's `judge.align()`. The value type is the label schema's input type when the name has
one, else what the values are (booleans: pass_fail, numbers: numeric, lists: categorical_list,
strings: categorical).
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl

from feedback_pipeline import adjudication
from feedback_pipeline.agreement import UTC_TIME, cohen_kappa, question_types, value_key
from feedback_pipeline.lake import Lake
from feedback_pipeline.item_status import ANSWER_KINDS

TABLE = "judge_alignment"
JUDGE_SOURCES = ("LLM_JUDGE", "CODE")
CONFUSION_TYPES = ("categorical", "pass_fail", "categorical_list")
TABLE_SCHEMA = pl.Schema(
    {
        "name": pl.String,
        "judge": pl.String,
        "source_type": pl.String,
        "input_type": pl.String,
        "traces": pl.Int64,
        "agreement": pl.Float64,
        "cohen_kappa": pl.Float64,
        "confusion_matrix": pl.String,
        "mean_absolute_error": pl.Float64,
        "spearman": pl.Float64,
        "disagreeing_trace_ids": pl.List(pl.String),
        "computed_at": UTC_TIME,
    }
)


def judge_rows(assessments: pl.LazyFrame) -> pl.LazyFrame:
    """Valid LLM_JUDGE / CODE feedback with a value: the latest per (trace, name, judge)."""
    return (
        assessments.filter(
            pl.col("valid").fill_null(True)
            & (pl.col("kind") == "feedback")
            & pl.col("source_type").str.to_uppercase().is_in(JUDGE_SOURCES)
            & pl.col("assessment_value").is_not_null()
        )
        .sort(pl.coalesce("updated_at", "created_at"))
        .unique(["trace_id", "assessment_name", "assessor_id"], keep="last", maintain_order=True)
        .select("trace_id", "assessment_name", "assessor_id", pl.col("source_type").str.to_uppercase(),
                pl.col("assessment_value").str.strip_chars().alias("value"))
    )


def human_values(assessments: pl.LazyFrame) -> pl.LazyFrame:
    """One human value per (trace, name): adjudicated, else majority (ties to the latest)."""
    humans = (
        assessments.filter(
            pl.col("valid").fill_null(True)
            & pl.col("kind").is_in(ANSWER_KINDS)
            & (pl.col("source_type").str.to_uppercase() == "HUMAN")
            & pl.col("assessment_value").is_not_null()
        )
        .select("trace_id", "assessment_name", pl.col("assessment_value").str.strip_chars().alias("value"),
                pl.coalesce("updated_at", "created_at").alias("_when"), adjudication.is_adjudication().alias("_gold"))
    )
    group = ["trace_id", "assessment_name"]
    adjudicated = humans.filter(pl.col("_gold")).sort("_when").group_by(group).agg(pl.col("value").last())
    majority = (
        humans.filter(~pl.col("_gold"))
        .group_by(*group, "value")
        .agg(pl.len().alias("votes"), pl.col("_when").max())
        .sort("votes", "_when", "value")
        .group_by(group)
        .agg(pl.col("value").last())
    )
    return pl.concat([adjudicated, majority.join(adjudicated, on=group, how="anti")])


def _type_of(values: pl.Series) -> str:
    kinds = {"true": "pass_fail", "false": "pass_fail", "[": "categorical_list", '"': "categorical"}
    first = values.str.slice(0, 1).replace({"t": "true", "f": "false"}).unique().to_list()
    found = {kinds.get(k, "numeric") for k in first}
    return found.pop() if len(found) == 1 else "categorical"


def _figures(pairs: pl.DataFrame, input_type: str) -> dict:
    """Agreement, kappa, confusion matrix or error figures of one (name, judge)'s compared traces."""
    from scipy.stats import spearmanr
    from sklearn.metrics import confusion_matrix

    same = pairs.get_column("human_key") == pairs.get_column("judge_key")
    figures: dict = {"traces": pairs.height, "agreement": float(same.mean()), "confusion_matrix": None,
                     "mean_absolute_error": None, "spearman": None,
                     "disagreeing_trace_ids": pairs.filter(~same).get_column("trace_id").sort().to_list()}
    numbers = pairs.select(pl.col("human_value").cast(pl.Float64, strict=False).alias("h"),
                           pl.col("judge_value").cast(pl.Float64, strict=False).alias("j"))
    if input_type == "numeric" and numbers.null_count().sum_horizontal().item() == 0:
        human, judge = numbers.get_column("h").to_numpy(), numbers.get_column("j").to_numpy()
        figures["mean_absolute_error"] = float(np.abs(human - judge).mean())
        if pairs.height > 1 and np.ptp(human) > 0 and np.ptp(judge) > 0:
            figures["spearman"] = float(spearmanr(human, judge).statistic)
        domain = {v: i for i, v in enumerate(sorted(set(human) | set(judge)))}
        figures["cohen_kappa"] = cohen_kappa([domain[v] for v in human], [domain[v] for v in judge], "quadratic")
        return figures
    human, judge = pairs.get_column("human_value").to_list(), pairs.get_column("judge_value").to_list()
    figures["cohen_kappa"] = cohen_kappa(pairs.get_column("human_key").to_list(), pairs.get_column("judge_key").to_list(), None)
    if input_type in CONFUSION_TYPES:
        labels = sorted(set(human) | set(judge))
        matrix = confusion_matrix(human, judge, labels=labels)
        figures["confusion_matrix"] = json.dumps({"labels": [json.loads(v) for v in labels], "matrix": matrix.tolist()})
    return figures


def judge_alignment(assessments: pl.LazyFrame, label_schemas: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The `judge_alignment` rows: one per (assessment name, judge) that shares traces with people."""
    judges = judge_rows(assessments).collect()
    if judges.height == 0:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    names, traces = judges.get_column("assessment_name").unique().implode(), judges.get_column("trace_id").unique().implode()
    humans = human_values(assessments.filter(pl.col("assessment_name").is_in(names) & pl.col("trace_id").is_in(traces))).collect()
    types = question_types(label_schemas)
    compared = (
        judges.join(humans.rename({"value": "human_value"}), on=["trace_id", "assessment_name"])
        .rename({"value": "judge_value"})
        .join(types.rename({"name": "assessment_name"}), on="assessment_name", how="left")
    )
    rows = []
    for (name, judge, source_type), pairs in compared.group_by("assessment_name", "assessor_id", "source_type", maintain_order=True):
        input_type = pairs.get_column("input_type").first() or _type_of(pl.concat([pairs["human_value"], pairs["judge_value"]]))
        keyed = pairs.with_columns(pl.lit(input_type).alias("input_type")).with_columns(
            value_key("human_value").alias("human_key"), value_key("judge_value").alias("judge_key")
        )
        rows.append({"name": name, "judge": judge, "source_type": source_type, "input_type": input_type, **_figures(keyed, input_type)})
    frame = pl.DataFrame(rows, schema={k: v for k, v in TABLE_SCHEMA.items() if k != "computed_at"})
    return frame.with_columns(pl.lit(now).cast(UTC_TIME).alias("computed_at")).select(TABLE_SCHEMA.names()).sort("name", "judge")


def markdown(alignment: pl.DataFrame) -> str:
    """The alignment rows as a markdown table."""
    lines = ["| name | judge | traces | agreement | cohen_kappa | MAE | spearman | disagreeing |", "|---|---|---|---|---|---|---|---|"]

    def show(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    for row in alignment.iter_rows(named=True):
        lines.append(
            f"| {row['name']} | {row['judge']} | {row['traces']} | {show(row['agreement'])} | {show(row['cohen_kappa'])} | "
            f"{show(row['mean_absolute_error'])} | {show(row['spearman'])} | {len(row['disagreeing_trace_ids'] or [])} |"
        )
    return "\n".join(lines)


def source_fingerprint(lake: Lake) -> str:
    """The versions of the tables judge alignment reads: equal fingerprints give equal figures."""
    return f"assessments={lake.version('assessments')}|label_schemas={lake.version('label_schemas')}"


def compute(lake: Lake, now: datetime) -> pl.DataFrame:
    """The `judge_alignment` rows from the lake's current assessments and label schemas."""
    scan = lake.scan("assessments")
    if scan is None:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    label_schemas = lake.read("label_schemas") if lake.exists("label_schemas") else pl.DataFrame()
    return judge_alignment(scan, label_schemas, now)
