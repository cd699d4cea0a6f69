"""Evaluation datasets: records in MLflow's shape, built from human ground truth, one Delta version each.

A dataset `X` draws on every live labeling session whose `dataset` is `X`: the traces of their
items that have at least one valid HUMAN expectation become records, with those expectations
(from any session or the SDK) as `expectations`; items nobody has labelled yet are left out.

Records follow MLflow's `EvaluationDataset` (reference §6): keyed by
`sha256(json.dumps(inputs, sort_keys=True))`; traces sharing inputs merge into one record
(outputs and source from the latest trace, tags dict-merged in request order). Each build is
made from the current assessments, so an overridden or deleted expectation leaves the dataset;
only `created_time` (and `updated_time` of unchanged records) carry over from the previous
version. When reviewers disagree on an expectation an adjudicator's gold value
(`feedback_pipeline.adjudication`) wins; without one the `disagreement` rule decides
(`DatasetConfig`): `latest` (default) or `majority` (the most frequent value for categorical
schemas, ties to the latest). The `disagreements` a build reports are those still unsettled.

Nested values are JSON text columns; what readers filter on is typed (`TABLE_SCHEMA`).
The Delta version of `evaluation_datasets/<name>` is the dataset version. `publish_version` builds
a candidate, gates it (`audit_dataset`) and commits it, with or without Dagster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from feedback_pipeline import adjudication
from feedback_pipeline.input_types import DISCRETE_TYPES, INPUT_TYPES, input_from_parameters
from feedback_pipeline.json_values import value_facts
from feedback_pipeline.schemas import current_schemas
from feedback_pipeline.utc import UTC_TIME
from feedback_pipeline.storage import read_bytes

TABLE_PREFIX = "evaluation_datasets"
TABLE_SCHEMA: dict[str, pl.DataType] = {
    "dataset_record_id": pl.String(),
    "inputs": pl.String(),
    "outputs": pl.String(),
    "expectations": pl.String(),
    "source": pl.String(),
    "tags": pl.String(),
    "expectation_assessment_ids": pl.String(),
    "trace_id": pl.String(),
    "session": pl.String(),
    "created_time": UTC_TIME,
    "updated_time": UTC_TIME,
}
CONTENT_COLUMNS = ["inputs", "outputs", "expectations", "source", "tags", "expectation_assessment_ids", "trace_id", "session"]
RULES = ("latest", "majority")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def table_name(dataset: str) -> str:
    """The lake table of a dataset; the name must be a plain identifier (letters, digits, `_.-`)."""
    if not isinstance(dataset, str) or not _NAME.match(dataset):
        raise ValueError(
            f"dataset name {dataset!r}: expected 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return f"{TABLE_PREFIX}/{dataset}"


@dataclass(frozen=True)
class DatasetConfig:
    """How one dataset is built.

    disagreement: `latest` (the most recently updated expectation wins) or `majority` (for
    expectation names whose label schema is categorical, categorical_list or pass_fail, or has
    no schema: the most frequent value, ties to the latest; other names use `latest`).
    include_outputs: copy the trace's response into `outputs` (MLflow's evaluate then scores it
    as it is; set False to re-run the app with `predict_fn`).
    """

    disagreement: Literal["latest", "majority"] = "latest"
    include_outputs: bool = True
    mlflow: MlflowDatasetTarget | None = None

    def __post_init__(self) -> None:
        if self.disagreement not in RULES:
            raise ValueError(f"disagreement {self.disagreement!r}: expected one of {', '.join(RULES)}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, dataset: str = "") -> DatasetConfig:
        values = dict(values or {})
        unknown = set(values) - {"disagreement", "include_outputs", "mlflow"}
        if unknown:
            raise ValueError(
                f"datasets config for {dataset!r}: unknown keys {sorted(unknown)}; expected disagreement, include_outputs, mlflow"
            )
        if "mlflow" in values:
            values["mlflow"] = MlflowDatasetTarget.from_mapping(values["mlflow"], dataset)
        return cls(**values)


@dataclass(frozen=True)
class MlflowDatasetTarget:
    """Where a dataset is also published: an MLflow evaluation dataset `name` in experiment `experiment_id`
    (on the server of FEEDBACK_MLFLOW_TRACKING_URI), written after the publish gate passed."""

    experiment_id: str
    name: str

    @classmethod
    def from_mapping(cls, values: object, dataset: str) -> MlflowDatasetTarget:
        if not isinstance(values, dict) or set(values) - {"experiment_id", "name"} or "experiment_id" not in values:
            raise ValueError(
                f"datasets config for {dataset!r}: mlflow is {values!r}: expected {{experiment_id: ID, name: NAME}} "
                "(name defaults to the dataset's)"
            )
        experiment_id = str(values["experiment_id"]).strip()
        if not experiment_id.isdigit():
            raise ValueError(f"datasets config for {dataset!r}: mlflow.experiment_id {experiment_id!r}: expected a numeric id")
        return cls(experiment_id, str(values.get("name") or dataset))


def config_path(root: str) -> str:
    """`FEEDBACK_DATASETS_CONFIG`, else `<FEEDBACK_HOME>/datasets.yaml`: a local path or a store URI."""
    return str(os.environ.get("FEEDBACK_DATASETS_CONFIG") or f"{root.rstrip('/')}/datasets.yaml")


def load_config(dataset: str, path: str | Path | None, storage_options: dict[str, str] | None = None) -> DatasetConfig:
    """The dataset's entry in a `datasets:` YAML file (`datasets: {NAME: {disagreement: majority}}`), or defaults.

    The file may sit on the object store beside the lake (`s3://…/datasets.yaml`), read with the
    same storage options."""
    data = None if path is None else read_bytes(str(path), storage_options or {})
    if data is None:
        return DatasetConfig()
    import yaml

    document = yaml.safe_load(data) or {}
    section = document.get("datasets") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: 'datasets' is {section!r}: expected a mapping of dataset name to settings")
    return DatasetConfig.from_mapping(section.get(dataset), dataset)


@dataclass
class DatasetBuild:
    """A candidate version: its records, the resolved expectation values and what changed."""

    name: str
    records: pl.DataFrame
    expectation_values: pl.DataFrame
    added: int
    updated: int
    removed: int
    disagreements: dict[str, int]
    coverage: dict[str, int]
    sessions: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class AuditResult:
    """The publish gate's verdict on a candidate: passed, and why not in words."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return "all checks passed" if self.passed else "; ".join(self.failures)


