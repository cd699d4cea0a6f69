"""What the assessments stage has done and what waits: the processed watermark, dates left underived,
the submission files ready to validate, and the submissions still in the landing zone."""

from __future__ import annotations

import itertools
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from feedback_pipeline.assessment_tables import FILES
from feedback_pipeline.landing import PROCESSED_FILES, LandingKey, processed_high_water
from feedback_pipeline.submission_contract import AREA
from feedback_pipeline.submission_parsing import parse_lines

if TYPE_CHECKING:
    from feedback_pipeline.lake import Lake
    from feedback_pipeline.landing import LandingZone


def processed_watermark(lake: Lake) -> str | None:
    """The newest submissions landing key whose run completed (recorded last, in `processed_files`):
    files after it are pending."""
    return processed_high_water(lake, AREA)


def underived_dates(lake: Lake) -> list[date]:
    """Submission dates with a collected file (in `submission_files`) that no run recorded as derived
    (in `processed_files`, written last by a derive): a run died between collecting and deriving.
    Both tables hold a row per landing file, so the look costs what the file count costs."""
    collected = lake.scan(FILES)
    if collected is None:
        return []
    derived = lake.scan(PROCESSED_FILES)
    files = collected.select("landing_key", "submission_date")
    if derived is not None:
        files = files.join(derived.filter(pl.col("area") == AREA).select("landing_key"), on="landing_key", how="anti")
    return sorted(files.select(pl.col("submission_date").unique()).collect()["submission_date"].to_list())


def ready_keys(lake: Lake, landing: LandingZone, keys: list[str]) -> list[str]:
    """The leading submission files that arrived before the first trace file still waiting to be
    ingested: a submission is validated only once every trace that landed before it is in `traces`
    (the trace stage lands the assessments embedded in an export before it commits the traces)."""
    waiting = landing.list("traces", after=processed_high_water(lake, "traces"), limit=1)
    if not waiting:
        return keys
    try:
        cutoff = LandingKey.parse(waiting[0]).time_ns
    except ValueError:
        return []  # a misnamed trace file: the trace stage quarantines it, then these are ready
    return list(itertools.takewhile(lambda key: LandingKey.parse(key).time_ns < cutoff, keys))


def pending_submissions(lake: Lake, landing: LandingZone, after_key: str | None = None) -> pl.DataFrame:
    """Submissions in landing files not collected yet (after `after_key`, default: the collected
    watermark), parsed but not validated: what a reader folds in for read-your-writes."""
    after = after_key if after_key is not None else processed_watermark(lake)
    return parse_lines(landing.read_lines(landing.list(AREA, after=after)))

