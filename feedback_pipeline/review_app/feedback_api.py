"""The end-user feedback API: an application posts what its users said about an answer.

`POST /api/v1/feedback` and `POST /api/v1/expectations` take a trace_id (or the app's
client_request_id), a name, a value, an optional comment and the end user's id, authenticated with
an application API key (`Authorization: Bearer <key>`, created by `feedback-pipeline api-keys
create NAME` or listed in `FEEDBACK_API_KEYS`). A valid body is landed as one submission
(origin "api", source HUMAN with the user's id) and answered 202 with its ids; a bad one gets a 422
naming the field. The limits are those the pipeline validates with (`feedback_pipeline.submission_contract`),
so a 202 means the submission will end in `assessments` or `rejections` (an unknown trace is only
known there); a body over `MAX_BODY_BYTES` gets 413 before it is read whole; a retried
`submission_id` with different content gets 409 with what is stored under it.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import polars as pl

from feedback_pipeline.lake import Lake
from feedback_pipeline.landing import LandingKey, LandingZone, processed_high_water
from feedback_pipeline.review_app.access import AccessRegistry
from feedback_pipeline.submission_contract import MAX_LINE_BYTES, limit_problems, max_chars
from feedback_pipeline.submissions import land_submissions, submission

API_LABEL = "api"
# A body becomes one landing line: what the pipeline refuses as a line is refused here as a body.
MAX_BODY_BYTES = MAX_LINE_BYTES
ECHO_CHARS = 200
COMPARED = ("name", "kind", "value", "trace_id", "client_request_id", "rationale", "span_id")


class _AssessmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str | None = Field(default=None, min_length=1, max_length=max_chars("trace_id"), description="The MLflow trace id (tr-…).")
    client_request_id: str | None = Field(
        default=None, min_length=1, max_length=max_chars("client_request_id"),
        description="The application's own request id, instead of trace_id.",
    )
    name: str = Field(min_length=1, max_length=max_chars("name"), description="The assessment name, e.g. user_satisfaction.")
    comment: str | None = Field(default=None, max_length=max_chars("rationale"), description="Free text; becomes the rationale.")
    user_id: str = Field(min_length=1, max_length=max_chars("source_id"), description="The end user's id; becomes the source_id.")
    span_id: str | None = Field(default=None, min_length=1, max_length=max_chars("span_id"))
    metadata: dict[str, Any] = Field(default_factory=dict)
    submission_id: str | None = Field(
        default=None,
        pattern=r"^s-[A-Za-z0-9_-]{8,64}$",
        description="Optional idempotency key (s-…): a retried request with the same id is stored once.",
    )

    @model_validator(mode="after")
    def _one_reference(self) -> _AssessmentIn:
        if (self.trace_id is None) == (self.client_request_id is None):
            raise ValueError("trace_id / client_request_id: give exactly one of the two")
        return self

    @field_validator("value", check_fields=False, mode="before")
    @classmethod
    def _present(cls, value: Any) -> Any:
        """One message for null, instead of one per branch of the value's union."""
        if value is None:
            raise ValueError(f"value is null: expected {cls.model_fields['value'].description}")
        return value

    @field_validator("value", check_fields=False)
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise ValueError("value: expected a finite number")
        return value


class FeedbackIn(_AssessmentIn):
    """A judgement of an answer: thumbs (true/false), a rating, a label or a list of labels."""

    value: bool | int | float | str | list[str] = Field(description="true/false, a number, a label or a list of labels")


class ExpectationIn(_AssessmentIn):
    """A correction: what the answer should have been (any JSON value but null)."""

    value: bool | int | float | str | list[Any] | dict[str, Any] = Field(
        description="any JSON value but null (the expected outcome)"
    )


class Accepted(BaseModel):
    """The ids under which the submission will become an assessment."""

    assessment_id: str
    submission_id: str
    status: str = "accepted"