def _canonical_inputs(requests: pl.Series) -> pl.DataFrame:
    """Canonical inputs text and MLflow's record key for each distinct request JSON.

    The key must equal MLflow's `sha256(json.dumps(inputs, sort_keys=True))`, whose formatting
    only Python's json produces, so this runs once per distinct request (not per record).
    """
    distinct = requests.drop_nulls().unique()
    canonical = [json.dumps(json.loads(text), sort_keys=True) for text in distinct.to_list()]
    return pl.DataFrame(
        {
            "request": distinct,
            "inputs": canonical,
            "dataset_record_id": ["dr-" + hashlib.sha256(c.encode()).hexdigest()[:32] for c in canonical],
        },
        schema={"request": pl.String, "inputs": pl.String, "dataset_record_id": pl.String},
    )


def _json_key(column: str) -> pl.Expr:
    """A string column as a JSON string literal (quotes and escapes included)."""
    return pl.struct(k=pl.col(column)).struct.json_encode().str.slice(5).str.strip_suffix("}").alias(column)


def _json_object(frame: pl.DataFrame, by: str, key: str, value_json: str, alias: str) -> pl.DataFrame:
    """Rows (by, key, value_json) assembled into one JSON object text per `by`, keys sorted."""
    return (
        frame.sort(by, key)
        .with_columns(pl.concat_str([_json_key(key), pl.lit(":"), pl.col(value_json)]).alias("_pair"))
        .group_by(by, maintain_order=True)
        .agg(pl.col("_pair").str.join(","))
        .select(by, pl.concat_str([pl.lit("{"), pl.col("_pair"), pl.lit("}")]).alias(alias))
    )


