"""Web sessions kept in the web process, and the slowing down of repeated failed logins.

The cookie carries only a random session id (HttpOnly, SameSite=Strict, Secure over TLS); the
person's OpenBao token stays in this process's memory and the session ends when the token
expires, at ``/salir`` (the token is revoked) or when the process stops. Each session has its
own CSRF token, checked on every form.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from cli.web.backend import Identity

__all__ = ["LoginThrottle", "SessionStore", "WebSession"]

MAX_SESSIONS = 10_000
# A person's open sessions (browsers); a new login past it ends their oldest.
MAX_PER_PERSON = 5
# A session unused this long ends (its OpenBao token is revoked), as a reviewer expects of a
# tool that shows evidence; the token's own TTL bounds it in any case.
IDLE_SECONDS = 30 * 60


@dataclass
class WebSession:
    sid: str = field(repr=False)
    identity: Identity
    csrf: str = field(repr=False)
    last_used: float = field(default_factory=time.monotonic)

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.identity.expires_at

    def idle(self) -> bool:
        return time.monotonic() - self.last_used >= IDLE_SECONDS

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf, str(presented))


class SessionStore:
    """Sessions by id. A person has at most :data:`MAX_PER_PERSON` (a new login ends their
    oldest: one person logging in over and over cannot push everyone else out), a session
    unused for :data:`IDLE_SECONDS` ends, and past :data:`MAX_SESSIONS` the oldest end. A
    session that ends this way is kept in :meth:`retired` until the application revokes its
    token in OpenBao (no token outlives the session it was for)."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()
        self._retired: list[WebSession] = []

    def open(self, identity: Identity) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), identity, secrets.token_urlsafe(32))
        own = [s for s in self._sessions.values() if s.identity.username == identity.username]
        for old in own[: max(0, len(own) - MAX_PER_PERSON + 1)]:
            self._retire(old.sid)
        self._sessions[session.sid] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._retire(next(iter(self._sessions)))
        return session

    def get(self, sid: str | None) -> WebSession | None:
        """The live session ``sid`` (None: unknown, expired or idle; such a one is forgotten,
        and an idle one retired)."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        if session.expired():
            del self._sessions[sid]
            return None
        if session.idle():
            self._retire(sid)
            return None
        session.last_used = time.monotonic()
        return session

    def close(self, sid: str) -> WebSession | None:
        return self._sessions.pop(sid, None)

    def retired(self) -> list[WebSession]:
        """The sessions ended here since the last call (their tokens to revoke)."""
        out, self._retired = self._retired, []
        return out

    def _retire(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            self._retired.append(session)


class LoginThrottle:
    """Failed logins, per user name and per client address: after ``free`` failures each new
    attempt waits ``base * 2**(n - free)`` seconds (at most ``cap``) before it is even tried;
    a success clears the user's count. Counts are forgotten after ``window`` seconds.

    The web never brings a user to OpenBao's own lockout (5 failures lock the login for 15
    minutes, on every path: the command line too): after ``limit`` failures for a user name
    within the window, the web stops asking OpenBao for that name (:meth:`exhausted`), and
    attempts for one name are made one at a time (:meth:`gate`), so that a burst sent at once
    cannot pass the count before it is updated. Someone hammering the login page can at worst
    keep that name off the web for a while; the command line still works."""

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 0.5,
        cap: float = 8.0,
        window: float = 900.0,
        limit: int = 3,
    ) -> None:
        self.free, self.base, self.cap, self.window, self.limit = free, base, cap, window, limit
        self._failures: dict[str, tuple[int, float]] = {}
        self._gates: dict[str, anyio.Lock] = {}

    @contextlib.asynccontextmanager
    async def gate(self, username: str) -> AsyncIterator[None]:
        """Attempts for ``username`` one at a time (each sees the count the previous left)."""
        key = username.lower()
        lock = self._gates.setdefault(key, anyio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._gates.pop(key, None)

    def exhausted(self, username: str) -> bool:
        """Whether ``username`` failed ``limit`` times within the window (stop asking)."""
        return self._count(f"u:{username.lower()}") >= self.limit

    def _count(self, key: str) -> int:
        count, last = self._failures.get(key, (0, 0.0))
        if time.monotonic() - last > self.window:
            self._failures.pop(key, None)
            return 0
        return count

    def delay(self, username: str, address: str) -> float:
        """Seconds to wait before trying this login."""
        worst = max(self._count(f"u:{username.lower()}"), self._count(f"a:{address}"))
        if worst < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2.0 ** (worst - self.free)))

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        for key in (f"u:{username.lower()}", f"a:{address}"):
            self._failures[key] = (self._count(key) + 1, now)
        if len(self._failures) > MAX_SESSIONS:  # never grows without bound
            self._failures.clear()

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username.lower()}", None)
