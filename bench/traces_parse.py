"""Benchmark the MLflow trace parser against the floor: polars reading the same JSONL and writing it to Delta.

    /work/main/.venv/bin/python bench/traces_parse.py --n 100000

Generates N synthetic traces shaped like tests/fixtures/traces.jsonl (fresh trace and span ids,
varied texts, request times and span counts), then times, each in its own process so peak RSS is
per phase:
  ingest: read the file as lines -> parse_mlflow_traces -> write `traces` to a fresh Delta table
  floor:  pl.read_ndjson of the same file -> write_delta unchanged (Null-typed empty lists as strings)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "traces.jsonl"
WORDS = "login billing invoice refund outage password export latency upgrade plan seat api".split()


def _templates(rng: random.Random) -> list[tuple[str, list[str], str, str, str]]:
    """Fixture traces, some with extra TOOL spans, as text with the ids to substitute."""
    out = []
    for line in FIXTURE.read_text().splitlines():
        for extra in (0, 2, 6):
            doc = json.loads(line)
            spans = doc["data"]["spans"]
            for k in range(extra):
                clone = json.loads(json.dumps(spans[-1]))
                clone["span_id"] = base64.b64encode(rng.randbytes(8)).decode()
                clone["name"] = f"step_{k}"
                spans.append(clone)
            info = doc["info"]
            text = json.dumps(doc)
            out.append(
                (
                    text,
                    [s["span_id"] for s in spans],
                    info["trace_id"],
                    info["request_time"],
                    info["client_request_id"],
                )
            )
    return out


def generate(path: Path, n: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    templates = _templates(rng)
    with path.open("w") as f:
        for i in range(n):
            text, span_ids, trace_id, request_time, client_id = templates[i % len(templates)]
            text = text.replace(trace_id, "tr-" + rng.randbytes(16).hex())
            text = text.replace('"a-', f'"a-{i:x}-')
            for span_id in span_ids:
                text = text.replace(span_id, base64.b64encode(rng.randbytes(8)).decode())
            day = 1 + i % 28
            text = text.replace(
                request_time, f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:00.{i % 1000:03d}Z"
            )
            text = text.replace(f'"{client_id}"', f'"req-{i}"')
            text = text.replace("umbrella co", f"{rng.choice(WORDS)} {rng.choice(WORDS)} co")
            f.write(text + "\n")
    return path.stat().st_size


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_ingest(path: Path, out: Path) -> dict:
    import polars as pl

    from feedback_pipeline.traces import parse_mlflow_traces

    t0 = time.perf_counter()
    lines = pl.read_lines(path, name="raw", row_index_name="line_number", row_index_offset=1).select(
        pl.lit(path.name).alias("landing_key"), pl.col("line_number").cast(pl.Int64), "raw"
    )
    t1 = time.perf_counter()
    parsed = parse_mlflow_traces(lines)
    t2 = time.perf_counter()
    parsed.traces.write_delta(str(out), mode="append")
    t3 = time.perf_counter()
    return {
        "rows": parsed.traces.height,
        "rejected": parsed.rejections.height,
        "submissions": parsed.submissions.height,
        "read_s": t1 - t0,
        "parse_s": t2 - t1,
        "write_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _without_null(dtype):
    import polars as pl

    if dtype == pl.Null:
        return pl.String
    if isinstance(dtype, pl.List):
        return pl.List(_without_null(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _without_null(f.dtype) for f in dtype.fields})
    return dtype


def phase_floor(path: Path, out: Path) -> dict:
    import polars as pl

    t0 = time.perf_counter()
    frame = pl.read_ndjson(path)
    t1 = time.perf_counter()
    # Delta has no Null type: always-empty lists (span events, links) are written as lists of strings.
    frame = frame.cast({name: _without_null(dtype) for name, dtype in frame.schema.items()})
    frame.write_delta(str(out), mode="append")
    t2 = time.perf_counter()
    return {
        "rows": frame.height,
        "read_s": t1 - t0,
        "write_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_phase(name: str, path: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--file", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} phase failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="synthetic traces to generate")
    parser.add_argument("--phase", choices=["ingest", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = (phase_ingest if args.phase == "ingest" else phase_floor)(args.file, args.out)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench-traces-") as tmp:
        path = Path(tmp) / "traces.jsonl"
        t0 = time.perf_counter()
        size = generate(path, args.n)
        print(f"generated {args.n:,} traces, {size / 1e6:,.0f} MB, in {time.perf_counter() - t0:.1f}s")
        ingest = _run_phase("ingest", path, Path(tmp) / "lake_ingest")
        floor = _run_phase("floor", path, Path(tmp) / "lake_floor")

    n = args.n
    print(
        f"ingest  read lines {ingest['read_s']:.2f}s + parse {ingest['parse_s']:.2f}s + write_delta "
        f"{ingest['write_s']:.2f}s = {ingest['total_s']:.2f}s  ({n / ingest['total_s']:,.0f} traces/s; "
        f"parse alone {n / ingest['parse_s']:,.0f} traces/s)  peak RSS {ingest['peak_rss_mb']:,.0f} MB  "
        f"[{ingest['rows']:,} rows, {ingest['rejected']} rejected, {ingest['submissions']:,} submissions]"
    )
    print(
        f"floor   read_ndjson {floor['read_s']:.2f}s + write_delta {floor['write_s']:.2f}s = "
        f"{floor['total_s']:.2f}s  ({n / floor['total_s']:,.0f} traces/s)  "
        f"peak RSS {floor['peak_rss_mb']:,.0f} MB"
    )
    print(f"ingest throughput / floor throughput = {floor['total_s'] / ingest['total_s']:.2f}")


if __name__ == "__main__":
    main()
