"""The web view's session store: a person's limit, idleness, and what is left to revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cli.web import sessions as web_sessions
from cli.web.backend import Identity
from cli.web.sessions import MAX_PER_PERSON, SessionStore


def _who(name: str) -> Identity:
    return Identity(name, f"token-{name}", datetime.now(UTC) + timedelta(hours=8))


def test_a_persons_oldest_session_ends_past_their_limit_and_is_left_to_revoke() -> None:
    store = SessionStore()
    other = store.open(_who("sofia"))
    mine = [store.open(_who("luis")) for _ in range(MAX_PER_PERSON + 2)]
    assert store.get(mine[0].sid) is None
    assert store.get(mine[1].sid) is None
    assert all(store.get(s.sid) is s for s in mine[2:])
    assert store.get(other.sid) is other
    assert [s.sid for s in store.retired()] == [mine[0].sid, mine[1].sid]
    assert store.retired() == []


def test_an_idle_session_ends_and_is_left_to_revoke() -> None:
    store = SessionStore()
    session = store.open(_who("sofia"))
    assert store.get(session.sid) is session
    session.last_used -= web_sessions.IDLE_SECONDS - 5  # used 5 s before the limit: lives on
    assert store.get(session.sid) is session
    session.last_used -= web_sessions.IDLE_SECONDS + 1
    assert store.get(session.sid) is None
    assert store.retired() == [session]
