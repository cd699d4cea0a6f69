"""Pull from an MLflow tracking server: new or changed traces, and assessment creates, updates and deletes.

Everything pulled lands in the landing zone (the only inbox): traces as `Trace.to_json()` lines
in the `traces` area, assessment changes as submissions (`origin: mlflow-import`) in the
`submissions` area, label schemas as definition events. What was pulled is remembered in two
lake tables, so a pull lands only what changed since the last one:

- `mlflow_pulled_traces` (trace_id, experiment_id, info_hash, pulled_at): the trace's info
  without its assessments, hashed; a trace lands again when it changes (tags, state, previews).
- `mlflow_pulled_assessments` (assessment_id, trace_id, content_hash, deleted, pulled_at): what
  each MLflow assessment said. A new id lands as a create (submission_id = assessment_id, as a
  file import makes it), a changed content as an update, an id gone from its trace as a delete.
  Assessments our push logged (metadata `feedback_pipeline.assessment_id`) are ours and skipped.
- `mlflow_pull_cursor` (experiment_id, page_token, updated_at): where a bounded pull (the sensor)
  stopped; a full pull starts from the beginning and leaves no token behind.

Each pass reads every trace's info and assessments page by page (`include_spans=False`, cheap)
and fetches spans only for traces that are new or changed, so a pull's transfer is proportional
to what changed; MLflow keeps no per-trace update time to filter on server-side.
Landing comes first and the cursor tables after, so a pull that dies lands again what it landed
(trace files merge by content hash, submissions dedupe by id): nothing is lost or doubled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl

from feedback_pipeline import definition_events, schemas
from feedback_pipeline.exports import land_trace_lines
from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingZone
from feedback_pipeline.mlflow_server import MlflowServer
from feedback_pipeline.submissions import AREA as SUBMISSIONS_AREA
from feedback_pipeline.traces import UTC_TIME, parse_mlflow_traces

PULLED_TRACES = "mlflow_pulled_traces"
PULLED_ASSESSMENTS = "mlflow_pulled_assessments"
PULL_CURSOR = "mlflow_pull_cursor"
PAGE_SIZE = 500
SPANS_PER_REQUEST = 100
SUBMISSIONS_LABEL = "mlflow-pull"

PULLED_TRACES_SCHEMA = pl.Schema(
    {"trace_id": pl.String, "experiment_id": pl.String, "info_hash": pl.String, "pulled_at": UTC_TIME}
)
PULLED_ASSESSMENTS_SCHEMA = pl.Schema(
    {
        "assessment_id": pl.String,
        "trace_id": pl.String,
        "content_hash": pl.String,
        "deleted": pl.Boolean,
        "pulled_at": UTC_TIME,
    }
)
_CONTENT = ("name", "kind", "value", "error", "rationale", "metadata", "overrides", "span_id")


@dataclass
class PullReport:
    """What one pull read from the server and landed."""

    pages: int = 0
    traces_seen: int = 0
    traces_landed: int = 0
    assessments_created: int = 0
    assessments_updated: int = 0
    assessments_deleted: int = 0
    label_schemas: int = 0
    complete: bool = False
    seconds: float = 0.0
    trace_keys: list[str] = field(default_factory=list)
    submission_keys: list[str] = field(default_factory=list)

    @property
    def traces_per_second(self) -> float:
        return self.traces_seen / self.seconds if self.seconds else 0.0


def pull(
    server: MlflowServer,
    lake: Lake,
    landing: LandingZone,
    *,
    max_pages: int | None = None,
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[PullReport], None] | None = None,
) -> PullReport:
    """Land what changed on the server since the last pull, page by page.

    `max_pages=None` is a full pass over every configured experiment; a number makes a bounded
    pull that resumes where the previous bounded pull stopped (the cursor table), so the sensor
    does a slice per tick and wraps around when a pass ends.
    """
    started = time.monotonic()
    report = PullReport()
    client = server.client()
    report.label_schemas = import_label_schemas(server, landing)
    tokens = _cursor(lake) if max_pages is not None else {}
    budget = max_pages
    finished: list[str] = []
    for experiment_id in server.experiment_ids:
        token = tokens.get(experiment_id)
        while budget is None or budget > 0:
            page = client.search_traces(
                locations=[experiment_id], include_spans=False, max_results=page_size,
                order_by=["timestamp_ms ASC"], page_token=token,
            )
            _pull_page(client, lake, landing, experiment_id, list(page), report)
            report.pages += 1
            budget = None if budget is None else budget - 1
            token = page.token or None
            if on_progress:
                on_progress(report)
            if token is None:
                finished.append(experiment_id)
                break
        tokens[experiment_id] = token
        if budget == 0:
            break
    report.complete = len(finished) == len(server.experiment_ids)
    if max_pages is not None:
        _save_cursor(lake, tokens)
    report.seconds = time.monotonic() - started
    return report


def _pull_page(client: Any, lake: Lake, landing: LandingZone, experiment_id: str, page: list, report: PullReport) -> None:
    """Land one page: the new or changed traces with their spans, then its assessment changes."""
    if not page:
        return
    now = datetime.now(UTC)
    report.traces_seen += len(page)
    infos, lines = [], []
    for trace in page:
        info = trace.info.to_dict()
        info.pop("assessments", None)
        infos.append(json.dumps(info, sort_keys=True))
        lines.append(trace.to_json())
    seen = pl.DataFrame(
        {"trace_id": [t.info.trace_id for t in page], "info_text": infos},
        schema={"trace_id": pl.String, "info_text": pl.String},
    ).with_columns(
        pl.lit(experiment_id).alias("experiment_id"),
        _hash(pl.col("info_text")).alias("info_hash"),
        pl.lit(now, dtype=UTC_TIME).alias("pulled_at"),
    )
    changed = lake.unseen(PULLED_TRACES, seen.select(PULLED_TRACES_SCHEMA.names()), on=["trace_id"], change_column="info_hash")
    if changed.height:
        full = _full_traces(client, experiment_id, changed["trace_id"].to_list())
        key = land_trace_lines(landing, full, source=f"mlflow-{experiment_id}", line_offset=0)
        report.trace_keys.append(key)
        report.traces_landed += len(full)
    lines_frame = pl.DataFrame(
        {"landing_key": "mlflow", "line_number": range(1, len(lines) + 1), "raw": lines},
        schema={"landing_key": pl.String, "line_number": pl.Int64, "raw": pl.String},
    )
    _land_assessment_changes(lake, landing, seen["trace_id"], parse_mlflow_traces(lines_frame).submissions, now, report)
    lake.merge(PULLED_TRACES, changed, on=["trace_id"], change_column="info_hash")


def _full_traces(client: Any, experiment_id: str, trace_ids: list[str]) -> list[str]:
    """`Trace.to_json()` of these traces, spans included, fetched a bounded number per request."""
    lines: list[str] = []
    for start in range(0, len(trace_ids), SPANS_PER_REQUEST):
        chunk = trace_ids[start : start + SPANS_PER_REQUEST]
        quoted = ", ".join(f"'{trace_id}'" for trace_id in chunk)
        found = client.search_traces(
            locations=[experiment_id], filter_string=f"trace.request_id IN ({quoted})",
            include_spans=True, max_results=len(chunk),
        )
        lines.extend(trace.to_json() for trace in found)
    return lines


def _hash(text: pl.Expr) -> pl.Expr:
    """A stable 40-digit content hash of a text column (two seeded 64-bit hashes)."""
    return pl.concat_str(
        [text.hash(seed=0x5EED).cast(pl.String).str.zfill(20), text.hash(seed=0xFEED).cast(pl.String).str.zfill(20)]
    )


def _land_assessment_changes(
    lake: Lake, landing: LandingZone, trace_ids: pl.Series, submissions: pl.DataFrame, now: datetime, report: PullReport
) -> None:
    """Creates, updates and deletes against what earlier pulls saw of these traces' assessments."""
    content = pl.concat_str([pl.col(c).fill_null("\x00") for c in _CONTENT], separator="\x1f")
    current = submissions.with_columns(_hash(content).alias("content_hash"))
    known = _known_assessments(lake, trace_ids)
    joined = current.join(known.select("assessment_id", pl.col("content_hash").alias("known_hash")),
                          on="assessment_id", how="left")
    created = joined.filter(pl.col("known_hash").is_null())
    updated = joined.filter(pl.col("known_hash").is_not_null() & (pl.col("known_hash") != pl.col("content_hash")))
    deleted = known.join(current, on="assessment_id", how="anti")
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = created["submission"].to_list()
    lines += [_update_line(row, at) for row in updated.iter_rows(named=True)]
    lines += [
        json.dumps({"submission_id": f"{row['assessment_id']}~deleted", "action": "delete",
                    "assessment_id": row["assessment_id"], "trace_id": row["trace_id"],
                    "created_at": at, "origin": "mlflow-import"})
        for row in deleted.iter_rows(named=True)
    ]
    if lines:
        report.submission_keys.append(landing.write_lines(SUBMISSIONS_AREA, lines, label=SUBMISSIONS_LABEL))
    report.assessments_created += created.height
    report.assessments_updated += updated.height
    report.assessments_deleted += deleted.height
    state = pl.concat(
        [
            pl.concat([created, updated]).select(
                "assessment_id", "trace_id", "content_hash", pl.lit(False).alias("deleted")
            ),
            deleted.select("assessment_id", "trace_id", "content_hash", pl.lit(True).alias("deleted")),
        ]
    ).with_columns(pl.lit(now, dtype=UTC_TIME).alias("pulled_at"))
    lake.merge(PULLED_ASSESSMENTS, state.select(PULLED_ASSESSMENTS_SCHEMA.names()), on=["assessment_id"])


