"""The read model of the institution's controls (issue 19): institutional devices (8.B),
authorized other hours, the IECM's non-working days and the policies in force (8.A), and
recertification campaigns. Tables and handlers only; built from the ledger's events
(:mod:`events.domain.controls`), merged into :mod:`.schema` and the reports projection.

A read's flags (outside working hours, unregistered device) are recorded in the read's own
event, judged by the rules then in force; these tables show what those rules were.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, Final

from events.domain.controls import DeviceRegistry, Recertification, WorkingCalendar
from projections.handler import Handler

__all__ = [
    "CONTROL_HANDLERS",
    "CONTROL_PERSON_COLUMNS",
    "CONTROL_STATEMENTS",
    "CONTROL_TABLE_KEYS",
    "recertification_status",
]

CONTROL_STATEMENTS: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        district TEXT NOT NULL,
        description TEXT NOT NULL,
        registered_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS special_hours (
        position INTEGER PRIMARY KEY,
        starts_on TEXT NOT NULL,
        ends_on TEXT NOT NULL,
        start TEXT,
        end TEXT,
        reason TEXT NOT NULL,
        channel TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS non_working_days (
        day TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS policies (
        position INTEGER PRIMARY KEY,
        settings TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS recertifications (
        campaign_id TEXT PRIMARY KEY,
        period TEXT NOT NULL,
        due TEXT NOT NULL,
        opened_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS recertification_answers (
        campaign_id TEXT NOT NULL,
        district TEXT NOT NULL,
        outcome TEXT NOT NULL,
        administrator_id TEXT,
        answered_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, district)
    ) WITHOUT ROWID""",
)

CONTROL_TABLE_KEYS: Final[dict[str, str]] = {
    "devices": "device_id",
    "special_hours": "position",
    "non_working_days": "day",
    "policies": "position",
    "recertifications": "campaign_id",
    "recertification_answers": "campaign_id, district",
}

CONTROL_PERSON_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("recertification_answers", "administrator_id"),
)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _channel(payload: dict[str, str | None]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def _nothing(c: sqlite3.Cursor, e: object, position: int) -> None:
    """A registry's creation: nothing to show."""


def _device_registered(
    c: sqlite3.Cursor, e: DeviceRegistry.DeviceRegistered, position: int
) -> None:
    c.execute(
        "INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?)",
        (e.device_id, e.district, e.description, _stamp(e.timestamp)),
    )


def _device_retired(c: sqlite3.Cursor, e: DeviceRegistry.DeviceRetired, position: int) -> None:
    c.execute("DELETE FROM devices WHERE device_id = ?", (e.device_id,))


def _hours_authorized(
    c: sqlite3.Cursor, e: WorkingCalendar.SpecialHoursAuthorized, position: int
) -> None:
    c.execute(
        "INSERT OR REPLACE INTO special_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            position,
            e.starts_on,
            e.ends_on,
            e.start,
            e.end,
            e.reason,
            _channel(e.channel),
            _stamp(e.timestamp),
        ),
    )


def _day_declared(
    c: sqlite3.Cursor, e: WorkingCalendar.NonWorkingDayDeclared, position: int
) -> None:
    c.execute(
        "INSERT OR REPLACE INTO non_working_days VALUES (?, ?, ?)",
        (e.day, _channel(e.channel), _stamp(e.timestamp)),
    )


def _policy_adopted(c: sqlite3.Cursor, e: WorkingCalendar.PolicyAdopted, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO policies VALUES (?, ?, ?)",
        (position, json.dumps(e.settings, sort_keys=True), _stamp(e.timestamp)),
    )


def _recertification_opened(c: sqlite3.Cursor, e: Recertification.Opened, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO recertifications VALUES (?, ?, ?, ?)",
        (str(e.originator_id), e.period, _stamp(e.due), _stamp(e.timestamp)),
    )


def _answer(outcome: str) -> Handler:
    def handler(
        c: sqlite3.Cursor,
        e: Recertification.DistrictAttested
        | Recertification.DistrictRevoked
        | Recertification.RosterAttested,
        position: int,
    ) -> None:
        administrator = getattr(e, "administrator_id", None)
        c.execute(
            "INSERT OR REPLACE INTO recertification_answers VALUES (?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                getattr(e, "district", "UTCSyD"),
                outcome,
                None if administrator is None else str(administrator),
                _stamp(e.timestamp),
            ),
        )

    return handler


