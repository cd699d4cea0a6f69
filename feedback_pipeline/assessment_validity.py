"""Which assessments stand: the one definition of overrides and repeated answers, on polars frames.

The pipeline applies it to the assessments a run touches (`assessments.refold`), the SDK's search to
what it reads, and the Review App's answer index to the rows of the traces a pending submission touches
(`review_app.session_answers`), so the three cannot disagree.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

GROUP_KEY = ["trace_id", "span_id", "assessment_name", "assessor_id", "session"]


def with_validity(state: Frame, overridden_elsewhere: pl.Series | None = None) -> Frame:
    """`valid`: not overridden by a live assessment, and the newest of its assessor's answers to the
    same question (trace, span, name, session). Deleting the newer one makes the older valid again.
    `state` (eager or lazy) holds live assessments (columns `assessment_id`, `created_at`, `overrides`
    and GROUP_KEY); `overridden_elsewhere`: ids overridden by live assessments outside `state`."""
    elsewhere = pl.Series(dtype=pl.String) if overridden_elsewhere is None else overridden_elsewhere.cast(pl.String)
    overridden = pl.concat([pl.col("overrides").drop_nulls(), pl.lit(elsewhere)]).implode()
    newest = pl.col("assessment_id").last().over(GROUP_KEY) == pl.col("assessment_id")
    return state.sort("created_at", "assessment_id").with_columns((newest & ~pl.col("assessment_id").is_in(overridden)).alias("valid"))
