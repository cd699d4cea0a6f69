"""Benchmark: the labeling paths that see many rows, on a real Delta lake in a temporary folder.

    /work/main/.venv/bin/python bench/labeling.py --traces 100000 --events 2000

Prints, for each phase, the wall time and the rows it handled:
- fold: `fold_label_schemas` / `fold_labeling_sessions` over in-memory definition events;
- read: reading definition event files back from a local landing zone;
- snapshot: `refresh_session` (trace_filter + explicit ids) against a Delta `traces` table, then the
  append into `session_items`, then a second refresh that must add nothing;
- status: `item_status` over every item against synthetic assessments.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import template_traces  # noqa: E402
from feedback_pipeline import definition_events, input_types, item_status, schemas, sessions  # noqa: E402
from feedback_pipeline.home import FeedbackHome  # noqa: E402
from feedback_pipeline.traces import parse_mlflow_traces  # noqa: E402


def timed(label: str, rows: int, fn):
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds * 1000:>9.1f} ms  {rows:>9,} rows  {rows / max(seconds, 1e-9):>12,.0f} rows/s")
    return value


def traces_frame(n: int) -> pl.DataFrame:
    """`n` parsed traces: the 200 samples repeated with fresh ids and spread request times."""
    lines = template_traces()
    parsed = parse_mlflow_traces(pl.DataFrame({"landing_key": "bench", "line_number": list(range(len(lines))), "raw": lines})).traces
    repeated = parsed.sample(n, with_replacement=True, seed=1)
    return repeated.with_columns(
        trace_id=pl.format("tr-{}", pl.int_range(n).cast(pl.String).str.zfill(32)),
        request_time=pl.col("request_time").min() + pl.duration(seconds=pl.int_range(n) * 13),
    )


def event_rows(count: int) -> pl.DataFrame:
    rows = []
    for i in range(count):
        if i % 2:
            rows.append({"event": "label_schema.put", "at": definition_events.now_iso(), "name": f"q{i % 50}", "schema_id": f"ls-{i % 50}",
                         "type": "feedback", "title": f"Question {i}", "enable_comment": False, "input_type": "text", "input": "{}"})
        else:
            rows.append({"event": "labeling_session.put", "at": definition_events.now_iso(), "labeling_session_id": f"ses-{i % 100}",
                         "name": f"s{i % 100}", "assigned_users": ["a", "b"], "label_schemas": ["q1"], "reviews_per_item": 1,
                         "refresh_cron": "0 * * * *"})
    return definition_events.events_frame([("definitions/x/00/0-0_schema.jsonl", "\n".join(json.dumps(r) for r in rows).encode())])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        home = FeedbackHome.from_env({"FEEDBACK_HOME": root})
        lake, landing = home.lake(), home.landing()

        events = event_rows(args.events)
        timed("fold_label_schemas", events.height, lambda: schemas.fold_label_schemas(events))
        timed("fold_labeling_sessions", events.height, lambda: sessions.fold_labeling_sessions(events))
        files = min(args.events, 500)
        for i in range(files):
            definition_events.write_events(landing, [{"event": "label_schema.put", "at": definition_events.now_iso(), "name": f"q{i}",
                                                      "type": "feedback", "title": "t", "input_type": "text", "input": "{}"}], label="schema")
        timed(f"read_events ({files} files)", files, lambda: definition_events.read_events(landing))

        traces = timed("build traces frame (setup)", args.traces, lambda: traces_frame(args.traces))
        timed("write traces Delta table (setup)", args.traces, lambda: lake.append("traces", traces))
        schemas.create_label_schema("q", title="Q", input=input_types.InputText(), home=home)
        session = sessions.create_labeling_session("bench", label_schemas=["q"], trace_filter={"tags": {"env": "staging"}, "text": "umbrella"}, home=home)
        session.add_traces(traces["trace_id"].head(1000).to_list())
        events = definition_events.read_events(landing)
        sid = session.labeling_session_id
        snapshot = timed("refresh_session (filter + 1,000 ids)", args.traces,
                         lambda: sessions.refresh_session(sid, events, lake.scan("traces"), sessions.empty_items()))
        timed("append session_items", snapshot.items.height, lambda: lake.merge(sessions.ITEMS_TABLE, snapshot.items, on=["session_id", "item_id"], update=False))
        existing = lake.read(sessions.ITEMS_TABLE)
        again = timed("refresh_session again (nothing new)", args.traces, lambda: sessions.refresh_session(sid, events, lake.scan("traces"), existing))
        assert again.items.height == 0
        print(f"session items: {existing.height:,}")

        n = existing.height
        assessments = pl.DataFrame({
            "trace_id": existing["trace_id"].sample(n * 3, with_replacement=True, seed=2),
            "session": "bench",
            "kind": pl.Series(["feedback", "expectation", "skip"] * n),
            "assessor_id": pl.Series([f"user{i % 7}" for i in range(n * 3)]),
            "valid": True,
        })
        status = timed("item_status", assessments.height, lambda: item_status.item_status(existing, assessments, 2))
        print(item_status.progress_counts(status))


if __name__ == "__main__":
    main()
