"""The notices outbox: which e-mail notices the ledger makes due (issue 19; 9.VI, 8.C, 9.XVIII).

A projection like the reports': it only reads events, and writes its own SQLite file (the
outbox, ``avisos.sqlite``) in the same transaction as the tracking position, so each event
makes its notices exactly once, whatever the restarts. What is due:

- an incident (reported, an unrecorded read found in OpenBao's audit log, the ledger found
  altered): at once to the Secretaría Ejecutiva, the UTCSyD and the district's titular (8.C,
  9.XVIII); the institution's incident has no district, hence no titular;
- a designation or its end (a departure ends every designation): to the UTCSyD (6.X);
- a rotation obligation opened (by either): to the UTCSyD, with its deadline (6.X); and two
  reminders recorded with it, each sent no earlier than its time (``not_before``): one when its
  deadline is near (the opening of working hours of the business day it falls due, when that
  is after the opening) and one when it is past (at the deadline). A rotation confirmed or the
  obligation withdrawn cancels the reminders not yet sent (``cancelled_at``): the sender skips
  them. The reminders' business day is the default calendar's (Mexico City, 09:00, Mexican
  holidays): the outbox reads only events, and a reminder a day early or late is harmless.

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
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from events.domain import District, DistrictId, Incident, Policy

__all__ = [
    "NOTICE_NAMESPACE",
    "Notice",
    "NoticesProjection",
    "NoticesView",
    "cancellations_for",
    "notices_for",
    "reminder_time",
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
    "cambio_de_acceso_no_registrado": "cambio de acceso sin registro en la bitácora",
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
    not_before: datetime | None = None  # a reminder: not sent before this instant
    obligation: str | None = None  # the rotation obligation a reminder is about


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
    *,
    not_before: datetime | None = None,
    obligation: str | None = None,
) -> Notice:
    # A reminder's id names its kind too: one event makes the notice and its reminders.
    suffix = f":{kind}" if not_before is not None else ""
    notice_id = uuid5(
        NOTICE_NAMESPACE, f"{event.originator_id}:{event.originator_version}:{recipient}{suffix}"
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
        str(notice_id),
        kind,
        recipient,
        district,
        subject,
        body,
        event.timestamp,
        deadline,
        not_before,
        obligation,
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
    obligation = str(event.obligation_id)
    notices = [
        _notice(
            event,
            "rotacion_pendiente",
            "utcsyd",
            district,
            subject,
            lines,
            event.deadline,
            obligation=obligation,
        )
    ]
    near = reminder_time(event.deadline)
    if event.timestamp < near < event.deadline:
        notices.append(
            _notice(
                event,
                "rotacion_por_vencer",
                "utcsyd",
                district,
                f"[Custodia] Recordatorio: rotar {event.account} hoy, antes del "
                f"{_local(event.deadline)}",
                ["Recordatorio: el plazo de esta rotación vence hoy (6.X).", *lines],
                event.deadline,
                not_before=near,
                obligation=obligation,
            )
        )
    notices.append(
        _notice(
            event,
            "rotacion_vencida",
            "utcsyd",
            district,
            f"[Custodia] Rotación vencida: {event.account} (plazo {_local(event.deadline)})",
            [
                "El plazo de esta rotación venció sin que se confirmara (6.X); aparece como "
                "incumplimiento en el reporte de cumplimiento.",
                *lines,
            ],
            event.deadline,
            not_before=event.deadline,
            obligation=obligation,
        )
    )
    return notices


_CALENDAR: Final = Policy()


def reminder_time(deadline: datetime) -> datetime:
    """When a deadline is near: the opening of working hours of the business day the deadline
    falls on (its last instant's day, or the business day before it); for a deadline before
    that day's opening (Tuesday 08:00), the business day before (a "vence hoy" reminder after
    the deadline would be one more overdue notice)."""
    day = _CALENDAR.local(deadline - timedelta(microseconds=1)).date()
    while True:
        while not _CALENDAR.is_business_day(day):
            day -= timedelta(days=1)
        moment = datetime.combine(day, _CALENDAR.working_hours_start, tzinfo=_CALENDAR.zone)
        if moment < deadline:
            return moment
        day -= timedelta(days=1)


def cancellations_for(event: Any) -> list[tuple[str, datetime]]:
    """The rotation obligations ``event`` fulfils or withdraws (their reminders are moot),
    each with the event's time."""
    if isinstance(event, District.RotationConfirmed):
        return [(str(o), event.timestamp) for o in event.closed_obligation_ids]
    if isinstance(event, District.RotationObligationWithdrawn):
        return [(str(event.obligation_id), event.timestamp)]
    return []


