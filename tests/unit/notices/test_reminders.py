"""Reminders of rotation obligations near and past their deadline, through the notices outbox
(issue 19; 6.X), and the at-least-once choice for the crash window SMTP leaves, against a real
SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.stack.notices import NoticeSender, NoticeSettings, list_notices
from custody.stack.servers import free_port
from events.domain import District, parse_district_id
from projections.notices import cancellations_for, notices_for, reminder_time

from .test_outbox import Inbox, outbox

DD05 = District.create_id(parse_district_id("DD05"))
ZONE = ZoneInfo("America/Mexico_City")
ENV = {"CUSTODIA_CORREO_UTCSYD": "utcsyd@iecm.test"}


def opened(
    deadline: datetime, *, at: datetime, version: int = 2, obligation: UUID | None = None
) -> Any:
    """A rotation obligation of DD05-x opened at ``at`` with ``deadline`` (a real event)."""
    return District.RotationObligationOpened(  # type: ignore[call-arg]
        originator_id=DD05,
        originator_version=version,
        timestamp=at,
        obligation_id=obligation or uuid4(),
        account="DD05-x",
        cause="cambio_de_administrador",
        outgoing_holder_id=uuid4(),
        incoming_holder_id=uuid4(),
        deadline=deadline,
        by=uuid4(),
    )


def confirmed(obligation: UUID, *, at: datetime, version: int) -> Any:
    return District.RotationConfirmed(  # type: ignore[call-arg]
        originator_id=DD05,
        originator_version=version,
        timestamp=at,
        account="DD05-x",
        version=3,
        fingerprint="ab" * 16,
        previous_version=2,
        closed_obligation_ids=[obligation],
        change_request_id=None,
        by=uuid4(),
    )


def test_an_obligation_makes_its_notice_and_two_reminders_with_stable_ids() -> None:
    """6.X: an obligation opened on a Monday morning, due at the end of Tuesday, makes the
    notice at once, a reminder at 09:00 on Tuesday (the business day it falls due) and one
    at the deadline; the same ids whenever computed; the reminders name the obligation."""
    monday = datetime(2026, 3, 2, 10, 0, tzinfo=ZONE)
    deadline = datetime(2026, 3, 4, 0, 0, tzinfo=ZONE)
    event = opened(deadline, at=monday)
    notices = notices_for(event)
    assert [n.kind for n in notices] == [
        "rotacion_pendiente",
        "rotacion_por_vencer",
        "rotacion_vencida",
    ]
    assert notices[0].not_before is None
    assert notices[1].not_before == datetime(2026, 3, 3, 9, 0, tzinfo=ZONE)
    assert notices[2].not_before == deadline
    assert {n.obligation for n in notices} == {str(event.obligation_id)}
    assert len({n.notice_id for n in notices}) == 3
    assert notices_for(event) == notices
    assert "vence hoy" in notices[1].body
    assert "venció" in notices[2].body


def test_the_near_reminder_skips_non_working_days_and_is_dropped_when_too_late() -> None:
    """A deadline at the end of a Saturday is near on Friday at 09:00; an obligation opened
    after that moment (a same-day deadline) gets only the overdue reminder."""
    saturday_end = datetime(2026, 3, 8, 0, 0, tzinfo=ZONE)
    assert reminder_time(saturday_end) == datetime(2026, 3, 6, 9, 0, tzinfo=ZONE)
    # Due on a Tuesday at 08:00 (before its working hours): near on Monday, not after it.
    tuesday_early = datetime(2026, 3, 10, 8, 0, tzinfo=ZONE)
    assert reminder_time(tuesday_early) == datetime(2026, 3, 9, 9, 0, tzinfo=ZONE)
    monday_early = datetime(2026, 3, 9, 0, 20, tzinfo=ZONE)
    assert reminder_time(monday_early) == datetime(2026, 3, 6, 9, 0, tzinfo=ZONE)
    late = opened(
        datetime(2026, 3, 3, 0, 0, tzinfo=ZONE), at=datetime(2026, 3, 2, 15, 0, tzinfo=ZONE)
    )
    assert [n.kind for n in notices_for(late)] == ["rotacion_pendiente", "rotacion_vencida"]


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield inbox, port
    finally:
        server.stop()


def _messages(inbox: Inbox) -> list[EmailMessage]:
    with inbox.lock:
        raws = list(inbox.received)
    return [message_from_bytes(raw, policy=policy.default) for raw in raws]


def test_reminders_are_sent_once_when_due_and_never_once_the_rotation_is_done(
    tmp_path: Path, smtp: Any
) -> None:
    """A past-due obligation's notice and both reminders go out, each once over several
    rounds; a future obligation's reminders are listed ``programado`` and not sent; once its
    rotation is confirmed they are ``cancelado`` and never sent. No secret in any message."""
    inbox, port = smtp
    db = tmp_path / "avisos.sqlite"
    view = outbox(db)
    now = datetime.now(UTC)
    overdue = opened(now - timedelta(hours=1), at=now - timedelta(days=3), version=2)
    future_id = uuid4()
    future = opened(now + timedelta(days=5), at=now, version=3, obligation=future_id)
    view.record(notices_for(overdue), Tracking("custodia", 1))
    view.record(notices_for(future), Tracking("custodia", 2))
    sender = NoticeSender(
        db, NoticeSettings.from_env({**ENV, "CUSTODIA_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    )
    assert sender.send_due() == 4  # overdue: notice + 2 reminders; future: its notice
    assert sender.send_due() == 0
    states = {(r["tipo"], r["plazo"] > now.isoformat()): r["estado"] for r in list_notices(db)}
    assert states[("rotacion_por_vencer", True)] == "programado"
    assert states[("rotacion_vencida", True)] == "programado"

    done = confirmed(future_id, at=now + timedelta(minutes=1), version=4)
    view.record(notices_for(done), Tracking("custodia", 3), cancellations_for(done))
    # Even once their time has come, cancelled reminders stay unsent.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE notices SET not_before = ? WHERE not_before IS NOT NULL", ("2000",))
    assert sender.send_due() == 0
    future_rows = [r for r in list_notices(db) if r["plazo"] > now.isoformat()]
    assert sorted(r["estado"] for r in future_rows) == ["cancelado", "cancelado", "enviado"]

    messages = _messages(inbox)
    ids = [str(m["X-Custodia-Aviso"]) for m in messages]
    assert len(ids) == len(set(ids)) == 4
    for message in messages:  # ledger facts only, and the warning that no secret is mailed
        text = message.as_string()
        assert "otpauth" not in text
        assert "Custodia no env" in str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    view.datastore.close()


def test_a_crash_after_the_server_accepted_resends_marked_with_the_same_message_id(
    tmp_path: Path, smtp: Any
) -> None:
    """At least once: the state a crash between the SMTP server's acceptance and the commit
    leaves on disk (the attempt ``en_envio``, not sent) makes the next round send the notice
    again, with the same ``Message-ID`` (receivers deduplicate by it) and
    ``X-Custodia-Reenvio: posible-duplicado``; a first delivery carries no such mark."""
    inbox, port = smtp
    db = tmp_path / "avisos.sqlite"
    view = outbox(db)
    now = datetime.now(UTC)
    view.record(notices_for(opened(now + timedelta(days=5), at=now)), Tracking("custodia", 1))
    sender = NoticeSender(
        db, NoticeSettings.from_env({**ENV, "CUSTODIA_SMTP_URL": f"smtp://127.0.0.1:{port}"})
    )
    assert sender.send_due() == 1
    with sqlite3.connect(db) as conn:  # what the crash leaves: delivered, not recorded
        conn.execute(
            "UPDATE notices_sent SET sent_at = NULL, next_attempt_at = NULL,"
            " last_error = 'en_envio'"
        )
    restarted = NoticeSender(db, sender.settings)
    assert restarted.send_due() == 1
    assert restarted.send_due() == 0
    first, again = _messages(inbox)
    assert first["Message-ID"] == again["Message-ID"]
    assert first["X-Custodia-Reenvio"] is None
    assert again["X-Custodia-Reenvio"] == "posible-duplicado"
    view.datastore.close()


def test_an_outbox_from_before_reminders_gains_their_columns(tmp_path: Path) -> None:
    """An outbox file made before reminders existed is migrated when opened: its notices are
    kept (due now) and new ones with reminders are recorded."""
    db = tmp_path / "avisos.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE notices (notice_id TEXT PRIMARY KEY, position INTEGER NOT NULL,"
            " kind TEXT NOT NULL, recipient TEXT NOT NULL, district TEXT, subject TEXT NOT NULL,"
            " body TEXT NOT NULL, created_at TEXT NOT NULL, deadline TEXT) WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO notices VALUES ('old', 1, 'designacion', 'utcsyd', 'DD05', 's', 'b',"
            " '2026-01-01T00:00:00+00:00', NULL)"
        )
    view = outbox(db)
    now = datetime.now(UTC)
    view.record(notices_for(opened(now + timedelta(days=5), at=now)), Tracking("custodia", 2))
    states = {r["aviso"]: r["estado"] for r in list_notices(db)}
    assert states["old"] == "pendiente"
    assert sorted(states.values()) == ["pendiente", "pendiente", "programado", "programado"]
    view.datastore.close()


STEPS = st.lists(
    st.sampled_from(["down", "up", "round", "restart", "overdue", "future", "confirm"]),
    max_size=14,
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_every_due_reminder_is_delivered_once_and_no_cancelled_one_ever(
    tmp_path_factory: Any, steps: list[str]
) -> None:
    """Property (issue 19): whatever the order of SMTP outages, sender restarts, rounds, new
    obligations (past due or not) and confirmed rotations, once the server is up every notice
    due has been delivered exactly once, and no reminder not yet due or cancelled was sent."""
    db = tmp_path_factory.mktemp("avisos") / "avisos.sqlite"
    view = outbox(db)
    port = free_port()
    inbox = Inbox()
    env = NoticeSettings(
        smtp_url=f"smtp://127.0.0.1:{port}", mailboxes={"utcsyd": "u@iecm.test"}, max_retry_s=0
    )
    now = datetime.now(UTC)
    position = 0
    open_future: list[UUID] = []
    server: Controller | None = None

    def record(event: Any) -> None:
        nonlocal position
        position += 1
        view.record(notices_for(event), Tracking("custodia", position), cancellations_for(event))

    sender = NoticeSender(db, env)
    try:
        for step in steps:
            if step == "down" and server is not None:
                server.stop()
                server = None
            elif step == "up" and server is None:
                server = Controller(inbox, hostname="127.0.0.1", port=port)
                server.start()
            elif step == "round":
                sender.send_due()
            elif step == "restart":
                sender = NoticeSender(db, env)
            elif step == "overdue":
                record(opened(now - timedelta(hours=1), at=now - timedelta(days=3)))
            elif step == "future":
                obligation = uuid4()
                open_future.append(obligation)
                record(opened(now + timedelta(days=5), at=now, obligation=obligation))
            elif step == "confirm" and open_future:
                record(confirmed(open_future.pop(), at=now, version=position + 10))
        if server is None:
            server = Controller(inbox, hostname="127.0.0.1", port=port)
            server.start()
        for _ in range(10):
            if all(r["estado"] != "pendiente" for r in list_notices(db)):
                break
            sender.send_due()
        rows = list_notices(db)
        assert all(r["estado"] in ("enviado", "programado", "cancelado") for r in rows)
        delivered = [str(m["X-Custodia-Aviso"]) for m in _messages(inbox)]
        assert sorted(delivered) == sorted(r["aviso"] for r in rows if r["estado"] == "enviado")
    finally:
        if server is not None:
            server.stop()
        view.datastore.close()
