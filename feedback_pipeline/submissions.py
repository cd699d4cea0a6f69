"""Submissions: the one format in which every assessment enters the system.

A submission is one JSON object per line of a `submissions` landing file (docs/ARCHITECTURE.md).
This module writes them: the SDK with MLflow's names and the importers. The contract (fields,
vocabularies, limits) is `submission_contract`; reading them back is `submission_parsing`.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from feedback_pipeline.entities import (
    Assessment,
    AssessmentError,
    AssessmentSource,
    Expectation,
    Feedback,
)
from feedback_pipeline.json_values import duckdb_connection
from feedback_pipeline.search import search_assessments
from feedback_pipeline.submission_contract import ACTIONS, AREA, KINDS

if TYPE_CHECKING:
    from feedback_pipeline.home import FeedbackHome
    from feedback_pipeline.landing import LandingZone

MAX_LINES_PER_FILE = 50_000


def new_assessment_id() -> str:
    return f"a-{uuid.uuid4().hex}"


def new_submission_id() -> str:
    return f"s-{uuid.uuid4().hex}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_value(field: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} {value!r}: expected a JSON-serialisable value ({exc})") from None
    return value


def submission(
    *,
    action: str = "create",
    assessment_id: str | None = None,
    trace_id: str | None = None,
    client_request_id: str | None = None,
    span_id: str | None = None,
    session: str | None = None,
    name: str | None = None,
    kind: str = "feedback",
    value: Any = None,
    error: AssessmentError | dict[str, Any] | None = None,
    rationale: str | None = None,
    source: AssessmentSource | dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    overrides: str | None = None,
    created_at: str | None = None,
    origin: str = "sdk",
    submission_id: str | None = None,
) -> dict[str, Any]:
    """One submission object in the landing format, with client-made ids filled in."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: expected one of {', '.join(ACTIONS)}")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    if error is not None and kind != "feedback":
        raise ValueError(f"error {error!r} on a {kind}: only a feedback carries an error")
    if isinstance(error, dict):
        error = AssessmentError.from_dict(error)
    if isinstance(source, dict):
        source = AssessmentSource(source.get("source_type", "HUMAN"), source.get("source_id", "default"))
    return {
        "submission_id": submission_id or new_submission_id(),
        "action": action,
        "assessment_id": assessment_id or (new_assessment_id() if action == "create" else None),
        "trace_id": trace_id,
        "client_request_id": client_request_id,
        "span_id": span_id,
        "session": session,
        "name": name,
        "kind": kind,
        "value": _json_value("value", value),
        "error": error.to_dict() if error else None,
        "rationale": rationale,
        "source": source.to_dict() if source else None,
        "metadata": _json_value("metadata", dict(metadata or {})),
        "overrides": overrides,
        "created_at": created_at or _iso(time.time_ns() // 1_000_000),
        "origin": origin,
    }


def land_submissions(landing: LandingZone, records: list[dict[str, Any]], *, label: str = "") -> list[str]:
    """Write submissions as landing files (at most MAX_LINES_PER_FILE lines each); returns the keys."""
    lines = [json.dumps(record, separators=(",", ":"), default=str) for record in records]
    return land_lines(landing, lines, label=label)


def land_lines(landing: LandingZone, lines: list[str], *, label: str = "") -> list[str]:
    """Write JSON lines into the submissions area, split into files of MAX_LINES_PER_FILE lines."""
    return [
        landing.write_lines(AREA, lines[start : start + MAX_LINES_PER_FILE], label=label)
        for start in range(0, len(lines), MAX_LINES_PER_FILE)
    ]


def _home(home: FeedbackHome | None) -> FeedbackHome:
    if home is None:
        from feedback_pipeline.home import FeedbackHome

        home = FeedbackHome.from_env()
    return home


def _write(record: dict[str, Any], home: FeedbackHome | None) -> None:
    land_submissions(_home(home).landing(), [record], label="sdk")


def _checked(record: dict[str, Any], home: FeedbackHome | None, *, free_form: bool) -> dict[str, Any]:
    """The record, once `check_assessment` found nothing the pipeline would refuse (else InvalidAssessment)."""
    from feedback_pipeline.assessment_checks import check_assessment

    check_assessment(
        _home(home), kind=record["kind"], name=record["name"], value=record["value"], trace_id=record["trace_id"],
        client_request_id=record["client_request_id"], session=record["session"],
        assessor=(record["source"] or {}).get("source_id"), free_form=free_form, error=record.get("error") is not None,
    )
    return record


def _entity(record: dict[str, Any], source: AssessmentSource) -> Assessment:
    created_ms = int(datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")).timestamp() * 1000)
    cls = Expectation if record["kind"] == "expectation" else Feedback
    outcome = {"error": AssessmentError.from_dict(record["error"])} if record.get("error") else {}
    return cls(
        **outcome,
        name=record["name"],
        value=record["value"],
        trace_id=record["trace_id"],
        source=source,
        rationale=record.get("rationale"),
        metadata=record["metadata"],
        span_id=record["span_id"],
        session=record["session"],
        assessment_id=record["assessment_id"],
        overrides=record["overrides"],
        create_time_ms=created_ms,
        submission_id=record["submission_id"],
    )


def log_feedback(
    *,
    trace_id: str | None = None,
    name: str = "feedback",
    value: Any = None,
    source: AssessmentSource | None = None,
    error: AssessmentError | None = None,
    rationale: str | None = None,
    metadata: dict[str, Any] | None = None,
    span_id: str | None = None,
    session: str | None = None,
    client_request_id: str | None = None,
    free_form: bool = False,
    home: FeedbackHome | None = None,
) -> Feedback:
    """Record feedback on a trace (MLflow `log_feedback`); returns it at once, validated again by the pipeline.

    A judge that could not decide gives an `error` (MLflow's `AssessmentError`) and may give no value.

    Raises `InvalidAssessment` (a ValueError) for what can be told now: an unknown label schema
    (`free_form=True` allows a name without one, as MLflow does), a value that does not fit it, an
    unknown trace or session, an assessor the session does not assign.
    """
    if trace_id is None and client_request_id is None:
        raise ValueError("trace_id is None: give the trace's id (tr-…) or its client_request_id")
    if value is None and error is None:
        raise ValueError(f"value is None for feedback {name!r}: give a value, or an error (AssessmentError) saying why not")
    source = source or AssessmentSource("CODE")
    record = submission(
        trace_id=trace_id, client_request_id=client_request_id, span_id=span_id, session=session, name=name,
        kind="feedback", value=value, error=error, rationale=rationale, source=source, metadata=metadata,
    )
    _write(_checked(record, home, free_form=free_form), home)
    return _entity(record, source)  # type: ignore[return-value]


def log_expectation(
    *,
    trace_id: str,
    name: str,
    value: Any,
    source: AssessmentSource | None = None,
    metadata: dict[str, Any] | None = None,
    span_id: str | None = None,
    session: str | None = None,
    free_form: bool = False,
    home: FeedbackHome | None = None,
) -> Expectation:
    """Record ground truth for a trace (MLflow `log_expectation`); the value must not be None.

    Checked at the call like `log_feedback` (`free_form=True` allows a name without a label schema).
    """
    if value is None:
        raise ValueError(f"value is None for expectation {name!r}: an expectation needs a value")
    source = source or AssessmentSource("HUMAN")
    record = submission(
        trace_id=trace_id, span_id=span_id, session=session, name=name, kind="expectation",
        value=value, source=source, metadata=metadata,
    )
    _write(_checked(record, home, free_form=free_form), home)
    return _entity(record, source)  # type: ignore[return-value]


def _current(assessment_id: str, home: FeedbackHome | None) -> dict[str, Any]:
    found = search_assessments(assessment_ids=[assessment_id], include_invalid=True, include_pending=True, home=home)
    if found.height == 0:
        raise ValueError(f"assessment_id {assessment_id!r}: no such assessment (recorded or pending)")
    return found.row(0, named=True)


def override_feedback(
    *,
    trace_id: str,
    assessment_id: str,
    value: Any,
    rationale: str | None = None,
    source: AssessmentSource | None = None,
    metadata: dict[str, Any] | None = None,
    home: FeedbackHome | None = None,
) -> Feedback:
    """Replace a feedback with a new one that `overrides` it (MLflow `override_feedback`); the old turns invalid.

    The new value and assessor are checked at the call like `log_feedback`'s.
    """
    old = _current(assessment_id, home)
    if old["kind"] != "feedback":
        raise ValueError(f"assessment_id {assessment_id!r} is an {old['kind']}: only feedback can be overridden")
    source = source or AssessmentSource("HUMAN")
    record = submission(
        trace_id=trace_id, span_id=old["span_id"], session=old["session"], name=old["assessment_name"],
        kind="feedback", value=value, rationale=rationale, source=source, metadata=metadata,
        overrides=assessment_id,
    )
    _write(_checked(record, home, free_form=True), home)
    return _entity(record, source)  # type: ignore[return-value]


def update_assessment(
    *,
    trace_id: str,
    assessment_id: str,
    assessment: Assessment,
    home: FeedbackHome | None = None,
) -> Assessment:
    """Edit an assessment in place (MLflow `update_assessment`): name, value, rationale replaced, metadata merged.

    Source and span stay as they were; the kind cannot change. The new name and value are checked at
    the call like `log_feedback`'s (a name without a label schema only if it is the one it had).
    """
    old = _current(assessment_id, home)
    if assessment.kind != old["kind"]:
        raise ValueError(f"assessment_id {assessment_id!r} is an {old['kind']}: it cannot become an {assessment.kind}")
    record = submission(
        action="update", assessment_id=assessment_id, trace_id=trace_id, name=assessment.name,
        kind=assessment.kind, value=assessment.value, error=getattr(assessment, "error", None),
        rationale=assessment.rationale, metadata=assessment.metadata, session=old["session"],
    )
    name = assessment.name or old["assessment_name"]
    as_checked = {**record, "name": name, "source": {"source_id": old["assessor_id"]}}
    _checked(as_checked, home, free_form=name == old["assessment_name"])
    _write(record, home)
    merged = {**json.loads(old["metadata"] or "{}"), **(assessment.metadata or {})}
    cls = Expectation if old["kind"] == "expectation" else Feedback
    new_outcome = assessment.value is not None or getattr(assessment, "error", None) is not None
    outcome = {"error": getattr(assessment, "error", None)} if new_outcome else (
        {"error": AssessmentError.from_dict(json.loads(old["error"]))} if old.get("error") else {})
    now_ms = int(datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")).timestamp() * 1000)
    return cls(
        **(outcome if cls is Feedback else {}),
        name=assessment.name or old["assessment_name"],
        value=assessment.value if new_outcome else json.loads(old["assessment_value"] or "null"),
        trace_id=trace_id,
        source=AssessmentSource(old["source_type"], old["assessor_id"]),
        rationale=assessment.rationale if assessment.rationale is not None else old["rationale"],
        metadata=merged,
        span_id=old["span_id"],
        session=old["session"],
        assessment_id=assessment_id,
        overrides=old["overrides"],
        create_time_ms=int(old["created_at"].timestamp() * 1000),
        last_update_time_ms=now_ms,
        submission_id=record["submission_id"],
    )


def delete_assessment(*, trace_id: str, assessment_id: str, home: FeedbackHome | None = None) -> None:
    """Delete an assessment (MLflow `delete_assessment`); deleting an override restores what it overrode."""
    _write(submission(action="delete", assessment_id=assessment_id, trace_id=trace_id), home)


# --- importers ---------------------------------------------------------------------------------

CSV_COLUMNS = (
    "submission_id", "action", "assessment_id", "trace_id", "client_request_id", "span_id", "session",
    "name", "kind", "value", "rationale", "source_type", "source_id", "metadata", "overrides", "created_at",
)

def mlflow_export_lines(path: Path) -> list[str]:
    """Submission lines for the assessments embedded in an MLflow trace export (JSON, JSON list or JSONL),
    converted by the trace parser: `submission_id = assessment_id`, so importing twice is a no-op."""
    from feedback_pipeline.exports import read_export
    from feedback_pipeline.traces import parse_mlflow_traces

    with path.open("rb") as stream:
        chunks = [
            pl.DataFrame({"raw": lines}, schema={"raw": pl.String}).with_columns(
                pl.lit(str(path)).alias("landing_key"),
                pl.int_range(offset + 1, offset + len(lines) + 1, dtype=pl.Int64).alias("line_number"),
            )
            for offset, lines in read_export(stream)
        ]
    if not chunks:
        return []
    return parse_mlflow_traces(pl.concat(chunks)).submissions["submission"].to_list()


def csv_lines(path: Path) -> list[str]:
    """Submission lines from a CSV with the columns of CSV_COLUMNS (a header row; any subset, in any order).

    `value` and `metadata` cells holding valid JSON are taken as JSON (`4`, `true`, `["a"]`), any other
    cell as text. Without a submission_id column the id is a hash of the row, so re-importing is a no-op.
    """
    connection = duckdb_connection()
    header = connection.sql(f"select * from read_csv('{path}', all_varchar=true, header=true) limit 0").columns
    unknown = [column for column in header if column not in CSV_COLUMNS]
    if unknown:
        raise ValueError(f"{path}: unknown CSV columns {unknown}; expected some of {', '.join(CSV_COLUMNS)}")

    def column(name: str) -> str:
        return f'"{name}"' if name in header else "null::varchar"

    row_hash = "md5(concat_ws('|', " + ", ".join(f'coalesce("{c}", \'\')' for c in header) + "))"
    value = column("value")
    metadata = column("metadata")
    sql = f"""
    select json_object(
      'submission_id', coalesce({column('submission_id')}, 'csv-' || {row_hash}),
      'action', coalesce({column('action')}, 'create'),
      'assessment_id', coalesce({column('assessment_id')},
                                case when coalesce({column('action')}, 'create') = 'create'
                                     then 'a-' || {row_hash} end),
      'trace_id', {column('trace_id')}, 'client_request_id', {column('client_request_id')},
      'span_id', {column('span_id')}, 'session', {column('session')}, 'name', {column('name')},
      'kind', coalesce({column('kind')}, 'feedback'),
      'value', case when {value} is null or {value} = '' then null
                    else coalesce(try(json({value})), to_json({value})) end,
      'rationale', {column('rationale')},
      'source', json_object('source_type', coalesce({column('source_type')}, 'HUMAN'),
                            'source_id', coalesce({column('source_id')}, 'default')),
      'metadata', case when {metadata} is null or {metadata} = '' then null
                       else coalesce(try(json({metadata})), to_json({metadata})) end,
      'overrides', {column('overrides')}, 'created_at', {column('created_at')},
      'origin', 'import')::varchar as line
    from read_csv('{path}', all_varchar=true, header=true)
    """
    lines = connection.sql(sql).pl()["line"].to_list()
    connection.close()
    return lines


def jsonl_lines(path: Path) -> list[str]:
    """The lines of a submissions JSONL file; objects without an origin get `origin: "import"`.

    Lines that are not JSON objects are kept as they are, so the pipeline rejects them with a reason.
    """
    lines = pl.DataFrame({"line": path.read_text(encoding="utf-8").splitlines()})
    lines = lines.filter(pl.col("line").str.strip_chars() != "").with_row_index("n")
    connection = duckdb_connection()
    connection.register("lines", lines.to_arrow())
    patched = connection.sql(
        """select n, case when json_valid(line) and json_type(line) = 'OBJECT'
                            and json_extract(line, '$.origin') is null
                       then json_merge_patch(line, '{"origin": "import"}')::varchar else line end as line
           from lines order by n"""
    ).pl()
    connection.close()
    return patched["line"].to_list()


def import_file_lines(path: Path) -> tuple[str, list[str]]:
    """(format, submission lines) for a historic-labels file: `.csv`; `.json` (an MLflow trace export:
    one trace or a list); `.jsonl` of MLflow traces (lines with an `info` object) or of submissions."""
    if path.suffix.lower() == ".csv":
        return "csv", csv_lines(path)
    if path.suffix.lower() == ".json":
        return "mlflow", mlflow_export_lines(path)
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        is_trace = isinstance(head := json.loads(first), dict) and "info" in head
    except json.JSONDecodeError:
        is_trace = False
    if is_trace:
        return "mlflow", mlflow_export_lines(path)
    return "jsonl", jsonl_lines(path)
