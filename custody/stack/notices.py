"""E-mail notices (issue 19; 9.VI): the outbox's follower and its SMTP sender.

The outbox is :mod:`projections.notices`: a projection over the ledger that records, exactly
once per event (the tracking position is in the same SQLite transaction), the notices the event
makes due. This module runs it in the read side (``custodia servicio-lectura``) and delivers
what it records:

- each notice is sent once: before a delivery the attempt is committed (``notices_sent``,
  ``en_envio``), after it the delivery; a notice recorded as sent is never sent again, across
  restarts and rebuilt outboxes (the id derives from the event and the recipient). SMTP has no
  two-phase commit, so one window is left whatever the order: a crash between the SMTP server's
  acceptance of the message and the commit. Custodia chooses **at least once** there (an
  incident's 60-minute clock makes a lost notice worse than a repeated one): the notice found
  ``en_envio`` after a restart is sent again with the same ``Message-ID`` (derived from the
  notice id, so a receiving server or client that deduplicates by it drops the copy) and
  ``X-Custodia-Reenvio: posible-duplicado``, so a reader can tell; committing "sent" before the
  delivery would make it at most once and could lose the notice silently;
- a reminder (a rotation obligation near or past its deadline, ``projections.notices``) is not
  sent before its time (``not_before``) and never once the obligation is fulfilled or withdrawn
  (``cancelled_at``);
- the record of what was sent is this outbox's ``notices_sent`` table (fully synchronous
  commits), not the ledger: the read side that sends holds only read permissions on the ledger
  (NATS), by design, and what made each notice due is already in the ledger (the notice id
  derives from that event), so ``avisos lista`` is a pure function of the ledger plus this file;
- while the SMTP server cannot be reached (or refuses), the notice stays pending and is retried
  with exponential back-off (1 s doubling, at most ``CUSTODIA_AVISOS_ESPERA_MAXIMA`` seconds,
  300 by default); nothing is lost: the outbox is on disk;
- without ``CUSTODIA_SMTP_URL`` nothing is sent: ``avisos lista`` shows every notice pending;
- several service instances (each with its own home, hence its own outbox) send each notice
  once between them: before delivering, an instance claims the notice in NATS (key
  ``aviso.<id>`` of the idempotency bucket, ``kv.create``: one instance wins, the others record
  it as sent by another instance). The bucket keeps keys 24 hours: an instance that catches up
  on notices older than that could send them again;
- an outbox created over a ledger that already has a history does not mail that history: the
  notices of events more than a day older than the outbox are listed as ``anterior`` (an
  upgrade must not send years of designations at once).

Recipients, by role: the Secretaría Ejecutiva ``CUSTODIA_CORREO_SECRETARIA``, the UTCSyD
``CUSTODIA_CORREO_UTCSYD``, a district's titular ``CUSTODIA_CORREO_TITULAR`` (a pattern with
``{distrito}``, e.g. ``titular.{distrito}@iecm.mx``: the district's institutional mailbox). The
people's own e-mail addresses are sealed personal data in OpenBao (8.D, 11.7) that the read side
does not open; role mailboxes keep them out of the outbox. A role with no mailbox configured leaves
its notices pending (``sin_destinatario``) until one is.

The messages are Spanish, plain text plus HTML, and hold ledger facts only; the SMTP URL's
password (``smtp://usuario:clave@host:puerto``) never reaches a log line or the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import smtplib
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import structlog
from nats.errors import Error as NatsError

from custody.config import NoticeSettings
from custody.config import smtp_default_port as _default_port

if TYPE_CHECKING:
    from custody.app.custodia import Custodia, CustodiaApplication
    from custody.service.server import Call, Handler

log = structlog.get_logger("custodia.avisos")

__all__ = [
    "NOTICES_DATABASE",
    "NoticeSender",
    "NoticeSettings",
    "list_notices",
    "start_notices",
]

NOTICES_DATABASE = "avisos.sqlite"
POLL_S = 0.5
BATCH = 50
HISTORY = timedelta(days=1)  # notices this much older than the outbox are not sent
MESSAGE_DOMAIN = "custodia.iecm.mx"


def _connect(settings: NoticeSettings) -> smtplib.SMTP:
    assert settings.smtp_url is not None
    parts = urlsplit(settings.smtp_url)
    host = parts.hostname or "localhost"
    port = parts.port or _default_port(parts.scheme)
    smtp: smtplib.SMTP
    # smtplib's own default context does not verify the server's certificate: this one does.
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(host, port, timeout=10, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=10)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
    if parts.username:
        smtp.login(unquote(parts.username), unquote(parts.password or ""))
    return smtp


def _html(subject: str, body: str) -> str:
    paragraphs = "".join(
        f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
        for block in body.split("\n\n")
        if block.strip()
    )
    return (
        '<!DOCTYPE html><html lang="es-MX"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>"
        f"<h1>{html.escape(subject)}</h1>{paragraphs}</body></html>"
    )


def build_message(
    row: Mapping[str, Any], address: str, sender: str, *, resent: bool = False
) -> EmailMessage:
    """The e-mail of one outbox row: plain text plus HTML; ``Message-ID`` from the notice id,
    so that a notice sent twice (a crash right after delivery) is recognisably the same;
    ``resent``: the previous delivery may have reached the server (module docstring)."""
    message = EmailMessage()
    message["Subject"] = row["subject"]
    message["From"] = sender
    message["To"] = address
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{row['notice_id']}@{MESSAGE_DOMAIN}>"
    message["X-Custodia-Aviso"] = row["notice_id"]
    message["Content-Language"] = "es-MX"
    if resent:
        message["X-Custodia-Reenvio"] = "posible-duplicado"
    message.set_content(row["body"])
    message.add_alternative(_html(row["subject"], row["body"]), subtype="html")
    return message


_DUE = (
    "SELECT n.notice_id, n.recipient, n.subject, n.body, COALESCE(s.attempts, 0) AS attempts,"
    " s.last_error FROM notices AS n LEFT JOIN notices_sent AS s USING (notice_id)"
    " WHERE s.sent_at IS NULL AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= :now)"
    " AND n.cancelled_at IS NULL AND (n.not_before IS NULL OR n.not_before <= :now)"
    " AND n.created_at >= :history ORDER BY n.position, n.notice_id LIMIT :batch"
)
#: ``last_error`` of a notice whose delivery began: after a crash it may have been delivered.
IN_FLIGHT = "en_envio"

_SENT = "UPDATE notices_sent SET sent_at = ?, address = ?, last_error = NULL WHERE notice_id = ?"
#: ``address`` of a notice another instance claimed (and sends).
ELSEWHERE = "otra instancia"


def _history_before(conn: sqlite3.Connection) -> str:
    """Notices created before this instant predate the outbox (module docstring)."""
    found = conn.execute("SELECT value FROM outbox_meta WHERE key = 'creado'").fetchone()
    if found is None:
        return ""
    return (datetime.fromisoformat(found[0]) - HISTORY).isoformat()


_ATTEMPT = (
    "INSERT INTO notices_sent (notice_id, attempts, next_attempt_at, last_error)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (notice_id) DO UPDATE SET attempts = excluded.attempts,"
    " next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error"
)


class Claims(Protocol):
    """Who sends a notice when several instances have outboxes: ``True`` for this one."""

    def claim(self, notice_id: str) -> bool: ...


class KvClaims:
    """Claims in the service's NATS key-value bucket (module docstring), as ``instance``."""

    def __init__(self, nats_options: Mapping[str, Any], bucket: str, instance: str) -> None:
        self.nats_options = dict(nats_options)
        self.bucket = bucket
        self.instance = instance.encode()

    def claim(self, notice_id: str) -> bool:
        return asyncio.run(self._claim(f"aviso.{notice_id}"))

    async def _claim(self, key: str) -> bool:
        import nats
        from nats.js.errors import KeyWrongLastSequenceError

        nc = await nats.connect(**self.nats_options, allow_reconnect=False)
        try:
            kv = await nc.jetstream(timeout=10).key_value(self.bucket)
            try:
                await kv.create(key, self.instance)
                return True
            except KeyWrongLastSequenceError:
                entry = await kv.get(key)
                return entry.value == self.instance  # our own claim: a retry
        finally:
            await nc.close()