def _merge_tags(traces: pl.DataFrame) -> pl.DataFrame:
    """Dict-merge the tags of the traces of each record, later traces (by request time) winning."""
    ids = traces.select("dataset_record_id").unique()
    tags = traces.select("dataset_record_id", "_order", pl.col("tags").fill_null("{}"))
    decoded = tags.get_column("tags").str.json_decode()
    fields = [f.name for f in decoded.dtype.fields] if isinstance(decoded.dtype, pl.Struct) else []
    if not fields:
        return ids.with_columns(pl.lit("{}").alias("tags"))
    wide = tags.with_columns(decoded.alias("_t")).unnest("_t")
    encoded = wide.select(
        "dataset_record_id",
        "_order",
        *[
            pl.when(pl.col(f).is_not_null())
            .then(pl.struct(pl.col(f).alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}"))
            .alias(f"_tag_{i}")
            for i, f in enumerate(fields)
        ],
    )
    names = pl.DataFrame({"variable": [f"_tag_{i}" for i in range(len(fields))], "tag": fields})
    long = (
        encoded.unpivot(index=["dataset_record_id", "_order"], variable_name="variable", value_name="value")
        .drop_nulls("value")
        .join(names, on="variable")
        .sort("_order")
        .group_by("dataset_record_id", "tag")
        .agg(pl.col("value").last())
    )
    merged = _json_object(long, "dataset_record_id", "tag", "value", "tags")
    return ids.join(merged, on="dataset_record_id", how="left").with_columns(pl.col("tags").fill_null("{}"))


def expectation_schemas(label_schemas: pl.DataFrame) -> pl.DataFrame:
    """The current expectation label schemas (`schemas.current_schemas`): name, input_type, input (JSON)."""
    current = current_schemas(label_schemas)
    return current.filter(pl.col("type") == "expectation").select("name", "input_type", pl.col("input").cast(pl.String))


def _adjudicated(values: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """The latest adjudication per (record, expectation name), the other values, and the unsettled
    disagreements per name: values that differ with no adjudication, or differ from the adjudicated
    value without being among the assessments it settled (answers that came after it)."""
    group = ["dataset_record_id", "assessment_name"]
    gold = (
        values.filter(pl.col("settles").is_not_null())
        .group_by(group, maintain_order=True)
        .agg(pl.col("value").last(), pl.col("assessment_id").last().alias("ids"), pl.col("settles").last())
    )
    plain = values.filter(pl.col("settles").is_null())
    settled = gold.select(*group, pl.col("value").alias("gold"), pl.col("settles").alias("settled"))
    open_rows = plain.join(settled, on=group, how="left").with_columns(
        pl.when(pl.col("gold").is_null())
        .then(pl.lit(None, pl.Boolean))
        .otherwise((pl.col("value") != pl.col("gold")) & ~pl.col("settled").list.contains(pl.col("assessment_id")))
        .alias("_open")
    )
    unsettled = open_rows.group_by(group).agg(
        (pl.col("value").n_unique() > 1).alias("differ"), pl.col("gold").is_not_null().any().alias("adjudicated"),
        pl.col("_open").any().alias("reopened"),
    ).filter(pl.when(pl.col("adjudicated")).then(pl.col("reopened").fill_null(False)).otherwise(pl.col("differ")))
    counts = {row["assessment_name"]: row["len"] for row in unsettled.group_by("assessment_name").len().sort("assessment_name").to_dicts()}
    return gold.select(*group, "value", pl.concat_list("ids").alias("ids")), plain, counts


def _resolve(values: pl.DataFrame, schemas: pl.DataFrame, config: DatasetConfig) -> tuple[pl.DataFrame, dict[str, int]]:
    """One value per (record, expectation name): the adjudicated one, else by the disagreement rule;
    plus the disagreements per name still unsettled."""
    group = ["dataset_record_id", "assessment_name"]
    values = values.sort("_when", "assessment_id")
    gold, values, disagreements = _adjudicated(values)
    resolved = _by_rule(values, schemas, config)
    return pl.concat([gold, resolved.join(gold.select(group), on=group, how="anti")], how="vertical"), disagreements


def _by_rule(values: pl.DataFrame, schemas: pl.DataFrame, config: DatasetConfig) -> pl.DataFrame:
    """One value per (record, expectation name) by the `latest` or `majority` rule."""
    group = ["dataset_record_id", "assessment_name"]
    latest = values.group_by(group).agg(
        pl.col("value").last(), pl.col("assessment_id").last().alias("ids"), pl.col("_when").last()
    ).with_columns(pl.concat_list("ids").alias("ids"))
    if config.disagreement == "latest":
        return latest.drop("_when")
    categorical = schemas.filter(pl.col("input_type").is_in(DISCRETE_TYPES)).get_column("name")
    typed = schemas.get_column("name")
    majority_names = values.filter(pl.col("assessment_name").is_in(categorical) | ~pl.col("assessment_name").is_in(typed))
    counted = (
        majority_names.group_by(*group, "value")
        .agg(pl.len().alias("votes"), pl.col("_when").max(), pl.col("assessment_id").alias("ids"))
        .sort("votes", "_when", "value")
        .group_by(group, maintain_order=True)
        .last()
        .select(*group, "value", "ids")
    )
    rest = latest.drop("_when").join(counted.select(group), on=group, how="anti")
    return pl.concat([counted, rest], how="vertical")


def build_dataset(
    name: str,
    *,
    traces: pl.DataFrame,
    assessments: pl.DataFrame,
    labeling_sessions: pl.DataFrame,
    session_items: pl.DataFrame,
    label_schemas: pl.DataFrame,
    previous: pl.DataFrame | None,
    now: datetime,
    config: DatasetConfig | None = None,
) -> DatasetBuild:
    """The candidate version of dataset `name` from the lake's tables, diffed against `previous`."""
    config = config or DatasetConfig()
    table_name(name)
    sessions = labeling_sessions.filter(pl.col("dataset") == name)
    if "deleted" in sessions.columns:
        sessions = sessions.filter(~pl.col("deleted").fill_null(False))
    items = (
        session_items.join(sessions.select(pl.col("labeling_session_id").alias("session_id")), on="session_id")
        .group_by("trace_id")
        .agg(pl.col("session_name").min().alias("session"))
    )
    trace_cols = traces.select(
        "trace_id",
        "request",
        "response",
        pl.col("tags") if "tags" in traces.columns else pl.lit("{}").alias("tags"),
        pl.col("request_time") if "request_time" in traces.columns else pl.lit(None, UTC_TIME).alias("request_time"),
    )
    members = items.join(trace_cols, on="trace_id").filter(pl.col("request").is_not_null())
    keys = _canonical_inputs(members.get_column("request"))
    members = (
        members.join(keys, on="request")
        .sort("request_time", "trace_id", nulls_last=False)
        .with_row_index("_order")
    )
    schemas = expectation_schemas(label_schemas)

    values = assessments.filter(
        (pl.col("kind") == "expectation")
        & pl.col("valid").fill_null(True)
        & (pl.col("source_type").str.to_uppercase() == "HUMAN")
    ).join(members.select("trace_id", "dataset_record_id"), on="trace_id")
    values = values.select(
        "dataset_record_id",
        "assessment_name",
        "assessment_id",
        pl.col("assessment_value").str.strip_chars().alias("value"),
        pl.coalesce("updated_at", "created_at").alias("_when"),
        (adjudication.settles() if "metadata" in values.columns else pl.lit(None, pl.List(pl.String))).alias("settles"),
    )
    resolved, disagreements = _resolve(values, schemas, config)

    latest_trace = members.unique("dataset_record_id", keep="last", maintain_order=True)
    expectations = _json_object(resolved, "dataset_record_id", "assessment_name", "value", "expectations")
    id_arrays = (
        resolved.select("dataset_record_id", "assessment_name", "ids")
        .explode("ids")
        .sort("dataset_record_id", "assessment_name", "ids")
        .group_by("dataset_record_id", "assessment_name", maintain_order=True)
        .agg(_json_key("ids").str.join(",").alias("ids"))
        .with_columns(pl.concat_str([pl.lit("["), pl.col("ids"), pl.lit("]")]).alias("ids"))
    )
    ids_json = _json_object(id_arrays, "dataset_record_id", "assessment_name", "ids", "expectation_assessment_ids")
    records = (
        latest_trace.drop("tags")
        .join(_merge_tags(members.select("dataset_record_id", "_order", "tags")), on="dataset_record_id")
        .join(expectations, on="dataset_record_id")
        .join(ids_json, on="dataset_record_id")
        .select(
            "dataset_record_id",
            "inputs",
            (pl.col("response") if config.include_outputs else pl.lit(None, pl.String)).alias("outputs"),
            pl.col("expectations").fill_null("{}"),
            pl.struct("trace_id", "session").struct.json_encode().alias("source"),
            "tags",
            pl.col("expectation_assessment_ids").fill_null("{}"),
            "trace_id",
            "session",
        )
    )
    return _diff(name, records, resolved, previous, now, disagreements, sessions)


def _diff(
    name: str,
    records: pl.DataFrame,
    resolved: pl.DataFrame,
    previous: pl.DataFrame | None,
    now: datetime,
    disagreements: dict[str, int],
    sessions: pl.DataFrame,
) -> DatasetBuild:
    """Carry created/updated times over from `previous` and count what was added, updated, removed."""
    stamp = pl.lit(now, UTC_TIME)
    if previous is None or previous.height == 0:
        previous = pl.DataFrame(schema=TABLE_SCHEMA)
    before = previous.select("dataset_record_id", *[pl.col(c).alias(f"_prev_{c}") for c in CONTENT_COLUMNS], "created_time", "updated_time")
    joined = records.join(before, on="dataset_record_id", how="left")
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"_prev_{c}")) for c in CONTENT_COLUMNS])
    is_new = pl.col("created_time").is_null()
    joined = joined.with_columns(is_new.alias("_new"), (~is_new & ~same).alias("_updated"))
    candidate = joined.select(
        *[pl.col(c).cast(TABLE_SCHEMA[c]) for c in TABLE_SCHEMA if c not in ("created_time", "updated_time")],
        pl.when(pl.col("_new")).then(stamp).otherwise(pl.col("created_time")).alias("created_time"),
        pl.when(pl.col("_new") | pl.col("_updated")).then(stamp).otherwise(pl.col("updated_time")).alias("updated_time"),
    ).sort("dataset_record_id")
    removed = previous.join(records.select("dataset_record_id"), on="dataset_record_id", how="anti").height
    coverage = {
        row["assessment_name"]: row["len"]
        for row in resolved.group_by("assessment_name").len().sort("assessment_name").to_dicts()
    }
    return DatasetBuild(
        name=name,
        records=candidate,
        expectation_values=resolved.select("dataset_record_id", "assessment_name", "value"),
        added=int(joined.get_column("_new").sum()),
        updated=int(joined.get_column("_updated").sum()),
        removed=removed,
        disagreements=disagreements,
        coverage=coverage,
        sessions=sorted(sessions.get_column("name").to_list()) if "name" in sessions.columns else [],
    )


