"""Hand-made rows of the `traces` table (contract columns) for the labeling tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline.lake import Lake

TIME = pl.Datetime("us", "UTC")
TRACES_SCHEMA = pl.Schema(
    {
        "trace_id": pl.String,
        "client_request_id": pl.String,
        "experiment_id": pl.String,
        "request_time": TIME,
        "request_date": pl.Date,
        "execution_duration_ms": pl.Int64,
        "state": pl.String,
        "request": pl.String,
        "response": pl.String,
        "request_preview": pl.String,
        "response_preview": pl.String,
        "tags": pl.String,
        "trace_metadata": pl.String,
        "model_id": pl.String,
        "session_id": pl.String,
        "user_id": pl.String,
        "span_count": pl.Int64,
        "retrieved_documents": pl.List(pl.Struct({"id": pl.String, "page_content": pl.String, "doc_uri": pl.String})),
        "chat_messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
        "tool_calls": pl.List(pl.Struct({"name": pl.String, "inputs": pl.String, "outputs": pl.String})),
        "spans": pl.String,
        "landing_key": pl.String,
        "content_hash": pl.String,
        "ingested_at": TIME,
    }
)
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def trace_rows(count: int, *, start: int = 0, env: str | None = None, answer: str = "Summary: all good") -> pl.DataFrame:
    """`count` traces tr-0000… with alternating env tags (staging/prod) unless `env` is given."""
    rows = []
    for i in range(start, start + count):
        question = f"summarize ticket {i}"
        rows.append(
            {
                "trace_id": f"tr-{i:04d}",
                "client_request_id": f"req-{i}",
                "experiment_id": "1",
                "request_time": START + timedelta(hours=i),
                "request_date": (START + timedelta(hours=i)).date(),
                "execution_duration_ms": 10 + i,
                "state": "ERROR" if i % 7 == 6 else "OK",
                "request": json.dumps({"messages": [{"role": "user", "content": question}]}),
                "response": json.dumps({"choices": [{"message": {"role": "assistant", "content": f"{answer} ({i})"}}]}),
                "request_preview": question,
                "response_preview": f"{answer} ({i})",
                "tags": json.dumps({"env": env or ("staging" if i % 2 == 0 else "prod")}),
                "trace_metadata": json.dumps({"mlflow.trace.user": f"user{i % 3}", "mlflow.modelId": f"m-{i % 2}"}),
                "model_id": f"m-{i % 2}",
                "session_id": None,
                "user_id": f"user{i % 3}",
                "span_count": 2,
                "retrieved_documents": [{"id": f"doc-{i}", "page_content": "context", "doc_uri": f"https://kb/{i}"}],
                "chat_messages": [{"role": "user", "content": question}, {"role": "assistant", "content": f"{answer} ({i})"}],
                "tool_calls": [],
                "spans": "[]",
                "landing_key": "traces/test.jsonl",
                "content_hash": f"h{i}-{answer}",
                "ingested_at": START,
            }
        )
    return pl.DataFrame(rows, schema=TRACES_SCHEMA)


def write_traces(lake: Lake, frame: pl.DataFrame) -> None:
    """Upsert traces the way the ingestion does (merge on trace_id, content hash)."""
    lake.merge("traces", frame, on=["trace_id"], change_column="content_hash")