def _update_line(row: dict, at: str) -> str:
    """An MLflow `update_assessment` as our update submission: the new name, value, rationale, metadata."""
    return json.dumps(
        {
            "submission_id": f"{row['assessment_id']}~{row['content_hash'][:20]}",
            "action": "update",
            "assessment_id": row["assessment_id"],
            "trace_id": row["trace_id"],
            "name": row["name"],
            "kind": row["kind"],
            "value": json.loads(row["value"]) if row["value"] is not None else None,
            "error": json.loads(row["error"]) if row["error"] is not None else None,
            "rationale": row["rationale"],
            "metadata": json.loads(row["metadata"] or "{}"),
            "created_at": at,
            "origin": "mlflow-import",
        }
    )


def _known_assessments(lake: Lake, trace_ids: pl.Series) -> pl.DataFrame:
    """The live assessments earlier pulls saw on these traces."""
    scan = lake.scan(PULLED_ASSESSMENTS)
    if scan is None:
        return pl.DataFrame(schema=PULLED_ASSESSMENTS_SCHEMA)
    return scan.filter(pl.col("trace_id").is_in(trace_ids.implode()) & ~pl.col("deleted")).collect()


def _cursor(lake: Lake) -> dict[str, str | None]:
    frame = lake.read(PULL_CURSOR, schema={"experiment_id": pl.String, "page_token": pl.String})
    return {row["experiment_id"]: row["page_token"] for row in frame.iter_rows(named=True)}


