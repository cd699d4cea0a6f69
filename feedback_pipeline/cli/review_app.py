"""`feedback-pipeline review-app`, `reviewers invite|revoke` and `api-keys create|list|revoke`."""

from __future__ import annotations

import click

from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.review_app.access import (
    AccessRegistry,
    check_invitation,
    create_api_key,
    invite_reviewer,
    revoke_api_key,
    revoke_reviewer,
)


@click.command("review-app")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes (they share nothing but the data).")
@click.option(
    "--threads", default=None, type=click.IntRange(min=1),
    help="Worker threads per process [default: $FEEDBACK_REVIEW_APP_THREADS or 8].",
)
def review_app(host: str, port: int, workers: int, threads: int | None) -> None:
    """Serve the Review App and the end-user feedback API."""
    import os

    import uvicorn

    from feedback_pipeline.review_app import worker_threads

    FeedbackHome.from_env()
    if threads is not None:
        os.environ["FEEDBACK_REVIEW_APP_THREADS"] = str(threads)
    try:
        worker_threads(os.environ.get("FEEDBACK_REVIEW_APP_THREADS"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    uvicorn.run(
        "feedback_pipeline.review_app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
    )


@click.group("reviewers")
def reviewers() -> None:
    """Invite reviewers to the Review App, or revoke them."""


@reviewers.command("invite")
@click.argument("email")
@click.option("--session", default=None, help="Open this labeling session after sign-in.")
@click.option("--base-url", default=None, help="The app's public URL [default: $FEEDBACK_REVIEW_APP_URL or http://127.0.0.1:8000].")
def invite(email: str, session: str | None, base_url: str | None) -> None:
    """Print an invitation link for EMAIL (only a hash of its secret is stored).

    Refused when the session does not exist or does not assign EMAIL (without --session: when no
    session would show EMAIL anything).
    """
    try:
        home = FeedbackHome.from_env()
        check_invitation(home, email, session)
        invitation = invite_reviewer(home.landing(), email, session, base_url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(invitation.url)


@reviewers.command("revoke")
@click.argument("email")
def revoke(email: str) -> None:
    """Invalidate every invitation link and sign-in of EMAIL."""
    try:
        revoke_reviewer(FeedbackHome.from_env().landing(), email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    click.echo(f"revoked {email}")


@click.group("api-keys")
def api_keys() -> None:
    """API keys for applications posting end-user feedback."""


@api_keys.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Create a key for the application NAME and print it (shown once; only its hash is stored)."""
    try:
        click.echo(create_api_key(FeedbackHome.from_env().landing(), name))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None


@api_keys.command("list")
def list_keys() -> None:
    """List the applications' keys (names, creation time, live or revoked; never the keys)."""
    keys = AccessRegistry(FeedbackHome.from_env().landing(), environ={}).api_keys()
    if not keys:
        click.echo("no API keys")
    for key in keys:
        click.echo(f"{key.name}\t{key.created_at}\t{'revoked' if key.revoked else 'live'}")


@api_keys.command("revoke")
@click.argument("name")
def revoke_key(name: str) -> None:
    """Invalidate the key of the application NAME (in every app process within seconds)."""
    try:
        revoke_api_key(FeedbackHome.from_env().landing(), name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    click.echo(f"revoked the API key of {name}")
