"""The Delta lake: explicit, idempotent writes to named tables, each reporting the version it made.

Tables are addressed by name (`traces`, `evaluation_datasets/<name>`). A write that would change
nothing (an empty frame, or a merge whose rows all match the table by key and content hash) makes
no new version, so re-running a job is a no-op in the table history as well as in its rows.

Several processes and hosts may write one table at once. A table is created atomically with its
first batch (Delta's put-if-absent commit of version 0); a writer that loses that race merges its
batch into the winner's table instead, so two first writers cannot both append the same rows. A commit that loses a race to a concurrent
transaction (`CommitFailedError`) is retried with bounded, jittered backoff: the write re-reads
the table and re-derives what it sends, so the retry never repeats rows the winner wrote.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from feedback_pipeline.storage import delta_options, filesystem

COMMIT_ATTEMPTS = 12
BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 4.0
T = TypeVar("T")


class ConcurrentWriteError(RuntimeError):
    """A write lost its commit to concurrent writers COMMIT_ATTEMPTS times in a row."""


def retry_commit(name: str, write: Callable[[], T]) -> T:
    """Run `write` (which must re-read what it depends on) until its commit is not beaten by a
    concurrent transaction: up to COMMIT_ATTEMPTS times, sleeping a jittered, doubling backoff."""
    attempt = 0
    while True:
        try:
            return write()
        except CommitFailedError as exc:
            attempt += 1
            if attempt == COMMIT_ATTEMPTS:
                raise ConcurrentWriteError(
                    f"write to {name!r}: {COMMIT_ATTEMPTS} commits in a row lost to concurrent writers ({exc})"
                ) from exc
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**attempt)
            time.sleep(delay * random.uniform(0.5, 1.5))


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

    def _commit(self, metadata: dict[str, str] | None, max_retries: int | None = None) -> CommitProperties | None:
        if not metadata and max_retries is None:
            return None
        custom = {k: str(v) for k, v in metadata.items()} if metadata else None
        return CommitProperties(custom_metadata=custom, max_commit_retries=max_retries)

    def _create(
        self, name: str, frame: pl.DataFrame, partition_by: list[str] | None, commit_metadata: dict[str, str] | None
    ) -> WriteResult | None:
        """Create the table holding `frame` (its first version), or None when it already exists:
        of two writers creating it at once one commits version 0, the other gets None. The creation
        commit is not retried by delta-rs: a retry would land the loser's rows as version 1 of the
        winner's table (seen on S3, where the race window is wide), so the loser merges instead."""
        if self.exists(name):
            return None
        try:
            write_deltalake(
                self.table_uri(name),
                frame.to_arrow(),
                mode="error",
                partition_by=partition_by,
                storage_options=self.delta_options,
                commit_properties=self._commit(commit_metadata, max_retries=0),
            )
        except (CommitFailedError, DeltaError):
            if not self.exists(name):
                raise
            return None
        return WriteResult(name, self.version(name), frame.height, rows_inserted=frame.height)

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
        created = self._create(name, frame, partition_by, commit_metadata)
        if created is not None:
            return created

        def write() -> WriteResult:
            write_deltalake(
                self.table_uri(name),
                frame.to_arrow(),
                mode="append",
                schema_mode="merge",
                storage_options=self.delta_options,
                commit_properties=self._commit(commit_metadata),
            )
            return WriteResult(name, self.version(name), frame.height, rows_inserted=frame.height)

        return retry_commit(name, write)

    def overwrite(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        predicate: str | None = None,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Replace the whole table, or only the rows matching `predicate` (SQL, e.g. "day = '2026-11-22'");
        concurrent replacements of the same rows: the last to commit wins."""

        def write() -> WriteResult:
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

        return retry_commit(name, write)

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
        partitioned table commit concurrently without conflict: delta-rs prunes target files only
        by a predicate on partition columns (a key predicate alone reads the whole table). An
        insert-only merge still looks for its keys in the whole table (its key columns only), so a
        key first written in another partition stays the first write.
        """
        if frame.height == 0:
            return WriteResult(name, self.version(name), 0)
        duplicated = frame.select(on).is_duplicated()
        if duplicated.any():
            sample = frame.filter(duplicated).select(on).unique().head(3).to_dicts()
            raise ValueError(f"merge into {name!r}: the batch repeats the key {on} (for example {sample})")
        created = self._create(name, frame, partition_by, commit_metadata)
        if created is not None:
            return created
        predicate = " AND ".join([f"t.`{c}` = s.`{c}`" for c in on] + [_within(c, v) for c, v in (within or {}).items()])

        def write() -> WriteResult:
            table = self.table(name)
            if update and change_column is None:
                pending = frame
            else:
                pending = self.unseen(
                    name, frame, on=on, change_column=change_column if update else None, within=within if update else None
                )
            if pending.height == 0:
                return WriteResult(name, table.version(), 0)
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

        return retry_commit(name, write)

    def unseen(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        on: list[str],
        change_column: str | None = None,
        within: dict[str, str | list[str]] | None = None,
    ) -> pl.DataFrame:
        """The rows of `frame` whose key (and `change_column`, when given) is not in the table yet.

        Only the table's rows in the `within` partitions whose first key column is one of the
        frame's are read (and only the compared columns), so the cost follows the frame."""
        table = self.table(name)
        if table is None:
            return frame
        compare = on + ([change_column] if change_column else [])
        keys = frame[on[0]].unique()
        where = pl.col(on[0]).is_in(keys.drop_nulls().implode())
        if keys.null_count():
            where |= pl.col(on[0]).is_null()
        for column, values in (within or {}).items():
            where &= pl.col(column).cast(pl.String).is_in([values] if isinstance(values, str) else values)
        existing = pl.scan_delta(table).filter(where).select(compare).collect()
        return frame.join(existing, on=compare, how="anti", nulls_equal=True)

    def tables(self) -> list[str]:
        """Names of the Delta tables under the root (nested ones like `evaluation_datasets/x` included)."""
        fs, root = filesystem(self.uri, self.storage_options)
        root = root.rstrip("/")
        found = []
        for pattern in (f"{root}/*/_delta_log", f"{root}/*/*/_delta_log"):
            for log in fs.glob(pattern):
                found.append(log.rstrip("/")[len(root) + 1 : -len("/_delta_log")])
        return sorted(found)

    def delete(
        self,
        name: str,
        predicate: str,
        *,
        within: dict[str, str | list[str]] | None = None,
        commit_metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Delete the rows matching a SQL predicate (in the `within` partitions only, which then are all
        the delete reads); no version is made when none match."""
        if not self.exists(name):
            return WriteResult(name, None, 0)
        predicate = " AND ".join([f"({predicate})"] + [_within(c, v, alias="") for c, v in (within or {}).items()])

        def write() -> WriteResult:
            metrics = self.table(name).delete(predicate, commit_properties=self._commit(commit_metadata))
            deleted = int(metrics.get("num_deleted_rows", 0))
            return WriteResult(name, self.version(name), 0, rows_deleted=deleted)

        return retry_commit(name, write)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _within(column: str, values: str | list[str], alias: str = "t.") -> str:
    """The restriction `t.column = 'v'` or `t.column IN ('v', ...)` of a merge's target (or, without
    the alias, of a delete)."""
    if isinstance(values, str):
        return f"{alias}`{column}` = {_sql_text(values)}"
    if not values:
        raise ValueError(f"within {column!r}: expected at least one value, got an empty list")
    return f"{alias}`{column}` IN ({', '.join(_sql_text(v) for v in values)})"
