"""The incident ledger as the command service shows it (8.C, 9.XVIII; issue 19).

Plain helpers for :class:`custody.app.custodia.Custodia`'s incident use cases: the row of one
incident
with each step's time and whether its deadline was met, the reporting period of
``incidentes bitacora --desde/--hasta``, and the detection time a reporter gives in Mexico City
time (``--detectado AAAA-MM-DDTHH:MM``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from events.domain import Incident, ValidationError

__all__ = ["day_bound", "in_period", "incident_row", "local_minute"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_row(incident: Incident) -> dict[str, Any]:
    """The keys of ``custodia incidentes lista --json`` (``incidente`` …
    ``notificado_a_tiempo``), each time ``None`` until the step happens, plus the deadline, the
    dismissal and the acknowledgement's measures."""
    return {
        "incidente": str(incident.id),
        "cuenta": incident.account,
        "distrito": incident.district,
        "tipo": incident.incident_type,
        "estado": incident.status,
        "detectado": _iso(incident.detected_at),
        "reportado": _iso(incident.reported_at),
        "notificar_antes_de": _iso(incident.notify_by),
        "notificado": _iso(incident.notified_at),
        "enterado": _iso(incident.acknowledged_at),
        "contenido": _iso(incident.contained_at),
        "cerrado": _iso(incident.closed_at),
        "descartado": _iso(incident.dismissed_at),
        "motivo_descarte": incident.dismiss_reason,
        "medidas": incident.measures,
        "notificado_a_tiempo": incident.notified_on_time,
    }


def in_period(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``at`` falls in ``[since, until]`` (either bound open when ``None``)."""
    return (since is None or at >= since) and (until is None or at <= until)


def day_bound(text: str | None, zone: tzinfo, *, end: bool) -> datetime | None:
    """``AAAA-MM-DD`` as the first (or, ``end``, the last) instant of that day in ``zone``,
    in UTC; ``None`` for no text. As ``reporte --desde/--hasta`` reads them."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError("fecha", "expected AAAA-MM-DD") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=zone).astimezone(UTC)


def local_minute(text: str | None, zone: tzinfo) -> datetime | None:
    """``AAAA-MM-DDTHH:MM`` (Mexico City time by the policy's ``zone``) as an instant in UTC;
    an explicit offset is honoured. ``None`` for no text."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("detectado", "expected AAAA-MM-DDTHH:MM") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
