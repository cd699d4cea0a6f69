"""Hand-made rows of the `traces` table (contract columns) for the labeling tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from feedback_pipeline.lake import Lake
from feedback_pipeline.traces import TRACES_SCHEMA

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
