"""The landing zone: the append-only inbox every input passes through.

A file is written under a hidden temporary name and renamed into place (object stores: one PUT,
which is atomic), so a reader never sees half a file. Keys sort in arrival order:

    <area>/<YYYY-MM-DD>/<HH>/<time_ns:019d>-<6 hex>[_<label>].jsonl

which lets a sensor resume from a cursor key and list only the folders at or after it. The
`reservations` area (the Review App's short-lived slot reservations, many per minute) has one
folder per second instead of per hour (`<HHMMSS>`), so a reader that follows what landed in the
last seconds lists only small folders, and skips those whose `folder_version` has not changed.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import fsspec

from feedback_pipeline.storage import filesystem

if TYPE_CHECKING:
    import polars as pl

    from feedback_pipeline.lake import Lake

AREAS = ("traces", "submissions", "definitions", "reservations")
FOLDER_FORMATS = {"reservations": "%H%M%S"}
READ_CHUNK_BYTES = 64 * 1024 * 1024
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe rendering of `text` (for labels that carry a source name)."""
    return _LABEL_UNSAFE.sub("-", text).strip("-.")[:limit] or "x"


@dataclass(frozen=True)
class LandingKey:
    """The parts of a landing key."""

    key: str
    area: str
    day: str
    time_ns: int
    label: str

    @classmethod
    def parse(cls, key: str) -> LandingKey:
        parts = key.split("/")
        if len(parts) != 4 or not parts[3].endswith(".jsonl"):
            raise ValueError(f"landing key {key!r}: expected <area>/<YYYY-MM-DD>/<HH>/<name>.jsonl")
        stem = parts[3][: -len(".jsonl")]
        head, _, label = stem.partition("_")
        time_ns = head.split("-")[0]
        if not time_ns.isdigit():
            raise ValueError(f"landing key {key!r}: expected the file name to start with the arrival time in ns")
        return cls(key=key, area=parts[0], day=parts[1], time_ns=int(time_ns), label=label)

    @staticmethod
    def day_of(keys: pl.Expr) -> pl.Expr:
        """`parse(key).day` as a Date, for a column of landing keys (null where a key has no day folder)."""
        return keys.str.split("/").list.get(1, null_on_oob=True).str.to_date("%Y-%m-%d", strict=False)

    @staticmethod
    def time_of(keys: pl.Expr) -> pl.Expr:
        """`parse(key).time_ns` as a UTC datetime (us), for a column of landing keys."""
        import polars as pl

        nanoseconds = keys.str.split("/").list.get(3, null_on_oob=True).str.slice(0, 19).cast(pl.Int64, strict=False)
        return pl.from_epoch(nanoseconds, time_unit="ns").dt.replace_time_zone("UTC").dt.cast_time_unit("us")


COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def compression_of(head: bytes) -> str | None:
    """The compression format whose magic number `head` starts with, or None."""
    return next((name for magic, name in COMPRESSED_MAGIC.items() if head.startswith(magic)), None)


