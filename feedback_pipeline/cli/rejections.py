"""Printing a rejections table (`assessments rejections`, `traces rejections`): newest first, reasons in full."""

from __future__ import annotations

import click
import polars as pl


def echo_rejections(table: pl.DataFrame, columns: list[str], limit: int, what: str) -> None:
    """The `limit` latest rows of `table` (by `rejected_at`) with `columns`, then how many `what` there are."""
    with pl.Config(tbl_rows=limit, tbl_width_chars=160, fmt_str_lengths=100, tbl_hide_dataframe_shape=True):
        click.echo(table.sort("rejected_at", descending=True).select(columns).head(limit))
    click.echo(f"{table.height} {what}")
