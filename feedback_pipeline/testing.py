"""Regression tests over an evaluation dataset pinned to a version.

    from feedback_pipeline.testing import dataset_records

    @pytest.mark.parametrize("record", dataset_records("summaries", version=3))
    def test_summary(record):
        assert my_app(**record["inputs"]) == record["expectations"]["expected_summary"]

Each record becomes one `pytest.param` whose id is its `dataset_record_id`, so a failure names
the record and `pytest -k dr-…` re-runs one. Pinning the version keeps the suite reproducible
while reviewers keep labelling.
"""

from __future__ import annotations

from typing import Any

import pytest

from feedback_pipeline.datasets import load_evaluation_dataset
from feedback_pipeline.home import FeedbackHome


def dataset_records(name: str, version: int | None, home: FeedbackHome | None = None, full: bool = False) -> list[Any]:
    """The records of dataset `name` at `version` as `pytest.param`s (ids: the record ids).

    `version=None` reads the current version; pass a number for a reproducible suite. Each
    record is a dict with `inputs`, `outputs` (when stored) and `expectations`, plus
    `dataset_record_id`, `tags`, `source` with `full=True`.
    """
    dataset = load_evaluation_dataset(name, version=version, home=home)
    ids = dataset.to_polars().get_column("dataset_record_id").to_list()
    return [pytest.param(record, id=record_id) for record, record_id in zip(dataset.records(full=full), ids, strict=True)]