CONTROL_HANDLERS: Final[dict[type, Handler]] = {
    DeviceRegistry.Opened: _nothing,
    DeviceRegistry.DeviceRegistered: _device_registered,
    DeviceRegistry.DeviceRetired: _device_retired,
    WorkingCalendar.Opened: _nothing,
    WorkingCalendar.SpecialHoursAuthorized: _hours_authorized,
    WorkingCalendar.NonWorkingDayDeclared: _day_declared,
    WorkingCalendar.PolicyAdopted: _policy_adopted,
    Recertification.Opened: _recertification_opened,
    Recertification.DistrictAttested: _answer("confirmada"),
    Recertification.DistrictRevoked: _answer("revocada"),
    Recertification.RosterAttested: _answer("confirmada"),
}


def recertification_status(conn: Any, as_of: datetime) -> dict[str, dict[str, Any]]:
    """For the latest campaign: each district's (and ``UTCSyD``'s) answer, ``pendiente`` or
    ``vencida`` (past the due date, unanswered). Empty when no campaign was ever opened."""
    latest = conn.execute(
        "SELECT campaign_id, period, due FROM recertifications ORDER BY opened_at DESC LIMIT 1"
    ).fetchone()
    if latest is None:
        return {}
    campaign, period, due = str(latest[0]), str(latest[1]), str(latest[2])
    answers = {
        str(r[0]): (str(r[1]), r[2])
        for r in conn.execute(
            "SELECT district, outcome, administrator_id FROM recertification_answers "
            "WHERE campaign_id = ?",
            (campaign,),
        )
    }
    overdue = _stamp(as_of) > due
    out: dict[str, dict[str, Any]] = {}
    for district in [f"DD{n:02d}" for n in range(1, 34)] + ["UTCSyD"]:
        outcome, administrator = answers.get(district, (None, None))
        state = outcome or ("vencida" if overdue else "pendiente")
        out[district] = {
            "periodo": period,
            "vence": due,
            "estado": state,
            "administrador_revocado": administrator if outcome == "revocada" else None,
        }
    return out


def annotate_compliance(report: Any, status: dict[str, dict[str, Any]], names: Any) -> None:
    """Adds the latest campaign's answer to each row of compliance ``report`` (keys
    ``recertificacion`` and ``recertificacion_vencida``; never removes one). An overdue
    attestation, or a revoked enlace who is still designated, makes the district ``no_cumple``
    (and the institute's verdict and summary line say so)."""
    rows: list[dict[str, Any]] = report.rows
    newly_failing = False
    for row in rows:
        found = status.get(str(row.get("distrito")))
        row["recertificacion"] = None
        row["recertificacion_vencida"] = False
        if found is None:
            continue
        state = found["estado"]
        revoked = found["administrador_revocado"]
        still_there = (
            state == "revocada"
            and revoked is not None
            and names.name(revoked) == row.get("administrador")
        )
        row["recertificacion"] = {
            "periodo": found["periodo"],
            "estado": state,
            "vence": found["vence"],
        }
        row["recertificacion_vencida"] = state == "vencida"
        reason = None
        if state == "vencida":
            reason = f"recertificación {found['periodo']} sin confirmar en plazo"
        elif still_there:
            reason = f"recertificación {found['periodo']} revocada: la persona sigue designada"
        if reason is not None:
            reasons = row.setdefault("motivos", [])
            reasons.append(reason)
            newly_failing = newly_failing or row.get("veredicto") == "cumple"
            row["veredicto"] = "no_cumple"
            row["resumen"] = f"{row['distrito']}: no cumple — " + "; ".join(reasons) + "."
    summary: dict[str, Any] = report.summary
    if not newly_failing or not summary:
        return
    summary["veredicto"] = "no_cumple"
    failing = [str(r["distrito"]) for r in rows if r.get("veredicto") == "no_cumple"]
    whole = report.district is None
    subject = "Instituto" if whole else f"Dirección Distrital {report.district}"
    if "integridad" not in str(summary.get("linea", "")):
        summary["linea"] = (
            f"{subject}: no cumple — {len(failing)} de {len(rows)} direcciones distritales no "
            f"cumplen ({', '.join(failing)})."
        )
    if whole:
        for row in rows:
            row["veredicto_instituto"] = "no_cumple"
