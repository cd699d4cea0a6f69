"""Reading MLflow trace exports (what `Trace.to_json()` and `search_traces` users save) into the landing zone,
and from there into the `traces` table.

Accepted: one trace as JSON (pretty or not), JSONL (one trace per line), a JSON array of traces,
each optionally gzip-compressed, folders of such files (recursively) and standard input. A file
that is not UTF-8 text (other compression, binary data, another encoding) is refused whole at the
door with the reason, and an import of several files goes on past it. JSONL lines are landed verbatim, so a
rejection names the line of the file the user gave us; array items are numbered like lines.
Each landing file carries the request-date range of its traces and the source's name in its label.
Ingestion reads landing files in batches of bounded size, so memory stays flat however many arrive.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl

from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import (
    LandingKey,
    LandingZone,
    TextCheck,
    compression_of,
    land_derived,
    record_processed,
    slug,
)
from feedback_pipeline.revalidation import after_traces_arrived
from feedback_pipeline.traces import REJECTIONS_SCHEMA, parse_mlflow_traces, request_dates

CHUNK_LINES = 10_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
EXPORT_SUFFIXES = (".json", ".jsonl", ".ndjson")
CHECK_BLOCK_BYTES = 1024 * 1024
STDIN_SPOOL_BYTES = 64 * 1024 * 1024
TRACE_REJECTIONS = "trace_rejections"


@dataclass(frozen=True)
class TraceFileLabel:
    """What a trace landing file's label says: the request-date range, the source and the first line's offset."""

    first_date: str
    last_date: str
    source: str
    line_offset: int

    def render(self) -> str:
        return f"{self.first_date}_{self.last_date}_{slug(self.source)}.L{self.line_offset}"

    @classmethod
    def parse(cls, key: str) -> TraceFileLabel:
        label = LandingKey.parse(key).label
        try:
            first, last, rest = label.split("_", 2)
            source, _, offset = rest.rpartition(".L")
            return cls(first, last, source, int(offset))
        except ValueError:
            raise ValueError(f"trace landing key {key!r}: {MISNAMED}") from None

    @classmethod
    def of(cls, key: str) -> TraceFileLabel | None:
        """The label of a trace landing key, or None when its name is not in the landing format."""
        try:
            return cls.parse(key)
        except ValueError:
            return None


MISNAMED = (
    "name not in the landing format: expected <time_ns>-<hex>_<first-date>_<last-date>_<source>.L<offset>.jsonl "
    "(land trace exports with `feedback-pipeline traces import`)"
)


@dataclass
class ImportSummary:
    """What an import landed."""

    files: int = 0
    traces: int = 0
    landing_keys: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


class RefusedExport(ValueError):
    """An export file that cannot be landed as it is; the message says why and what to do."""


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files named, and export files found recursively in folders named; `-` stays as standard input."""
    found: list[str] = []
    for raw in paths:
        if raw == "-":
            found.append(raw)
            continue
        path = Path(raw)
        if path.is_dir():
            found.extend(str(p) for p in sorted(path.rglob("*")) if p.is_file() and _is_export_name(p.name))
        elif path.is_file():
            found.append(str(path))
        else:
            raise FileNotFoundError(f"path {raw!r}: no such file or folder")
    return found


