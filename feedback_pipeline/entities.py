"""MLflow's assessment entities: `AssessmentSource`, `Feedback`, `Expectation`.

The same names and defaults as `mlflow.entities`, so code written against MLflow carries over:
a Feedback without a source is attributed to CODE, an Expectation without one to a HUMAN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

SOURCE_TYPES = ("HUMAN", "LLM_JUDGE", "CODE")
_SOURCE_ALIASES = {"AI_JUDGE": "LLM_JUDGE"}


def normalise_source_type(source_type: str) -> str:
    """Upper-case a source type and map MLflow's deprecated AI_JUDGE; reject anything else."""
    value = _SOURCE_ALIASES.get(str(source_type).upper(), str(source_type).upper())
    if value not in SOURCE_TYPES:
        raise ValueError(f"source_type {source_type!r}: expected one of {', '.join(SOURCE_TYPES)}")
    return value


@dataclass(frozen=True)
class AssessmentSource:
    """Who made an assessment: a HUMAN (source_id: their e-mail or user name), an LLM_JUDGE or CODE."""

    source_type: str = "HUMAN"
    source_id: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_type", normalise_source_type(self.source_type))
        object.__setattr__(self, "source_id", str(self.source_id or "default"))

    def to_dict(self) -> dict[str, str]:
        return {"source_type": self.source_type, "source_id": self.source_id}


@dataclass(frozen=True)
class AssessmentError:
    """Why a judge could not give a value (MLflow `AssessmentError`): a feedback carrying one may have no value."""

    error_code: str
    error_message: str | None = None
    stack_trace: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.error_code, str) or not self.error_code.strip():
            raise ValueError(f"error_code is {self.error_code!r}: expected a non-empty string such as 'RATE_LIMIT_EXCEEDED'")

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("error_code", self.error_code), ("error_message", self.error_message),
                                  ("stack_trace", self.stack_trace)) if v is not None}

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> AssessmentError:
        return cls(body.get("error_code"), body.get("error_message"), body.get("stack_trace"))


@dataclass(kw_only=True)
class Assessment:
    """A judgement on a trace (or one of its spans); `valid` is False once overridden or superseded."""

    name: str
    value: Any = None
    kind: str = "feedback"
    trace_id: str | None = None
    source: AssessmentSource | None = None
    rationale: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    span_id: str | None = None
    session: str | None = None
    assessment_id: str | None = None
    overrides: str | None = None
    valid: bool = True
    create_time_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    last_update_time_ms: int | None = None
    submission_id: str | None = None

    def __post_init__(self) -> None:
        if self.last_update_time_ms is None:
            self.last_update_time_ms = self.create_time_ms

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's serialised shape (`Assessment.to_dictionary`)."""
        body: dict[str, Any] = {
            "assessment_id": self.assessment_id,
            "assessment_name": self.name,
            "trace_id": self.trace_id,
            "source": (self.source or AssessmentSource()).to_dict(),
            "create_time_ms": self.create_time_ms,
            "last_update_time_ms": self.last_update_time_ms,
            self.kind: {"value": self.value},
            "valid": self.valid,
        }
        for key in ("span_id", "rationale", "overrides"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body


@dataclass(kw_only=True)
class Feedback(Assessment):
    """A judgement of what the app produced (MLflow `Feedback`); the source defaults to CODE."""

    name: str = "feedback"
    kind: str = "feedback"
    error: AssessmentError | None = None

    def __post_init__(self) -> None:
        if isinstance(self.error, dict):
            self.error = AssessmentError.from_dict(self.error)
        if self.source is None:
            self.source = AssessmentSource("CODE")
        super().__post_init__()

    def to_dictionary(self) -> dict[str, Any]:
        body = super().to_dictionary()
        if self.error is not None:
            body["feedback"]["error"] = self.error.to_dict()
        return body


@dataclass(kw_only=True)
class Expectation(Assessment):
    """The correct outcome, ground truth (MLflow `Expectation`); the source defaults to HUMAN."""

    kind: str = "expectation"

    def __post_init__(self) -> None:
        if self.value is None:
            raise ValueError(f"Expectation {self.name!r}: value is required (got None)")
        if self.source is None:
            self.source = AssessmentSource("HUMAN")
        super().__post_init__()