def _value_checks(values: pl.DataFrame, schemas: pl.DataFrame) -> pl.DataFrame:
    """Per (record, expectation) value: its schema's input and the JSON facts its expectations read."""
    return value_facts(values.join(schemas, left_on="assessment_name", right_on="name", how="inner"))


def audit_dataset(build: DatasetBuild, label_schemas: pl.DataFrame) -> AuditResult:
    """The publish gate: Great Expectations on the candidate before it becomes the current version.

    Blocks when inputs are missing or empty, when a record key repeats, or when an expectation
    value does not meet its label schema's input type (`input_types`: its expectations).
    """
    from feedback_pipeline.suites import great_expectations, validate_frame

    gx = great_expectations()
    checks = _value_checks(build.expectation_values, expectation_schemas(label_schemas))
    failures: list[str] = []
    statistics: dict[str, Any] = {"records": build.records.height, "expectation_values": build.expectation_values.height}

    def run(asset: str, frame: pl.DataFrame, expectations: list[tuple[str, Any, pl.Expr | None]]) -> None:
        if frame.height == 0:
            return
        result = validate_frame(frame, [expectation for _, expectation, _ in expectations], asset)
        statistics[asset] = {"evaluated": result.statistics["evaluated_expectations"], "failed": result.statistics["unsuccessful_expectations"]}
        for (why, _, offending), outcome in zip(expectations, result.results, strict=True):
            if not outcome.success:
                count = outcome.result.get("unexpected_count")
                sample = outcome.result.get("partial_unexpected_list") or []
                if offending is not None:
                    sample = checks.filter(offending).select("dataset_record_id", "value").head(3).rows()
                failures.append(f"{why}: {count} rows, e.g. {sample[:3]}" if count is not None else why)

    records = build.records.select("dataset_record_id", "inputs")
    run(
        "records",
        records,
        [
            ("inputs missing", gx.expectations.ExpectColumnValuesToNotBeNull(column="inputs"), None),
            ("inputs empty", gx.expectations.ExpectColumnValuesToNotBeInSet(column="inputs", value_set=["{}", "null", '""', "[]"]), None),
            ("record key missing", gx.expectations.ExpectColumnValuesToNotBeNull(column="dataset_record_id"), None),
            ("duplicate record keys (dataset_record_id)", gx.expectations.ExpectColumnValuesToBeUnique(column="dataset_record_id"), None),
        ],
    )
    typed = checks.filter(pl.col("input_type").is_in(INPUT_TYPES))
    for row in typed.select("assessment_name", "input_type", "input").unique("assessment_name").sort("assessment_name").to_dicts():
        name = row["assessment_name"]
        required = input_from_parameters(row["input_type"], json.loads(row["input"] or "{}")).expectations()
        values = checks.filter(pl.col("assessment_name") == name)
        run(
            f"expectation_values:{name}",
            values.select(requirement.values.alias(requirement.column) for requirement in required),
            [(f"expectation {name!r}: {requirement.requirement}", requirement.gx(gx),
              (pl.col("assessment_name") == name) & requirement.fails) for requirement in required],
        )
    return AuditResult(passed=not failures, failures=failures, statistics=statistics)


