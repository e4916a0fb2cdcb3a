"""Incidents (8.C, 9.XVIII; issue 19): :class:`Incidents`, the use cases of an incident's life
(reported, notified by a vía oficial, acknowledged, contained, closed or dismissed), the
institution's incident opened for the ledger follower's alert (issue 16), and the incident
ledger as the command service shows it.

Plain helpers for those use cases: the row of one incident with each step's time and whether
its deadline was met, the reporting period of ``incidentes bitacora --desde/--hasta``, and the
detection time a reporter gives in Mexico City time (``--detectado AAAA-MM-DDTHH:MM``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from custody.app.base import REQUEST_NAMESPACE, Actor, ScopeError, UseCases
from events.domain import Incident, ValidationError, parse_account_id, parse_district_id
from events.domain.incident import LEDGER_DIVERGENCES
from events.domain.official_channel import OfficialChannel
from projections.scope import sees_every_district

__all__ = [
    "LEDGER_ALERT_NAMESPACE",
    "Incidents",
    "day_bound",
    "in_period",
    "incident_row",
    "ledger_incident_id",
    "local_minute",
]

#: Namespace of the ids of the incidents opened for the ledger follower's alerts (issue 16).
LEDGER_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/bitacora/alertas")


def ledger_incident_id(alert_id: str) -> UUID:
    """The id of the incident recording the ledger follower's alert ``alert_id``."""
    return uuid5(LEDGER_ALERT_NAMESPACE, alert_id)


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


class Incidents(UseCases):
    """An incident reported, notified, contained, closed or dismissed, and the ledger's own."""

    def _incident(self, identifier: str) -> Incident:
        return self.ledger.find(Incident, identifier, "incidente")

    def _incident_row(self, incident: Incident) -> dict[str, Any]:
        return incident_row(incident)

    def report_incident(
        self,
        actor: Actor,
        account: str,
        kind: str,
        description: str,
        request_id: str,
        detected_at: datetime | None = None,
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by, district = self.ledger.person_and_district(actor.username, account_id.district)
        incident = Incident.report(
            district,
            str(account_id),
            kind,
            description,
            by=by,
            policy=self.policy,
            at=self.clock(),
            incident_id=uuid5(REQUEST_NAMESPACE, request_id),
            detected_at=detected_at,
        )
        self.ledger.save(incident)
        return self._incident_row(incident)

    def notify_incident(
        self, actor: Actor, identifier: str, channel: OfficialChannel
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        incident = self._incident(identifier)
        incident.notify(channel=channel, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def contain_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        incident = self._incident(identifier)
        # The institution's incident (the ledger's) has no district: no rotation to check.
        district = self.ledger.district(incident.district) if incident.district else None
        incident.contain(district, detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def close_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        incident = self._incident(identifier)
        incident.close(detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def dismiss_incident(self, actor: Actor, identifier: str, reason: str) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        incident = self._incident(identifier)
        incident.dismiss(reason, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def acknowledge_incident(
        self, actor: Actor, identifier: str, measures: str | None
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        incident = self._incident(identifier)
        incident.acknowledge(measures, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def record_ledger_tampering(
        self,
        *,
        alert_id: str,
        divergence: str,
        entry: int | None,
        anchored_size: int,
        anchored_root: str | None,
        observed_size: int,
        observed_root: str | None,
        diverged_at: datetime,
    ) -> tuple[UUID, bool]:
        """Issue 16: the ledger follower's alert ``alert_id`` (it refused to sign a ledger that
        does not extend the head anchored in OpenBao) opens the institution's incident. Its id
        derives from the alert, so an alert read again (a restart, another instance) records
        nothing more: the id, and whether this call recorded it."""
        incident_id = ledger_incident_id(alert_id)
        try:
            self.ledger.app.repository.get(incident_id)
            return incident_id, False
        except AggregateNotFoundError:
            pass
        incident = Incident.ledger_tampering(
            incident_id=incident_id,
            divergence=divergence if divergence in LEDGER_DIVERGENCES else "otra",
            entry=entry,
            anchored_size=anchored_size,
            anchored_root=anchored_root,
            observed_size=observed_size,
            observed_root=observed_root,
            alert_id=alert_id,
            diverged_at=diverged_at,
            policy=self.policy,
            at=self.clock(),
        )
        try:
            self.ledger.app.save(incident)
        except IntegrityError:
            return incident_id, False  # another instance recorded it first
        return incident_id, True

    def incident_status(self, incident_id: UUID) -> str | None:
        """The state of an incident (``None`` if the ledger has no such incident)."""
        try:
            item: Any = self.ledger.app.repository.get(incident_id)
        except AggregateNotFoundError:
            return None
        return str(item.status) if isinstance(item, Incident) else None

    def list_incidents(
        self,
        actor: Actor,
        district: str | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The incident ledger; ``since``/``until`` bound when each was reported."""
        by = self.ledger.person(actor.username)
        if not sees_every_district(by.roles):
            raise ScopeError(actor.username, district or "*")
        code = str(parse_district_id(district)) if district else None
        if since is not None and until is not None and since > until:
            raise ValidationError("hasta", "before desde")
        return [
            self._incident_row(i)
            for i in sorted(self.ledger.all_of(Incident), key=lambda i: i.reported_at)
            if (code is None or i.district == code) and in_period(i.reported_at, since, until)
        ]