def _is_export_name(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(EXPORT_SUFFIXES)


def open_export(stream: BinaryIO) -> BinaryIO:
    """A seekable stream of the export's text: gzip is decompressed, standard input is spooled.

    The whole export is checked first (`TextCheck`), so a file that is not UTF-8 text is refused
    before any of it lands; raises `RefusedExport` with the reason."""
    if not stream.seekable():
        spool = tempfile.SpooledTemporaryFile(max_size=STDIN_SPOOL_BYTES)  # noqa: SIM115 - the caller closes it
        shutil.copyfileobj(stream, spool)
        spool.seek(0)
        stream = spool
    head = stream.read(8)
    stream.seek(0)
    if compression_of(head) == "gzip":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    check = TextCheck()
    try:
        while block := stream.read(CHECK_BLOCK_BYTES):
            if check.feed(block):
                break
        check.feed(b"", final=True)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise RefusedExport(f"binary or compressed file: the gzip data is corrupt or cut short ({exc})") from None
    if check.problem:
        raise RefusedExport(check.problem)
    stream.seek(0)
    return stream


def _chunks_of_lines(stream: BinaryIO, first_line: bytes) -> Iterator[tuple[int, list[str]]]:
    offset, lines = 0, [first_line.decode("utf-8", errors="replace").rstrip("\r\n")]
    for raw in stream:
        lines.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        if len(lines) >= CHUNK_LINES:
            yield offset, lines
            offset, lines = offset + len(lines), []
    if lines:
        yield offset, lines


def trace_items(document: object) -> list:
    """The traces of one JSON document: an array, the `{"traces": [...]}` object `mlflow traces search
    --output json` writes, or one trace."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("traces"), list) and "info" not in document:
        return document["traces"]
    return [document]


def as_trace_document(item: object) -> object:
    """One trace in `Trace.to_dict()` shape, from the other shapes MLflow users hold.

    A `search_traces()` frame row saved as JSON (its `trace` column, a JSON text or object; or
    without it, its columns), and the REST API's `{"trace": {"trace_info": …, "spans"?}}` or
    `{"trace_info": …}`. Anything else is returned as it is, for the parser to accept or reject.
    """
    if not isinstance(item, dict) or "info" in item:
        return item
    trace = item.get("trace")
    if isinstance(trace, str):
        try:
            trace = json.loads(trace)
        except json.JSONDecodeError:
            return item
    if isinstance(trace, dict):
        return as_trace_document(trace) if "info" not in trace else trace
    if isinstance(item.get("trace_info"), dict):
        return {"info": item["trace_info"], "data": {"spans": item.get("spans") or item.get("data", {}).get("spans") or []}}
    if "trace_id" in item and "request_time" in item and isinstance(item.get("spans"), list):
        info = {k: item.get(k) for k in ("trace_id", "client_request_id", "state", "request_time", "trace_metadata",
                                          "tags", "assessments")}
        info["execution_duration_ms"] = item.get("execution_duration")
        return {"info": info, "data": {"spans": item["spans"]}}
    return item


def _converted_lines(stream: BinaryIO, first_line: bytes) -> Iterator[tuple[int, list[str]]]:
    """JSON lines of another trace shape (frame rows, REST answers), each rewritten as `Trace.to_dict()` JSON."""
    for offset, lines in _chunks_of_lines(stream, first_line):
        converted = []
        for line in lines:
            try:
                converted.append(json.dumps(as_trace_document(json.loads(line)), separators=(",", ":"), ensure_ascii=False))
            except json.JSONDecodeError:
                converted.append(line)
        yield offset, converted


def read_export(stream: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    """Split one export into (line offset, lines) chunks of one JSON document per line.

    A JSONL file streams through in chunks; a single JSON document or array is read whole and
    re-serialised compactly. Text that is none of these is passed on line by line, so the
    pipeline can reject each line with its number instead of losing the file.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    head = first.lstrip()
    if head.startswith(b"{"):
        try:
            document = json.loads(first)
        except json.JSONDecodeError:
            pass
        else:
            if trace_items(document) != [document]:
                pass  # a wrapper of many traces on one line: read below as one document
            elif isinstance(document, dict) and "info" not in document and as_trace_document(document) is not document:
                yield from _converted_lines(stream, first)
                return
            else:
                yield from _chunks_of_lines(stream, first)
                return
    rest = stream.read()
    text = (first + rest).decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        yield 0, text.splitlines()
        return
    items = [as_trace_document(item) for item in trace_items(document)]
    compact = [json.dumps(item, separators=(",", ":"), ensure_ascii=False) for item in items]
    for start in range(0, len(compact), CHUNK_LINES):
        yield start, compact[start : start + CHUNK_LINES]


def land_trace_lines(landing: LandingZone, lines: list[str], *, source: str, line_offset: int) -> str:
    """Land one chunk of trace lines, labelled with its request-date range."""
    dates = request_dates(pl.Series("raw", lines, dtype=pl.String)).drop_nulls()
    today = datetime.now(UTC).date().isoformat()
    first = dates.min().isoformat() if dates.len() else today
    last = dates.max().isoformat() if dates.len() else today
    label = TraceFileLabel(first, last, source, line_offset).render()
    return landing.write_lines("traces", lines, label=label)


def import_traces(
    paths: Iterable[str],
    landing: LandingZone,
    *,
    stdin: BinaryIO | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> ImportSummary:
    """Land every trace export under `paths` (`-` reads `stdin`); report each chunk to `on_progress`."""
    summary = ImportSummary()
    for path in expand_paths(paths):
        if path == "-":
            raw, source = stdin or sys.stdin.buffer, "stdin"
        else:
            raw, source = open(path, "rb"), Path(path).name.removesuffix(".gz")  # noqa: SIM115 - closed below
        try:
            stream = open_export(raw)
            for offset, lines in read_export(stream):
                key = land_trace_lines(landing, lines, source=source, line_offset=offset)
                summary.landing_keys.append(key)
                summary.traces += sum(1 for line in lines if line.strip())
                if on_progress:
                    on_progress(path, len(lines))
        except RefusedExport as exc:
            summary.refused[path] = str(exc)
            continue
        finally:
            if path != "-":
                raw.close()
        summary.files += 1
    return summary


def read_trace_lines(landing: LandingZone, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The non-blank lines of trace landing files, numbered as in the file the user imported, and
    the files quarantined instead: their name is not in the landing format or they are not UTF-8
    text (one `trace_rejections` row each, line_number 0, the reason a person can act on)."""
    labels = {key: TraceFileLabel.of(key) for key in keys}
    named = [key for key, label in labels.items() if label is not None]
    text = landing.read_text(named)
    offsets = pl.DataFrame(
        {"landing_key": named, "offset": [labels[key].line_offset for key in named]},
        schema={"landing_key": pl.String, "offset": pl.Int64},
    )
    lines = (
        text.lines.join(offsets, on="landing_key", how="left")
        .with_columns((pl.col("line_number") + pl.col("offset").fill_null(0)).alias("line_number"))
        .drop("offset")
        .filter(pl.col("raw").str.strip_chars() != "")
    )
    reasons = {key: MISNAMED for key, label in labels.items() if label is None} | text.refused
    quarantined = pl.DataFrame(
        {"landing_key": list(reasons), "reason": [f"file quarantined: {reason}" for reason in reasons.values()]},
        schema={"landing_key": pl.String, "reason": pl.String},
    ).select(
        "landing_key",
        pl.lit(0, pl.Int64).alias("line_number"),
        "reason",
        pl.lit("", pl.String).alias("raw"),
        pl.lit(datetime.now(UTC), dtype=REJECTIONS_SCHEMA["rejected_at"]).alias("rejected_at"),
    )
    return lines, quarantined


def landing_keys_for_days(lake: Lake, first_day: str, last_day: str) -> list[str]:
    """The landing files that hold the traces of a request-date range (what a backfill re-reads)."""
    scan = lake.scan("traces")
    if scan is None:
        return []
    days = pl.col("request_date").cast(pl.String)
    return (
        scan.filter(days.is_between(pl.lit(first_day), pl.lit(last_day)))
        .select(pl.col("landing_key").unique().sort())
        .collect()["landing_key"]
        .to_list()
    )


def label_dates(keys: list[str]) -> tuple[str, str] | None:
    """The request-date range covered by trace landing files, from their labels alone (None when no
    file is named in the landing format)."""
    labels = [label for key in keys if (label := TraceFileLabel.of(key)) is not None]
    if not labels:
        return None
    return min(label.first_date for label in labels), max(label.last_date for label in labels)


def counts_per_file(keys: list[str], lines: pl.DataFrame, rejections: pl.DataFrame) -> pl.DataFrame:
    """received / accepted / rejected lines per landing file (every key, empty files too)."""
    received = lines.group_by("landing_key").agg(pl.len().cast(pl.Int64).alias("received"))
    rejected = rejections.group_by("landing_key").agg(pl.len().cast(pl.Int64).alias("rejected"))
    return (
        pl.DataFrame({"landing_key": keys}, schema={"landing_key": pl.String})
        .join(received, on="landing_key", how="left")
        .join(rejected, on="landing_key", how="left")
        .with_columns(pl.col("received", "rejected").fill_null(0))
        .with_columns((pl.col("received") - pl.col("rejected")).alias("accepted"))
    )


@dataclass
class IngestReport:
    """What ingesting a set of trace landing files did; `*_version` are the last Delta versions written."""

    landing_files: int = 0
    batches: int = 0
    received: int = 0
    ingested: int = 0
    new_or_updated: int = 0
    rejected: int = 0
    quarantined: int = 0
    imported_assessments: int = 0
    revalidation_dates: int = 0
    delta_version: int | None = None
    rejections_delta_version: int | None = None


def batches_by_size(keys: list[str], sizes: list[int], max_bytes: int) -> list[list[str]]:
    """Consecutive runs of `keys` whose sizes add up to at most `max_bytes` (a larger file goes alone)."""
    batches: list[list[str]] = []
    total = max_bytes
    for key, size in zip(keys, sizes, strict=True):
        if total + size > max_bytes:
            batches.append([])
            total = 0
        batches[-1].append(key)
        total += size
    return batches


def ingest_trace_files(
    lake: Lake,
    landing: LandingZone,
    keys: list[str],
    *,
    run_id: str = "",
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> IngestReport:
    """Parse trace landing files into `traces` (merged on trace_id) and `trace_rejections`, batch by batch.

    Each batch is committed and recorded in `processed_files` before the next is read, so memory is
    bounded by `max_batch_bytes` of landing text, and an interrupted run keeps what it finished.
    """
    report = IngestReport(landing_files=len(keys))
    for batch in batches_by_size(keys, landing.sizes(keys), max_batch_bytes):
        _ingest_batch(lake, landing, batch, run_id, report)
    if report.delta_version is None:
        report.delta_version = lake.version("traces")
    return report


def _ingest_batch(lake: Lake, landing: LandingZone, keys: list[str], run_id: str, report: IngestReport) -> None:
    lines, quarantined = read_trace_lines(landing, keys)
    parsed = parse_mlflow_traces(lines)
    changed, dates = _changed_traces(lake, parsed.traces)
    imported = parsed.submissions.join(changed.select("trace_id", "landing_key"), on="trace_id", how="inner")
    if imported.height:
        land_derived(
            lake, landing, "submissions",
            imported.select(pl.col("landing_key").alias("source_key"), pl.col("submission").alias("line")),
            label="mlflow-import",
        )
    commit = {"dagster_run_id": run_id} if run_id else None
    written = lake.merge(
        "traces", changed, on=["trace_id"], partition_by=["request_date"],
        within={"request_date": dates} if dates else None, commit_metadata=commit,
    )
    report.revalidation_dates += after_traces_arrived(lake, changed)
    rejected = lake.merge(
        TRACE_REJECTIONS, pl.concat([parsed.rejections, quarantined]), on=["landing_key", "line_number"],
        change_column="reason", commit_metadata=commit,
    )
    record_processed(lake, "traces", counts_per_file(keys, lines, parsed.rejections), run_id)
    report.batches += 1
    report.received += lines.height
    report.ingested += parsed.traces.height
    report.new_or_updated += written.rows_written
    report.rejected += parsed.rejections.height
    report.quarantined += quarantined.height
    report.imported_assessments += imported.height
    report.delta_version = written.version
    report.rejections_delta_version = rejected.version


def _changed_traces(lake: Lake, traces: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The traces that are new or changed, and the request dates the merge must look at.

    Those dates are the new rows' and the dates the same trace_ids stand under now, so a merge
    restricted to them reads only those partitions and still finds every existing row.
    """
    scan = lake.scan("traces")
    if scan is None:
        return traces, []
    existing = scan.select("trace_id", "content_hash", pl.col("request_date").cast(pl.Date)).collect()
    changed = traces.join(existing, on=["trace_id", "content_hash"], how="anti")
    standing = existing.join(changed.select("trace_id"), on="trace_id", how="semi")["request_date"]
    dates = pl.concat([changed["request_date"], standing]).drop_nulls().unique().sort()
    return changed, dates.cast(pl.String).to_list()
