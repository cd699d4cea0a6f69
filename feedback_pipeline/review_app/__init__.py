"""The Review App: domain experts review a labeling session's traces and answer its questions.

`create_app(home)` builds the FastAPI application: server-rendered pages (Jinja2, autoescaped; one
static script, no inline code, a strict Content-Security-Policy) over the lake's session snapshots
and assessments, and the end-user feedback API (`feedback_pipeline.review_app.feedback_api`). It
writes nothing but submissions, reservations (`reservations`), sign-out events (and, when no
`FEEDBACK_SECRET_KEY` is set, one secret-key event) to the landing zone. Bodies over their limit get
413 before they are read whole (`BodyLimit`).

Reviewers are identified by an invitation link (`feedback-pipeline reviewers invite`) that sets a
signed HttpOnly SameSite=Lax cookie, or by a trusted reverse-proxy header named in
`FEEDBACK_TRUSTED_USER_HEADER`. Every form carries a CSRF token bound to the reviewer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape

from feedback_pipeline.submission_contract import MAX_RATIONALE_CHARS
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.review_app.access import AccessRegistry, hash_secret, normalise_email, sign_out
from feedback_pipeline.review_app.adjudication import adjudication_router, session_quality
from feedback_pipeline.review_app.answers import SKIP_NAME, form_values, parse_answers
from feedback_pipeline.item_status import REVIEWER_STATUSES
from feedback_pipeline.review_app.feedback_api import MAX_BODY_BYTES, feedback_router, validation_error_response
from feedback_pipeline.review_app.queue import REVIEW_APP_LABEL, ReviewData
from feedback_pipeline.review_app.session_answers import SessionAnswers
from feedback_pipeline.review_app.trace_view import markdown_html
from feedback_pipeline.submission_contract import limit_problems
from feedback_pipeline.submissions import land_submissions, submission

PACKAGE_DIR = Path(__file__).parent
SESSION_COOKIE = "fp_session"
CSRF_COOKIE = "fp_csrf"
WROTE_COOKIE = "fp_wrote"
COOKIE_MAX_AGE = 30 * 24 * 3600
# A review form answers several questions, each within the limits of one API body.
MAX_FORM_BYTES = 4 * MAX_BODY_BYTES
DEFAULT_THREADS = 8
# A worker thread back from a file or socket call waits up to this long for the GIL while another
# thread renders a page; at Python's default (5 ms) a listing of a busy landing folder, which gives
# the GIL up once per entry, took 25 ms instead of 2 under load.
GIL_SWITCH_SECONDS = 0.001
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["pct"] = lambda part, whole: 0 if not whole else round(100 * part / whole)
    env.filters["markdown"] = markdown_html
    env.globals["max_comment"] = MAX_RATIONALE_CHARS
    return env


class ReviewApp:
    """The state one app process keeps: where data lives, who is who, and the templates."""

    def __init__(self, home: FeedbackHome, *, trusted_header: str | None, secure_cookies: bool, ttl: float) -> None:
        self.home = home
        self.landing = home.landing()
        self.data = ReviewData(home.lake(), self.landing, ttl=ttl)
        self.access = AccessRegistry(self.landing)
        self._secret = self.access.secret_key().encode()
        self.serializer = URLSafeTimedSerializer(self._secret, salt="feedback-pipeline-review-app")
        self.trusted_header = trusted_header
        self.secure_cookies = secure_cookies
        self.templates = _templates()

    def reviewer(self, request: Request) -> str | None:
        """The signed-in reviewer's e-mail, or None."""
        if self.trusted_header:
            try:
                return normalise_email(request.headers.get(self.trusted_header, ""))
            except ValueError:
                return None
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self.serializer.loads(raw, max_age=COOKIE_MAX_AGE)
        except BadSignature:
            return None
        if self.access.signed_out(raw):
            return None
        email = self.access.reviewer(str(data.get("inv", "")))
        return email if email and email == data.get("email") else None

    def csrf_token(self, nonce: str, reviewer: str) -> str:
        return hmac.new(self._secret, f"csrf|{nonce}|{reviewer}".encode(), hashlib.sha256).hexdigest()

    def render(
        self, request: Request, template: str, status_code: int = 200, reviewer: str | None = None, **context: Any
    ) -> HTMLResponse:
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
        body = self.templates.get_template(template).render(
            reviewer=reviewer, csrf_token=self.csrf_token(nonce, reviewer or ""), **context
        )
        response = HTMLResponse(body, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != nonce:
            self.set_cookie(response, CSRF_COOKIE, nonce)
        return response

    def set_cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax", secure=self.secure_cookies, path="/"
        )

    def csrf_ok(self, request: Request, form_token: str, reviewer: str) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE)
        return bool(nonce) and hmac.compare_digest(self.csrf_token(nonce, reviewer), form_token or "")

    def problem(self, request: Request, status_code: int, title: str, detail: str, reviewer: str | None = None) -> HTMLResponse:
        return self.render(request, "problem.html", status_code, reviewer, title=title, detail=detail)


SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """ASGI middleware adding the security headers (and no-store, but to static files) a response lacks.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task group and a stream
    per request on the event loop.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = SECURITY_HEADERS if scope["path"].startswith("/static/") else (*SECURITY_HEADERS, (b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in wanted if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware answering 413 to a request body over its path's limit, having read at most one byte more.

    `limits`: (path prefix, bytes), first match wins. The body read is handed on to the app whole.
    """

    def __init__(self, app: ASGIApp, limits: tuple[tuple[str, int], ...]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = next((n for prefix, n in self.limits if scope["type"] == "http" and scope["path"].startswith(prefix)), None)
        if limit is None or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, int(declared), limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(scope, receive, send, None, limit)
                return
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, declared: int | None, limit: int) -> None:
        size = f"{declared} bytes" if declared is not None else "over the limit"
        message = f"request body is {size}: at most {limit} bytes are accepted"
        if scope["path"].startswith("/api/"):
            response: Response = JSONResponse({"detail": message}, status_code=413)
        else:
            response = HTMLResponse(f"<!doctype html><title>Too large</title><p>{message}</p>", status_code=413)
        await response(scope, receive, send)


def worker_threads(text: str | None) -> int:
    """The worker-thread count a setting asks for (DEFAULT_THREADS when unset); ValueError naming it when invalid."""
    if not text:
        return DEFAULT_THREADS
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"FEEDBACK_REVIEW_APP_THREADS {text!r}: expected a whole number of at least 1")
    return int(text)


