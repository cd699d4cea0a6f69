"""Agreement between a labeling session's reviewers, per question.

For each question of a session with answers from at least two reviewers on some item:

- `krippendorff_alpha` (the `krippendorff` package) at the level the question's input type calls
  for (`agreement_level` of the input classes in `feedback_pipeline.schemas`): nominal for
  categorical and pass/fail; interval for numeric; for categorical lists, nominal over the whole
  selection (the sorted set of options is one value, so two answers agree only when they pick
  exactly the same options; a partial overlap counts as a disagreement). Text questions get no
  alpha but `exact_match`: the share of items whose answers are all the same text.
- `percent_agreement`: per item the share of reviewer pairs that gave the same value, averaged
  over the items with two or more answers.
- Pairwise Cohen's kappa (scikit-learn's `cohen_kappa_score`) for every two reviewers who answered
  the same items: unweighted for nominal questions and text, quadratic-weighted over the ordered
  values for numeric ones.

Undefined figures are null with a `note` saying why: no item with two reviewers yet, or every
answer the same value (alpha and kappa divide by the variation there is; with none they are
undefined, while percent agreement is 1). Answers are the valid HUMAN feedback and expectations of
the session; adjudications (`feedback_pipeline.adjudication`) are not reviews and are left out.
"""

from __future__ import annotations

import warnings
from datetime import datetime

import krippendorff
import numpy as np
import polars as pl

from feedback_pipeline import adjudication, schemas
from feedback_pipeline.input_types import INPUT_CLASSES
from feedback_pipeline.lake import Lake
from feedback_pipeline.item_status import ANSWER_KINDS
from feedback_pipeline.sessions import live_sessions

TABLE = "label_agreement"
PAIRS_TABLE = "label_agreement_pairs"
UTC_TIME = pl.Datetime("us", "UTC")
LEVELS: dict[str, str | None] = {name: cls.agreement_level for name, cls in INPUT_CLASSES.items()}
TABLE_SCHEMA = pl.Schema(
    {
        "session": pl.String,
        "label_schema": pl.String,
        "input_type": pl.String,
        "level": pl.String,
        "metric": pl.String,
        "value": pl.Float64,
        "items": pl.Int64,
        "reviewers": pl.Int64,
        "note": pl.String,
        "computed_at": UTC_TIME,
        "content_hash": pl.String,
    }
)
PAIRS_SCHEMA = pl.Schema(
    {
        "session": pl.String,
        "label_schema": pl.String,
        "reviewer_a": pl.String,
        "reviewer_b": pl.String,
        "cohen_kappa": pl.Float64,
        "agreement": pl.Float64,
        "items": pl.Int64,
        "note": pl.String,
        "computed_at": UTC_TIME,
        "content_hash": pl.String,
    }
)
RATING_SCHEMA = pl.Schema(
    {
        "label_schema": pl.String,
        "input_type": pl.String,
        "trace_id": pl.String,
        "assessor_id": pl.String,
        "assessment_id": pl.String,
        "value": pl.String,
        "key": pl.String,
        "number": pl.Float64,
    }
)
NO_PAIRS = "no item has answers from two reviewers yet"
NO_VARIATION = "undefined: every answer is the same value"


def question_types(label_schemas: pl.DataFrame) -> pl.DataFrame:
    """name and input_type of each current label schema."""
    if label_schemas.height == 0:
        return pl.DataFrame(schema={"name": pl.String, "input_type": pl.String})
    return schemas.current_schemas(label_schemas).select("name", "input_type")


def value_key(value: str = "value", input_type: str = "input_type") -> pl.Expr:
    """The text two answers share exactly when they agree: lists as their sorted set, others as their JSON."""
    text = pl.col(value).str.strip_chars()
    listed = text.str.json_decode(pl.List(pl.String)).list.unique().list.sort().list.join("\u001f")
    is_list = pl.col(input_type).is_in(["categorical_list", "text_list"])
    return pl.when(is_list).then(pl.concat_str(pl.lit("["), listed)).otherwise(text)


