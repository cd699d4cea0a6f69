"""The questions a session asks, the answers a reviewer gives, and the submissions they become.

A question is the current version of a label schema (latest non-deleted version of its name). The
form posts `answer:<name>` (repeated for lists) and `comment:<name>`; `parse_answers` checks each
against its schema and says what is wrong in words, before anything is landed (as submissions made
by `feedback_pipeline.submissions.submission`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from feedback_pipeline.submission_contract import MAX_RATIONALE_CHARS, MAX_VALUE_BYTES
from feedback_pipeline.schemas import current_schemas

INPUT_TYPES = ("categorical", "categorical_list", "numeric", "text", "text_list", "pass_fail")
SKIP_NAME = "_skip"


@dataclass(frozen=True)
class Question:
    """One label schema as the Review App asks it."""

    name: str
    version: int
    kind: str
    title: str
    instruction: str
    enable_comment: bool
    input_type: str
    params: dict[str, Any] = field(default_factory=dict)
    required: bool = True

    @property
    def options(self) -> list[str]:
        return [str(o) for o in self.params.get("options") or []]

    @property
    def positive_label(self) -> str:
        return str(self.params.get("positive_label") or "Pass")

    @property
    def negative_label(self) -> str:
        return str(self.params.get("negative_label") or "Fail")

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(form value, label) of the options a keyboard digit picks, in order."""
        if self.input_type == "pass_fail":
            return [("true", self.positive_label), ("false", self.negative_label)]
        if self.input_type in ("categorical", "categorical_list"):
            return [(o, o) for o in self.options]
        return []

    def shown(self, value: Any) -> str:
        """An answer as a reviewer reads it: the option's label, the entries joined, the text itself."""
        if self.input_type == "pass_fail" and isinstance(value, bool):
            return self.positive_label if value else self.negative_label
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Question:
        raw = row.get("input")
        params = json.loads(raw) if isinstance(raw, str) and raw else dict(raw or {})
        required = row.get("required")
        if required is None:
            required = params.get("required", True)
        return cls(
            name=str(row["name"]),
            version=int(row.get("version") or 1),
            kind=str(row.get("type") or "feedback"),
            title=str(row.get("title") or row["name"]),
            instruction=str(row.get("instruction") or ""),
            enable_comment=bool(row.get("enable_comment")),
            input_type=str(row.get("input_type") or "text"),
            params=params,
            required=bool(required),
        )


def current_questions(schemas: pl.DataFrame, names: Sequence[str]) -> tuple[list[Question], list[str]]:
    """The current version of each named schema, in the session's order, and the names not found."""
    if schemas.height == 0:
        return [], list(names)
    live = current_schemas(schemas.filter(pl.col("name").is_in(list(names))))
    latest = {row["name"]: row for row in live.to_dicts()}
    found = [Question.from_row(latest[n]) for n in names if n in latest]
    return found, [n for n in names if n not in latest]


@dataclass(frozen=True)
class Answer:
    """A checked answer to one question."""

    question: Question
    value: Any
    comment: str | None


def _number(text: str) -> float | int:
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _check(question: Question, given: list[str]) -> tuple[Any, str | None]:
    """(value, None) for a valid answer, (None, None) when unanswered, (None, message) when wrong."""
    p = question.params
    kind = question.input_type
    if kind in ("categorical", "pass_fail"):
        value = given[0] if given else ""
        if value == "":
            return None, None
        allowed = [v for v, _ in question.choices]
        if value not in allowed:
            return None, f"{value!r} is not one of the options ({', '.join(label for _, label in question.choices)})"
        return (value == "true", None) if kind == "pass_fail" else (value, None)
    if kind == "categorical_list":
        picked = [v for v in given if v != ""]
        unknown = [v for v in picked if v not in question.options]
        if unknown:
            return None, f"{unknown[0]!r} is not one of the options ({', '.join(question.options)})"
        return ([o for o in question.options if o in picked] or None), None
    if kind == "numeric":
        text = (given[0] if given else "").strip()
        if text == "":
            return None, None
        try:
            number = _number(text)
        except ValueError:
            return None, f"{text!r} is not a number"
        low, high = p.get("min_value"), p.get("max_value")
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            return None, f"{number} is out of range: expected a number {bounds}"
        return number, None
    if kind == "text":
        text = (given[0] if given else "").strip()
        limit = p.get("max_length")
        if limit is not None and len(text) > int(limit):
            return None, f"the text has {len(text)} characters: at most {limit} are allowed"
        return (text or None), None
    if kind == "text_list":
        items = [t.strip() for t in given if t.strip()]
        each, count = p.get("max_length_each"), p.get("max_count")
        if count is not None and len(items) > int(count):
            return None, f"{len(items)} entries given: at most {count} are allowed"
        for item in items:
            if each is not None and len(item) > int(each):
                return None, f"an entry has {len(item)} characters: at most {each} are allowed"
        return (items or None), None
    return None, f"input type {kind!r} is not supported (expected one of {', '.join(INPUT_TYPES)})"


def parse_answers(
    questions: Sequence[Question], form: Mapping[str, list[str]]
) -> tuple[dict[str, Answer], dict[str, str]]:
    """Check a posted form against the questions: (answers by name, error messages by name)."""
    answers: dict[str, Answer] = {}
    errors: dict[str, str] = {}
    for question in questions:
        value, problem = _check(question, list(form.get(f"answer:{question.name}", [])))
        comment = (form.get(f"comment:{question.name}") or [""])[0].strip() if question.enable_comment else ""
        if not problem and value is not None and len(json.dumps(value).encode()) > MAX_VALUE_BYTES:
            problem = f"the answer is {len(json.dumps(value).encode())} bytes: at most {MAX_VALUE_BYTES} are allowed"
        if len(comment) > MAX_RATIONALE_CHARS:
            problem = f"the comment has {len(comment)} characters: at most {MAX_RATIONALE_CHARS} are allowed"
        if problem:
            errors[question.name] = problem
        elif value is None and question.required:
            errors[question.name] = "an answer is required"
        elif value is None and comment:
            errors[question.name] = "a comment needs an answer to go with it"
        elif value is not None:
            answers[question.name] = Answer(question, value, comment or None)
    if not answers and not errors:
        errors[""] = "answer at least one question, or skip the item"
    return answers, errors


def _as_form(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def form_values(
    questions: Sequence[Question],
    earlier: Mapping[str, Mapping[str, Any]],
    posted: Mapping[str, list[str]] | None,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What each question's widgets show: the posted form after an error, else my earlier answer."""
    filled: dict[str, list[str]] = {}
    comments: dict[str, str] = {}
    for question in questions:
        if posted is not None:
            filled[question.name] = list(posted.get(f"answer:{question.name}", []))
            comments[question.name] = (posted.get(f"comment:{question.name}") or [""])[0]
        else:
            previous = earlier.get(question.name) or {}
            filled[question.name] = _as_form(previous.get("value"))
            comments[question.name] = str(previous.get("rationale") or "")
    return filled, comments
