"""The web view's bundle download reads ``bitacora.exportar`` page after page (the service
splits a large ledger under NATS's payload limit) and writes one bundle with every checkpoint
and entry once, in order. The service's side, and the bundle's verification, are tested
against the real servers in tests/e2e/test_web.py; here a stand-in answers in tiny pages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from cli.web.app import COOKIE, create_app
from cli.web.backend import Identity
from cli.web.sessions import SessionStore
from events.ledger_verify import Bundle

NOTES = [f"nota {i}".encode() for i in range(5)]
ENTRIES = {seq: f"entrada {seq}".encode() for seq in (1, 2, 3, 5, 6, 7, 8)}  # 4: deleted
LAST = 8


class PagedLedger:
    """Answers ``bitacora.exportar`` like the service, two items a page; the ledger grows
    after the first page (entry 9 and a sixth note), which no later page may include."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def call(self, who: Identity, command: str, args: dict[str, Any]) -> Any:
        assert command == "bitacora.exportar"
        self.calls.append(dict(args))
        hasta = args.get("hasta", LAST)
        puntos = args.get("puntos", len(NOTES))
        notes = [*NOTES, b"nota tardia"][:puntos]
        entries = {**ENTRIES, 9: b"tardia"}
        note, event, room = args.get("punto", 0), args.get("evento", 1), 2
        page_notes = notes[note : note + room]
        note = note + len(page_notes)
        room -= len(page_notes)
        page_events: list[list[Any]] = []
        if note >= puntos:
            while room and event <= hasta:
                if event in entries:
                    page_events.append([event, base64.b64encode(entries[event]).decode()])
                    room -= 1
                event += 1
        return {
            "origen": "custodia.test/bitacora",
            "clave_publica": {"name": "custodia-ledger", "keys": {}},
            "hasta": hasta,
            "puntos": puntos,
            "puntos_de_control": [base64.b64encode(n).decode() for n in page_notes],
            "eventos": page_events,
            "siguiente_punto": note if note < puntos else None,
            "siguiente_evento": event if event <= hasta else None,
        }

    async def login(self, username: str, password: str, code: str | None) -> Identity:
        raise NotImplementedError

    async def logout(self, who: Identity) -> None:
        return None

    async def change_password(
        self, who: Identity, current: str, new: str, code: str | None
    ) -> None:
        raise AssertionError("these tests change no password")


def test_the_bundle_is_assembled_from_every_page_once(tmp_path: Path) -> None:
    """Eight small pages become one bundle: the five notes the first page counted and every
    entry up to its ``hasta`` (the deleted one absent), each once and in order; an
    attachment."""
    backend = PagedLedger()
    sessions = SessionStore()
    session = sessions.open(Identity("sofia", "t", datetime.now(UTC) + timedelta(hours=1)))
    app = create_app(backend, sessions=sessions)

    async def download() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        cookies = {COOKIE: session.sid}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", cookies=cookies
        ) as client:
            return await client.get("/bitacora/paquete.jsonl.gz")

    answer = anyio.run(download)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == (
        'attachment; filename="custodia-bitacora.jsonl.gz"'
    )
    assert len(backend.calls) > 3
    assert all(call.get("hasta") == LAST for call in backend.calls[1:])
    path = tmp_path / "paquete.jsonl.gz"
    path.write_bytes(answer.content)
    with Bundle(path) as bundle:
        assert bundle.last_sequence == LAST
        assert list(bundle.checkpoints) == NOTES
        assert list(bundle.events()) == sorted(ENTRIES.items())