def _save_cursor(lake: Lake, tokens: dict[str, str | None]) -> None:
    frame = pl.DataFrame(
        {"experiment_id": list(tokens), "page_token": list(tokens.values())},
        schema={"experiment_id": pl.String, "page_token": pl.String},
    ).with_columns(pl.lit(datetime.now(UTC), dtype=UTC_TIME).alias("updated_at"))
    if frame.height:
        lake.merge(PULL_CURSOR, frame, on=["experiment_id"])


# --- label schemas ------------------------------------------------------------------------------

_INPUT_TYPES = {
    "InputCategorical": "categorical",
    "InputCategoricalList": "categorical_list",
    "InputNumeric": "numeric",
    "InputText": "text",
    "InputTextList": "text_list",
    "InputPassFail": "pass_fail",
}


def import_label_schemas(server: MlflowServer, landing: LandingZone) -> int:
    """Make the experiments' label schemas (MLflow 3.14+) ours: name, type, input, instruction.

    A schema whose definition is unchanged writes nothing; older servers without label schemas
    import none. Returns how many schemas the experiments define.
    """
    with server.active():
        try:
            from mlflow.genai import label_schemas as mlflow_schemas
        except ImportError:
            return 0
        found = []
        for experiment_id in server.experiment_ids:
            token = None
            while True:
                page = mlflow_schemas.list_label_schemas(experiment_id, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
    current = schemas.current_by_name(schemas.fold_label_schemas(definition_events.read_events(landing)))
    events = []
    for schema in found:
        ours = label_schema_from_mlflow(schema)
        existing = current.get(ours.name)
        if existing is None or not schemas.same_definition(existing, ours):
            keep_id = ours if existing is None else replace(ours, schema_id=existing.schema_id)
            events.append(schemas.put_event(keep_id))
    if events:
        definition_events.write_events(landing, events, label=definition_events.SCHEMA_LABEL)
    return len(found)


def label_schema_from_mlflow(schema: Any) -> schemas.LabelSchema:
    """Our `LabelSchema` for an MLflow one; a multi-select categorical is our categorical list."""
    kind = type(schema.input).__name__
    input_type = _INPUT_TYPES.get(kind)
    if input_type is None:
        raise ValueError(f"label schema {schema.name!r}: input {kind} has no counterpart here (expected one of {sorted(_INPUT_TYPES)})")
    parameters = {k: v for k, v in vars(schema.input).items() if k != "multi_select"}
    if getattr(schema.input, "multi_select", False):
        input_type = "categorical_list"
    schema_type = str(getattr(schema.type, "value", schema.type)).lower()
    return schemas.LabelSchema(
        name=schema.name,
        type=schema_type,
        title=schema.name,
        input=schemas.input_from_parameters(input_type, parameters),
        instruction=schema.instruction,
        enable_comment=bool(schema.enable_comment),
        schema_id=schema.schema_id,
    )