def build_metadata(build: DatasetBuild, audit: AuditResult, version: int | None) -> dict[str, Any]:
    """What a materialization reports: version, counts, coverage, disagreements and a preview."""
    preview = build.records.head(5).select(
        "dataset_record_id", pl.col("inputs").str.slice(0, 60), pl.col("expectations").str.slice(0, 80)
    )
    header = "| " + " | ".join(preview.columns) + " |\n|" + "---|" * len(preview.columns) + "\n"
    rows = "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n" for row in preview.rows())
    return {
        "dataset": build.name,
        "delta_version": version,
        "dataset_version": version,
        "record_count": build.records.height,
        "added": build.added,
        "updated": build.updated,
        "removed": build.removed,
        "changed": build.changed,
        "coverage": {name: count for name, count in build.coverage.items()},
        "disagreements": dict(build.disagreements),
        "disagreement_total": sum(build.disagreements.values()),
        "sessions": ", ".join(build.sessions),
        "gate": audit.message,
        "preview": header + rows,
    }


EXPORT_FORMATS = ("jsonl", "parquet", "csv")
JSON_COLUMNS = ("inputs", "outputs", "expectations", "source", "tags", "expectation_assessment_ids")


class EvaluationDataset:
    """One version of a dataset, read from its Delta table: frames and MLflow-ready records."""

    def __init__(self, name: str, version: int, frame: pl.DataFrame) -> None:
        self.name = name
        self.version = version
        self._frame = frame

    def __repr__(self) -> str:
        return f"EvaluationDataset({self.name!r}, version={self.version}, records={self._frame.height})"

    def __len__(self) -> int:
        return self._frame.height

    def to_polars(self) -> pl.DataFrame:
        """The stored table: JSON text columns plus the typed ones."""
        return self._frame.clone()

    def to_pandas(self) -> Any:
        """`records(full=True)` as a pandas frame (values MLflow's `merge_records` accepts)."""
        import pandas as pd

        return pd.DataFrame(self.records(full=True))

    def to_df(self) -> Any:
        """MLflow's `EvaluationDataset.to_df()`: inputs, outputs, expectations, tags, source_type, source_id,
        source, created_time, dataset_record_id."""
        import pandas as pd

        rows = self.records(full=True)
        columns = ["inputs", "outputs", "expectations", "tags", "source_type", "source_id", "source",
                   "created_time", "dataset_record_id"]
        frame = pd.DataFrame(
            [{**row, "source_type": row["source"]["source_type"], "source_id": row["source"]["source_data"]["trace_id"]}
             for row in rows],
            columns=columns,
        )
        frame["created_time"] = pd.to_datetime(frame["created_time"], utc=True)
        return frame

    def records(self, full: bool = False) -> list[dict[str, Any]]:
        """Dicts with `inputs`, `outputs`, `expectations` (decoded): pass to `mlflow.genai.evaluate(data=...)`.

        With `full=True` also `dataset_record_id`, `tags`, `source` in MLflow's record shape
        (`{"source_type": "TRACE", "source_data": {"trace_id", "session"}}`), `expectation_assessment_ids`
        and the times as ISO-8601 text: every value JSON-serialisable, so `merge_records` accepts
        them as they are. Records without outputs leave the key out, so `predict_fn` may be used.
        """
        columns = ["inputs", "outputs", "expectations"]
        if full:
            columns = ["dataset_record_id", *JSON_COLUMNS, "created_time", "updated_time"]
        frame = self._frame.with_columns(
            pl.col("created_time", "updated_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
        data = {c: frame.get_column(c).to_list() for c in columns}
        decoded = {c: [None if v is None else json.loads(v) for v in data[c]] if c in JSON_COLUMNS else data[c] for c in columns}
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*decoded.values(), strict=True)]
        if full:
            for row in rows:
                row["source"] = mlflow_record_source(row["source"])
        else:
            for row in rows:
                if row["outputs"] is None:
                    del row["outputs"]
        return rows

    def export(self, path: str | Path, fmt: str, *, overwrite: bool = False) -> Path:
        """Write this version to `path` as `jsonl` (decoded records, MLflow's shape), `parquet` or `csv` (the table).

        An existing file is kept unless `overwrite` (`FileExistsError`), and a missing folder is not
        created (`FileNotFoundError`), so an earlier export is never lost to a typo.
        """
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"folder {str(path.parent)!r} of {str(path)!r} does not exist: create it first")
        try:
            handle = path.open("wb" if overwrite else "xb")
        except FileExistsError:
            raise FileExistsError(f"{str(path)!r} already exists: choose another file or overwrite it") from None
        with handle:
            if fmt == "jsonl":
                for record in self.records(full=True):
                    handle.write((json.dumps(record, ensure_ascii=False, default=str) + "\n").encode())
            elif fmt == "parquet":
                self._frame.write_parquet(handle)
            else:
                self._frame.write_csv(handle)
        return path


