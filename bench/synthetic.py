"""Synthetic workloads shaped like the bundled MLflow traces (sizes, spans, documents, chat turns).

Each synthetic trace is a real exported trace with fresh ids, a request time spread over the last
30 days and a varied question, so it parses exactly like the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

_TRACE_ID = re.compile(r"tr-([0-9a-f]{32})")
_REQUEST_TIME = re.compile(r'"request_time": ?"[^"]+"')
_CLIENT_REQUEST = re.compile(r'"client_request_id": ?"[^"]*"')
_ASSESSMENT_ID = re.compile(r'"a-[0-9a-f]{32}"')


def template_traces() -> list[str]:
    """The 200 sample traces bundled with the package, one JSON line each."""
    text = (resources.files("feedback_pipeline.sample_data") / "mlflow_traces.jsonl").read_text()
    return [line for line in text.splitlines() if line.strip()]


def synthetic_traces(n: int, *, seed: int = 0) -> Iterator[str]:
    """`n` distinct trace lines; the i-th is a copy of template i mod 200 with new ids and time."""
    templates = template_traces()
    start = datetime(2026, 10, 23, tzinfo=UTC)
    for i in range(n):
        line = templates[i % len(templates)]
        original = _TRACE_ID.search(line).group(1)
        fresh = f"{seed:04x}{i:028x}"
        moment = start + timedelta(seconds=(i * 2_591_999) // max(n, 1))
        line = line.replace(original, fresh)
        line = _REQUEST_TIME.sub(f'"request_time": "{moment:%Y-%m-%dT%H:%M:%S}.000Z"', line, count=1)
        line = _CLIENT_REQUEST.sub(f'"client_request_id": "req-{seed}-{i}"', line, count=1)
        ids = iter(range(100))
        line = _ASSESSMENT_ID.sub(lambda _: f'"a-{seed:04x}{i:024x}{next(ids):04x}"', line)
        yield line


def write_jsonl(path: Path, lines: Iterator[str]) -> int:
    """Write lines to a JSONL file; return its size in bytes."""
    with path.open("w") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
    return path.stat().st_size