def _open(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


class NoticeSender:
    """Delivers the outbox's pending notices (module docstring), in a thread of its own."""

    def __init__(
        self, db_path: Path, settings: NoticeSettings, claims: Claims | None = None
    ) -> None:
        self.db_path = db_path
        self.settings = settings
        self.claims = claims
        self._stop = threading.Event()
        self.failures = 0  # consecutive rounds the SMTP server could not take a notice
        self._thread = threading.Thread(target=self._run, name="custodia-avisos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        log.info("avisos_remitente_listo", servidor=self.settings.server)
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception as error:  # the outbox is still on disk: try again later
                log.error("avisos_fallo", error=type(error).__name__)
            # While the server is down the whole sender backs off, not only each notice.
            self._stop.wait(self.settings.backoff(self.failures) if self.failures else POLL_S)

    def send_due(self) -> int:
        """One round: every notice due now, over one SMTP connection; how many were sent."""
        conn = _open(self.db_path)
        smtp: smtplib.SMTP | None = None
        sent = 0
        try:
            now = datetime.now(UTC)
            rows = conn.execute(
                _DUE, {"now": now.isoformat(), "history": _history_before(conn), "batch": BATCH}
            ).fetchall()
            for row in rows:
                if self._stop.is_set():
                    break
                attempts = int(row["attempts"]) + 1
                retry_at = (now + timedelta(seconds=self.settings.backoff(attempts))).isoformat()
                address = self.settings.address(row["recipient"])
                if address is None:
                    conn.execute(
                        _ATTEMPT, (row["notice_id"], attempts, retry_at, "sin_destinatario")
                    )
                    continue
                # The attempt is committed before the delivery: a crash in between retries it
                # (at least once), marked as a possible duplicate.
                resent = row["last_error"] == IN_FLIGHT
                conn.execute(_ATTEMPT, (row["notice_id"], attempts, retry_at, IN_FLIGHT))
                try:
                    if self.claims is not None and not self.claims.claim(row["notice_id"]):
                        conn.execute(
                            _SENT, (datetime.now(UTC).isoformat(), ELSEWHERE, row["notice_id"])
                        )
                        log.info("aviso_de_otra_instancia", aviso=row["notice_id"])
                        continue
                    if smtp is None:
                        smtp = _connect(self.settings)
                    smtp.send_message(
                        build_message(row, address, self.settings.sender, resent=resent)
                    )
                except (OSError, smtplib.SMTPException, NatsError) as error:
                    conn.execute(
                        _ATTEMPT, (row["notice_id"], attempts, retry_at, type(error).__name__)
                    )
                    log.warning(
                        "aviso_no_enviado",
                        aviso=row["notice_id"],
                        intento=attempts,
                        error=type(error).__name__,
                        servidor=self.settings.server,
                    )
                    if smtp is not None:
                        with contextlib.suppress(Exception):
                            smtp.close()
                    smtp = None
                    self.failures += 1
                    break  # the server is down or refusing: the rest wait for the next round
                conn.execute(_SENT, (datetime.now(UTC).isoformat(), address, row["notice_id"]))
                sent += 1
                self.failures = 0
                log.info("aviso_enviado", aviso=row["notice_id"], intento=attempts)
        finally:
            if smtp is not None:
                with contextlib.suppress(Exception):
                    smtp.quit()
            conn.close()
        return sent


def list_notices(db_path: Path) -> list[dict[str, Any]]:
    """``avisos lista``: every notice, sent and pending, in ledger order."""
    if not db_path.is_file():
        return []
    conn = _open(db_path)
    now = datetime.now(UTC).isoformat()
    try:
        history = _history_before(conn)
        rows = conn.execute(
            "SELECT n.*, s.sent_at, s.address, COALESCE(s.attempts, 0) AS attempts,"
            " s.next_attempt_at, s.last_error FROM notices AS n"
            " LEFT JOIN notices_sent AS s USING (notice_id) ORDER BY n.position, n.notice_id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # the outbox has not been created yet
    finally:
        conn.close()
    return [
        {
            "aviso": r["notice_id"],
            "tipo": r["kind"],
            "destinatario": r["recipient"],
            "distrito": r["district"],
            "asunto": r["subject"],
            "creado": r["created_at"],
            "plazo": r["deadline"],
            "estado": _state(r, history, now),
            "enviar_desde": r["not_before"],
            "enviado": r["sent_at"],
            "correo": r["address"],
            "intentos": int(r["attempts"]),
            "proximo_intento": None if r["sent_at"] else r["next_attempt_at"],
            "ultimo_error": None if r["sent_at"] else r["last_error"],
        }
        for r in rows
    ]


def _state(row: Mapping[str, Any], history: str, now: str) -> str:
    if row["sent_at"]:
        return "enviado"
    if row["cancelled_at"]:
        return "cancelado"  # a reminder whose obligation was fulfilled or withdrawn
    if row["created_at"] < history:
        return "anterior"
    if row["not_before"] and row["not_before"] > now:
        return "programado"  # a reminder not yet due
    return "pendiente"


def outbox_position(db_path: Path) -> int:
    """How far the outbox has read the ledger (0: nothing yet)."""
    if not db_path.is_file():
        return 0
    conn = _open(db_path)
    try:
        found = conn.execute(
            "SELECT MAX(notification_id) FROM tracking WHERE application_name = ?",
            ("custodia",),
        ).fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()
    return int(found[0] or 0) if found else 0


class RunningNotices:
    """The outbox projection and the sender, as the read side runs them."""

    def __init__(self, runner: Any, sender: NoticeSender | None) -> None:
        self.runner = runner
        self.sender = sender

    def stopped(self) -> bool:
        """Whether the outbox projection stopped by itself (its error is in the log)."""
        return bool(self.runner.is_interrupted.is_set())

    def close(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        with contextlib.suppress(Exception):
            self.runner.__exit__(None, None, None)


def start_notices(
    endpoints: Any, home: Path, env: Mapping[str, str], *, bucket: str | None = None
) -> RunningNotices:
    """Start the outbox (``home/avisos.sqlite``) over the ledger the ``endpoints`` reach and,
    when ``CUSTODIA_SMTP_URL`` is set in ``env``, the sender, claiming each notice in the
    idempotency bucket (``bucket``) first."""
    from eventsourcing.projection import ProjectionRunner

    from custody.service.permissions import IDEMPOTENCY_BUCKET
    from projections.notices import NoticesProjection, NoticesView
    from projections.projection import LedgerReader

    settings = NoticeSettings.from_env(env)
    db_path = home / NOTICES_DATABASE
    prefix = NoticesProjection.name.upper()
    runner_env = dict(endpoints.nats_env())
    runner_env[f"{prefix}_PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
    runner_env[f"{prefix}_SQLITE_DBNAME"] = str(db_path)
    runner_env[f"{prefix}_CREATE_TABLE"] = "y"
    runner: Any = ProjectionRunner(
        application_class=LedgerReader,
        projection_class=NoticesProjection,
        view_class=NoticesView,
        env=runner_env,
    )
    runner.__enter__()
    sender = None
    if settings.smtp_url:
        claims = KvClaims(
            endpoints.nats_options(), bucket or IDEMPOTENCY_BUCKET, _instance(db_path)
        )
        sender = NoticeSender(db_path, settings, claims)
        sender.start()
    else:
        log.info("avisos_sin_smtp")  # listed as pending
    return RunningNotices(runner, sender)


def _instance(db_path: Path) -> str:
    """This outbox's instance id (made once, kept in the file): the owner of its claims."""
    conn = _open(db_path)
    try:
        conn.execute(
            "INSERT OR IGNORE INTO outbox_meta VALUES ('instancia', ?)", (str(uuid.uuid4()),)
        )
        found = conn.execute("SELECT value FROM outbox_meta WHERE key = 'instancia'").fetchone()
        return str(found[0])
    finally:
        conn.close()


def wait_for_outbox(db_path: Path, ledger_position: int, timeout: float = 10.0) -> None:
    """Until the outbox reflects ``ledger_position`` (or ``timeout``: then as it is)."""
    deadline = time.monotonic() + timeout
    while outbox_position(db_path) < ledger_position and time.monotonic() < deadline:
        time.sleep(0.05)


class NoticeServices(Protocol):
    """What ``avisos.lista`` needs of the composition root's services (``custody.runner.Services``;
    named here, not imported: the composition root imports this module)."""

    @property
    def custodia(self) -> Custodia: ...

    @property
    def app(self) -> CustodiaApplication: ...


def make_notices_handler(services: NoticeServices, home: Path) -> Handler:
    """``avisos.lista`` for the coadministrators and the Secretaría Ejecutiva. Checks the
    notices' configuration first: the service refuses to start on a bad one (naming the
    variable) instead of its read side failing over and over."""
    from custody.app.custodia import Actor, ScopeError
    from projections.scope import sees_every_district

    NoticeSettings.from_env()

    def handler(call: Call) -> list[dict[str, Any]]:
        actor = Actor(call.caller.username, call.caller.token)
        person = services.custodia.person(actor.username)
        if not sees_every_district(person.roles):
            raise ScopeError(actor.username, "*")
        db_path = home / NOTICES_DATABASE
        wait_for_outbox(db_path, int(services.app.recorder.max_notification_id() or 0))
        return list_notices(db_path)

    return handler
