"""Issue 19: two service instances (two homes, two outboxes over one ledger) send each notice
once between them, by claiming it in a NATS key-value bucket on a real nats-server."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
from aiosmtpd.controller import Controller
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment
from nats.js.api import KeyValueConfig

from custody.stack.notices import ELSEWHERE, KvClaims, NoticeSender, NoticeSettings, list_notices
from custody.stack.servers import free_port
from events.domain import Incident
from projections.notices import NoticesView, notices_for

from ...unit.domain.domain_world import POLICY, later, make_world


class Inbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(bytes(envelope.original_content))
        return "250 OK"


def outbox(path: Path) -> NoticesView:
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
    with sqlite3.connect(path) as conn:  # the test events are of 2025: not history
        conn.execute("UPDATE outbox_meta SET value = '2000-01-01T00:00:00+00:00'")
    return view


async def _bucket(url: str, name: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().create_key_value(KeyValueConfig(bucket=name, ttl=3600))
    finally:
        await nc.close()


def test_two_outboxes_send_each_notice_once_between_them(nats_url: str, tmp_path: Path) -> None:
    """Both instances' outboxes hold the same three notices (same ids, same events); each
    instance's sender runs; the SMTP server receives three messages, not six; the instance
    that lost a claim lists the notice as sent by another instance."""
    bucket = f"avisos-{uuid4().hex[:8]}"
    asyncio.run(_bucket(nats_url, bucket))
    world = make_world()
    incident = Incident.report(
        world.district, "DD05-x", "intervencion", "x", by=world.ana, policy=POLICY, at=later(60)
    )
    notices = notices_for(incident.pending_events[0])
    port = free_port()
    settings = NoticeSettings(
        smtp_url=f"smtp://127.0.0.1:{port}",
        mailboxes={"secretaria": "se@iecm.test", "utcsyd": "utcsyd@iecm.test"},
        titular_pattern="titular.{distrito}@iecm.test",
    )
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    views = []
    try:
        senders = []
        for name in ("a", "b"):
            db = tmp_path / name / "avisos.sqlite"
            db.parent.mkdir()
            view = outbox(db)
            views.append(view)
            view.record(notices, Tracking("custodia", 7))
            claims = KvClaims({"servers": [nats_url]}, bucket, instance=name)
            senders.append(NoticeSender(db, settings, claims))
        sent = [senders[0].send_due(), senders[1].send_due(), senders[0].send_due()]
    finally:
        smtp.stop()
        for view in views:
            view.datastore.close()
    assert sent == [3, 0, 0]
    assert len(inbox.received) == 3
    listed = list_notices(tmp_path / "b" / "avisos.sqlite")
    assert {(r["estado"], r["correo"]) for r in listed} == {("enviado", ELSEWHERE)}
