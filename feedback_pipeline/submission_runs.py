"""What one assessments run covers (`Scope`) and how pending landing files are cut into runs (`batches`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.submission_contract import AREA

if TYPE_CHECKING:
    from feedback_pipeline.landing import LandingZone

MAX_RUN_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Scope:
    """What one run covers: landing keys in (after_key, last_key], or submission dates in [start, end)."""

    after_key: str | None = None
    last_key: str | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if (self.last_key is None) == (self.start is None):
            raise ValueError(f"{self}: give either last_key (a landing key range) or start and end (dates)")

    @classmethod
    def dates(cls, start: date, end: date) -> Scope:
        return cls(start=start, end=end)

    @property
    def by_keys(self) -> bool:
        return self.last_key is not None

    def describe(self) -> str:
        if self.by_keys:
            return f"landing keys ({self.after_key or 'start of day'}, {self.last_key}]"
        return f"submission dates [{self.start}, {self.end})"

    def landing_keys(self, landing: LandingZone) -> list[str]:
        """The landing files in scope (for dates: every file that arrived on those days)."""
        if self.by_keys:
            day = self.last_key.split("/")[1]
            start_after = self.after_key or f"{AREA}/{day}/00/"
            keys: list[str] = []
            for key in landing.iter_keys(AREA, after=start_after):
                if key > self.last_key:
                    break
                keys.append(key)
            return keys
        keys = []
        for key in landing.iter_keys(AREA, after=f"{AREA}/{self.start.isoformat()}/00/"):
            if key.split("/")[1] >= self.end.isoformat():
                break
            keys.append(key)
        return keys

    def filter(self) -> pl.Expr:
        """Rows of `submissions` / `submission_files` in scope."""
        if self.by_keys:
            expression = pl.col("landing_key") <= self.last_key
            if self.after_key:
                expression &= pl.col("landing_key") > self.after_key
            else:
                expression &= pl.col("submission_date") == date.fromisoformat(self.last_key.split("/")[1])
            return expression
        return (pl.col("submission_date") >= self.start) & (pl.col("submission_date") < self.end)



@dataclass(frozen=True)
class Batch:
    """Landing files (after_key, last_key] of one arrival day: what one run collects and derives."""

    after_key: str | None
    last_key: str
    files: int

    @property
    def day(self) -> str:
        return self.last_key.split("/")[1]

    @property
    def scope(self) -> Scope:
        return Scope(after_key=self.after_key, last_key=self.last_key)


def batches(
    keys: list[str], after_key: str | None, max_files: int, sizes: list[int] | None = None, max_bytes: int = MAX_RUN_BYTES
) -> list[Batch]:
    """Cut keys (in arrival order, all after `after_key`) into runs of one day, each of at most `max_files`
    files and, when the files' `sizes` are given, at most `max_bytes` of them (a larger file goes alone),
    so a run's memory stays bounded however the submissions were split into files."""
    cut: list[Batch] = []
    previous, first_index, run_bytes = after_key, 0, 0
    for index, key in enumerate(keys):
        run_bytes += sizes[index] if sizes is not None else 0
        last_of_run = (
            index + 1 == len(keys)
            or index + 1 - first_index >= max_files
            or keys[index + 1].split("/")[1] != key.split("/")[1]
            or (sizes is not None and run_bytes + sizes[index + 1] > max_bytes)
        )
        if last_of_run:
            same_day = previous is not None and previous.split("/")[1] == key.split("/")[1]
            cut.append(Batch(previous if same_day else None, key, index + 1 - first_index))
            previous, first_index, run_bytes = key, index + 1, 0
    return cut