def mlflow_record_source(source: dict[str, Any]) -> dict[str, Any]:
    """Our stored `source` (`{"trace_id", "session"}`) as an MLflow dataset record source of type TRACE."""
    return {"source_type": "TRACE", "source_data": {k: v for k, v in source.items() if v is not None}}


def _lake(home: Any) -> Any:
    from feedback_pipeline.home import FeedbackHome

    return (home or FeedbackHome.from_env()).lake()


def load_evaluation_dataset(name: str, version: int | None = None, home: Any = None) -> EvaluationDataset:
    """Dataset `name` at Delta `version` (None: the current one), from `home` (default: the environment's).

    An unknown dataset or version raises `LookupError` naming the datasets or versions that exist.
    """
    lake = _lake(home)
    if not lake.exists(table_name(name)):
        known = ", ".join(list_evaluation_datasets(home)) or "none yet"
        raise LookupError(f"evaluation dataset {name!r} does not exist in {lake.uri} (datasets: {known})")
    if version is not None:
        versions = sorted(entry["version"] for entry in lake.history(table_name(name)))
        if version not in versions:
            raise LookupError(
                f"version {version} of evaluation dataset {name!r} does not exist: "
                f"expected one of {', '.join(map(str, versions))}"
            )
    table = lake.table(table_name(name), version=version)
    frame = pl.scan_delta(table).collect().sort("dataset_record_id")
    return EvaluationDataset(name, table.version(), frame)