_RULES: Final[dict[type[Any], Callable[[Any], list[Notice]]]] = {
    Incident.Reported: _incident,
    Incident.UnrecordedReadDetected: _incident,
    Incident.LedgerTamperingDetected: _incident,
    Incident.UnrecordedAccessChangeDetected: _incident,
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
                deadline TEXT,
                not_before TEXT,
                obligation TEXT,
                cancelled_at TEXT
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
            # An outbox made before reminders existed gets their columns (all NULL: due now).
            cursor.execute("PRAGMA table_info(notices)")
            columns = {row[1] for row in cursor.fetchall()}
            for column in ("not_before", "obligation", "cancelled_at"):
                if column not in columns:
                    cursor.execute(f"ALTER TABLE notices ADD COLUMN {column} TEXT")
            cursor.execute(
                "INSERT OR IGNORE INTO outbox_meta VALUES ('creado', ?)",
                (datetime.now(UTC).isoformat(),),
            )

    def record(
        self,
        notices: list[Notice],
        tracking: Tracking,
        cancelled: list[tuple[str, datetime]] | None = None,
    ) -> None:
        """``notices``, the reminders of the ``cancelled`` obligations cancelled, and the
        tracking position, in one transaction."""
        with self.datastore.get_connection(commit=True) as connection:
            # Most events make no notice: a commit per event without an fsync (WAL, NORMAL).
            # A power loss may lose the last commits; the events are then processed again and
            # make the same notices (same ids, INSERT OR IGNORE). The sender's record of what
            # it sent uses its own, fully synchronous, connection.
            connection._sqlite_conn.execute("PRAGMA synchronous = NORMAL")
            with connection.transaction(commit=True) as cursor:
                self._insert(cursor, notices, tracking.notification_id)
                for obligation, at in cancelled or ():
                    cursor.execute(_CANCEL, (_stamp(at), obligation))
                self._insert_tracking(cursor, tracking)

    @staticmethod
    def _insert(cursor: SQLiteCursor, notices: list[Notice], position: int) -> None:
        for n in notices:
            cursor.execute(
                "INSERT OR IGNORE INTO notices (notice_id, position, kind, recipient, district,"
                " subject, body, created_at, deadline, not_before, obligation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    _stamp(n.not_before),
                    n.obligation,
                ),
            )


# A reminder not yet sent is cancelled; one already sent stays as it was.
_CANCEL: Final = (
    "UPDATE notices SET cancelled_at = ? WHERE obligation = ? AND not_before IS NOT NULL"
    " AND cancelled_at IS NULL AND notice_id NOT IN"
    " (SELECT notice_id FROM notices_sent WHERE sent_at IS NOT NULL)"
)


class NoticesProjection(Projection[NoticesView]):
    """Each event's notices into the outbox, with its tracking position (exactly once)."""

    name = "avisos"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            notices = notices_for(domain_event)
            cancelled = cancellations_for(domain_event)
        except Exception:  # a poison event makes no notice (the reports record it)
            notices, cancelled = [], []
        self.view.record(notices, tracking, cancelled)


def position_of(view: NoticesView, application_name: str) -> int:
    """How far the outbox has read the ledger (0: nothing yet)."""
    return int(view.max_tracking_id(application_name) or 0)
