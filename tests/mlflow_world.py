"""A real `mlflow server` (SQLite store) on a free loopback port, and traces made the way MLflow's docs make them.

Used by the MLflow sync tests and by `bench/mlflow_pull.py`. The server is a subprocess started
with its own store and artifacts folder and stopped by its own PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

QUIET_ENV = {
    "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """Start `mlflow server` over a SQLite file under `root`; yield its tracking URI; stop it by PID."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV}, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited {process.returncode}: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health within 300 s")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def docs_app():
    """A RAG app as MLflow's tracing docs write it: retriever, chat model and tool spans, user and session.

    Returns `answer(question, user, session) -> (trace_id, span ids by name)`.
    """
    import mlflow
    from mlflow.entities import Document, SpanType

    @mlflow.trace(span_type=SpanType.RETRIEVER)
    def retrieve(query: str) -> list[Document]:
        return [
            Document(page_content=f"Policy about {query}.", metadata={"doc_uri": "https://docs/policy"}, id="doc-1"),
            Document(page_content="Shipping takes 3 days.", metadata={"doc_uri": "https://docs/shipping"}, id="doc-2"),
        ]

    @mlflow.trace(span_type=SpanType.TOOL)
    def lookup_order(order_id: str) -> dict:
        return {"order_id": order_id, "status": "shipped"}

    @mlflow.trace(span_type=SpanType.CHAT_MODEL, name="chat.completions")
    def chat_model(messages: list[dict], model: str = "gpt-4o-mini") -> dict:
        span = mlflow.get_current_active_span()
        span.set_attribute("custom.temperature", 0.2)
        span.add_event(mlflow.entities.SpanEvent("first_token", attributes={"latency_ms": 12}))
        reply = f"Answer using: {messages[-1]['content'][:40]}"
        return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]}

    @mlflow.trace
    def answer(question: str, user: str, session: str) -> str:
        mlflow.update_current_trace(metadata={"mlflow.trace.user": user, "mlflow.trace.session": session},
                                    tags={"app": "shop-assistant"})
        documents = retrieve(question)
        order = lookup_order("o-42")
        context = " ".join(d.page_content for d in documents)
        reply = chat_model([
            {"role": "system", "content": f"Context: {context} Order: {order['status']}"},
            {"role": "user", "content": question},
        ])
        return reply["choices"][0]["message"]["content"]

    def run(question: str, user: str = "u-1", session: str = "s-1") -> str:
        answer(question, user, session)
        return mlflow.get_last_active_trace_id()

    return run
