"""Who may use the Review App and the feedback API: reviewer invitations, API keys, the cookie key.

Everything is stored as small JSON events in the landing zone's `definitions` area (files labelled
`access`), never on the server's disk, so any number of app processes on any machine agree:

    {"event": "reviewer_invited", "email": ..., "token_hash": sha256(secret), "session": ..., "at": ...}
    {"event": "reviewer_revoked", "email": ..., "at": ...}
    {"event": "api_key_created", "name": ..., "key_hash": sha256(key), "at": ...}
    {"event": "api_key_revoked", "name": ..., "at": ...}
    {"event": "signed_out", "cookie_hash": sha256(cookie), "at": ...}
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

from feedback_pipeline import definition_events, session_roles
from feedback_pipeline.submission_contract import MAX_ID_CHARS
from feedback_pipeline.home import FeedbackHome
from feedback_pipeline.landing import LandingKey, LandingZone
from feedback_pipeline.sessions import fold_labeling_sessions, live_sessions

ACCESS_LABEL = "access"
DEFAULT_REVIEW_APP_URL = "http://127.0.0.1:8000"
API_KEY_PREFIX = "fpk_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_EVENTS = ("reviewer_invited", "reviewer_revoked", "api_key_created", "api_key_revoked", "signed_out", "review_app_secret")


def hash_secret(secret: str) -> str:
    """The stored form of an invitation secret or API key (sha256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed e-mail; raises ValueError naming the value when it is not an address."""
    value = (email or "").strip().lower()
    if not _EMAIL.match(value):
        raise ValueError(f"email {email!r}: expected an address such as alice@example.com")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"email has {len(value)} characters: expected at most {MAX_ID_CHARS} (it becomes the answers' source_id)")
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


def check_invitation(home: FeedbackHome, email: str, session: str | None) -> None:
    """ValueError naming the session or the reviewer when an invitation would open nothing for them.

    With `session`, it must be a live session (in the definitions or the lake) that `email` may open
    (`session_roles.may_open`: a reviewer, an adjudicator or an owner); without, at least one live
    session must let them in.
    """
    address = normalise_email(email)
    frames = [fold_labeling_sessions(definition_events.read_events(home.landing()))]
    lake = home.lake()
    if lake.exists("labeling_sessions"):
        frames.append(lake.read("labeling_sessions"))
    rows: dict[str, dict] = {}
    for frame in frames:
        for row in live_sessions(frame).iter_rows(named=True):
            rows.setdefault(str(row["name"]), row)
    if session is not None:
        if session not in rows:
            raise ValueError(f"session {session!r} is not a labeling session: expected one of {sorted(rows)}")
        if not session_roles.may_open(rows[session], address):
            raise ValueError(
                f"reviewer {address!r} is not assigned to the session {session!r} "
                f"(assigned, adjudicators and owners: {', '.join(session_roles.members(rows[session]))})"
            )
    elif not any(session_roles.may_open(row, address) for row in rows.values()):
        raise ValueError(f"reviewer {address!r} is assigned to no labeling session: assign them first, or name a session")


def invite_reviewer(
    landing: LandingZone, email: str, session: str | None = None, base_url: str | None = None
) -> Invitation:
    """Record an invitation (only the secret's hash) and return the link carrying the secret (see `check_invitation`)."""
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


def sign_out(landing: LandingZone, cookie: str) -> str:
    """Invalidate one sign-in cookie everywhere (only its hash is stored)."""
    return _land(landing, {"event": "signed_out", "cookie_hash": hash_secret(cookie), "at": _now()})


@dataclass(frozen=True)
class ApiKey:
    """An application's key as listed: its name, when it was created, and whether it still works."""

    name: str
    created_at: str
    revoked: bool


def _key_name(name: str) -> str:
    label = (name or "").strip()
    if not label:
        raise ValueError("name '': expected the name of the application using the key")
    return label


def create_api_key(landing: LandingZone, name: str) -> str:
    """Record a new API key for an application (only its hash) and return the key, shown once.

    A name holds one live key: creating it again is refused until the old key is revoked.
    """
    label = _key_name(name)
    registry = AccessRegistry(landing, environ={})
    if any(k.name == label and not k.revoked for k in registry.api_keys()):
        raise ValueError(f"name {label!r} already has a live API key: revoke it first (feedback-pipeline api-keys revoke {label})")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    _land(landing, {"event": "api_key_created", "name": label, "key_hash": hash_secret(key), "at": _now()})
    return key


def revoke_api_key(landing: LandingZone, name: str) -> str:
    """Invalidate the keys of an application; ValueError naming it when it has no live key."""
    label = _key_name(name)
    live = [k.name for k in AccessRegistry(landing, environ={}).api_keys() if not k.revoked]
    if label not in live:
        raise ValueError(f"name {label!r} has no live API key: expected one of {sorted(set(live))}")
    return _land(landing, {"event": "api_key_revoked", "name": label, "at": _now()})


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
        self._listing = threading.Lock()
        self._cursor: str | None = None
        self._checked = 0.0
        self._invitations: dict[str, tuple[str, int]] = {}
        self._revoked_at: dict[str, int] = {}
        self._api_keys: dict[str, str] = {}
        self._key_list: list[tuple[str, str, str]] = []
        self._signed_out: set[str] = set()
        self._secrets: list[str] = []

    def refresh(self, force: bool = False) -> None:
        """Fold access events that arrived since the last refresh.

        One thread lists at a time; a throttled look does not wait for it (requests go on with
        what was folded), a forced one does and then lists again.
        """
        if not force and time.monotonic() - self._checked < self.refresh_seconds:
            return
        if not self._listing.acquire(blocking=force):
            return
        try:
            checked = time.monotonic()
            for key in self.landing.iter_keys("definitions", after=self._cursor):
                parsed = LandingKey.parse(key)
                lines = self.landing.read_bytes(key).decode().splitlines() if parsed.label == ACCESS_LABEL else []
                with self._lock:
                    for line in lines:
                        self._fold(line, parsed.time_ns)
                self._cursor = key
            self._checked = checked
        finally:
            self._listing.release()

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
            self._key_list.append((str(event.get("name") or ""), event["key_hash"], str(event.get("at") or "")))
        elif kind == "api_key_revoked" and event.get("name"):
            for name, key_hash, _ in self._key_list:
                if name == event["name"]:
                    self._api_keys.pop(key_hash, None)
        elif kind == "signed_out" and event.get("cookie_hash"):
            self._signed_out.add(str(event["cookie_hash"]))
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

    def signed_out(self, cookie: str) -> bool:
        """Whether a sign-in cookie was signed out (in any process, seen within `refresh_seconds`)."""
        self.refresh()
        return hash_secret(cookie) in self._signed_out

    def api_keys(self) -> list[ApiKey]:
        """Every key created in the landing zone, oldest first (FEEDBACK_API_KEYS are not listed)."""
        self.refresh(force=True)
        with self._lock:
            return [ApiKey(name, at, key_hash not in self._api_keys) for name, key_hash, at in self._key_list]

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
