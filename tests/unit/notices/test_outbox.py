"""The notices outbox (issue 19): what the ledger makes due, and the SMTP sender's
exactly-once delivery with back-off, against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.stack.notices import NoticeSender, NoticeSettings, list_notices
from custody.stack.servers import free_port
from events.domain import Incident
from events.errors import ConfigurationError
from projections.notices import NoticesView, notices_for

from ..domain.domain_world import POLICY, later, make_world


class Inbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(bytes(envelope.original_content))
        return "250 OK"


def incident_events() -> list[Any]:
    world = make_world()
    incident = Incident.report(
        world.district, "DD05-x", "filtracion", "Se publicó la clave en un chat",
        by=world.ana, policy=POLICY, at=later(60), detected_at=later(30),
    )  # fmt: skip
    tampering = Incident.ledger_tampering(
        incident_id=uuid4(),
        divergence="truncada", entry=None, anchored_size=5, anchored_root=None,
        observed_size=3, observed_root=None, alert_id="alerta-1",
        diverged_at=later(61), policy=POLICY, at=later(62),
    )  # fmt: skip
    return [*incident.pending_events, *tampering.pending_events]


def outbox(path: Path, *, created: str = "2000-01-01T00:00:00+00:00") -> NoticesView:
    """An outbox file, as if created at ``created`` (the test events are of 2025)."""
    env = Environment(
        "avisos",
        {
            "AVISOS_PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "AVISOS_SQLITE_DBNAME": str(path),
            "AVISOS_CREATE_TABLE": "y",
        },
    )
    factory: Any = InfrastructureFactory.construct(env=env)
    view: NoticesView = factory.tracking_recorder(NoticesView)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE outbox_meta SET value = ? WHERE key = 'creado'", (created,))
    return view


def test_an_incident_is_due_at_once_to_three_mailboxes_the_institutions_to_two() -> None:
    """8.C, 9.XVIII: the Secretaría Ejecutiva, UTCSyD and the district's titular; the ledger's
    incident has no district, hence no titular. Ids derive from event and recipient."""
    reported, tampering = incident_events()
    notices = notices_for(reported)
    assert [n.recipient for n in notices] == ["secretaria", "utcsyd", "titular:DD05"]
    assert notices_for(reported) == notices  # the same ids, whenever computed
    assert len({n.notice_id for n in notices}) == 3
    assert "filtración de credenciales" in notices[0].body
    assert notices[0].deadline == reported.notify_by
    assert [n.recipient for n in notices_for(tampering)] == ["secretaria", "utcsyd"]


def test_settings_refuse_a_bad_url_and_never_show_the_smtp_password() -> None:
    """Configuration fails fast, naming the variable; logs see host and port only."""
    with pytest.raises(ConfigurationError):
        NoticeSettings.from_env({"CUSTODIA_SMTP_URL": "http://x"})
    settings = NoticeSettings.from_env(
        {"CUSTODIA_SMTP_URL": "smtp://avisos:clave-muy-secreta@127.0.0.1:2525"}
    )
    assert settings.server == "smtp://127.0.0.1:2525"
    assert "clave-muy-secreta" not in repr(settings)


@pytest.fixture
def port() -> int:
    return free_port()


def test_each_notice_is_sent_once_retried_while_down_and_kept_without_mailbox(
    tmp_path: Path, port: int
) -> None:
    """With the server down nothing is sent and each attempt is recorded; once it is up each
    notice goes out once, however many rounds follow; a role with no mailbox stays pending
    (``sin_destinatario``)."""
    db = tmp_path / "avisos.sqlite"
    view = outbox(db)
    reported, _ = incident_events()
    view.record(notices_for(reported), Tracking("custodia", 1))
    env = {
        "CUSTODIA_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "CUSTODIA_CORREO_SECRETARIA": "se@iecm.test",
        "CUSTODIA_CORREO_UTCSYD": "utcsyd@iecm.test",
    }
    sender = NoticeSender(db, NoticeSettings.from_env(env))
    assert sender.send_due() == 0  # nobody listens on the port
    rows = list_notices(db)
    assert {r["estado"] for r in rows} == {"pendiente"}
    assert sum(r["intentos"] for r in rows) >= 1
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        # The retry waits out its back-off: allow the due time to pass without sleeping.
        conn = sqlite3.connect(db)
        conn.execute("UPDATE notices_sent SET next_attempt_at = NULL")
        conn.commit()
        conn.close()
        assert sender.send_due() == 2
        assert sender.send_due() == 0
    finally:
        smtp.stop()
    by_role = {r["destinatario"]: r for r in list_notices(db)}
    assert by_role["secretaria"]["estado"] == by_role["utcsyd"]["estado"] == "enviado"
    assert (by_role["titular:DD05"]["estado"], by_role["titular:DD05"]["ultimo_error"]) == (
        "pendiente",
        "sin_destinatario",
    )
    assert len(inbox.received) == 2
    view.datastore.close()


def test_without_an_smtp_url_notices_are_listed_pending(tmp_path: Path) -> None:
    """No ``CUSTODIA_SMTP_URL``: the outbox still records what is due, nothing is sent."""
    db = tmp_path / "avisos.sqlite"
    view = outbox(db)
    reported, _ = incident_events()
    view.record(notices_for(reported), Tracking("custodia", 1))
    assert NoticeSettings.from_env({}).smtp_url is None
    assert [r["estado"] for r in list_notices(db)] == ["pendiente"] * 3
    view.datastore.close()


MAILBOXES = {
    "CUSTODIA_CORREO_SECRETARIA": "se@iecm.test",
    "CUSTODIA_CORREO_UTCSYD": "utcsyd@iecm.test",
    "CUSTODIA_CORREO_TITULAR": "titular.{distrito}@iecm.test",
}
STEPS = st.lists(st.sampled_from(["down", "up", "round", "restart", "add"]), max_size=14)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_every_notice_due_is_delivered_exactly_once(
    tmp_path_factory: Any, steps: list[str]
) -> None:
    """Property (issue 19): whatever the order of SMTP outages, sender restarts (a new sender
    on the same outbox file, as after a service restart), rounds and new notices, once the
    server is up every notice due has been delivered exactly once."""
    db = tmp_path_factory.mktemp("avisos") / "avisos.sqlite"
    view = outbox(db)
    port = free_port()
    inbox = Inbox()
    env = NoticeSettings(
        smtp_url=f"smtp://127.0.0.1:{port}",
        mailboxes={"secretaria": "se@iecm.test", "utcsyd": "utcsyd@iecm.test"},
        titular_pattern="titular.{distrito}@iecm.test",
        max_retry_s=0,  # due again at once: the property is about order, not waiting
    )
    position = 0
    server: Controller | None = None

    def add() -> None:
        nonlocal position
        position += 1
        reported, _ = incident_events()
        view.record(notices_for(reported), Tracking("custodia", position))

    sender = NoticeSender(db, env)
    try:
        add()
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
            elif step == "add":
                add()
        if server is None:
            server = Controller(inbox, hostname="127.0.0.1", port=port)
            server.start()
        for _ in range(10):
            if all(r["estado"] == "enviado" for r in list_notices(db)):
                break
            sender.send_due()
        due = {r["aviso"] for r in list_notices(db)}
        assert all(r["estado"] == "enviado" for r in list_notices(db))
        with inbox.lock:
            delivered = [
                str(message_from_bytes(raw, policy=policy.default)["X-Custodia-Aviso"])
                for raw in inbox.received
            ]
        assert sorted(delivered) == sorted(due)
    finally:
        if server is not None:
            server.stop()
        view.datastore.close()


def test_an_outbox_created_over_an_old_ledger_does_not_mail_its_history(
    tmp_path: Path, port: int
) -> None:
    """An upgrade: notices of events more than a day older than the outbox are listed as
    ``anterior`` and never sent (the 2025 incident here, in an outbox made today)."""
    db = tmp_path / "avisos.sqlite"
    view = outbox(db, created=datetime.now(UTC).isoformat())
    reported, _ = incident_events()
    view.record(notices_for(reported), Tracking("custodia", 1))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        env = {"CUSTODIA_SMTP_URL": f"smtp://127.0.0.1:{port}", **MAILBOXES}
        assert NoticeSender(db, NoticeSettings.from_env(env)).send_due() == 0
    finally:
        smtp.stop()
    assert [r["estado"] for r in list_notices(db)] == ["anterior"] * 3
    assert inbox.received == []
    view.datastore.close()


def test_an_unrecorded_read_is_due_to_the_three_mailboxes() -> None:
    """Issue 16's unrecorded read opens an incident: told like any other."""
    world = make_world()
    incident = Incident.unrecorded_read(
        incident_id=uuid4(), district="DD05", account="DD05-x", kind="contrasena", version=1,
        staged=False, reader=None, identity="token", remote_address="127.0.0.1",
        audit_request_id="req-1", accessed_at=later(10), policy=POLICY, at=later(11),
    )  # fmt: skip
    assert world.district.code == "DD05"
    [event] = incident.pending_events
    notices = notices_for(event)
    assert [n.recipient for n in notices] == ["secretaria", "utcsyd", "titular:DD05"]
    assert "lectura de credenciales sin registro" in notices[0].subject
