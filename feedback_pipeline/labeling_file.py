"""The declarative `labeling.yaml`: label schemas and labeling sessions, applied idempotently.

```yaml
label_schemas:
  - name: summary_quality
    type: feedback                      # feedback | expectation
    title: Is this summary concise and helpful?
    instruction: Please provide a rationale below.
    enable_comment: true
    input: {type: categorical, options: ["Yes", "No"]}
labeling_sessions:
  - name: label_summaries
    label_schemas: [summary_quality]
    assigned_users: [alice@example.com]
    reviews_per_item: 1
    dataset: summaries
    trace_filter: {tags: {env: staging}, sample: {n: 10, seed: 7}}
    refresh_cron: "0 * * * *"
    trace_ids: [tr-…]                   # optional explicit additions
    reservation_minutes: 15             # how long opening an item holds one of its review slots
    guidelines: |                       # markdown shown on the session page and on each item
      Judge the final answer only.
    assignments: {tr-…: [alice@example.com]}   # optional: these reviewers get these traces first
    adjudicators: [carol@example.com]   # optional: who settles disagreements (Review App)
    owners: [dana@example.com]          # optional: who watch its agreement figures (Review App)
```

Applying compares each entry with the current definitions and lands events only for what differs
(the same events the SDK writes), so applying a file twice changes nothing. Entries not in the file
are left alone. The whole file is validated before anything is written; an error names its line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from feedback_pipeline import definition_events, input_types, schemas, sessions
from feedback_pipeline.field_errors import FieldError
from feedback_pipeline.home import FeedbackHome

SCHEMA_KEYS = ("name", "type", "title", "instruction", "enable_comment", "input")
SESSION_KEYS = (
    "name", "assigned_users", "label_schemas", "reviews_per_item", "dataset", "trace_filter", "refresh_cron", "trace_ids",
    "reservation_minutes", "guidelines", "assignments",
    "adjudicators", "owners",
)


class LabelingFileError(ValueError):
    """An invalid labeling file; the message starts with `<file>:<line>:`."""


@dataclass(frozen=True)
class LabelingFile:
    schemas: list[schemas.LabelSchema]
    sessions: list[tuple[sessions.LabelingSession, list[str]]]


def _fail(path: str, node: yaml.Node, message: str) -> LabelingFileError:
    return LabelingFileError(f"{path}:{node.start_mark.line + 1}: {message}")


def _entries(loader: yaml.SafeLoader, path: str, root: yaml.MappingNode, section: str, keys: tuple[str, ...]) -> list[tuple[yaml.Node, dict, dict]]:
    """(entry node, values, value nodes) of each mapping in a top-level list."""
    found = [value for key, value in root.value if key.value == section]
    if not found or isinstance(found[0], yaml.ScalarNode) and found[0].value in ("", "~", "null"):
        return []
    if not isinstance(found[0], yaml.SequenceNode):
        raise _fail(path, found[0], f"{section} is not a list: expected a list of entries starting with '- name: …'")
    out = []
    for entry in found[0].value:
        if not isinstance(entry, yaml.MappingNode):
            raise _fail(path, entry, f"{section} entry is not a mapping: expected 'name: …' and the other keys")
        nodes = {}
        for key, value in entry.value:
            if key.value not in keys:
                raise _fail(path, key, f"{section} key {key.value!r}: expected one of {', '.join(keys)}")
            nodes[key.value] = value
        if "name" not in nodes:
            raise _fail(path, entry, f"{section} entry has no name: expected 'name: …'")
        out.append((entry, {k: loader.construct_object(v, deep=True) for k, v in nodes.items()}, nodes))
    return out


def _line_of(exc: Exception, nodes: dict[str, yaml.Node], entry: yaml.Node) -> yaml.Node:
    """The node holding the field an error is about (`FieldError.field`, followed through the entry's
    nested mappings as far as the file has them), else the entry: its mark is the line to name."""
    path = exc.field.split(".") if isinstance(exc, FieldError) else []
    node = nodes.get(path[0]) if path else None
    if node is None:
        return entry
    for part in path[1:]:
        inner = [value for key, value in node.value if key.value == part] if isinstance(node, yaml.MappingNode) else []
        if not inner:
            break
        node = inner[0]
    return node


def parse_labeling_file(text: str, known_schemas: list[str], path: str = "labeling.yaml") -> LabelingFile:
    """Validate a whole labeling file; LabelingFileError naming the line at fault."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise LabelingFileError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    if root is None:
        raise LabelingFileError(f"{path}:1: the file is empty: expected label_schemas and/or labeling_sessions")
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, root, "expected a mapping with label_schemas and/or labeling_sessions")
    for key, _ in root.value:
        if key.value not in ("label_schemas", "labeling_sessions"):
            raise _fail(path, key, f"top-level key {key.value!r}: expected label_schemas or labeling_sessions")

    parsed_schemas: list[schemas.LabelSchema] = []
    for entry, values, nodes in _entries(loader, path, root, "label_schemas", SCHEMA_KEYS):
        if values["name"] in [s.name for s in parsed_schemas]:
            raise _fail(path, nodes["name"], f"label schema {values['name']!r} appears twice: expected each name once")
        try:
            spec = values.get("input")
            if not isinstance(spec, dict) or "type" not in spec:
                raise FieldError("input", f"input is {spec!r}: expected a mapping with type ({', '.join(input_types.INPUT_TYPES)}) and its parameters")
            parameters = {k: v for k, v in spec.items() if k != "type"}
            schema = schemas.LabelSchema(
                name=values["name"],
                type=values.get("type", "feedback"),
                title=values.get("title", values["name"]),
                input=input_types.input_from_parameters(spec["type"], parameters),
                instruction=values.get("instruction"),
                enable_comment=values.get("enable_comment", False),
            )
            schemas.validate_definition(schema.name, schema.type, schema.title, schema.input, schema.instruction, schema.enable_comment)
        except (ValueError, TypeError) as exc:
            raise _fail(path, _line_of(exc, nodes, entry), str(exc)) from None
        parsed_schemas.append(schema)

    names = set(known_schemas) | {s.name for s in parsed_schemas}
    parsed_sessions: list[tuple[sessions.LabelingSession, list[str]]] = []
    for entry, values, nodes in _entries(loader, path, root, "labeling_sessions", SESSION_KEYS):
        if values["name"] in [s.name for s, _ in parsed_sessions]:
            raise _fail(path, nodes["name"], f"labeling session {values['name']!r} appears twice: expected each name once")
        try:
            session = sessions.LabelingSession(
                name=values["name"],
                labeling_session_id="",
                assigned_users=values.get("assigned_users") or [],
                label_schemas=values.get("label_schemas") or [],
                reviews_per_item=values.get("reviews_per_item", 1),
                dataset=values.get("dataset"),
                trace_filter=values.get("trace_filter"),
                refresh_cron=values.get("refresh_cron", sessions.DEFAULT_REFRESH_CRON),
                reservation_minutes=values.get("reservation_minutes", sessions.DEFAULT_RESERVATION_MINUTES),
                guidelines=values.get("guidelines"),
                assignments=values.get("assignments") or {},
                adjudicators=values.get("adjudicators") or [],
                owners=values.get("owners") or [],
            )
            session = sessions.validate_session(session, names)
            trace_ids = sessions.trace_ids_of(values["trace_ids"]) if values.get("trace_ids") else []
        except (ValueError, TypeError) as exc:
            raise _fail(path, _line_of(exc, nodes, entry), str(exc)) from None
        parsed_sessions.append((session, trace_ids))
    return LabelingFile(parsed_schemas, parsed_sessions)


