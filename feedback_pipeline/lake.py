"""The Delta lake: explicit, idempotent writes to named tables, each reporting the version it made.

Tables are addressed by name (`traces`, `evaluation_datasets/<name>`). A write that would change
nothing (an empty frame, or a merge whose rows all match the table by key and content hash) makes
no new version, so re-running a job is a no-op in the table history as well as in its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from feedback_pipeline.storage import delta_options, fsspec_options


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the table version after it, and how many rows it sent (0: no new version)."""

    table: str
    version: int | None
    rows_written: int
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0

    @property
    def changed(self) -> bool:
        return self.rows_written > 0 or self.rows_deleted > 0


class Lake:
    """A root URI of Delta tables and the storage options to reach it."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.delta_options = delta_options(self.uri, self.storage_options)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def table_uri(self, name: str) -> str:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"table name {name!r}: expected a relative name such as 'traces'")
        return f"{self.uri}/{name}"

    def table(self, name: str, version: int | None = None) -> DeltaTable | None:
        """The Delta table, or None when it was never written."""
        try:
            return DeltaTable(self.table_uri(name), version=version, storage_options=self.delta_options)
        except TableNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return DeltaTable.is_deltatable(self.table_uri(name), storage_options=self.delta_options)

    def version(self, name: str) -> int | None:
        table = self.table(name)
        return None if table is None else table.version()

    def scan(self, name: str, version: int | None = None) -> pl.LazyFrame | None:
        """A lazy scan of the table (at a version), or None when it was never written."""
        table = self.table(name, version)
        if table is None:
            return None
        return pl.scan_delta(table)

    def read(
        self,
        name: str,
        version: int | None = None,
        columns: list[str] | None = None,
        schema: dict[str, pl.DataType] | pl.Schema | None = None,
    ) -> pl.DataFrame:
        """The table as a frame; an empty frame of `schema` when the table does not exist yet."""
        scan = self.scan(name, version)
        if scan is None:
            empty = pl.DataFrame(schema=schema or {})
            return empty.select(columns) if columns else empty
        if columns:
            scan = scan.select(columns)
        return scan.collect()

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        table = self.table(name)
        return [] if table is None else table.history(limit)

    def _commit(self, metadata: dict[str, str] | None) -> CommitProperties | None:
        if not metadata:
            return None
        return CommitProperties(custom_metadata={k: str(v) for k, v in metadata.items()})

    def append(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Add rows; the table is created on first write, new columns are merged into its schema."""
        if frame.height == 0:
            return WriteResult(name, self.version(name), 0)
        write_deltalake(
            self.table_uri(name),
            frame.to_arrow(),
            mode="append",
            schema_mode="merge",
            partition_by=partition_by if not self.exists(name) else None,
            storage_options=self.delta_options,
            commit_properties=self._commit(commit_metadata),
        )
        return WriteResult(name, self.version(name), frame.height, rows_inserted=frame.height)

    def overwrite(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        predicate: str | None = None,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Replace the whole table, or only the rows matching `predicate` (SQL, e.g. "day = '2026-11-22'")."""
        write_deltalake(
            self.table_uri(name),
            frame.to_arrow(),
            mode="overwrite",
            predicate=predicate,
            schema_mode=None if predicate else "overwrite",
            partition_by=partition_by,
            storage_options=self.delta_options,
            commit_properties=self._commit(commit_metadata),
        )
        return WriteResult(name, self.version(name), frame.height, rows_inserted=frame.height)

    def merge(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        on: list[str],
        change_column: str | None = None,
        update: bool = True,
        partition_by: list[str] | None = None,
        within: dict[str, str | list[str]] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Upsert `frame` by the key columns `on`.

        With `change_column` (a content hash), rows whose key and hash already stand in the table
        are dropped before the merge, so an unchanged batch writes nothing. With `update=False`
        existing keys are left alone (insert-only: the first write of a key wins). `within`
        limits the merge to the target rows with these partition values (one value or a list),
        so a merge reads only those partitions, and merges into different partitions of a
        partitioned table commit concurrently without conflict.
        """
        if frame.height == 0:
            return WriteResult(name, self.version(name), 0)
        duplicated = frame.select(on).is_duplicated()
        if duplicated.any():
            sample = frame.filter(duplicated).select(on).unique().head(3).to_dicts()
            raise ValueError(f"merge into {name!r}: the batch repeats the key {on} (for example {sample})")
        table = self.table(name)
        if table is None:
            write_deltalake(
                self.table_uri(name),
                frame.to_arrow(),
                mode="append",
                partition_by=partition_by,
                storage_options=self.delta_options,
                commit_properties=self._commit(commit_metadata),
            )
            return WriteResult(name, self.version(name), frame.height, rows_inserted=frame.height)

        if update and change_column is None:
            pending = frame
        else:
            pending = self.unseen(name, frame, on=on, change_column=change_column if update else None)
        if pending.height == 0:
            return WriteResult(name, table.version(), 0)
        predicate = " AND ".join([f"t.`{c}` = s.`{c}`" for c in on] + [_within(c, v) for c, v in (within or {}).items()])
        merger = table.merge(
            pending.to_arrow(),
            predicate=predicate,
            source_alias="s",
            target_alias="t",
            merge_schema=True,
            commit_properties=self._commit(commit_metadata),
        )
        if update:
            merger = merger.when_matched_update_all()
        metrics = merger.when_not_matched_insert_all().execute()
        return WriteResult(
            name,
            self.version(name),
            pending.height,
            rows_inserted=int(metrics.get("num_target_rows_inserted", 0)),
            rows_updated=int(metrics.get("num_target_rows_updated", 0)),
        )

    def unseen(self, name: str, frame: pl.DataFrame, *, on: list[str], change_column: str | None = None) -> pl.DataFrame:
        """The rows of `frame` whose key (and `change_column`, when given) is not in the table yet."""
        table = self.table(name)
        if table is None:
            return frame
        compare = on + ([change_column] if change_column else [])
        existing = pl.scan_delta(table).select(compare).collect()
        return frame.join(existing, on=compare, how="anti", nulls_equal=True)

    def tables(self) -> list[str]:
        """Names of the Delta tables under the root (nested ones like `evaluation_datasets/x` included)."""
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(self.uri, **fsspec_options(self.storage_options))
        root = root.rstrip("/")
        found = []
        for pattern in (f"{root}/*/_delta_log", f"{root}/*/*/_delta_log"):
            for log in fs.glob(pattern):
                found.append(log.rstrip("/")[len(root) + 1 : -len("/_delta_log")])
        return sorted(found)

    def delete(self, name: str, predicate: str, *, commit_metadata: dict[str, str] | None = None) -> WriteResult:
        """Delete the rows matching a SQL predicate; no version is made when none match."""
        table = self.table(name)
        if table is None:
            return WriteResult(name, None, 0)
        metrics = table.delete(predicate, commit_properties=self._commit(commit_metadata))
        deleted = int(metrics.get("num_deleted_rows", 0))
        return WriteResult(name, self.version(name), 0, rows_deleted=deleted)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _within(column: str, values: str | list[str]) -> str:
    """The target-side restriction `t.column = 'v'` or `t.column IN ('v', ...)` of a merge."""
    if isinstance(values, str):
        return f"t.`{column}` = {_sql_text(values)}"
    if not values:
        raise ValueError(f"merge within {column!r}: expected at least one value, got an empty list")
    return f"t.`{column}` IN ({', '.join(_sql_text(v) for v in values)})"