def session_ratings(assessments: pl.DataFrame, session: str, questions: list[str], label_schemas: pl.DataFrame) -> pl.DataFrame:
    """The reviewers' current answers to a session's questions: one row per (question, trace, reviewer)."""
    types = question_types(label_schemas).filter(pl.col("name").is_in(questions))
    if assessments.height == 0 or types.height == 0:
        return pl.DataFrame(schema=RATING_SCHEMA)
    metadata = pl.col("metadata") if "metadata" in assessments.columns else pl.lit(None, pl.String).alias("metadata")
    frame = (
        assessments.lazy()
        .with_columns(metadata)
        .filter(
            (pl.col("session") == session)
            & pl.col("valid").fill_null(True)
            & pl.col("kind").is_in(ANSWER_KINDS)
            & (pl.col("source_type").str.to_uppercase() == "HUMAN")
            & pl.col("assessment_value").is_not_null()
            & ~adjudication.is_adjudication()
        )
        .join(types.lazy(), left_on="assessment_name", right_on="name")
        .sort("updated_at" if "updated_at" in assessments.columns else "created_at")
        .unique(["assessment_name", "trace_id", "assessor_id"], keep="last", maintain_order=True)
        .select(
            pl.col("assessment_name").alias("label_schema"),
            "input_type",
            "trace_id",
            "assessor_id",
            "assessment_id",
            pl.col("assessment_value").str.strip_chars().alias("value"),
        )
        .collect()
    )
    keyed = frame.with_columns(value_key().alias("key"), pl.col("value").cast(pl.Float64, strict=False).alias("number"))
    return keyed.select(RATING_SCHEMA.names())


def _alpha(units: pl.DataFrame, level: str) -> tuple[float | None, str | None]:
    """Krippendorff's alpha of one question's value counts (trace_id, key, number, n), or why not."""
    by_number = level == "interval"
    if by_number and units.get_column("number").is_null().any():
        return None, "undefined: some answers are not numbers"
    column = "number" if by_number else "key"
    domain = units.get_column(column).unique().sort()
    if domain.len() < 2:
        return None, NO_VARIATION
    coded = units.with_columns(
        pl.col("trace_id").rank("dense").cast(pl.Int64).sub(1).alias("_unit"),
        pl.col(column).rank("dense").cast(pl.Int64).sub(1).alias("_code"),
    )
    counts = np.zeros((int(coded.get_column("_unit").max()) + 1, domain.len()), dtype=np.int64)
    counts[coded.get_column("_unit").to_numpy(), coded.get_column("_code").to_numpy()] = coded.get_column("n").to_numpy()
    value_domain = domain.to_numpy() if by_number else np.arange(domain.len())
    return float(krippendorff.alpha(value_counts=counts, value_domain=value_domain, level_of_measurement=level)), None


def cohen_kappa(a: list, b: list, weights: str | None = None) -> float | None:
    """scikit-learn's Cohen's kappa of two raters' labels; None where it is undefined (no variation)."""
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(a, b, weights=weights))
    return None if np.isnan(value) else value


def _hash(frame: pl.DataFrame, skip: str = "computed_at") -> pl.DataFrame:
    columns = [c for c in frame.columns if c != skip]
    return frame.with_columns(pl.struct(columns).hash(seed=0).cast(pl.String).alias("content_hash"))