def apply_labeling_file(path: str | Path, *, home: FeedbackHome | None = None) -> list[str]:
    """Land the events that make the definitions match the file; returns one line per change (none: no changes)."""
    home = home or FeedbackHome.from_env()
    landing = home.landing()
    events = definition_events.read_events(landing)
    current_schemas = schemas.current_by_name(schemas.fold_label_schemas(events))
    parsed = parse_labeling_file(Path(path).read_text(encoding="utf-8"), list(current_schemas), str(path))

    changes: list[str] = []
    schema_events = []
    for schema in parsed.schemas:
        current = current_schemas.get(schema.name)
        if current is not None and schemas.same_definition(current, schema):
            continue
        schema_events.append(schemas.put_event(replace(schema, schema_id=current.schema_id if current else None)))
        changes.append(f"label schema {schema.name}: " + (f"new version {current.version + 1}" if current else "created"))
    definition_events.write_events(landing, schema_events, label=definition_events.SCHEMA_LABEL)

    table = sessions.fold_labeling_sessions(events)
    live = {row["name"]: sessions.session_from_row(row, home) for row in sessions.live_sessions(table).iter_rows(named=True)}
    requested = sessions.requested_traces(events)
    for session, trace_ids in parsed.sessions:
        current = live.get(session.name)
        session_id = current.labeling_session_id if current else f"ses-{uuid.uuid4().hex[:16]}"
        session = replace(session, labeling_session_id=session_id, home=home)
        events = []
        if current is None or not sessions.same_session(current, session):
            events.append(sessions.put_event(session))
            if current is None:
                changes.append(f"labeling session {session.name}: created")
            else:
                fields = [f for f in sessions.SESSION_FIELDS if getattr(current, f) != getattr(session, f)]
                changes.append(f"labeling session {session.name}: updated {', '.join(fields)}")
        known = set(requested.filter(requested["labeling_session_id"] == session_id)["trace_id"].to_list())
        new_ids = [t for t in trace_ids if t not in known]
        if new_ids:
            events.append({"event": "labeling_session.add_traces", "at": definition_events.now_iso(), "labeling_session_id": session_id, "trace_ids": new_ids})
            changes.append(f"labeling session {session.name}: added {len(new_ids)} trace id(s)")
        definition_events.write_events(landing, events, label=definition_events.session_label(session_id))
    return changes
