"""The questions a session asks, the answers a reviewer gives, and the submissions they become.

A question is the current version of a label schema (latest non-deleted version of its name). The
form posts `answer:<name>` (repeated for lists) and `comment:<name>`; `parse_answers` checks each
against its schema and says what is wrong in words, before anything is landed (as submissions made
by `feedback_pipeline.submissions.submission`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from feedback_pipeline.input_types import INPUT_TYPES, Input, input_from_parameters
from feedback_pipeline.schemas import current_schemas
from feedback_pipeline.submission_contract import MAX_RATIONALE_CHARS

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
    input: Input | None = None

    @property
    def required(self) -> bool:
        """Whether the form insists on an answer (the input's `required`, default true)."""
        return self.input.required if self.input is not None else True

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(form value, label) of the options a keyboard digit picks, in order."""
        return self.input.choices if self.input is not None else []

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Question:
        """A question from a `label_schemas` row; an input type this version does not know has no `input`
        (the page says it is not supported)."""
        raw = row.get("input")
        params = json.loads(raw) if isinstance(raw, str) and raw else dict(raw or {})
        input_type = str(row.get("input_type") or "text")
        try:
            answer_input = input_from_parameters(input_type, params)
        except (ValueError, TypeError):
            answer_input = None
        return cls(
            name=str(row["name"]),
            version=int(row.get("version") or 1),
            kind=str(row.get("type") or "feedback"),
            title=str(row.get("title") or row["name"]),
            instruction=str(row.get("instruction") or ""),
            enable_comment=bool(row.get("enable_comment")),
            input_type=input_type,
            params=params,
            input=answer_input,
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


def _check(question: Question, given: list[str]) -> tuple[Any, str | None]:
    """(value, None) for a valid answer, (None, None) when unanswered, (None, message) when wrong."""
    if question.input is None:
        return None, f"input type {question.input_type!r} is not supported (expected one of {', '.join(INPUT_TYPES)})"
    return question.input.read_form(given)


def parse_answers(
    questions: Sequence[Question], form: Mapping[str, list[str]]
) -> tuple[dict[str, Answer], dict[str, str]]:
    """Check a posted form against the questions: (answers by name, error messages by name)."""
    answers: dict[str, Answer] = {}
    errors: dict[str, str] = {}
    for question in questions:
        value, problem = _check(question, list(form.get(f"answer:{question.name}", [])))
        comment = (form.get(f"comment:{question.name}") or [""])[0].strip() if question.enable_comment else ""
        if problem:
            errors[question.name] = problem
        elif len(comment) > MAX_RATIONALE_CHARS:
            errors[question.name] = f"the comment has {len(comment)} characters: at most {MAX_RATIONALE_CHARS} are allowed"
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
