"""Checks at the call: what the SDK can tell about an assessment before it lands, as the definitions stand.

`log_feedback`, `log_expectation`, `override_feedback` and `update_assessment` call `check_assessment`
so a misspelt name, a value that does not fit, an unknown trace or session, or an assessor the
session does not assign raise `InvalidAssessment` at once (MLflow raises at the call too), naming
the field, the value, what was expected and, for names, the close one. The pipeline still
validates everything when the submission is processed (`feedback_pipeline.validation`).

Cheap by design: it reads the `label_schemas` and `labeling_sessions` tables and looks up the one
trace. A problem found there is confirmed against the definition events (the SDK's read-your-writes
view) before it is raised, so a schema or session created a moment ago, not yet folded by a run, is
not refused; and an
unknown trace is refused only when no trace file is waiting to be ingested.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from feedback_pipeline import schemas as label_schemas
from feedback_pipeline import sessions as labeling_sessions
from feedback_pipeline.field_errors import FieldError
from feedback_pipeline.input_types import input_from_parameters

if TYPE_CHECKING:
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.lake import Lake


class InvalidAssessment(FieldError):
    """An assessment the pipeline would refuse: the `field`, the `value` given, what was `expected`
    and, when one is close, the `suggestion` (a ValueError, like every field error)."""

    def __init__(self, field: str, value: Any, expected: str, suggestion: str | None = None,
                 message: str | None = None) -> None:
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(field, f"{message or f'{field} {value!r}: {expected}'}{hint}")
        self.value, self.expected, self.suggestion = value, expected, suggestion


def close_name(given: str, known: list[str]) -> str | None:
    """The known name closest to `given` (difflib), when one is close enough to be a likely typo."""
    found = difflib.get_close_matches(given, known, n=1, cutoff=0.6) if isinstance(given, str) else []
    return found[0] if found else None


@dataclass(frozen=True)
class Definitions:
    """The live label schemas (name -> type, input_type, input JSON) and labeling sessions, from one view."""

    schemas: pl.DataFrame
    sessions: pl.DataFrame

    @classmethod
    def from_tables(cls, lake: Lake) -> Definitions:
        return cls(
            lake.read("label_schemas", columns=list(_SCHEMA_COLUMNS), schema=_SCHEMA_COLUMNS),
            lake.read("labeling_sessions", columns=list(_SESSION_COLUMNS), schema=_SESSION_COLUMNS),
        )

    def with_events(self, home: FeedbackHome) -> Definitions:
        """The definition events as they say now (read-your-writes), and what only the tables hold."""
        schemas = label_schemas.schema_table(home).select(list(_SCHEMA_COLUMNS))
        sessions = labeling_sessions.session_table(home).select(list(_SESSION_COLUMNS))
        return Definitions(
            pl.concat([schemas, self.schemas.join(schemas, on="name", how="anti")], how="vertical_relaxed"),
            pl.concat([sessions, self.sessions.join(sessions, on="labeling_session_id", how="anti")],
                      how="vertical_relaxed"),
        )

    def live_schemas(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in label_schemas.current_schemas(self.schemas).iter_rows(named=True)}

    def live_session(self, name_or_id: str) -> dict[str, Any] | None:
        live = labeling_sessions.live_sessions(self.sessions)
        found = live.filter((pl.col("name") == name_or_id) | (pl.col("labeling_session_id") == name_or_id))
        return found.row(-1, named=True) if found.height else None

    def session_names(self) -> list[str]:
        return sorted(labeling_sessions.live_sessions(self.sessions)["name"].to_list())


_SCHEMA_COLUMNS = {"name": pl.String, "version": pl.Int64, "type": pl.String, "input_type": pl.String,
                   "input": pl.String, "deleted": pl.Boolean}
_SESSION_COLUMNS = {"name": pl.String, "labeling_session_id": pl.String, "assigned_users": pl.List(pl.String),
                    "label_schemas": pl.List(pl.String), "deleted": pl.Boolean}


def _definition_problem(
    definitions: Definitions, *, kind: str, name: str, value: Any, session: str | None, assessor: str | None,
    free_form: bool, error: bool = False,
) -> InvalidAssessment | None:
    """The first thing the definitions say is wrong with this assessment, or None."""
    found = definitions.live_session(session) if session is not None else None
    if session is not None and found is None:
        names = definitions.session_names()
        return InvalidAssessment("session", session, f"expected a live labeling session ({', '.join(names) or 'none yet'})",
                                 close_name(session, names))
    schemas = definitions.live_schemas()
    questions = list(found["label_schemas"] or []) if found else None
    if questions is not None and name not in questions:
        return InvalidAssessment("name", name, f"expected one of session {found['name']!r}'s questions "
                                 f"({', '.join(questions)})", close_name(name, questions))
    schema = schemas.get(name)
    if schema is None:
        if free_form:
            return None
        return InvalidAssessment(
            "name", name, f"expected a label schema ({', '.join(sorted(schemas))}), or free_form=True for a "
            "name without one", close_name(name, sorted(schemas)),
        )
    if kind != schema["type"]:
        return InvalidAssessment("name", name, f"label schema {name!r} is of type {schema['type']}: "
                                 f"expected log_{schema['type']}")
    answers = input_from_parameters(schema["input_type"], json.loads(schema["input"]))
    reasons = [] if error and value is None else answers.check(value, name)
    if reasons:
        options = getattr(answers, "options", None) or []
        close = close_name(value, options) if isinstance(value, str) else None
        return InvalidAssessment("value", value, f"a value that fits label schema {name!r}", close, "; ".join(reasons))
    assigned = list(found["assigned_users"] or []) if found else []
    if assigned and assessor not in assigned:
        return InvalidAssessment("source.source_id", assessor, f"expected one of session {found['name']!r}'s "
                                 f"assigned users ({', '.join(assigned)})", close_name(assessor or "", assigned))
    return None


def _trace_problem(lake: Lake, home: FeedbackHome, column: str, given: str) -> InvalidAssessment | None:
    """An unknown trace (by trace_id or client_request_id), unless trace files still wait to be ingested."""
    from feedback_pipeline.landing import processed_high_water

    scan = lake.scan("traces")
    if scan is not None and scan.select(column).filter(pl.col(column) == given).head(1).collect().height:
        return None
    waiting = home.landing().list("traces", after=processed_high_water(lake, "traces"), limit=1)
    if waiting:
        return None
    return InvalidAssessment(column, given, f"expected the {column} of a trace in {lake.uri}/traces "
                             "(import it first: feedback-pipeline traces import)")


def check_assessment(
    home: FeedbackHome,
    *,
    kind: str,
    name: str,
    value: Any,
    trace_id: str | None = None,
    client_request_id: str | None = None,
    session: str | None = None,
    assessor: str | None = None,
    free_form: bool = False,
    error: bool = False,
) -> None:
    """Raise `InvalidAssessment` for what the definitions and tables as they stand say the pipeline would refuse
    (`error`: the feedback gives an error, so a missing value is not a problem)."""
    lake = home.lake()
    options = {"kind": kind, "name": name, "value": value, "session": session, "assessor": assessor,
               "free_form": free_form, "error": error}
    tables = Definitions.from_tables(lake)
    if _definition_problem(tables, **options) is not None:
        problem = _definition_problem(tables.with_events(home), **options)
        if problem is not None:
            raise problem
    column, given = ("trace_id", trace_id) if trace_id is not None else ("client_request_id", client_request_id)
    if given is not None and (problem := _trace_problem(lake, home, column, given)) is not None:
        raise problem