def list_evaluation_datasets(home: Any = None) -> list[str]:
    """Names of the datasets written so far, sorted."""
    prefix = f"{TABLE_PREFIX}/"
    return [t[len(prefix) :] for t in _lake(home).tables() if t.startswith(prefix)]


def dataset_versions(name: str, home: Any = None) -> list[dict[str, Any]]:
    """The dataset's versions, newest first: version, timestamp and the commit's counts."""
    history = _lake(home).history(table_name(name))
    return [
        {
            "version": entry.get("version"),
            "timestamp": entry.get("timestamp"),
            "records": entry.get("record_count"),
            "added": entry.get("added"),
            "updated": entry.get("updated"),
            "removed": entry.get("removed"),
        }
        for entry in history
    ]


INPUT_TABLES = ("traces", "assessments", "labeling_sessions", "session_items", "label_schemas")
INPUT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "traces": {"trace_id": pl.String(), "request": pl.String(), "response": pl.String(), "tags": pl.String(), "request_time": UTC_TIME},
    "assessments": {
        "assessment_id": pl.String(), "trace_id": pl.String(), "assessment_name": pl.String(), "kind": pl.String(),
        "assessment_value": pl.String(), "source_type": pl.String(), "valid": pl.Boolean(), "metadata": pl.String(),
        "created_at": UTC_TIME, "updated_at": UTC_TIME,
    },
    "labeling_sessions": {"labeling_session_id": pl.String(), "name": pl.String(), "dataset": pl.String(), "deleted": pl.Boolean()},
    "session_items": {"session_id": pl.String(), "session_name": pl.String(), "trace_id": pl.String()},
    "label_schemas": {"name": pl.String(), "version": pl.Int64(), "type": pl.String(), "input_type": pl.String(), "input": pl.String(), "deleted": pl.Boolean()},
}


