"""Issue 19: incidents as they happen, and notices by e-mail through a real SMTP server.

One home for the module: ``custodia init``, the service started with ``CUSTODIA_SMTP_URL``
pointing at a real SMTP server (aiosmtpd) on a free loopback port, and DD05 staffed as in the
other end-to-end tests. Every command goes through the real ``custodia`` executable; the
outbox is watched through ``avisos lista``; the SMTP server's own inbox is what was delivered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

from custody.stack.servers import free_port

from .conftest import (
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
    totp_uri,
)

MEXICO = ZoneInfo("America/Mexico_City")
SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
PEOPLE = ("ana", "luis", "bety", "sofia")
MAILBOXES = {
    "CUSTODIA_CORREO_SECRETARIA": "secretaria@iecm.test",
    "CUSTODIA_CORREO_UTCSYD": "redessociales@iecm.test",
    "CUSTODIA_CORREO_TITULAR": "titular.{distrito}@iecm.test",
    "CUSTODIA_CORREO_REMITENTE": "custodia@iecm.test",
}


@dataclass
class Inbox:
    """What the SMTP server accepted: (recipients, raw message), in order."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [message_from_bytes(raw, policy=policy.default) for _, raw in self.received]


@dataclass
class MailWorld:
    world: ServiceWorld
    port: int
    inbox: Inbox
    env: dict[str, str]
    smtp: Controller | None = None
    secrets: list[str] = field(default_factory=list)

    def start_smtp(self) -> None:
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.smtp.start()

    def stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None

    def restart_service(self) -> None:
        stop_service(self.world.service)
        self.world.service = start_service(self.world.home, self.env)

    def cli(self, user: str, *args: str) -> Any:
        """``custodia ARGS --json`` as ``user``; the parsed output (exit 0 asserted)."""
        done = self.world.run(user, *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def refused(self, user: str, *args: str) -> str:
        """``custodia ARGS`` as ``user`` must fail, write nothing to the ledger, and say why in
        Spanish: the message."""
        before = self.world.ledger_messages()
        done = self.world.run(user, *args)
        assert done.returncode != 0, done.stdout
        assert self.world.ledger_messages() == before
        assert "Traceback" not in done.stderr
        return done.stderr

    def notices(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.world.call("ana", "avisos.lista")
        return result

    def wait_notices(
        self, ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 90
    ) -> list[dict[str, Any]]:
        """Poll ``avisos.lista`` until ``ready`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.notices()
            if ready(rows):
                return rows
            assert time.monotonic() < deadline, rows
            time.sleep(0.3)


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailWorld]:
    home = tmp_path_factory.mktemp("custodia-avisos")
    port = free_port()
    env = {
        "CUSTODIA_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "CUSTODIA_AVISOS_ESPERA_MAXIMA": "1",
        **MAILBOXES,
    }
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home, env)
        world = ServiceWorld(home, service)
        mail = MailWorld(world, port, Inbox(), env)
        mail.start_smtp()
        try:
            world.login("ana")
            world.add_person("luis", "titular", "DD05")
            world.add_person("bety", "administrador", "DD05")
            world.add_person("sofia", "secretaria")
            world.call("ana", "titular", {"distrito": "DD05", "persona": "luis"})
            world.call(
                "ana",
                "cuentas.alta",
                {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"},
            )
            staged = mail.cli("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
            mail.secrets.append(staged["contrasena"])
            world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
            world.call("ana", "totp.registrar", {"cuenta": "DD05-x", "uri": totp_uri("DD05-x")})
            world.call(
                "luis", "designar", {"distrito": "DD05", "persona": "bety", "oficio": "DD05/1/26"}
            )
            yield mail
        finally:
            mail.stop_smtp()
            stop_service(world.service)
    finally:
        run_custodia("detener", home=home)


def local_minute(delta: timedelta) -> str:
    return (datetime.now(MEXICO) + delta).strftime("%Y-%m-%dT%H:%M")


def rotate(mail: MailWorld) -> None:
    staged = mail.cli("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
    mail.secrets.append(staged["contrasena"])
    mail.cli("ana", "rotar", "confirmar", "--cuenta", "DD05-x")


def test_an_incident_lives_through_the_cli_with_its_timings(mail: MailWorld) -> None:
    """Issue 19 (8.C, 9.XVIII): the administrator reports an impersonation detected half an
    hour ago; UTCSyD rotates and contains it before notifying; the Secretaría Ejecutiva (and
    nobody else) records its acknowledgement; closure comes last. The ledger shows each step's
    time and that the notification was on time."""
    detected = local_minute(timedelta(minutes=-30))
    opened = mail.cli(
        "bety", "incidentes", "reportar", "--cuenta", "DD05-x", "--tipo", "suplantacion",
        "--descripcion", "Una cuenta ajena publica con nuestro logo", "--detectado", detected,
    )  # fmt: skip
    incident = opened["incidente"]
    assert (opened["tipo"], opened["estado"]) == ("suplantacion", "reportado")
    assert (
        datetime.fromisoformat(opened["detectado"]).astimezone(MEXICO).strftime("%Y-%m-%dT%H:%M")
        == detected
    )
    rotate(mail)
    contained = mail.cli(
        "ana", "incidentes", "contener", "--incidente", incident, "--detalle", "rotada"
    )
    assert (contained["estado"], contained["notificado"]) == ("contenido", None)
    refused = mail.refused("ana", "incidentes", "cerrar", "--incidente", incident, "--detalle", "x")
    assert "No se puede cerrar en estado «sin notificar»" in refused
    mail.cli("ana", "incidentes", "notificar", "--incidente", incident, "--oficio", "UTCSyD/9/26")
    refused = mail.refused("ana", "incidentes", "enterado", "--incidente", incident)
    assert "Solo la Secretaría Ejecutiva" in refused
    acknowledged = mail.cli(
        "sofia", "incidentes", "enterado", "--incidente", incident, "--medidas", "Dar vista"
    )
    assert acknowledged["medidas"] == "Dar vista"
    mail.cli("ana", "incidentes", "cerrar", "--incidente", incident, "--detalle", "recuperada")

    [row] = [r for r in mail.cli("sofia", "incidentes", "bitacora") if r["incidente"] == incident]
    steps = ("detectado", "reportado", "contenido", "notificado", "enterado", "cerrado")
    times = [datetime.fromisoformat(row[k]) for k in steps]
    assert times[0] < times[1] <= times[2] <= times[3] <= times[4] <= times[5]
    assert (row["estado"], row["notificado_a_tiempo"]) == ("cerrado", True)
    report = mail.cli("sofia", "reporte", "incidentes", "--formato", "json")
    [reported] = [r for r in report if r["incidente"] == incident]
    for key in ("detectado", "reportado", "notificado", "enterado", "contenido", "cerrado"):
        assert reported[key] is not None, key
    assert reported["notificado_a_tiempo"] is True


def test_a_false_alarm_is_dismissed_and_periods_filter_the_ledger(mail: MailWorld) -> None:
    """``descartar --motivo`` closes a false alarm (``descartado``); ``--desde/--hasta`` are
    days in Mexico City and bound when incidents were reported."""
    opened = mail.cli(
        "luis", "incidentes", "reportar", "--cuenta", "DD05-x", "--tipo", "perdida-acceso",
        "--descripcion", "No podemos entrar",
    )  # fmt: skip
    dismissed = mail.cli(
        "ana", "incidentes", "descartar", "--incidente", opened["incidente"],
        "--motivo", "La contraseña se tecleó mal",
    )  # fmt: skip
    assert dismissed["estado"] == "descartado"
    assert dismissed["motivo_descarte"] == "La contraseña se tecleó mal"
    today = datetime.now(MEXICO).date()
    ids = {
        label: {r["incidente"] for r in mail.cli("sofia", "incidentes", "bitacora", *args)}
        for label, args in {
            "hoy": ("--desde", str(today), "--hasta", str(today)),
            "manana": ("--desde", str(today + timedelta(days=1))),
            "ayer": ("--hasta", str(today - timedelta(days=1))),
        }.items()
    }
    assert opened["incidente"] in ids["hoy"]
    assert ids["manana"] == ids["ayer"] == set()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--tipo", "spam"), "el tipo de incidente"),
        (("--tipo", "otro", "--detectado", "ayer"), "la hora de detección"),
        (("--tipo", "otro", "--detectado", "FUTURE"), "no puede ser futura"),
    ],
)
def test_bad_reports_are_refused_in_spanish_and_write_nothing(
    mail: MailWorld, args: tuple[str, ...], said: str
) -> None:
    """A type outside the guidelines' list, an unreadable detection time, or one in the
    future: refused with a Spanish message and a non-zero exit; the ledger is unchanged."""
    args = tuple(local_minute(timedelta(hours=2)) if a == "FUTURE" else a for a in args)
    message = mail.refused(
        "bety", "incidentes", "reportar", "--cuenta", "DD05-x", "--descripcion", "x", *args
    )
    assert said in message


def test_bad_periods_and_roles_are_refused(mail: MailWorld) -> None:
    """``--hasta`` before ``--desde`` is refused; only the secretaria acknowledges; only
    coadministrators and the secretaria see the notices."""
    message = mail.refused(
        "sofia", "incidentes", "bitacora", "--desde", "2026-03-02", "--hasta", "2026-03-01"
    )
    assert "periodo" in message
    assert mail.world.run("bety", "avisos", "lista").returncode != 0


def _text(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, kind
    return str(part.get_content())


def all_due_sent(rows: list[dict[str, Any]]) -> bool:
    """Every notice due now was sent: a reminder not yet due (``programado``) or cancelled
    (its rotation was done) is not."""
    return all(r["estado"] in ("enviado", "programado", "cancelado") for r in rows)


def _delivered_ids(mail: MailWorld) -> list[str]:
    return [str(m["X-Custodia-Aviso"]) for m in mail.inbox.messages()]


def test_notices_are_delivered_once_across_an_outage_and_a_restart(mail: MailWorld) -> None:
    """R12: every notice due (the designation and its rotation to UTCSyD, each incident to
    the Secretaría Ejecutiva, UTCSyD and the titular) reaches the real SMTP server; with the
    server down a new incident's notices stay pending and are retried; the service is
    restarted meanwhile; once the server is back, each is delivered, and no notice was ever
    delivered twice. Plain text plus HTML, in Spanish, no secret in any."""
    rows = mail.wait_notices(lambda rs: bool(rs) and all_due_sent(rs))
    kinds = {r["tipo"] for r in rows}
    assert {"designacion", "rotacion_pendiente", "incidente"} <= kinds

    mail.stop_smtp()
    opened = mail.cli(
        "bety", "incidentes", "reportar", "--cuenta", "DD05-x", "--tipo", "intervencion",
        "--descripcion", "Publicaciones ajenas de madrugada",
    )  # fmt: skip
    incident = opened["incidente"]

    def tried_and_pending(rs: list[dict[str, Any]]) -> bool:
        mine = [r for r in rs if r["tipo"] == "incidente" and r["estado"] == "pendiente"]
        return len(mine) == 3 and any(r["intentos"] >= 1 for r in mine)

    pending = mail.wait_notices(tried_and_pending)
    recipients = {r["destinatario"] for r in pending if r["estado"] == "pendiente"}
    assert recipients == {"secretaria", "utcsyd", "titular:DD05"}
    mail.restart_service()
    mail.start_smtp()
    rows = mail.wait_notices(all_due_sent)
    rows = [r for r in rows if r["estado"] == "enviado"]

    delivered = _delivered_ids(mail)
    assert len(delivered) == len(set(delivered)), "a notice was delivered twice"
    assert set(delivered) == {r["aviso"] for r in rows}
    messages = {str(m["X-Custodia-Aviso"]): m for m in mail.inbox.messages()}
    to_incident = {
        row["correo"]
        for row in rows
        if row["tipo"] == "incidente" and incident in _text(messages[row["aviso"]], "plain")
    }
    assert to_incident == {
        "secretaria@iecm.test", "redessociales@iecm.test", "titular.DD05@iecm.test"
    }  # fmt: skip
    for message in messages.values():
        assert "Custodia no envía contraseñas" in _text(message, "plain")
        assert _text(message, "html").startswith("<!DOCTYPE html>")
        assert message["Message-ID"] == f"<{message['X-Custodia-Aviso']}@custodia.iecm.mx>"

    from tests.support.secretscan import assert_no_secrets

    secrets = [
        *mail.secrets,
        SEED,
        *(SERVICE_PASSWORD.format(u) for u in PEOPLE),
        *(mail.world.token(u) for u in PEOPLE),
    ]
    with mail.inbox.lock:
        raw = [body for _, body in mail.inbox.received]
    assert_no_secrets(raw, secrets, where="correo")
    assert_no_secrets(mail.notices(), secrets, where="avisos")
