"""JSON values parsed in bulk by DuckDB: a connection in UTC and typed views of a JSON value column.

Validation and the Great Expectations suites read a value's JSON type, text, number and items from
here, so no Python loop parses a value per row.
"""

from __future__ import annotations

import polars as pl

NUMERIC_TYPES = ("UBIGINT", "BIGINT", "DOUBLE")


def duckdb_connection():  # noqa: ANN201 - duckdb is imported lazily
    """A DuckDB connection in UTC, for bulk JSON parsing (imported lazily: it is only needed here)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone='UTC'")
    return connection


_FACTS_SQL = """
select row_id, json_type(value) as value_type, json_extract_string(value, '$') as value_text,
       json_extract_string(value, '$[*]') as value_items, json_type(value, '$[*]') as item_types,
       json_type(value, '$.*') as member_types
from v
"""


def value_facts(frame: pl.DataFrame, column: str = "value") -> pl.DataFrame:
    """Typed views of a JSON value column (parsed in bulk by DuckDB): value_type (VARCHAR, BOOLEAN,
    UBIGINT, BIGINT, DOUBLE, ARRAY, OBJECT), value_text, value_num, value_items, item_types, member_types."""
    indexed = frame.with_row_index("row_id")
    present = indexed.select("row_id", pl.col(column).alias("value")).filter(pl.col("value").is_not_null())
    facts_schema = {"row_id": pl.UInt32, "value_type": pl.String, "value_text": pl.String,
                    "value_items": pl.List(pl.String), "item_types": pl.List(pl.String),
                    "member_types": pl.List(pl.String)}
    if present.height:
        connection = duckdb_connection()
        connection.register("v", present.to_arrow())
        facts = connection.sql(_FACTS_SQL).pl().cast(facts_schema)
        connection.close()
    else:
        facts = pl.DataFrame(schema=facts_schema)
    return (
        indexed.join(facts, on="row_id", how="left")
        .with_columns(
            pl.when(pl.col("value_type").is_in(NUMERIC_TYPES))
            .then(pl.col("value_text").cast(pl.Float64, strict=False))
            .alias("value_num")
        )
        .drop("row_id")
    )

