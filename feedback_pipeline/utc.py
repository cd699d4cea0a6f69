"""The one datetime type of the package: every table column holding a time is UTC, in microseconds."""

from __future__ import annotations

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")
