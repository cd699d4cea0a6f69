"""The end-user feedback API: an application posts what its users said about an answer.

`POST /api/v1/feedback` and `POST /api/v1/expectations` take a trace_id (or the app's
client_request_id), a name, a value, an optional comment and the end user's id, authenticated with
an application API key (`Authorization: Bearer <key>`, created by `feedback-pipeline api-keys
create NAME` or listed in `FEEDBACK_API_KEYS`). A valid body is landed as one submission
(origin "api", source HUMAN with the user's id) and answered 202 with its ids; a bad one gets a 422
naming the field.
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

from feedback_pipeline.landing import LandingZone
from feedback_pipeline.review_app.access import AccessRegistry
from feedback_pipeline.submission_contract import max_chars
from feedback_pipeline.submissions import land_submissions, submission

API_LABEL = "api"


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

    @field_validator("value", check_fields=False)
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise ValueError("value: expected a finite number")
        return value


class FeedbackIn(_AssessmentIn):
    """A judgement of an answer: thumbs (true/false), a rating, a label or a list of labels."""

    value: bool | int | float | str | list[str] = Field(description="true/false, a number, a label or labels.")


class ExpectationIn(_AssessmentIn):
    """A correction: what the answer should have been (any JSON value but null)."""

    value: bool | int | float | str | list[Any] | dict[str, Any] = Field(description="The expected outcome.")


class Accepted(BaseModel):
    """The ids under which the submission will become an assessment."""

    assessment_id: str
    submission_id: str
    status: str = "accepted"


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


async def validation_error_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, with inputs JSON cannot carry (an infinite number) shown as text."""
    errors = [{**error, "input": _json_safe(error.get("input"))} for error in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


def feedback_router(access: AccessRegistry, landing: LandingZone) -> APIRouter:
    """The `/api/v1` routes, writing to `landing` and checking keys against `access`."""
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