def _echo(value: Any) -> Any:
    """An input as a 422 shows it: as given when short, else its first ECHO_CHARS characters as text."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
        value = text
    return value if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}… ({len(text)} characters)"


async def validation_error_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, with long inputs cut short and inputs JSON cannot carry shown as text."""
    errors = [{**error, "input": _echo(error.get("input"))} for error in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


def _stored(lake: Lake, landing: LandingZone, submission_id: str) -> dict[str, Any] | None:
    """The submission recorded under a client's submission_id: in the lake, or landed and not yet read."""
    scan = lake.scan("submissions")
    if scan is not None:
        found = scan.filter(pl.col("submission_id") == submission_id).select(*COMPARED, "assessment_id").collect()
        if found.height:
            row = found.row(0, named=True)
            return {**row, "value": json.loads(row["value"]) if row["value"] is not None else None}
    after = processed_high_water(lake, "submissions")
    for key in landing.iter_keys("submissions", after=after):
        if LandingKey.parse(key).label != API_LABEL:
            continue
        for line in landing.read_bytes(key).decode().splitlines():
            if submission_id in line:
                record = json.loads(line)
                if record.get("submission_id") == submission_id:
                    return record
    return None


def feedback_router(access: AccessRegistry, landing: LandingZone, lake: Lake) -> APIRouter:
    """The `/api/v1` routes, writing to `landing`, checking keys against `access` and retries against `lake`."""
    router = APIRouter(prefix="/api/v1", tags=["end-user feedback"])
    # Dependencies are passed as defaults: annotations naming these local functions would not resolve.
    bearer = HTTPBearer(auto_error=False, description="An application API key: `feedback-pipeline api-keys create NAME`.")

    def application(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:  # noqa: B008
        name = access.api_key_name(credentials.credentials) if credentials else None
        if name is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="Authorization: expected 'Bearer <API key>' with a key from 'feedback-pipeline api-keys create'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return name

    def land(body: _AssessmentIn, kind: str, app_name: str) -> Accepted:
        # A client's submission_id (an idempotency key) always yields the same assessment_id, so a
        # retried request reports the id that was stored.
        assessment_id = "a-" + uuid.uuid5(uuid.NAMESPACE_URL, body.submission_id).hex if body.submission_id else None
        record = submission(
            name=body.name, kind=kind, value=body.value, origin=API_LABEL, assessment_id=assessment_id,
            source={"source_type": "HUMAN", "source_id": body.user_id},
            trace_id=body.trace_id, client_request_id=body.client_request_id, rationale=body.comment,
            span_id=body.span_id, metadata={**body.metadata, "api_key_name": app_name},
            submission_id=body.submission_id,
        )
        problems = limit_problems(record)
        if problems:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                detail=[{"loc": ["body", p.split(" ", 1)[0]], "msg": p, "type": "value_error"} for p in problems],
            )
        if body.submission_id:
            earlier = _stored(lake, landing, body.submission_id)
            if earlier is not None:
                differ = [f for f in COMPARED if earlier.get(f) != record.get(f)]
                if differ:
                    raise HTTPException(
                        status.HTTP_409_CONFLICT,
                        detail={
                            "message": f"submission_id {body.submission_id!r} is already stored with other "
                            f"{', '.join(differ)}: expected the same content (a retry) or a new submission_id",
                            "stored": {f: earlier.get(f) for f in COMPARED},
                        },
                    )
                return Accepted(assessment_id=str(earlier["assessment_id"]), submission_id=body.submission_id)
        land_submissions(landing, [record], label=API_LABEL)
        return Accepted(assessment_id=record["assessment_id"], submission_id=record["submission_id"])

    @router.post("/feedback", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
    def post_feedback(body: FeedbackIn, app_name: str = Depends(application)) -> Accepted:  # noqa: B008
        """Record an end user's feedback on a trace."""
        return land(body, "feedback", app_name)

    @router.post("/expectations", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
    def post_expectation(body: ExpectationIn, app_name: str = Depends(application)) -> Accepted:  # noqa: B008
        """Record what the answer to a trace should have been."""
        return land(body, "expectation", app_name)

    return router