def create_app(
    home: FeedbackHome | None = None,
    *,
    trusted_header: str | None = None,
    secure_cookies: bool | None = None,
    ttl: float = 5.0,
    threads: int | None = None,
) -> FastAPI:
    """The Review App and feedback API over `home` (default: `FeedbackHome.from_env()`).

    `trusted_header` (default `FEEDBACK_TRUSTED_USER_HEADER`) names a header set by a reverse proxy
    that has already authenticated the user; `secure_cookies` (default: `FEEDBACK_REVIEW_APP_URL`
    starts with https) marks cookies Secure. `ttl`: seconds between checks for new lake table
    versions (other reviewers' submissions are listed from the landing zone at least every second;
    one's own are seen at once). `threads` (default `FEEDBACK_REVIEW_APP_THREADS`, else 8): worker
    threads that run the pages and the landing writes; more only add contention for the GIL, and
    a few are enough to keep requests moving while one waits on an object store.
    """
    home = home or FeedbackHome.from_env()
    threads = threads or worker_threads(os.environ.get("FEEDBACK_REVIEW_APP_THREADS"))
    if trusted_header is None:
        trusted_header = os.environ.get("FEEDBACK_TRUSTED_USER_HEADER") or None
    if secure_cookies is None:
        secure_cookies = (os.environ.get("FEEDBACK_REVIEW_APP_URL") or "").startswith("https://")
    state = ReviewApp(home, trusted_header=trusted_header, secure_cookies=secure_cookies, ttl=ttl)

    @asynccontextmanager
    async def limit_threads(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        yield

    app = FastAPI(
        title="feedback-pipeline Review App and feedback API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=limit_threads,
    )
    app.state.review = state
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.include_router(feedback_router(state.access, state.landing, home.lake()))
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_middleware(BodyLimit, limits=(("/api/", MAX_BODY_BYTES), ("/", MAX_FORM_BYTES)))
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/invite/{token}", include_in_schema=False)
    def accept_invitation(request: Request, token: str, session: str | None = None) -> Response:
        email = state.access.reviewer(hash_secret(token))
        if email is None:
            return state.problem(
                request, 404, "Invitation not valid", "This invitation link is unknown or was revoked. Ask for a new one."
            )
        target = f"/sessions/{quote(session, safe='')}" if session else "/"
        response = RedirectResponse(target, status_code=303)
        state.set_cookie(response, SESSION_COOKIE, state.serializer.dumps({"email": email, "inv": hash_secret(token)}))
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        reviewer = state.reviewer(request)
        form = await request.form()
        if reviewer is None or not state.csrf_ok(request, str(form.get("csrf_token", "")), reviewer):
            return state.problem(request, 403, "Not allowed", "The form has expired; reload the page and try again.")
        if request.cookies.get(SESSION_COOKIE):
            await run_in_threadpool(sign_out, state.landing, request.cookies[SESSION_COOKIE])
            state.access.refresh(force=True)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def signed_in(request: Request) -> str | Response:
        reviewer = state.reviewer(request)
        if reviewer is None:
            return state.problem(
                request, 401, "Sign in with your invitation", "Open the invitation link you were sent to start reviewing."
            )
        return reviewer

    def visible_session(request: Request, reviewer: str, name: str) -> dict[str, Any] | Response:
        session = state.data.session(name)
        if session is None:
            return state.problem(request, 404, "No such session", f"There is no labeling session named {name!r}.", reviewer)
        if not state.data.may_review(session, reviewer):
            return state.problem(
                request, 403, "Not assigned", f"You are not assigned to the session {name!r}.", reviewer
            )
        return session

    def reviewer_and_session(request: Request, name: str) -> tuple[str, dict[str, Any]] | Response:
        """The signed-in reviewer and the session they may review, or the page refusing them."""
        reviewer = signed_in(request)
        if isinstance(reviewer, Response):
            return reviewer
        session = visible_session(request, reviewer, name)
        return session if isinstance(session, Response) else (reviewer, session)

    app.include_router(adjudication_router(state, reviewer_and_session))

    @app.get("/", include_in_schema=False)
    def my_sessions(request: Request) -> Response:
        reviewer = signed_in(request)
        if isinstance(reviewer, Response):
            return reviewer
        rows = [
            {"session": session, "progress": answers(request, session).counts(reviewer)}
            for session in state.data.sessions()
            if state.data.may_review(session, reviewer)
        ]
        return state.render(request, "sessions.html", reviewer=reviewer, sessions=rows)

    @app.get("/sessions/{name}", include_in_schema=False)
    def session_queue(request: Request, name: str, status: str = "all") -> Response:
        found = reviewer_and_session(request, name)
        if isinstance(found, Response):
            return found
        reviewer, session = found
        if status not in ("all", *REVIEWER_STATUSES):
            return state.problem(
                request, 400, "Unknown filter", f"status {status!r}: expected one of all, {', '.join(REVIEWER_STATUSES)}", reviewer
            )
        given = answers(request, session)
        mine = state.data.assigned_to(session, reviewer)
        state.data.reservations.refresh()
        slots = state.data.reservations.slots(name)
        queue = [{**row, "assigned": row["trace_id"] in mine} for row in given.queue(reviewer, slots)]
        rank = {s: i for i, s in enumerate(REVIEWER_STATUSES)}
        rows = sorted(
            (r for r in queue if status in ("all", r["status"])), key=lambda r: (not r["assigned"], rank[r["status"]])
        )
        first = given.route(reviewer, slots, 0, assigned=mine)
        return state.render(
            request,
            "queue.html",
            reviewer=reviewer,
            session=session,
            items=rows,
            status=status,
            statuses=REVIEWER_STATUSES,
            progress=given.counts(reviewer),
            first_pending=first,
            quality=session_quality(state, session, reviewer),
        )

    def answers(request: Request, session: dict[str, Any]) -> SessionAnswers:
        """The session's answers, including the last file this browser wrote (in any app process)."""
        return state.data.answers(session, request.cookies.get(WROTE_COOKIE) or None)

    def open_item(request: Request, name: str, item_id: str) -> tuple[str, dict[str, Any]] | Response:
        """The reviewer and what the item page shows (but the trace view), or the page refusing them."""
        found = reviewer_and_session(request, name)
        if isinstance(found, Response):
            return found
        reviewer, session = found
        items = state.data.items(session)
        position = items.positions.get(item_id)
        if position is None:
            return state.problem(request, 404, "No such item", f"The session {name!r} has no item {item_id!r}.", reviewer)
        given = answers(request, session)
        item = items.listed[position]  # the queue's columns: the trace itself is in the view
        questions, missing = state.data.questions(session)
        return reviewer, {
            "session": session,
            "item": item,
            "questions": questions,
            "missing": missing,
            "earlier": given.mine(str(item["trace_id"]), reviewer),
            "status": given.status(item_id, reviewer),
            "position": position + 1,
            "previous_id": items.ids[position - 1] if position > 0 else None,
            "next_id": items.ids[position + 1] if position + 1 < len(items.ids) else None,
            "progress": given.counts(reviewer),
            "answers": given,
        }

    @app.get("/sessions/{name}/items/{item_id}", include_in_schema=False)
    def item_page(request: Request, name: str, item_id: str) -> Response:
        found = open_item(request, name, item_id)
        if isinstance(found, Response):
            return found
        reviewer, context = found
        context.pop("answers")
        state.data.hold(context["session"], item_id, str(context["item"]["trace_id"]), reviewer)
        filled, comments = form_values(context["questions"], context["earlier"], None)
        return state.render(
            request, "item.html", reviewer=reviewer, errors={}, filled=filled, comments=comments,
            view=state.data.items(context["session"]).view(item_id), **context,
        )

    @app.post("/sessions/{name}/items/{item_id}", include_in_schema=False)
    async def submit_item(request: Request, name: str, item_id: str) -> Response:
        form = await request.form()
        posted = {key: [str(v) for v in form.getlist(key)] for key in form}
        return await run_in_threadpool(answer_item, request, name, item_id, posted)

    def answer_item(request: Request, name: str, item_id: str, posted: dict[str, list[str]]) -> Response:
        """Check a posted answer form, land its submissions, and send the reviewer to their next item.

        One worker-thread call does it all: every extra hop back to the event loop waits behind
        the other requests there.
        """
        found = open_item(request, name, item_id)
        if isinstance(found, Response):
            return found
        reviewer, context = found
        if not state.data.may_answer(context["session"], reviewer):
            return state.problem(
                request, 403, "Not assigned", f"You adjudicate {name!r} but are not assigned to answer its items.", reviewer
            )
        if not state.csrf_ok(request, (posted.get("csrf_token") or [""])[0], reviewer):
            return state.problem(
                request, 403, "Form expired", "The form's security token did not match; reload the page and submit again.", reviewer
            )
        context.pop("answers")

        def refused(errors: dict[str, str]) -> Response:
            filled, comments = form_values(context["questions"], context["earlier"], posted)
            return state.render(
                request, "item.html", 422, reviewer, errors=errors, filled=filled, comments=comments,
                view=state.data.items(context["session"]).view(item_id), **context,
            )

        trace_id = str(context["item"]["trace_id"])
        action = (posted.get("action") or ["submit"])[0]
        human = {"source_type": "HUMAN", "source_id": reviewer}
        if action == "skip":
            records = [
                submission(name=SKIP_NAME, kind="skip", source=human, origin=REVIEW_APP_LABEL, trace_id=trace_id, session=name)
            ]
        else:
            answers, errors = parse_answers(context["questions"], posted)
            if errors:
                return refused(errors)
            records = []
            for answer in answers.values():
                # A changed feedback overrides the earlier one; a newer expectation from the same
                # reviewer supersedes the earlier one by itself (only feedback can be overridden).
                earlier = context["earlier"].get(answer.question.name)
                if earlier and earlier["value"] == answer.value and (earlier["rationale"] or None) == answer.comment:
                    continue
                records.append(
                    submission(
                        name=answer.question.name, kind=answer.question.kind, value=answer.value, source=human,
                        origin=REVIEW_APP_LABEL, trace_id=trace_id, session=name, rationale=answer.comment,
                        metadata={"schema_version": answer.question.version, "item_id": item_id},
                        overrides=earlier["assessment_id"] if earlier and answer.question.kind == "feedback" else None,
                    )
                )
        too_big = {str(r["name"]): "; ".join(limit_problems(r)) for r in records if limit_problems(r)}
        if too_big:
            return refused(too_big)
        written = None
        if records:
            (written,) = land_submissions(state.landing, records, label=REVIEW_APP_LABEL)
            state.data.pending.add(records, written)
        response = send_on(request, context["session"], reviewer, item_id, written, answered=action != "skip")
        if written:
            state.set_cookie(response, WROTE_COOKIE, written)
        return response

    def send_on(
        request: Request, session: dict[str, Any], reviewer: str, after: str | None, written: str | None, answered: bool = False
    ) -> Response:
        """303 to the item the reviewer should review next (now reserved for them), or to the queue when none is left."""
        through = written or request.cookies.get(WROTE_COOKIE) or None
        upcoming = state.data.next_item(session, reviewer, after=after, through=through, answered=answered)
        base = f"/sessions/{quote(str(session['name']), safe='')}"
        return RedirectResponse(f"{base}/items/{quote(upcoming, safe='')}" if upcoming else f"{base}?status=all", status_code=303)

    @app.get("/sessions/{name}/next", include_in_schema=False)
    def next_item(request: Request, name: str) -> Response:
        found = reviewer_and_session(request, name)
        if isinstance(found, Response):
            return found
        reviewer, session = found
        return send_on(request, session, reviewer, None, None)

    return app