class TextCheck:
    """Whether a stream of bytes is UTF-8 text, fed block by block (a landing file, an export).

    `problem` is None while it is, else a reason a person can act on, naming the byte where the
    text stops being text: compressed or binary data, or bytes that are not UTF-8."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._offset = 0
        self._lines = 1

    def feed(self, block: bytes, final: bool = False) -> str | None:
        if self.problem is not None:
            return self.problem
        if self._offset == 0 and (kind := compression_of(block)):
            self.problem = f"binary or compressed file: {kind} data (decompress it and land the JSON text inside)"
        elif self._offset == 0 and block.startswith(UTF16_MARKS):
            self.problem = "not UTF-8 at byte 0: it starts with a UTF-16 byte-order mark; re-save it as UTF-8"
        elif (nul := block.find(b"\0")) >= 0:
            self.problem = f"binary or compressed file: a NUL byte at byte {self._offset + nul:,} (line {self._line(block, nul)}); expected JSON text"
        else:
            buffered = len(self._decoder.getstate()[0])
            try:
                self._decoder.decode(block, final)
            except UnicodeDecodeError as exc:
                at = max(exc.start - buffered, 0)
                self.problem = (
                    f"not UTF-8 at byte {self._offset + at:,} (line {self._line(block, at)}: "
                    f"{block[at : at + 4].hex(' ')}); expected UTF-8 text"
                )
        self._lines += block.count(b"\n")
        self._offset += len(block)
        return self.problem

    def _line(self, block: bytes, at: int) -> int:
        return self._lines + block.count(b"\n", 0, at)


def text_problem(data: bytes) -> str | None:
    """Why `data` is not UTF-8 text (see `TextCheck`), or None."""
    return TextCheck().feed(data, final=True)


@dataclass
class LandingText:
    """Landing files read as lines, and the files refused because they are not text (key -> reason)."""

    lines: pl.DataFrame
    refused: dict[str, str] = field(default_factory=dict)


class LandingWriteError(OSError):
    """A file could not be landed (disk full, no permission, store unreachable); nothing was left behind."""


class LandingZone:
    """A root URI (local folder or object store) holding one folder per area."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""
        self._local_root = _local_root(self.uri)

    def __repr__(self) -> str:
        return f"LandingZone({self.uri!r})"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs, self._root = filesystem(self.uri, self.storage_options)
        return self._fs

    @property
    def is_local(self) -> bool:
        return self._local_root is not None

    def path(self, key: str) -> str:
        """The storage path of a key (a local path, or a bucket path for object stores)."""
        if self._local_root is not None:
            return f"{self._local_root}/{key}"
        self.fs  # noqa: B018 - resolves _root
        return f"{self._root.rstrip('/')}/{key}"

    def full_uri(self, key: str) -> str:
        return f"{self.uri}/{key}"

    def new_key(self, area: str, label: str = "", when_ns: int | None = None) -> str:
        now_ns = time.time_ns() if when_ns is None else when_ns
        name = f"{now_ns:019d}-{secrets.token_hex(3)}"
        if label:
            name += f"_{label}"
        return f"{self.folder(area, now_ns)}/{name}.jsonl"

    @staticmethod
    def folder(area: str, time_ns: int) -> str:
        """The folder (a key prefix, no trailing slash) that keys made at `time_ns` land in."""
        return _folder_at(area, time_ns // 1_000_000_000)

    def folder_keys(self, folder: str) -> list[str]:
        """The keys of one folder (see `folder`), oldest first."""
        return [f"{folder}/{name}" for name in self._children(self.path(folder)) if _is_landed(name)]

    def folder_version(self, folder: str) -> int | None:
        """A number that changes whenever a file lands in `folder`: on a local disk its modification
        time in ns (0 while it does not exist); None where the store keeps none (object stores)."""
        if not self.is_local:
            return None
        try:
            return os.stat(self.path(folder)).st_mtime_ns
        except FileNotFoundError:
            return 0

    def write(self, area: str, data: bytes, *, label: str = "") -> str:
        """Land `data` as one new immutable file and return its key."""
        key = self.new_key(area, label)
        self.put(key, data)
        return key

    def put(self, key: str, data: bytes) -> None:
        """Write the file `key` whole or not at all: a full disk leaves no partial or temporary file
        and raises `LandingWriteError` naming the file and the cause."""
        target = self.path(key)
        try:
            if self.is_local:
                parent, name = target.rsplit("/", 1)
                os.makedirs(parent, exist_ok=True)
                temporary = f"{parent}/.{name}.{secrets.token_hex(4)}.tmp"
                try:
                    with open(temporary, "wb") as handle:
                        handle.write(data)
                    os.replace(temporary, target)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(temporary)
                    raise
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise LandingWriteError(
                f"landing zone {self.uri}: could not land {key} ({len(data):,} bytes): "
                f"{exc.strerror or exc}; nothing was written, free space (or fix the cause) and retry"
            ) from exc

    def exists(self, key: str) -> bool:
        if self.is_local:
            return os.path.exists(self.path(key))
        return bool(self.fs.exists(self.path(key)))

    def write_lines(self, area: str, lines: list[str], *, label: str = "") -> str:
        """Land JSON lines (each without its newline) as one file."""
        return self.write(area, jsonl_bytes(lines), label=label)

    def read_bytes(self, key: str) -> bytes:
        if self.is_local:
            with open(self.path(key), "rb") as handle:
                return handle.read()
        return self.fs.cat_file(self.path(key))

    def sizes(self, keys: list[str]) -> list[int]:
        """The size in bytes of each landing file, in the order of `keys`."""
        if self.is_local:
            return [os.path.getsize(self.path(key)) for key in keys]
        return [int(size) for size in self.fs.sizes([self.path(key) for key in keys])] if keys else []

    def read_lines(self, keys: list[str]) -> pl.DataFrame:
        """The lines of landing files as a frame: landing_key, line_number (1-based), raw.

        Bytes that are not UTF-8 read as U+FFFD, so each line can still be judged on its own;
        `read_text` refuses such files instead."""
        return self._read(keys, check=False).lines

    def read_text(self, keys: list[str]) -> LandingText:
        """Like `read_lines`, leaving out the files that are not UTF-8 text, with the reason for each."""
        return self._read(keys, check=True)

    def _read(self, keys: list[str], *, check: bool) -> LandingText:
        """Files are gathered into frames of about READ_CHUNK_BYTES, so thousands of one-line files
        cost one frame, and big files no more memory than one chunk of Python strings at a time."""
        import polars as pl

        refused: dict[str, str] = {}
        frames: list[pl.DataFrame] = []
        chunk_keys: list[str] = []
        counts: list[int] = []
        lines: list[str] = []
        size = 0
        for key in keys:
            data = self.read_bytes(key)
            if check and (problem := text_problem(data)):
                refused[key] = problem
                continue
            file_lines = data.decode("utf-8", errors="replace").split("\n")
            if file_lines and file_lines[-1] == "":
                file_lines.pop()
            chunk_keys.append(key)
            counts.append(len(file_lines))
            lines.extend(file_lines)
            size += len(data)
            if size >= READ_CHUNK_BYTES:
                frames.append(_lines_frame(chunk_keys, counts, lines))
                chunk_keys, counts, lines, size = [], [], [], 0
        frames.append(_lines_frame(chunk_keys, counts, lines))
        return LandingText(pl.concat(frames) if len(frames) > 1 else frames[0], refused)

    def _children(self, path: str, after: str = "") -> list[str]:
        """The sorted names in a folder that sort after `after` (those before are not sorted at all)."""
        if self.is_local:
            try:
                names = os.listdir(path)
            except FileNotFoundError:
                return []
        else:
            try:
                names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(path, detail=False)]
            except FileNotFoundError:
                return []
        return sorted(filter(after.__lt__, names) if after else names)

    def iter_keys(self, area: str, after: str | None = None) -> Iterator[str]:
        """Keys of an area in arrival order, strictly after the key `after` when given."""
        after_day = after_hour = None
        if after:
            parsed = after.split("/")
            after_day, after_hour = parsed[1], parsed[2]
        base = self.path(area)
        for day in self._children(base):
            if after_day and day < after_day:
                continue
            for hour in self._children(f"{base}/{day}"):
                if after_day and day == after_day and hour < after_hour:
                    continue
                cut = after.rsplit("/", 1)[-1] if after and day == after_day and hour == after_hour else ""
                names = self._children(f"{base}/{day}/{hour}", cut)
                # every name left sorts after the cursor: its folder does, or it follows the cursor's name
                folder = f"{area}/{day}/{hour}/"
                yield from [folder + name for name in names if _is_landed(name)]

    def list(self, area: str, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """At most `limit` keys of an area after the cursor key `after`, oldest first."""
        if limit is None:
            return list(self.iter_keys(area, after))
        keys: list[str] = []
        for key in self.iter_keys(area, after):
            keys.append(key)
            if limit is not None and len(keys) >= limit:
                break
        return keys


@functools.lru_cache(maxsize=1024)
def _folder_at(area: str, second: int) -> str:
    """`LandingZone.folder` of a whole second (readers of the reservations area ask for the same
    few seconds on every refresh)."""
    if area not in AREAS:
        raise ValueError(f"landing area {area!r}: expected one of {', '.join(AREAS)}")
    moment = datetime.fromtimestamp(second, tz=UTC)
    return f"{area}/{moment:%Y-%m-%d}/{moment.strftime(FOLDER_FORMATS.get(area, '%H'))}"


def _is_landed(name: str) -> bool:
    """Whether a file name in a landing folder is a landed file (not a hidden temporary one)."""
    return name.endswith(".jsonl") and not name.startswith(".")


def jsonl_bytes(lines: list[str]) -> bytes:
    """JSON lines (each without its newline) as the bytes of a landing file."""
    return ("\n".join(lines) + "\n").encode()


def _local_root(uri: str) -> str | None:
    """The absolute folder of a local landing URI (a path or file://), None for object stores."""
    if uri.startswith("file://"):
        return os.path.abspath(uri[len("file://") :])
    return None if "://" in uri else os.path.abspath(uri)


def _lines_frame(keys: list[str], counts: list[int], lines: list[str]) -> pl.DataFrame:
    """landing_key, line_number, raw for consecutive files: `counts[i]` of `lines` belong to `keys[i]`."""
    import polars as pl

    files = pl.DataFrame({"landing_key": keys, "lines": counts}, schema={"landing_key": pl.String, "lines": pl.Int64})
    files = files.filter(pl.col("lines") > 0)
    return files.select(
        pl.col("landing_key").repeat_by("lines").explode(),
        pl.int_ranges(1, pl.col("lines") + 1, dtype=pl.Int64).explode().alias("line_number"),
    ).with_columns(pl.Series("raw", lines, dtype=pl.String).str.strip_suffix("\r"))


PROCESSED_FILES = "processed_files"


def record_processed(lake: "Lake", area: str, counts: "pl.DataFrame", run_id: str = "") -> None:
    """Remember which landing files a run consumed (landing_key, received, accepted, rejected).

    The highest recorded key is where `feedback-pipeline run` resumes; a file recorded twice keeps
    its first record, so re-processing is a no-op here as everywhere.
    """
    import polars as pl

    if counts.height == 0:
        return
    frame = counts.with_columns(
        pl.lit(area).alias("area"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("processed_at"),
    )
    lake.merge(PROCESSED_FILES, frame, on=["landing_key"], update=False)


DERIVED_FILES = "derived_files"


def land_derived(lake: "Lake", landing: LandingZone, area: str, lines: "pl.DataFrame", *, label: str) -> str | None:
    """Land lines derived from other landing files (columns source_key, line) exactly once, however
    often a run is retried; return the new key, or None when every source's lines already stand.

    The derived file's key is recorded in `derived_files` (source_key, area -> derived_key) before
    the file is written, so a run killed after landing finds the file and skips those sources, and
    one killed between recording and landing (no file) lands them under a new key."""
    import polars as pl

    scan = lake.scan(DERIVED_FILES)
    if scan is not None and lines.height:
        recorded = (
            scan.filter((pl.col("area") == area) & pl.col("source_key").is_in(lines["source_key"].unique().implode()))
            .select("source_key", "derived_key")
            .collect()
        )
        landed = [key for key in recorded["derived_key"].unique().to_list() if landing.exists(key)]
        done = recorded.filter(pl.col("derived_key").is_in(landed))
        lines = lines.join(done, on="source_key", how="anti")
    if lines.height == 0:
        return None
    key = landing.new_key(area, label)
    frame = lines.select(pl.col("source_key").unique().sort()).with_columns(
        pl.lit(area).alias("area"),
        pl.lit(key).alias("derived_key"),
        pl.lit(datetime.now(UTC)).dt.cast_time_unit("us").alias("recorded_at"),
    )
    lake.merge(DERIVED_FILES, frame, on=["source_key", "area"])
    landing.put(key, jsonl_bytes(lines["line"].to_list()))
    return key


def processed_high_water(lake: "Lake", area: str) -> str | None:
    """The last landing key of `area` that a run has consumed, or None."""
    import polars as pl

    scan = lake.scan(PROCESSED_FILES)
    if scan is None:
        return None
    return scan.filter(pl.col("area") == area).select(pl.col("landing_key").max()).collect().item()