def agreement(ratings: pl.DataFrame, session: str, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The `label_agreement` rows and the `label_agreement_pairs` rows of one session's ratings."""
    metrics: list[dict] = []
    pairs: list[dict] = []
    for (question, input_type), rows in ratings.group_by("label_schema", "input_type", maintain_order=True):
        level = LEVELS.get(str(input_type))
        counts = rows.group_by("trace_id", "key").agg(pl.len().alias("n"), pl.col("number").first())
        per_item = counts.group_by("trace_id").agg(
            pl.col("n").sum().alias("answers"),
            (pl.col("n") * (pl.col("n") - 1)).sum().alias("agreeing_pairs"),
            pl.len().alias("distinct"),
        )
        pairable = per_item.filter(pl.col("answers") >= 2)
        paired = rows.join(pairable.select("trace_id"), on="trace_id")
        items, reviewers = pairable.height, paired.get_column("assessor_id").n_unique()
        base = {"session": session, "label_schema": question, "input_type": input_type, "level": level or "exact_match",
                "items": items, "reviewers": reviewers if items else rows.get_column("assessor_id").n_unique()}
        names = ["krippendorff_alpha" if level else "exact_match", "percent_agreement"]
        if items == 0:
            metrics.extend({**base, "metric": name, "value": None, "note": NO_PAIRS} for name in names)
            continue
        percent = float(pairable.select((pl.col("agreeing_pairs") / (pl.col("answers") * (pl.col("answers") - 1))).mean()).item())
        if level:
            first, note = _alpha(counts.join(pairable.select("trace_id"), on="trace_id"), level)
        else:
            first, note = float(pairable.select((pl.col("distinct") == 1).mean()).item()), None
        metrics.append({**base, "metric": names[0], "value": first, "note": note})
        metrics.append({**base, "metric": "percent_agreement", "value": percent, "note": None})
        pairs.extend(_pairs(paired, session, str(question), level))
    metric_frame = pl.DataFrame(metrics, schema={k: v for k, v in TABLE_SCHEMA.items() if k not in ("computed_at", "content_hash")})
    pair_frame = pl.DataFrame(pairs, schema={k: v for k, v in PAIRS_SCHEMA.items() if k not in ("computed_at", "content_hash")})
    stamp = pl.lit(now).cast(UTC_TIME).alias("computed_at")
    return (
        _hash(metric_frame).with_columns(stamp).select(TABLE_SCHEMA.names()),
        _hash(pair_frame).with_columns(stamp).select(PAIRS_SCHEMA.names()),
    )


def _pairs(paired: pl.DataFrame, session: str, question: str, level: str | None) -> list[dict]:
    """Cohen's kappa of every two reviewers over the items both answered."""
    interval = level == "interval" and paired.get_column("number").is_not_null().all()
    code = (pl.col("number") if interval else pl.col("key")).rank("dense").cast(pl.Int64).alias("code")
    coded = paired.select("trace_id", "assessor_id", code)
    joined = (
        coded.join(coded, on="trace_id", suffix="_b")
        .filter(pl.col("assessor_id") < pl.col("assessor_id_b"))
        .group_by("assessor_id", "assessor_id_b")
        .agg(pl.col("code"), pl.col("code_b"))
        .sort("assessor_id", "assessor_id_b")
    )
    out = []
    for a, b, codes_a, codes_b in joined.iter_rows():
        same = float(np.mean(np.asarray(codes_a) == np.asarray(codes_b)))
        kappa = cohen_kappa(codes_a, codes_b, "quadratic" if interval else None)
        out.append({"session": session, "label_schema": question, "reviewer_a": a, "reviewer_b": b, "cohen_kappa": kappa,
                    "agreement": same, "items": len(codes_a), "note": None if kappa is not None else NO_VARIATION})
    return out


def disagreements(ratings: pl.DataFrame, adjudications: pl.DataFrame) -> pl.DataFrame:
    """Items where a question's answers differ and no adjudication settles all of them.

    `adjudications`: trace_id, assessment_name, settles (list of assessment ids). One row per
    (trace_id, label_schema) with `answers`: every reviewer's (assessor_id, value, assessment_id).
    """
    differ = ratings.group_by("label_schema", "trace_id").agg(
        pl.col("key").n_unique().alias("distinct"),
        pl.struct("assessor_id", "value", "assessment_id").sort_by("assessor_id").alias("answers"),
        pl.col("assessment_id").alias("ids"),
        pl.col("input_type").first(),
    ).filter(pl.col("distinct") > 1)
    if adjudications.height:
        settled = (
            adjudications.select("trace_id", pl.col("assessment_name").alias("label_schema"), pl.col("settles"))
            .explode("settles")
            .group_by("label_schema", "trace_id")
            .agg(pl.col("settles").alias("settled"))
        )
        differ = (
            differ.join(settled, on=["label_schema", "trace_id"], how="left")
            .filter(pl.col("settled").is_null() | (pl.col("ids").list.set_difference(pl.col("settled")).list.len() > 0))
            .drop("settled")
        )
    return differ.select("label_schema", "trace_id", "input_type", "answers").sort("label_schema", "trace_id")


def markdown(metrics: pl.DataFrame) -> str:
    """The agreement rows as a markdown table (one line per question and metric)."""
    lines = ["| session | question | level | metric | value | items | reviewers | note |", "|---|---|---|---|---|---|---|---|"]
    for row in metrics.sort("session", "label_schema", "metric").iter_rows(named=True):
        value = "—" if row["value"] is None else f"{row['value']:.3f}"
        lines.append(
            f"| {row['session']} | {row['label_schema']} | {row['level']} | {row['metric']} | {value} | {row['items']} | "
            f"{row['reviewers']} | {row['note'] or ''} |"
        )
    return "\n".join(lines)


def session_fingerprints(lake: Lake) -> dict[str, str]:
    """Per live session (by labeling_session_id): a digest of what its agreement is computed from,
    the count and newest change of its assessments, its questions and the label schemas' version.
    Reads two columns of `assessments` once for every session."""
    if not lake.exists("labeling_sessions"):
        return {}
    sessions = live_sessions(lake.read("labeling_sessions", columns=["labeling_session_id", "name", "label_schemas", "deleted"]))
    sessions = sessions.with_columns(pl.struct("name", "label_schemas").hash(seed=0).cast(pl.String).alias("content_hash"))
    scan = lake.scan("assessments")
    changes = (
        scan.group_by("session").agg(pl.len().alias("rows"), pl.col("updated_at").max().cast(pl.String).alias("newest")).collect()
        if scan is not None
        else pl.DataFrame(schema={"session": pl.String, "rows": pl.UInt32, "newest": pl.String})
    )
    schemas_version = str(lake.version("label_schemas"))
    joined = sessions.join(changes, left_on="name", right_on="session", how="left").with_columns(
        pl.concat_str([pl.col("content_hash"), pl.col("rows").cast(pl.String), pl.col("newest"), pl.lit(schemas_version)],
                      separator="|", ignore_nulls=True).alias("fingerprint")
    )
    return dict(joined.select("labeling_session_id", "fingerprint").iter_rows())


def compute_session(lake: Lake, labeling_session_id: str, now: datetime) -> tuple[str | None, pl.DataFrame, pl.DataFrame]:
    """(session name, agreement rows, pair rows) of one live session, read from the lake (None: no such session)."""
    sessions = live_sessions(lake.read("labeling_sessions", columns=["labeling_session_id", "name", "label_schemas", "deleted"]))
    found = sessions.filter(pl.col("labeling_session_id") == labeling_session_id)
    if found.height == 0:
        return None, pl.DataFrame(schema=TABLE_SCHEMA), pl.DataFrame(schema=PAIRS_SCHEMA)
    row = found.row(-1, named=True)
    scan = lake.scan("assessments")
    answers = pl.DataFrame() if scan is None else scan.filter(pl.col("session") == row["name"]).collect()
    label_schemas = lake.read("label_schemas") if lake.exists("label_schemas") else pl.DataFrame()
    ratings = session_ratings(answers, row["name"], list(row["label_schemas"] or []), label_schemas)
    metrics, pairs = agreement(ratings, row["name"], now)
    return row["name"], metrics, pairs


def pairs_markdown(pairs: pl.DataFrame) -> str:
    """The pairwise rows as a markdown table."""
    lines = ["| question | reviewer a | reviewer b | cohen_kappa | agreement | items |", "|---|---|---|---|---|---|"]
    for row in pairs.sort("label_schema", "reviewer_a", "reviewer_b").iter_rows(named=True):
        kappa = "—" if row["cohen_kappa"] is None else f"{row['cohen_kappa']:.3f}"
        lines.append(f"| {row['label_schema']} | {row['reviewer_a']} | {row['reviewer_b']} | {kappa} | {row['agreement']:.3f} | {row['items']} |")
    return "\n".join(lines)
