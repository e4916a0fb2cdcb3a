"""The notices outbox: which e-mail notices the ledger makes due (issue 19; 9.VI, 8.C, 9.XVIII).

A projection like the reports': it only reads events, and writes its own SQLite file (the
outbox, ``avisos.sqlite``) in the same transaction as the tracking position, so each event
makes its notices exactly once, whatever the restarts. What is due:

- an incident (reported, an unrecorded read found in OpenBao's audit log, the ledger found
  altered): at once to the Secretaría Ejecutiva, the UTCSyD and the district's titular (8.C,
  9.XVIII); the institution's incident has no district, hence no titular;
- a designation or its end (a departure ends every designation): to the UTCSyD (6.X);
- a rotation obligation opened (by either): to the UTCSyD, with its deadline (6.X).

A notice names its recipient by role (``secretaria``, ``utcsyd``, ``titular:DD05``); the
sender (``custody.stack.notices``) turns roles into mailboxes and records what it sent in the
``notices_sent`` table of the same file, which this projection never writes. A notice's id
derives from the event and the recipient, so a rebuilt outbox has the same ids and a notice
already sent is not sent again. Notices carry facts of the ledger (ids, accounts, times,
the reporter's description), never a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from events.domain import District, DistrictId, Incident

__all__ = [
    "NOTICE_NAMESPACE",
    "Notice",
    "NoticesProjection",
    "NoticesView",
    "notices_for",
]

NOTICE_NAMESPACE: Final = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/avisos")
_ZONE: Final = ZoneInfo("America/Mexico_City")
_DISTRICTS: Final = {District.create_id(code): str(code) for code in DistrictId.all()}

_TYPES: Final = {
    "intervencion": "cuenta intervenida por personas ajenas al Instituto",
    "operacion_no_autorizada": "cuenta operada por personal no autorizado",
    "suplantacion": "suplantación de la cuenta",
    "perdida_acceso": "pérdida de acceso a la cuenta",
    "filtracion": "filtración de credenciales",
    "otro": "otro incidente",
    "lectura_no_registrada": "lectura de credenciales sin registro en la bitácora",
    "bitacora_alterada": "bitácora alterada",
}


@dataclass(frozen=True)
class Notice:
    """One e-mail due: to ``recipient`` (a role), about ``kind``, by ``deadline`` if any."""

    notice_id: str
    kind: str
    recipient: str
    district: str | None
    subject: str
    body: str
    created_at: datetime
    deadline: datetime | None


def _local(at: datetime) -> str:
    return at.astimezone(_ZONE).strftime("%d/%m/%Y %H:%M (hora de la Ciudad de México)")


def _notice(
    event: Any,
    kind: str,
    recipient: str,
    district: str | None,
    subject: str,
    lines: list[str],
    deadline: datetime | None = None,
) -> Notice:
    notice_id = uuid5(
        NOTICE_NAMESPACE, f"{event.originator_id}:{event.originator_version}:{recipient}"
    )
    body = "\n".join(
        [
            *lines,
            "",
            f"Registrado en la bitácora el {_local(event.timestamp)}.",
            f"Aviso {notice_id}. Custodia no envía contraseñas ni códigos por correo: si "
            "recibe uno, repórtelo como incidente.",
        ]
    )
    return Notice(
        str(notice_id), kind, recipient, district, subject, body, event.timestamp, deadline
    )


def _incident(event: Any) -> list[Notice]:
    district = event.district  # None: the institution's (the ledger's) incident
    what = _TYPES.get(event.incident_type, event.incident_type)
    where = f"{event.account} ({district})" if district else "todo el Instituto"
    subject = f"[Custodia] Incidente: {what} — {event.account or 'Instituto'}"
    lines = [
        f"Se registró un incidente: {what}.",
        f"Cuenta: {where}.",
        f"Incidente: {event.originator_id}.",
    ]
    detected = getattr(event, "detected_at", None)
    if detected is not None:
        lines.append(f"Detectado: {_local(detected)}.")
    lines += [
        f"Reportado: {_local(event.timestamp)}.",
        f"Plazo para notificar a la Secretaría Ejecutiva (8.C): {_local(event.notify_by)}.",
        "",
        f"Descripción: {event.description}",
    ]
    recipients = ["secretaria", "utcsyd"] + ([f"titular:{district}"] if district else [])
    return [
        _notice(event, "incidente", r, district, subject, lines, event.notify_by)
        for r in recipients
    ]


def _designation(event: Any) -> list[Notice]:
    district = _DISTRICTS.get(event.originator_id)
    if district is None:
        return []
    ended = isinstance(event, District.DesignationEnded)
    kind = "fin_designacion" if ended else "designacion"
    subject = (
        f"[Custodia] {district}: terminó una designación — rotar contraseñas"
        if ended
        else f"[Custodia] {district}: nueva persona administradora — rotar contraseñas"
    )
    lines = [
        (
            f"Terminó la designación de la persona {event.person_id} en {district}"
            f" (motivo: {event.reason.replace('_', ' ')})."
            if ended
            else f"{district} designó como persona administradora a {event.person_id}."
        ),
        "6.X: el cambio de persona administradora obliga a cambiar las contraseñas de las "
        "cuentas del distrito; las rotaciones pendientes llegan en avisos aparte, con su plazo.",
    ]
    return [_notice(event, kind, "utcsyd", district, subject, lines)]


def _obligation(event: Any) -> list[Notice]:
    district = _DISTRICTS.get(event.originator_id)
    if district is None:
        return []
    subject = f"[Custodia] Rotación pendiente: {event.account} antes del {_local(event.deadline)}"
    lines = [
        f"Hay que rotar la contraseña de {event.account} ({district}).",
        f"Causa: {event.cause.replace('_', ' ')}.",
        f"Plazo: {_local(event.deadline)}.",
        f"Obligación: {event.obligation_id}.",
    ]
    return [
        _notice(event, "rotacion_pendiente", "utcsyd", district, subject, lines, event.deadline)
    ]


_RULES: Final[dict[type[Any], Callable[[Any], list[Notice]]]] = {
    Incident.Reported: _incident,
    Incident.UnrecordedReadDetected: _incident,
    Incident.LedgerTamperingDetected: _incident,
    District.AdministratorDesignated: _designation,
    District.DesignationEnded: _designation,
    District.RotationObligationOpened: _obligation,
}


def notices_for(event: Any) -> list[Notice]:
    """The notices ``event`` makes due (none for most events)."""
    rule = _RULES.get(type(event))
    return rule(event) if rule is not None else []


def _stamp(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


class NoticesView(SQLiteTrackingRecorder):
    """The outbox: eventsourcing's SQLite tracking recorder plus the ``notices`` table (and
    the sender's ``notices_sent``, created here so that both exist from the start)."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            """CREATE TABLE IF NOT EXISTS notices (
                notice_id TEXT PRIMARY KEY,
                position INTEGER NOT NULL,
                kind TEXT NOT NULL,
                recipient TEXT NOT NULL,
                district TEXT,
                subject TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at TEXT NOT NULL,
                deadline TEXT
            ) WITHOUT ROWID""",
            # When this outbox was created: notices of events much older (a ledger that
            # predates the outbox) are listed, not sent (custody.stack.notices).
            """CREATE TABLE IF NOT EXISTS outbox_meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE IF NOT EXISTS notices_sent (
                notice_id TEXT PRIMARY KEY,
                sent_at TEXT,
                address TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TEXT,
                last_error TEXT
            ) WITHOUT ROWID""",
        ]

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO outbox_meta VALUES ('creado', ?)",
                (datetime.now(UTC).isoformat(),),
            )

    def record(self, notices: list[Notice], tracking: Tracking) -> None:
        """``notices`` and the tracking position, in one transaction."""
        with self.datastore.get_connection(commit=True) as connection:
            # Most events make no notice: a commit per event without an fsync (WAL, NORMAL).
            # A power loss may lose the last commits; the events are then processed again and
            # make the same notices (same ids, INSERT OR IGNORE). The sender's record of what
            # it sent uses its own, fully synchronous, connection.
            connection._sqlite_conn.execute("PRAGMA synchronous = NORMAL")
            with connection.transaction(commit=True) as cursor:
                self._insert(cursor, notices, tracking.notification_id)
                self._insert_tracking(cursor, tracking)

    @staticmethod
    def _insert(cursor: SQLiteCursor, notices: list[Notice], position: int) -> None:
        for n in notices:
            cursor.execute(
                "INSERT OR IGNORE INTO notices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    n.notice_id,
                    position,
                    n.kind,
                    n.recipient,
                    n.district,
                    n.subject,
                    n.body,
                    _stamp(n.created_at),
                    _stamp(n.deadline),
                ),
            )


class NoticesProjection(Projection[NoticesView]):
    """Each event's notices into the outbox, with its tracking position (exactly once)."""

    name = "avisos"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            notices = notices_for(domain_event)
        except Exception:  # a poison event makes no notice (the reports record it)
            notices = []
        self.view.record(notices, tracking)


def position_of(view: NoticesView, application_name: str) -> int:
    """How far the outbox has read the ledger (0: nothing yet)."""
    return int(view.max_tracking_id(application_name) or 0)
