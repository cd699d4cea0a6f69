"""Great Expectations suites for the `assessments` table, derived from the label schemas.

One structural suite (ids present and unique, kinds and source types known) and one suite per
label schema on the valid answers to it (option membership, numeric bounds, text length, pass/fail).
Changing a schema changes its suite. GX has no polars support, so batches go in as pandas, with
only the columns their expectations read (GX fingerprints each batch, and list columns make it
pickle the whole frame); GX is imported lazily (it takes seconds) with its analytics off, and its
ephemeral context is made once per process (`validate_frame`), so a run validating a small batch
pays for the validation only.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from feedback_pipeline.json_values import NUMERIC_TYPES, value_facts
from feedback_pipeline.entities import SOURCE_TYPES
from feedback_pipeline.submission_contract import KINDS


@dataclass
class SuiteOutcome:
    """What the suites found: overall success and one entry per expectation that ran."""

    success: bool
    evaluated: int
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [result for result in self.results if not result["success"]]


def _expectations(gx: Any, schema: dict[str, Any]) -> list[Any]:
    """The expectations one label schema puts on the answers to it (columns from `value_facts`)."""
    expect = gx.expectations
    input_type = schema["input_type"]
    found: list[Any] = []
    if input_type == "categorical" and not schema.get("multi_select") and schema.get("options"):
        found.append(expect.ExpectColumnValuesToBeInSet(column="value_text", value_set=list(schema["options"])))
    elif input_type == "numeric":
        found.append(expect.ExpectColumnValuesToBeInSet(column="value_type", value_set=list(NUMERIC_TYPES)))
        if schema.get("min_value") is not None or schema.get("max_value") is not None:
            found.append(expect.ExpectColumnValuesToBeBetween(
                column="value_num", min_value=schema.get("min_value"), max_value=schema.get("max_value")))
    elif input_type == "text":
        found.append(expect.ExpectColumnValuesToBeInSet(column="value_type", value_set=["VARCHAR"]))
        if schema.get("max_length") is not None:
            found.append(expect.ExpectColumnValueLengthsToBeBetween(
                column="value_text", min_value=0, max_value=int(schema["max_length"])))
    elif input_type == "pass_fail":
        found.append(expect.ExpectColumnValuesToBeInSet(column="value_type", value_set=["BOOLEAN"]))
    elif input_type in ("categorical_list", "text_list"):
        found.append(expect.ExpectColumnValuesToBeInSet(column="value_type", value_set=["ARRAY"]))
        if input_type == "text_list" and schema.get("max_count") is not None:
            found.append(expect.ExpectColumnValuesToBeBetween(
                column="item_count", min_value=0, max_value=int(schema["max_count"])))
    return found


@functools.cache
def _whole_frame_batches() -> tuple[Any, Any]:
    """Great Expectations and a whole-dataframe batch definition on one ephemeral context, made once per process."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    definition = context.data_sources.add_pandas("feedback").add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")
    return gx, definition


def great_expectations() -> Any:
    """The `great_expectations` module, imported on first use."""
    return _whole_frame_batches()[0]


def validate_frame(frame: pl.DataFrame, expectations: list[Any], suite_name: str) -> Any:
    """Validate a polars frame (as pandas) against a suite of these expectations; GX's suite result."""
    gx, definition = _whole_frame_batches()
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    return definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()}).validate(suite, result_format="BASIC")


def check_assessments(assessments: pl.DataFrame, schemas: pl.DataFrame) -> SuiteOutcome:
    """Run the structural suite on every row and each label schema's suite on its valid answers.

    `schemas` is `assessments.latest_schemas(label_schemas)`.
    """
    gx = great_expectations()
    batches: list[tuple[str, pl.DataFrame, list[Any]]] = []
    expect = gx.expectations
    batches.append((
        "assessments",
        assessments.select("assessment_id", "trace_id", "assessment_name", "kind", "source_type", "valid"),
        [
            expect.ExpectColumnValuesToNotBeNull(column="assessment_id"),
            expect.ExpectColumnValuesToBeUnique(column="assessment_id"),
            expect.ExpectColumnValuesToNotBeNull(column="trace_id"),
            expect.ExpectColumnValuesToNotBeNull(column="assessment_name"),
            expect.ExpectColumnValuesToBeInSet(column="kind", value_set=list(KINDS)),
            expect.ExpectColumnValuesToBeInSet(column="source_type", value_set=list(SOURCE_TYPES)),
            expect.ExpectColumnValuesToNotBeNull(column="valid"),
        ],
    ))
    answers = value_facts(assessments.filter(pl.col("valid") & (pl.col("kind") != "skip")), "assessment_value")
    answers = answers.with_columns(pl.col("value_items").list.len().alias("item_count"))
    for schema in schemas.filter(~pl.col("schema_deleted")).iter_rows(named=True):
        rows = answers.filter(pl.col("assessment_name") == schema["name"])
        expectations = _expectations(gx, schema)
        if rows.height and expectations:
            columns = sorted({expectation.column for expectation in expectations})
            batches.append((f"schema:{schema['name']}", rows.select(columns), expectations))

    outcome = SuiteOutcome(success=True, evaluated=0)
    for label, frame, expectations in batches:
        result = validate_frame(frame, expectations, label)
        outcome.evaluated += frame.height
        outcome.success &= bool(result.success)
        for item in result.results:
            config = item.expectation_config
            outcome.results.append({
                "suite": label,
                "expectation": config.type,
                "column": config.kwargs.get("column"),
                "success": bool(item.success),
                "unexpected_count": int(item.result.get("unexpected_count") or 0),
                "sample": [str(v) for v in (item.result.get("partial_unexpected_list") or [])[:3]],
            })
    return outcome
