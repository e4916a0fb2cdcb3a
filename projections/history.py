"""Who held which role of a district, when, on which vía oficial (6.VII, 6.X; ``custodia
historial``).

A pure function of one district's recorded events: no live state is consulted. Roles:

- ``titular`` — from its appointment to the next one or its end (a departure, 6.X);
- ``titular_encargado`` — an acting titular (*encargo de despacho*) over its period;
- ``administrador`` — the designated *enlace*, from the designation to the next one or its end;
- ``sustituto`` — whoever held the credentials during an absence, from its start to its end.

Each row: ``rol``, ``persona`` (user name), ``desde``, ``hasta`` (None: still holds it),
``via_oficial`` (as the view shows it), and ``excepcion`` (UTCSyD's reason when it acted in the
titular's stead, else None). With a day, only the rows whose period overlaps that day in Mexico
City time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from events.domain import District

__all__ = ["HISTORY_ROLES", "designation_history"]

HISTORY_ROLES = ("titular", "titular_encargado", "administrador", "sustituto")
_MEXICO_CITY = ZoneInfo("America/Mexico_City")


def _channel_text(payload: dict[str, Any] | None) -> str | None:
    if not payload or not payload.get("kind"):
        return None
    dated = f" ({payload['date']})" if payload.get("date") else ""
    return f"{payload['kind']} {payload.get('reference')}{dated}"


def designation_history(
    events: Iterable[Any],
    name_of: Callable[[UUID], str | None],
    *,
    on: date | None = None,
) -> list[dict[str, Any]]:
    """The rows of the district whose ``events`` are given (in order); ``name_of`` turns a
    person's id into their user name; ``on``: only who held each role that day."""
    rows: list[dict[str, Any]] = []
    open_rows: dict[str, dict[str, Any]] = {}
    pending_absence: dict[str, Any] | None = None
    # UTCSyD's exception applies to the events of the same command (they share its instant).
    exception: tuple[datetime, str] | None = None

    def start(role: str, person: UUID, since: datetime, channel: Any, **extra: Any) -> None:
        row = {
            "rol": role,
            "persona": name_of(person) or str(person),
            "desde": since,
            "hasta": extra.pop("until", None),
            "via_oficial": _channel_text(channel),
            "excepcion": exception[1] if exception and exception[0] == since_of_command else None,
        }
        rows.append(row)
        open_rows[role] = row

    def end(role: str, at: datetime) -> None:
        row = open_rows.pop(role, None)
        if row is None:
            return
        if row["hasta"] is None or at < row["hasta"]:
            row["hasta"] = at
        if row["hasta"] <= row["desde"]:
            rows.remove(row)  # cancelled before it began

    since_of_command: datetime | None = None
    for e in events:
        at: datetime = e.timestamp
        since_of_command = at
        if isinstance(e, District.AuthorityExceptionRecorded):
            exception = (at, e.reason)
            continue
        if isinstance(e, District.TitularAppointed):
            end("titular", at)
            start("titular", e.person_id, at, e.channel)
        elif isinstance(e, District.TitularEnded):
            end("titular", at)
        elif isinstance(e, District.ActingTitularAppointed):
            end("titular_encargado", at)
            start("titular_encargado", e.person_id, e.starts_at, e.channel, until=e.ends_at)
        elif isinstance(e, District.ActingTitularEnded):
            end("titular_encargado", at)
        elif isinstance(e, District.AdministratorDesignated):
            end("sustituto", at)
            end("administrador", at)
            start("administrador", e.person_id, at, e.channel)
        elif isinstance(e, District.DesignationEnded):
            end("administrador", at)
        elif isinstance(e, District.AbsenceReported):
            pending_absence = {
                "substitute": e.substitute_id,
                "starts_at": e.starts_at,
                "ends_at": e.ends_at,
                "channel": e.channel,
                "reported_at": at,
            }
        elif isinstance(e, District.AbsenceStarted) and pending_absence is not None:
            # Recorded late by a later command, it still began at its start (or its report).
            since = max(pending_absence["starts_at"], pending_absence["reported_at"])
            start("sustituto", pending_absence["substitute"], since, pending_absence["channel"])
        elif isinstance(e, District.AbsenceEnded):
            ends_at: datetime | None = pending_absence["ends_at"] if pending_absence else None
            scheduled = e.kind == "regreso_programado" and ends_at is not None
            end("sustituto", ends_at if scheduled and ends_at is not None else at)
            pending_absence = None
    if on is not None:
        day_start = datetime.combine(on, time(), _MEXICO_CITY)
        day_end = datetime.combine(on + timedelta(days=1), time(), _MEXICO_CITY)
        rows = [
            r
            for r in rows
            if r["desde"] < day_end and (r["hasta"] is None or r["hasta"] > day_start)
        ]
    return [
        {
            **r,
            "desde": r["desde"].isoformat(),
            "hasta": r["hasta"].isoformat() if r["hasta"] is not None else None,
        }
        for r in sorted(rows, key=lambda r: (HISTORY_ROLES.index(r["rol"]), r["desde"]))
    ]
