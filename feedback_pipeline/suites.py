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

from feedback_pipeline.input_types import INPUT_TYPES, input_from_columns
from feedback_pipeline.json_values import value_facts
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

    `schemas` is `validation.latest_schemas(label_schemas)`; each schema's suite is its input type's
    expectations (`input_types`).
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
    # a feedback with an error has no value to check against its schema
    answered = pl.col("valid") & (pl.col("kind") != "skip") & pl.col("error").is_null()
    answers = value_facts(assessments.filter(answered), "assessment_value")
    live = schemas.filter(~pl.col("schema_deleted") & pl.col("input_type").is_in(INPUT_TYPES))
    for schema in live.iter_rows(named=True):
        rows = answers.filter(pl.col("assessment_name") == schema["name"])
        required = input_from_columns(schema).expectations()
        if rows.height:
            frame = rows.select(requirement.values.alias(requirement.column) for requirement in required)
            batches.append((f"schema:{schema['name']}", frame, [requirement.gx(gx) for requirement in required]))

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