def source_fingerprint(lake: Any, config: DatasetConfig) -> str:
    """The versions of every input table and the build settings: equal fingerprints build equal datasets."""
    versions = {name: lake.version(name) for name in INPUT_TABLES}
    return json.dumps({**versions, "disagreement": config.disagreement, "include_outputs": config.include_outputs}, sort_keys=True)


def named_datasets(labeling_sessions: pl.DataFrame) -> list[str]:
    """The datasets live labeling sessions feed (their `dataset` column), sorted."""
    if labeling_sessions.height == 0 or "dataset" not in labeling_sessions.columns:
        return []
    frame = labeling_sessions.filter(pl.col("dataset").is_not_null() & (pl.col("dataset") != ""))
    if "deleted" in frame.columns:
        frame = frame.filter(~pl.col("deleted").fill_null(False))
    return sorted(frame.get_column("dataset").unique().to_list())


def _read_inputs(lake: Any, name: str) -> dict[str, pl.DataFrame]:
    """The input tables, narrowed to the traces of the dataset's sessions before the big tables are read."""
    frames = {t: lake.read(t, schema=INPUT_SCHEMAS[t]) for t in ("labeling_sessions", "session_items", "label_schemas")}
    sessions = frames["labeling_sessions"].filter(pl.col("dataset") == name).get_column("labeling_session_id")
    trace_ids = frames["session_items"].filter(pl.col("session_id").is_in(sessions.implode())).get_column("trace_id").unique()
    for big in ("traces", "assessments"):
        scan = lake.scan(big)
        frames[big] = (
            pl.DataFrame(schema=INPUT_SCHEMAS[big])
            if scan is None
            else scan.filter(pl.col("trace_id").is_in(trace_ids.implode())).collect()
        )
    return frames


@dataclass(frozen=True)
class PublishedVersion:
    """What `publish_version` did: the candidate, the gate's verdict, and the dataset's version after it."""

    build: DatasetBuild
    audit: AuditResult
    version: int | None
    committed: bool
    fingerprint: str

    @property
    def published(self) -> bool:
        """The gate passed: the dataset's current version is the candidate's content."""
        return self.audit.passed

    def metadata(self) -> dict[str, Any]:
        """What a materialization reports (`build_metadata`) plus the source fingerprint."""
        return {**build_metadata(self.build, self.audit, self.version), "source_fingerprint": self.fingerprint}


def publish_version(
    lake: Any, name: str, *, now: datetime, config: DatasetConfig | None = None, run_id: str | None = None
) -> PublishedVersion:
    """Build the candidate version of dataset `name`, run the publish gate, and when it passes commit the
    candidate as the next Delta version (only when its content changed), with its counts, the source
    fingerprint and `run_id` in the commit metadata. A failed gate writes nothing: the current version stays."""
    config = config or DatasetConfig()
    fingerprint = source_fingerprint(lake, config)
    inputs = _read_inputs(lake, name)
    previous = lake.read(table_name(name), schema=TABLE_SCHEMA)
    build = build_dataset(name, **inputs, previous=previous, now=now, config=config)
    audit = audit_dataset(build, inputs["label_schemas"])
    version = lake.version(table_name(name))
    committed = audit.passed and build.changed
    if committed:
        commit = {"record_count": build.records.height, "added": build.added, "updated": build.updated,
                  "removed": build.removed, "source_fingerprint": fingerprint}
        if run_id:
            commit["dagster_run_id"] = run_id
        version = lake.overwrite(table_name(name), build.records, commit_metadata=commit).version
    return PublishedVersion(build, audit, version, committed, fingerprint)
