"""Who may use the Review App and the feedback API: reviewer invitations, API keys, the cookie key.

Everything is stored as small JSON events in the landing zone's `definitions` area (files labelled
`access`), never on the server's disk, so any number of app processes on any machine agree:

    {"event": "reviewer_invited", "email": ..., "token_hash": sha256(secret), "session": ..., "at": ...}
    {"event": "reviewer_revoked", "email": ..., "at": ...}
    {"event": "api_key_created", "name": ..., "key_hash": sha256(key), "at": ...}
    {"event": "review_app_secret", "secret": ..., "at": ...}

Only hashes of invitation secrets and API keys are stored. The cookie-signing key is taken from
`FEEDBACK_SECRET_KEY`; without it the first `review_app_secret` event in arrival order is used (one
is written when none exists). Whoever can read the landing zone can therefore sign cookies: set
`FEEDBACK_SECRET_KEY` where the landing zone is shared more widely than the app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from feedback_pipeline.landing import LandingKey, LandingZone

ACCESS_LABEL = "access"
DEFAULT_REVIEW_APP_URL = "http://127.0.0.1:8000"
API_KEY_PREFIX = "fpk_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_EVENTS = ("reviewer_invited", "reviewer_revoked", "api_key_created", "review_app_secret")


def hash_secret(secret: str) -> str:
    """The stored form of an invitation secret or API key (sha256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed e-mail; raises ValueError naming the value when it is not an address."""
    value = (email or "").strip().lower()
    if not _EMAIL.match(value):
        raise ValueError(f"email {email!r}: expected an address such as alice@example.com")
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _land(landing: LandingZone, event: dict) -> str:
    return landing.write_lines("definitions", [json.dumps(event, sort_keys=True)], label=ACCESS_LABEL)


@dataclass(frozen=True)
class Invitation:
    """A reviewer's invitation: the link to send them (it carries the secret, shown once)."""

    email: str
    session: str | None
    url: str
    landing_key: str


def invite_reviewer(
    landing: LandingZone, email: str, session: str | None = None, base_url: str | None = None
) -> Invitation:
    """Record an invitation (only the secret's hash) and return the link carrying the secret."""
    address = normalise_email(email)
    token = secrets.token_urlsafe(24)
    base = (base_url or os.environ.get("FEEDBACK_REVIEW_APP_URL") or DEFAULT_REVIEW_APP_URL).rstrip("/")
    key = _land(
        landing,
        {"event": "reviewer_invited", "email": address, "token_hash": hash_secret(token), "session": session, "at": _now()},
    )
    url = f"{base}/invite/{token}"
    if session:
        url += f"?session={quote(session, safe='')}"
    return Invitation(address, session, url, key)


def revoke_reviewer(landing: LandingZone, email: str) -> str:
    """Invalidate every earlier invitation of a reviewer (and the cookies they produced)."""
    return _land(landing, {"event": "reviewer_revoked", "email": normalise_email(email), "at": _now()})


def create_api_key(landing: LandingZone, name: str) -> str:
    """Record a new API key for an application (only its hash) and return the key, shown once."""
    label = (name or "").strip()
    if not label:
        raise ValueError("name '': expected the name of the application using the key")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    _land(landing, {"event": "api_key_created", "name": label, "key_hash": hash_secret(key), "at": _now()})
    return key


class AccessRegistry:
    """The access events folded in arrival order, re-read incrementally (at most every `refresh_seconds`)."""

    def __init__(self, landing: LandingZone, refresh_seconds: float = 2.0, environ: dict[str, str] | None = None):
        self.landing = landing
        self.refresh_seconds = refresh_seconds
        env = os.environ if environ is None else environ
        self._env_secret = env.get("FEEDBACK_SECRET_KEY") or None
        self._env_api_keys = {
            hash_secret(k.strip()): "FEEDBACK_API_KEYS" for k in (env.get("FEEDBACK_API_KEYS") or "").split(",") if k.strip()
        }
        self._lock = threading.Lock()
        self._cursor: str | None = None
        self._checked = 0.0
        self._invitations: dict[str, tuple[str, int]] = {}
        self._revoked_at: dict[str, int] = {}
        self._api_keys: dict[str, str] = {}
        self._secrets: list[str] = []

    def refresh(self, force: bool = False) -> None:
        """Fold access events that arrived since the last refresh."""
        with self._lock:
            if not force and time.monotonic() - self._checked < self.refresh_seconds:
                return
            for key in self.landing.iter_keys("definitions", after=self._cursor):
                self._cursor = key
                parsed = LandingKey.parse(key)
                if parsed.label != ACCESS_LABEL:
                    continue
                for line in self.landing.read_bytes(key).decode().splitlines():
                    self._fold(line, parsed.time_ns)
            self._checked = time.monotonic()

    def _fold(self, line: str, arrived_ns: int) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict) or event.get("event") not in _EVENTS:
            return
        kind = event["event"]
        if kind == "reviewer_invited" and event.get("token_hash") and event.get("email"):
            self._invitations[event["token_hash"]] = (event["email"], arrived_ns)
        elif kind == "reviewer_revoked" and event.get("email"):
            self._revoked_at[event["email"]] = arrived_ns
        elif kind == "api_key_created" and event.get("key_hash"):
            self._api_keys[event["key_hash"]] = str(event.get("name") or "")
        elif kind == "review_app_secret" and event.get("secret"):
            self._secrets.append(str(event["secret"]))

    def reviewer(self, token_hash: str) -> str | None:
        """The e-mail an invitation (by the hash of its secret) identifies, unless it was revoked."""
        self.refresh()
        found = self._invitations.get(token_hash)
        if found is None:
            self.refresh(force=True)
            found = self._invitations.get(token_hash)
        if found is None:
            return None
        email, invited_ns = found
        if self._revoked_at.get(email, -1) > invited_ns:
            return None
        return email

    def api_key_name(self, key: str) -> str | None:
        """The application an API key belongs to, or None for an unknown key."""
        digest = hash_secret(key)
        for known, name in list(self._env_api_keys.items()):
            if hmac.compare_digest(known, digest):
                return name
        if digest not in self._api_keys:
            self.refresh(force=True)
        return self._api_keys.get(digest)

    def secret_key(self) -> str:
        """The cookie-signing key: `FEEDBACK_SECRET_KEY`, else the first stored one (created if none)."""
        if self._env_secret:
            return self._env_secret
        self.refresh(force=True)
        if not self._secrets:
            _land(self.landing, {"event": "review_app_secret", "secret": secrets.token_urlsafe(48), "at": _now()})
            self.refresh(force=True)
        return self._secrets[0]
