"""Materialization metadata a person reads in the Dagster UI: breakdowns as markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> dg.MetadataValue:
    """A markdown table of `rows` under `columns`; `empty` when there is no row."""
    lines = ["| " + " | ".join(_cell(row_value) for row_value in row) + " |" for row in rows]
    if not lines:
        return dg.MetadataValue.md(empty)
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return dg.MetadataValue.md(header + "\n".join(lines))


def counts_table(label: str, counts: Mapping[str, int], what: str = "count") -> dg.MetadataValue:
    """A two-column table of per-name counts, largest first."""
    return markdown_table([label, what], sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def records_table(records: Sequence[Mapping[str, Any]]) -> dg.MetadataValue:
    """A table of dicts (their keys, in first-seen order, are the columns)."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    return markdown_table(columns, ([record.get(column, "") for column in columns] for record in records))
