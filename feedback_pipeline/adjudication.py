"""Adjudication: a session's adjudicator settles a disagreement with a gold value.

An adjudication is a submission like every other: HUMAN, the adjudicator as `source_id`, the
question's name and kind, the gold value, and `metadata` naming what it settles:
`{"adjudicates": [assessment_id, ...], "adjudication_session": "<session name>"}`. It carries no
`session` of its own, so it neither counts as one more review of the item nor supersedes the
adjudicator's own answer as a reviewer (the newer answer of an assessor replaces the older one
within a session); the assessment ids it lists tie it to the session's answers.

Readers: `datasets` takes an adjudicated value over `latest` and `majority`, `judge_alignment`
compares judges with it, `agreement` leaves it out (it is not an independent review), and the
Review App's Disagreements view hides what it settled.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from feedback_pipeline.submissions import submission

SETTLES = "adjudicates"
SESSION = "adjudication_session"
ORIGIN = "review-app"


def settles(metadata: str = "metadata") -> pl.Expr:
    """The assessment ids an assessment's metadata says it settles (null for every other assessment)."""
    return pl.col(metadata).str.json_path_match(f"$.{SETTLES}").str.json_decode(pl.List(pl.String))


def adjudicated_session(metadata: str = "metadata") -> pl.Expr:
    """The session an adjudication settles answers of (null for every other assessment)."""
    return pl.col(metadata).str.json_path_match(f"$.{SESSION}")


def is_adjudication(metadata: str = "metadata") -> pl.Expr:
    """True for adjudications: metadata naming the assessment ids they settle."""
    return pl.col(metadata).str.json_path_match(f"$.{SETTLES}").is_not_null().fill_null(False)


def adjudication_submission(
    *,
    session: str,
    trace_id: str,
    name: str,
    kind: str,
    value: Any,
    adjudicator: str,
    settled_ids: list[str],
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The submission recording `adjudicator`'s gold `value` for question `name` on a session's trace."""
    if not settled_ids:
        raise ValueError(f"adjudication of {name!r} on {trace_id}: expected the assessment ids it settles, got none")
    return submission(
        trace_id=trace_id,
        name=name,
        kind=kind,
        value=value,
        source={"source_type": "HUMAN", "source_id": adjudicator},
        metadata={**(extra_metadata or {}), SETTLES: sorted(settled_ids), SESSION: session},
        origin=ORIGIN,
    )
