"""The MLflow trace parser on the fixture exports, each span layout, and malformed input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from feedback_pipeline.traces import (
    REJECTIONS_SCHEMA,
    SUBMISSIONS_SCHEMA,
    TRACES_SCHEMA,
    parse_mlflow_traces,
    request_dates,
)

FIXTURES = Path(__file__).parent / "fixtures"
JSONL = FIXTURES / "traces.jsonl"
PRETTY = sorted(FIXTURES.glob("trace_*.json"))
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def batch(raws: list[str], landing_key: str = "traces/2026-11-22/07/0001-abcdef.jsonl") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "landing_key": [landing_key] * len(raws),
            "line_number": list(range(1, len(raws) + 1)),
            "raw": raws,
        },
        schema={"landing_key": pl.String, "line_number": pl.Int64, "raw": pl.String},
    )


def fixture_lines() -> list[str]:
    return JSONL.read_text().splitlines()


def layout(name: str) -> dict:
    return json.loads((FIXTURES / f"layout_{name}.json").read_text())


def parse_one(document: dict | str) -> dict:
    raw = document if isinstance(document, str) else json.dumps(document)
    parsed = parse_mlflow_traces(batch([raw]), ingested_at=NOW)
    assert parsed.rejections.is_empty(), parsed.rejections["reason"].to_list()
    assert parsed.traces.height == 1
    return parsed.traces.row(0, named=True)


@pytest.fixture(scope="module")
def fixture_parse():
    return parse_mlflow_traces(batch(fixture_lines()), ingested_at=NOW)


# --- the 200 fixture traces ---------------------------------------------------------------------


def test_every_fixture_trace_parses_into_the_table_schema(fixture_parse):
    traces = fixture_parse.traces
    assert traces.schema == TRACES_SCHEMA
    assert traces.height == 200
    assert traces["trace_id"].n_unique() == 200
    assert fixture_parse.rejections.is_empty()
    expected = [json.loads(line)["info"]["trace_id"] for line in fixture_lines()]
    assert traces["trace_id"].to_list() == expected


def test_fixture_trace_columns_match_the_export(fixture_parse):
    first = json.loads(fixture_lines()[0])
    row = fixture_parse.traces.row(0, named=True)
    info, spans = first["info"], first["data"]["spans"]
    root = next(s for s in spans if s["parent_span_id"] is None)
    assert row["trace_id"] == info["trace_id"]
    assert row["client_request_id"] == info["client_request_id"]
    assert row["experiment_id"] == "1"
    assert row["request_time"] == datetime(2026, 11, 22, 5, 59, 14, 4000, tzinfo=UTC)
    assert row["request_date"] == date(2026, 11, 22)
    assert row["execution_duration_ms"] == info["execution_duration_ms"]
    assert row["state"] == "OK"
    assert json.loads(row["request"]) == json.loads(root["attributes"]["mlflow.spanInputs"])
    assert json.loads(row["response"]) == json.loads(root["attributes"]["mlflow.spanOutputs"])
    assert row["request_preview"] == info["request_preview"]
    assert json.loads(row["tags"]) == info["tags"]
    assert json.loads(row["trace_metadata"]) == info["trace_metadata"]
    assert row["model_id"] == info["trace_metadata"]["mlflow.modelId"]
    assert row["session_id"] == "chat-4"
    assert row["user_id"] == "user19"
    assert row["span_count"] == len(spans)
    assert row["landing_key"].startswith("traces/")
    assert row["ingested_at"] == NOW


def test_fixture_typed_columns(fixture_parse):
    row = fixture_parse.traces.row(0, named=True)
    assert row["retrieved_documents"] == [
        {
            "id": "doc_319",
            "page_content": "Umbrella Co mentioned issues with login on July 17th.",
            "doc_uri": "http://domain.com/conversations/138",
        }
    ]
    assert row["chat_messages"][0] == {"role": "user", "content": "what issues does umbrella co have?"}
    assert row["chat_messages"][-1]["role"] == "assistant"
    assert row["chat_messages"][-1]["content"].startswith("Summary:")
    assert [c["name"] for c in row["tool_calls"]] == ["lookup_account"]
    assert json.loads(row["tool_calls"][0]["inputs"]) == {"name": "Zoë Ångström"}
    assert json.loads(row["tool_calls"][0]["outputs"])["tier"] == "free"

    spans = json.loads(row["spans"])
    assert [s["name"] for s in spans] == ["request", "my_app", "retrieve_docs", "lookup_account", "fake_llm"]
    assert set(spans[0]) == {
        "span_id",
        "parent_id",
        "name",
        "span_type",
        "start_time_ns",
        "end_time_ns",
        "status",
        "status_message",
        "inputs",
        "outputs",
        "attributes",
        "events",
    }
    assert spans[0]["parent_id"] is None and spans[1]["parent_id"] == spans[0]["span_id"]
    assert spans[2]["span_type"] == "RETRIEVER" and spans[2]["status"] == "OK"
    assert spans[2]["outputs"][0]["id"] == "doc_319"
    assert spans[1]["attributes"]["mlflow.spanFunctionName"] == "my_app"


def test_every_fixture_trace_has_its_documents_tools_and_spans(fixture_parse):
    lines = [json.loads(line) for line in fixture_lines()]
    traces = fixture_parse.traces
    for document, row in zip(lines, traces.iter_rows(named=True), strict=True):
        spans = document["data"]["spans"]
        kinds = [json.loads(s["attributes"]["mlflow.spanType"]) for s in spans]
        assert row["span_count"] == len(spans)
        assert len(json.loads(row["spans"])) == len(spans)
        assert len(row["tool_calls"]) == kinds.count("TOOL")
        assert len(row["retrieved_documents"]) >= kinds.count("RETRIEVER")


def test_pretty_files_parse_like_their_jsonl_line(fixture_parse):
    pretty = parse_mlflow_traces(batch([p.read_text() for p in PRETTY]), ingested_at=NOW)
    assert pretty.rejections.is_empty()
    assert pretty.traces.height == len(PRETTY) == 5
    by_id = {r["trace_id"]: r for r in fixture_parse.traces.iter_rows(named=True)}
    for row in pretty.traces.iter_rows(named=True):
        original = json.loads(
            PRETTY[
                [json.loads(p.read_text())["info"]["trace_id"] for p in PRETTY].index(row["trace_id"])
            ].read_text()
        )
        assert row["span_count"] == len(original["data"]["spans"])
        if row["trace_id"] in by_id:
            assert row["content_hash"] == by_id[row["trace_id"]]["content_hash"]


def test_content_hash_is_stable_and_follows_content():
    lines = fixture_lines()[:20]
    first = parse_mlflow_traces(batch(lines), ingested_at=NOW).traces
    again = parse_mlflow_traces(batch(lines, "traces/2026-11-23/00/0009-ffffff.jsonl")).traces
    assert first["content_hash"].to_list() == again["content_hash"].to_list()
    assert first["content_hash"].n_unique() == 20

    changed = json.loads(lines[0])
    changed["info"]["tags"]["env"] = "prod"
    row = parse_one(changed)
    assert row["content_hash"] != first["content_hash"][0]


# --- each span layout MLflow has written ---------------------------------------------------------


def test_mlflow_36_layout_base64_ids_null_parent():
    row = parse_one(layout("mlflow36"))
    assert row["trace_id"] == "tr-5f1e0c0a9b8d4e3f2a1b0c9d8e7f6a5b"
    assert row["state"] == "ERROR"
    assert row["experiment_id"] == "7"
    assert row["execution_duration_ms"] == 412
    assert json.loads(row["request"]) == {"question": "how do I reset my password?"}
    assert row["response"] is None
    assert (row["session_id"], row["user_id"]) == ("sess-42", "dana@example.com")
    assert row["model_id"] == "m-0123456789abcdef0123456789abcdef"
    assert [d["doc_uri"] for d in row["retrieved_documents"]] == [
        "https://docs.example.com/security#reset",
        "https://docs.example.com/security#lock",
    ]
    assert row["tool_calls"] == [
        {"name": "get_user", "inputs": '{"email": "dana@example.com"}', "outputs": '{"locked": false}'}
    ]
    spans = json.loads(row["spans"])
    assert spans[0]["status"] == "ERROR" and spans[0]["parent_id"] is None
    assert spans[1]["parent_id"] == spans[0]["span_id"] == "1a2b3c4d5e6f7081"  # base64 "Gis8TV5vcIE=" in MLflow hex


def test_mlflow_35_layout_hex_ids_and_plain_status():
    row = parse_one(layout("mlflow35"))
    assert row["trace_id"] == "tr-0c1d2e3f405162738495a6b7c8d9eaf0"
    assert row["user_id"] == "ola"
    assert row["request_time"] == datetime(2026, 11, 23, 13, 0, 0, 250000, tzinfo=UTC)
    assert [m["role"] for m in row["chat_messages"]] == ["user", "assistant", "tool", "assistant"]
    assert row["chat_messages"][-1] == {"role": "assistant", "content": "It is 4 °C in Oslo."}
    # the TOOL span, then the OpenAI tool call from the request's messages
    assert [c["name"] for c in row["tool_calls"]] == ["get_weather", "get_weather"]
    assert json.loads(row["tool_calls"][1]["inputs"]) == {"city": "Oslo"}
    assert row["tool_calls"][1]["outputs"] is None
    spans = json.loads(row["spans"])
    assert [s["span_id"] for s in spans] == ["a1b2c3d4e5f60718", "b2c3d4e5f6071829"]
    assert [s["status"] for s in spans] == ["OK", "OK"]
    assert spans[0]["span_type"] == "CHAT_MODEL"
    assert spans[0]["attributes"]["mlflow.chat.tokenUsage"]["total_tokens"] == 49
    assert spans[0]["attributes"]["mlflow.message.format"] == "openai"


def test_mlflow_34_layout_protobuf_dicts():
    row = parse_one(layout("mlflow34"))
    assert row["trace_id"] == "tr-9a8b7c6d5e4f30211203f4e5d6c7b8a9"
    assert row["execution_duration_ms"] == 81  # from "0.081s"
    assert row["request_time"] == datetime(2026, 11, 23, 15, 46, 40, 123, tzinfo=UTC)
    assert row["client_request_id"] == "batch-77"
    assert json.loads(row["request"]) == {"text": "Quarterly revenue rose 8% in Q3."}  # root parent is ""
    assert json.loads(row["response"]) == "Revenue up 8%."
    spans = json.loads(row["spans"])
    assert spans[0]["parent_id"] is None
    assert spans[0]["start_time_ns"] == 1795420000000000000  # int64 written as a string
    assert spans[1]["span_type"] == "LLM" and spans[1]["status"] == "OK"


def test_mlflow_2_layout_request_id_and_context_spans():
    row = parse_one(layout("mlflow2"))
    assert row["trace_id"] == "7d3f9c2b1a0e4d5c8b7a6f5e4d3c2b1a"
    assert row["experiment_id"] == "0"
    assert row["request_time"] == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert row["request_date"] == date(2024, 6, 10)
    assert row["execution_duration_ms"] == 230
    assert row["state"] == "OK"
    assert row["session_id"] == "nb-1"
    # the root span has no inputs: mlflow.traceInputs metadata fills in
    assert json.loads(row["request"]) == {"query": "what is delta lake?"}
    assert json.loads(row["response"]) == "Delta Lake is a storage layer."
    assert json.loads(row["tags"])["mlflow.traceName"] == "rag_chain"
    assert json.loads(row["trace_metadata"])["mlflow.trace_schema.version"] == "2"
    assert row["retrieved_documents"] == [
        {
            "id": None,
            "page_content": "Delta Lake is an open-source storage framework.",
            "doc_uri": "https://delta.io",
        },
        {"id": "d-2", "page_content": "It adds ACID transactions to Parquet.", "doc_uri": None},
    ]
    spans = json.loads(row["spans"])
    assert spans[1]["parent_id"] == spans[0]["span_id"] == "00000000000000a1"  # "0x…" in MLflow 2 exports
    assert spans[1]["start_time_ns"] == 1718000000001000000


def test_mlflow_2_request_falls_back_to_data_request():
    document = layout("mlflow2")
    del document["info"]["request_metadata"]["mlflow.traceInputs"]
    document["data"]["request"] = json.dumps({"query": "from data.request"})
    row = parse_one(document)
    assert json.loads(row["request"]) == {"query": "from data.request"}


def test_all_layouts_in_one_batch():
    raws = [json.dumps(layout(n)) for n in ("mlflow36", "mlflow35", "mlflow34", "mlflow2")]
    parsed = parse_mlflow_traces(batch(raws + fixture_lines()[:3]), ingested_at=NOW)
    assert parsed.rejections.is_empty()
    assert parsed.traces.height == 7
    assert parsed.traces["request"].null_count() == 0
    assert parsed.submissions["trace_id"].n_unique() >= 2


def test_plain_string_answer_joins_openai_messages():
    document = layout("mlflow35")
    root = document["data"]["spans"][0]["attributes"]
    root["mlflow.spanOutputs"] = json.dumps("Sunny, 4 degrees.")
    row = parse_one(document)
    assert row["chat_messages"][-1] == {"role": "assistant", "content": "Sunny, 4 degrees."}


def test_retriever_returning_plain_strings():
    document = layout("mlflow36")
    document["data"]["spans"][1]["attributes"]["mlflow.spanOutputs"] = json.dumps(
        ["first chunk", "second chunk"]
    )
    row = parse_one(document)
    assert [d["page_content"] for d in row["retrieved_documents"]] == ["first chunk", "second chunk"]


def test_stray_value_types_are_coerced_not_rejected():
    document = layout("mlflow36")
    document["info"]["trace_metadata"]["mlflow.trace.user"] = 42
    document["data"]["spans"][0]["attributes"]["mlflow.spanInputs"] = {"question": "raw object"}
    row = parse_one(document)
    assert row["user_id"] == "42"
    assert json.loads(row["request"]) == {"question": "raw object"}


# --- malformed input ----------------------------------------------------------------------------


def test_malformed_lines_are_rejected_with_reasons_and_the_rest_parses():
    good = fixture_lines()[:4]
    no_info = json.dumps({"data": {"spans": []}})
    no_trace_id = json.loads(good[0])
    del no_trace_id["info"]["trace_id"]
    no_spans = json.loads(good[1])
    del no_spans["data"]
    spans_not_list = json.loads(good[2])
    spans_not_list["data"]["spans"] = {"oops": 1}
    bad_time = json.loads(good[3])
    bad_time["info"]["request_time"] = "yesterday"
    raws = [
        good[0],
        "{not json",
        good[1],
        "[1, 2, 3]",
        no_info,
        json.dumps(no_trace_id),
        "",
        json.dumps(no_spans),
        good[2],
        json.dumps(spans_not_list),
        json.dumps(bad_time),
        good[3],
    ]
    parsed = parse_mlflow_traces(batch(raws), ingested_at=NOW)
    assert parsed.traces["trace_id"].to_list() == [json.loads(g)["info"]["trace_id"] for g in good]
    rejections = parsed.rejections
    assert rejections.schema == REJECTIONS_SCHEMA
    reasons = dict(zip(rejections["line_number"].to_list(), rejections["reason"].to_list(), strict=True))
    assert sorted(reasons) == [2, 4, 5, 6, 7, 8, 10, 11]
    assert reasons[2].startswith("line 2 is not valid JSON:")
    assert "got an array" in reasons[4]
    assert "'info' object is missing" in reasons[5]
    assert "info.trace_id is missing" in reasons[6] and "info.request_id" in reasons[6]
    assert "line 7 is empty" in reasons[7]
    assert "data.spans is missing" in reasons[8]
    assert "data.spans must be a list, got an object" in reasons[10]
    assert "info.request_time 'yesterday' is not a valid time" in reasons[11]
    assert rejections.filter(pl.col("line_number") == 2)["raw"].item() == "{not json"
    assert (rejections["rejected_at"] == NOW).all()
    assert (rejections["landing_key"] == "traces/2026-11-22/07/0001-abcdef.jsonl").all()


def test_implausible_times_and_negative_durations_are_rejected():
    good = [json.loads(line) for line in fixture_lines()[:5]]
    good[0]["info"]["request_time"] = "0001-01-01T00:00:00Z"
    good[1]["info"]["request_time"] = "9999-12-31T23:59:59.999Z"
    good[2]["info"]["request_time"] = "253402300799999"
    good[3]["info"]["execution_duration"] = "-1.5s"
    good[3]["info"].pop("execution_duration_ms", None)
    parsed = parse_mlflow_traces(batch([json.dumps(g) for g in good]), ingested_at=NOW)
    assert parsed.traces["trace_id"].to_list() == [good[4]["info"]["trace_id"]]
    reasons = dict(zip(parsed.rejections["line_number"].to_list(), parsed.rejections["reason"].to_list(), strict=True))
    assert sorted(reasons) == [1, 2, 3, 4]
    assert "info.request_time 0001-01-01T00:00:00.000Z is implausible" in reasons[1]
    assert "expected a time between 2000-01-01 and 2026-12-22T08:00:00Z" in reasons[1]
    assert "9999-12-31T23:59:59.999Z is implausible" in reasons[2]
    assert "is implausible" in reasons[3]
    assert "execution duration -1500 ms is negative: expected 0 or more" in reasons[4]


def test_bad_lines_spread_over_decoder_chunks(monkeypatch):
    monkeypatch.setattr("feedback_pipeline.traces._CHUNK_ROWS", 8)
    lines = fixture_lines()[:60]
    raws = [line if i % 13 else "garbage" for i, line in enumerate(lines)]
    parsed = parse_mlflow_traces(batch(raws), ingested_at=NOW)
    assert parsed.rejections["line_number"].to_list() == [1, 14, 27, 40, 53]
    expected = [json.loads(line)["info"]["trace_id"] for i, line in enumerate(lines) if i % 13]
    assert parsed.traces["trace_id"].to_list() == expected


def test_long_rejected_line_is_cut_to_2000_characters():
    parsed = parse_mlflow_traces(batch(["x" * 5000]), ingested_at=NOW)
    assert parsed.traces.is_empty()
    assert len(parsed.rejections["raw"].item()) == 2000


def test_empty_batch_gives_empty_frames_with_schemas():
    parsed = parse_mlflow_traces(batch([]), ingested_at=NOW)
    assert parsed.traces.schema == TRACES_SCHEMA and parsed.traces.is_empty()
    assert parsed.rejections.schema == REJECTIONS_SCHEMA
    assert parsed.submissions.schema == SUBMISSIONS_SCHEMA
    assert pl.DataFrame(schema=TRACES_SCHEMA).schema == TRACES_SCHEMA


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicate_trace_id_keeps_the_newest_export():
    line = json.loads(fixture_lines()[0])
    older, newer, newest = (json.loads(json.dumps(line)) for _ in range(3))
    older["info"]["tags"]["env"] = "older"
    newer["info"]["tags"]["env"] = "newer"
    newest["info"]["tags"]["env"] = "newest"
    frame = pl.concat(
        [
            batch([json.dumps(newest)], "traces/2026-11-22/09/0003-cccccc.jsonl"),
            batch([json.dumps(older), json.dumps(newer)], "traces/2026-11-22/08/0002-bbbbbb.jsonl"),
        ]
    )
    parsed = parse_mlflow_traces(frame, ingested_at=NOW)
    assert parsed.traces.height == 1
    assert json.loads(parsed.traces["tags"].item())["env"] == "newest"

    same_file = parse_mlflow_traces(batch([json.dumps(older), json.dumps(newer)]), ingested_at=NOW)
    assert json.loads(same_file.traces["tags"].item())["env"] == "newer"


# --- embedded assessments -----------------------------------------------------------------------


def test_embedded_assessments_become_submissions(fixture_parse):
    submissions = fixture_parse.submissions
    assert submissions.schema == SUBMISSIONS_SCHEMA
    embedded = [a for line in fixture_lines() for a in json.loads(line)["info"].get("assessments", [])]
    assert submissions.height == len(embedded) == 213
    assert (submissions["submission_id"] == submissions["assessment_id"]).all()
    assert set(submissions["origin"]) == {"mlflow-import"}
    counts = dict(
        submissions.group_by("name", "kind")
        .len()
        .select(pl.concat_str("name", "kind", separator="/"), "len")
        .iter_rows()
    )
    assert counts == {
        "summary_quality/feedback": 97,
        "relevance/feedback": 59,
        "expected_summary/expectation": 57,
    }

    by_id = {a["assessment_id"]: a for a in embedded}
    for record in submissions["submission"].to_list():
        submission = json.loads(record)
        original = by_id[submission["submission_id"]]
        assert list(submission) == [
            "submission_id",
            "action",
            "assessment_id",
            "trace_id",
            "client_request_id",
            "span_id",
            "session",
            "name",
            "kind",
            "value",
            "error",
            "rationale",
            "source",
            "metadata",
            "overrides",
            "created_at",
            "origin",
        ]
        payload = original.get("feedback") or original.get("expectation")
        assert submission["value"] == payload["value"]
        assert type(submission["value"]) is type(payload["value"])
        assert submission["source"] == original["source"]
        assert submission["trace_id"] == original["trace_id"]
        assert submission["created_at"] == original["create_time"]
        assert submission["rationale"] == original.get("rationale")
        assert submission["error"] == original.get("feedback", {}).get("error")
        assert submission["action"] == "create"


def test_assessment_value_types_survive(fixture_parse):
    relevance = fixture_parse.submissions.filter(pl.col("name") == "relevance")
    assert all(isinstance(json.loads(v), float) for v in relevance["value"])
    quality = fixture_parse.submissions.filter(pl.col("name") == "summary_quality")
    assert set(json.loads(v) for v in quality["value"]) <= {"Yes", "No"}


def test_protobuf_assessments_serialized_values_and_lookalike_strings():
    parsed = parse_mlflow_traces(
        batch([json.dumps(layout("mlflow34")), json.dumps(layout("mlflow36"))]), ingested_at=NOW
    )
    records = {json.loads(s)["name"]: json.loads(s) for s in parsed.submissions["submission"]}
    assert records["expected_facts"]["kind"] == "expectation"
    assert records["expected_facts"]["value"] == ["revenue rose 8%", "Q3"]
    assert records["conciseness"]["value"] == 4
    assert records["conciseness"]["span_id"] == "5e6f708192a3b4c5"  # base64 "Xm9wgZKjtMU=" in MLflow hex
    assert records["tone"]["value"] == "12"  # a string that looks like a number stays a string
    assert records["helpful"]["value"] is False
    assert records["helpful"]["metadata"] == {"ticket": "SUP-1"}
    assert records["helpful"]["rationale"] == "It crashed."


def test_rejected_lines_contribute_no_submissions():
    line = json.loads(fixture_lines()[0])
    line["info"]["assessments"] = [
        {
            "assessment_id": "a-x",
            "assessment_name": "q",
            "source": {"source_type": "HUMAN", "source_id": "a"},
            "create_time": "2026-11-22T00:00:00Z",
            "feedback": {"value": 1},
        }
    ]
    line["info"]["request_time"] = "not a time"
    parsed = parse_mlflow_traces(batch([json.dumps(line)]), ingested_at=NOW)
    assert parsed.submissions.is_empty()
    assert parsed.rejections.height == 1


# --- request_dates ------------------------------------------------------------------------------


def test_request_dates_of_raw_lines():
    raws = fixture_lines()[:2] + [json.dumps(layout("mlflow2")), "not json", json.dumps({"info": {}})]
    dates = request_dates(pl.Series("raw", raws))
    assert dates.dtype == pl.Date
    assert dates.to_list() == [date(2026, 11, 22), date(2026, 11, 22), date(2024, 6, 10), None, None]


def test_structured_assessment_values_and_overrides():
    document = layout("mlflow36")
    template = {k: v for k, v in document["info"]["assessments"][0].items() if k != "feedback"}
    values = {
        "a-dict": {"feedback": {"value": {"score": 3, "why": 'ok "quoted"'}}},
        "a-list": {"feedback": {"value": [1, "two", None]}},
        "a-none": {"feedback": {"value": None}},
        "a-lookalike": {"feedback": {"value": 'say "value":"x"'}},
        "a-expect": {"expectation": {"value": {"facts": ["a", "b"]}}},
        "a-override": {"feedback": {"value": True}, "overrides": "a-dict", "valid": False},
    }
    document["info"]["assessments"] = [
        {**template, "assessment_id": key, **extra} for key, extra in values.items()
    ] + [{"assessment_name": "no id", "feedback": {"value": 1}}]
    parsed = parse_mlflow_traces(batch([json.dumps(document)]), ingested_at=NOW)
    records = {json.loads(s)["submission_id"]: json.loads(s) for s in parsed.submissions["submission"]}
    assert sorted(records) == sorted(values)
    assert records["a-dict"]["value"] == {"score": 3, "why": 'ok "quoted"'}
    assert records["a-list"]["value"] == [1, "two", None]
    assert records["a-none"]["value"] is None
    assert records["a-lookalike"]["value"] == 'say "value":"x"'
    assert records["a-expect"]["kind"] == "expectation"
    assert records["a-expect"]["value"] == {"facts": ["a", "b"]}
    assert records["a-override"]["overrides"] == "a-dict"


def test_openai_content_given_as_parts():
    document = layout("mlflow35")
    request = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    {"type": "text", "text": "And where?"},
                ],
            },
        ]
    }
    document["data"]["spans"][0]["attributes"]["mlflow.spanInputs"] = json.dumps(request)
    document["data"]["spans"] = document["data"]["spans"][:1]
    row = parse_one(document)
    assert row["chat_messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is this?\nAnd where?"},
        {"role": "assistant", "content": "It is 4 °C in Oslo."},
    ]


def test_odd_values_never_fail_the_batch():
    base = json.loads(fixture_lines()[0])

    def variant(i: int, change) -> str:
        document = json.loads(json.dumps(base))
        document["info"]["trace_id"] = f"tr-odd{i}"
        change(document)
        return json.dumps(document)

    def attribute(span: int, key: str, value: str):
        return lambda d: d["data"]["spans"][span]["attributes"].__setitem__(key, value)

    changes = [
        attribute(2, "mlflow.spanType", "RETRIEVER"),  # not JSON-encoded
        attribute(2, "mlflow.spanOutputs", "[{not json"),
        attribute(2, "mlflow.spanOutputs", '[{"page_content": {"nested": 1}}]'),
        attribute(0, "mlflow.spanOutputs", '"unterminated'),
        attribute(0, "mlflow.spanInputs", '{"messages": oops'),
        lambda d: d["info"].update(execution_duration_ms=None, execution_duration="1e400s"),
        lambda d: d["info"].update(request_time=99999999999999999999),
        lambda d: d["data"]["spans"].append(None),
        lambda d: d["info"].update(tags=[1, 2]),
        lambda d: d["info"].update(assessments=[1, "x", {"assessment_id": 5, "feedback": 3}]),
        lambda d: d["data"]["spans"][0].update(attributes=[1]),
    ]
    parsed = parse_mlflow_traces(batch([variant(i, c) for i, c in enumerate(changes)]), ingested_at=NOW)
    rejected = dict(zip(parsed.rejections["line_number"], parsed.rejections["reason"], strict=True))
    assert sorted(rejected) == [7, 11]
    assert "is not a valid time" in rejected[7]
    assert "data.spans[0].attributes must be a JSON object, got an array" in rejected[11]
    assert parsed.traces.height == 9
    rows = {r["trace_id"]: r for r in parsed.traces.iter_rows(named=True)}
    assert rows["tr-odd0"]["retrieved_documents"][0]["id"] == "doc_319"
    assert rows["tr-odd1"]["retrieved_documents"] == []
    assert rows["tr-odd5"]["execution_duration_ms"] is None
    assert rows["tr-odd8"]["tags"] == "{}"
    for row in rows.values():
        assert isinstance(json.loads(row["spans"]), list)


def test_a_large_batch_parsed_on_slices_in_threads_matches_one_pass(monkeypatch):
    import feedback_pipeline.traces as traces_module

    lines = fixture_lines()
    raws = [line.replace(json.loads(line)["info"]["trace_id"], f"tr-copy{n:05d}") for n, line in
            enumerate(lines[i % len(lines)] for i in range(4_400))]
    raws[10] = raws[4_300].replace('"tags"', '"tags_renamed"')
    parallel = parse_mlflow_traces(batch(raws), ingested_at=NOW)
    monkeypatch.setattr(traces_module, "_PARALLEL_MIN_ROWS", 10**9)
    serial = parse_mlflow_traces(batch(raws), ingested_at=NOW)
    assert parallel.traces.height == 4_399, "the repeated trace id keeps its newest line"
    assert parallel.traces.equals(serial.traces)
    assert parallel.submissions.sort("submission_id").equals(serial.submissions.sort("submission_id"))
    assert parallel.rejections.equals(serial.rejections)
