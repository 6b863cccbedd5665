"""Server-side sessions behind an encrypted cookie that holds only a random session id.

The cookie is ``Fernet(HKDF(session-key))`` over the id, so a tampered cookie, one made with
another key and one older than the absolute lifetime all fail to decrypt; the server-side table
enforces the absolute lifetime and the idle timeout again, and holds the GitLab tokens, which
never reach the browser. Sessions live in memory: a restart signs everyone out, by design (one
replica; the stack runs exactly one).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE: Literal["__Host-dashboard"] = "__Host-dashboard"
Role = Literal["viewer", "operator"]
Clock = Callable[[], float]

log = logging.getLogger(__name__)


def fernet_for(key: bytes, purpose: str) -> Fernet:
    """A Fernet key derived from the session key for one ``purpose``: a cookie made for one
    purpose does not decrypt as another."""
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"attic-iac dashboard {purpose}".encode(),
    ).derive(key)
    return Fernet(base64.urlsafe_b64encode(derived))


def cookie_header(name: str, value: str, *, max_age: int) -> str:
    """A ``Set-Cookie`` value with the attributes every dashboard cookie carries (``__Host-``
    requires Secure, Path=/ and no Domain)."""
    return f"{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax"


@dataclass(frozen=True, kw_only=True)
class Tokens:
    """The user's GitLab OAuth tokens; only ever server-side."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    # What GitLab granted: sign-in asks read_user read_api; an operator's step-up adds api.
    scopes: frozenset[str] = frozenset()

    def expired(self, now: float, *, margin: float = 60.0) -> bool:
        return now >= self.expires_at - margin


@dataclass(frozen=True, kw_only=True)
class Session:
    """One signed-in browser. ``role`` None = signed in but without access (a 403 page)."""

    id: str = field(repr=False)
    user_id: int
    username: str
    role: Role | None
    tokens: Tokens
    created_at: float
    last_seen: float
    roles_checked_at: float
    csrf_token: str = field(repr=False)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token, token or "")


class SessionStore:
    """The in-memory session table and the cookie that points into it."""

    def __init__(self, *, key: bytes, max_age: float, idle: float, clock: Clock = time.time):
        self._fernet = fernet_for(key, "session cookie")
        self.max_age = max_age
        self.idle = idle
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, *, user_id: int, username: str, role: Role | None, tokens: Tokens) -> Session:
        """A new session (always a new id: signing in never reuses one, no fixation)."""
        self.sweep()
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            user_id=user_id,
            username=username,
            role=role,
            tokens=tokens,
            created_at=now,
            last_seen=now,
            roles_checked_at=now,
            csrf_token=secrets.token_urlsafe(32),
        )
        self._sessions[session.id] = session
        return session

    def cookie(self, session: Session) -> str:
        """The ``Set-Cookie`` value for ``session``."""
        value = self._fernet.encrypt_at_time(session.id.encode(), int(self._clock())).decode()
        return cookie_header(COOKIE, value, max_age=int(self.max_age))

    @staticmethod
    def clear_cookie() -> str:
        return cookie_header(COOKIE, "", max_age=0)

    def load(self, cookie: str | None, *, touch: bool = True) -> Session | None:
        """The live session a cookie points to, else None; ``touch`` counts as activity.

        A failure is logged with its reason, never with the cookie."""
        if not cookie:
            return None
        now = self._clock()
        try:
            session_id = self._fernet.decrypt_at_time(
                cookie.encode(), ttl=int(self.max_age), current_time=int(now)
            ).decode()
        except (InvalidToken, UnicodeError):
            log.info("session cookie rejected: not ours, tampered with or too old")
            return None
        session = self._sessions.get(session_id)
        if session is None:
            log.info("session cookie rejected: no such session (signed out or restarted)")
            return None
        if self._expired(session, now):
            log.info("session expired for %s", session.username)
            self.delete(session.id)
            return None
        if touch:
            session = replace(session, last_seen=now)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The current version of a session (it may have changed while a request waited)."""
        return self._sessions.get(session_id)

    def save(self, session: Session) -> None:
        """Store a changed session (new tokens, rechecked role), unless it was deleted."""
        if session.id in self._sessions:
            self._sessions[session.id] = session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._locks.pop(session_id, None)

    def lock(self, session_id: str) -> asyncio.Lock:
        """One lock per session: a refresh token is single-use, so two concurrent requests
        must not both refresh it."""
        return self._locks.setdefault(session_id, asyncio.Lock())

    def sweep(self) -> None:
        """Forget expired sessions (memory stays bounded by the users active in a lifetime)."""
        now = self._clock()
        for session in list(self._sessions.values()):
            if self._expired(session, now):
                self.delete(session.id)

    def _expired(self, session: Session, now: float) -> bool:
        """Past the absolute lifetime or idle too long."""
        return now - session.created_at >= self.max_age or now - session.last_seen >= self.idle
