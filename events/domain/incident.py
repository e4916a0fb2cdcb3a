"""Incidents: an account intervened by outsiders or operated by unauthorized staff (8.C,
9.XVIII; R5).

The administrator (or the titular, or UTCSyD) reports it; UTCSyD notifies the Secretaría
Ejecutiva "inmediatamente" — measured against the policy's deadline, one hour by default, any
hour of any day —; containment needs the account's credentials rotated after the report; then
it is closed. States only move forward::

    reportado ──notify──▶ notificado ──contain──▶ contenido ──close──▶ cerrado
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.district import ChannelPayload, District
from events.domain.errors import (
    ContainmentWithoutRotationError,
    DistrictMismatchError,
    InvalidTransitionError,
    NotAllowedToReportError,
)
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.policy import Policy
from events.domain.values import (
    INCIDENT_TYPES,
    IncidentStatus,
    IncidentType,
    choice,
    validate_text,
)

__all__ = ["Incident"]


def _detail(detail: str) -> str:
    return validate_text("detail", detail, max_length=4000, multiline=True)


@stable_topics("Incident")
class Incident(Aggregate):
    """A compromise of one account. Create with :meth:`report`."""

    __deepcopy__ = aggregate_deepcopy  # the state is plain data: copied cheaply

    class Reported(Aggregate.Created):
        """``notify_by`` is the notification deadline under the policy in force."""

        district: str
        account: str
        incident_type: str
        description: str
        notify_by: datetime
        by: UUID

    class Notified(Aggregate.Event):
        """8.C: the Secretaría Ejecutiva was notified, by ``channel``."""

        channel: ChannelPayload
        on_time: bool
        by: UUID

    class Contained(Aggregate.Event):
        """The account's credentials were rotated after the report (``rotation_version``)."""

        detail: str
        rotation_version: int
        rotation_confirmed_at: datetime
        by: UUID

    class Closed(Aggregate.Event):
        detail: str
        by: UUID

    @event(Reported)
    def __init__(
        self,
        id: UUID,  # the library passes the id under this name
        district: str,
        account: str,
        incident_type: IncidentType,
        description: str,
        notify_by: datetime,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.district = district
        self.account = account
        self.incident_type: IncidentType = incident_type
        self.description = description
        self.reported_by = by
        self.reported_at = timestamp
        self.notify_by = notify_by
        self.status: IncidentStatus = "reportado"
        self.notified_at: datetime | None = None
        self.notified_on_time: bool | None = None
        self.contained_at: datetime | None = None
        self.rotation_version: int | None = None
        self.closed_at: datetime | None = None

    @classmethod
    def report(
        cls,
        district: District,
        account: str,
        incident_type: str,
        description: str,
        *,
        by: Person,
        policy: Policy,
        at: datetime,
        incident_id: UUID | None = None,
    ) -> Incident:
        """8.C, 9.XVIII: the district's administrator, its titular or a coadministrator reports
        that an open account was intervened or operated without authorization."""
        at = as_utc(at)
        current = district.open_account(account)
        titular = district.titular_id == by.id and by.is_titular_of(district.code)
        if not (titular or by.is_coadministrator or district.is_administrator_of_record(by, at)):
            raise NotAllowedToReportError(by.id, "report incidents", district.code)
        return cls(
            id=incident_id or uuid4(),
            district=district.code,
            account=current.account_id,
            incident_type=choice("incident_type", incident_type, INCIDENT_TYPES),
            description=validate_text("description", description, max_length=4000, multiline=True),
            notify_by=policy.notification_deadline(at),
            by=by.id,
            timestamp=at,
        )

    def notify(self, *, channel: OfficialChannel, by: Person, at: datetime) -> None:
        """8.C: a coadministrator records the notification to the Secretaría Ejecutiva."""
        at = command_time(self, at)
        require_coadministrator(by, "notify incidents")
        self._require_status("reportado", "notify")
        self._notified(
            channel=channel.to_event(), on_time=at <= self.notify_by, by=by.id, timestamp=at
        )

    @event(Notified)
    def _notified(
        self, channel: ChannelPayload, on_time: bool, by: UUID, timestamp: datetime
    ) -> None:
        self.status = "notificado"
        self.notified_at = timestamp
        self.notified_on_time = on_time

    def contain(self, district: District, detail: str, *, by: Person, at: datetime) -> None:
        """Containment: refused unless the account has a rotation confirmed after the report."""
        at = command_time(self, at)
        require_coadministrator(by, "contain incidents")
        self._require_status("notificado", "contain")
        if district.code != self.district:
            raise DistrictMismatchError(self.district, district.code)
        account = district.account(self.account)
        confirmed_at = account.last_confirmed_at
        if confirmed_at is None or confirmed_at <= self.reported_at or confirmed_at > at:
            raise ContainmentWithoutRotationError(
                self.id, self.account, self.reported_at, confirmed_at
            )
        assert account.current_version is not None
        self._contained(
            detail=_detail(detail),
            rotation_version=account.current_version,
            rotation_confirmed_at=confirmed_at,
            by=by.id,
            timestamp=at,
        )

    @event(Contained)
    def _contained(
        self,
        detail: str,
        rotation_version: int,
        rotation_confirmed_at: datetime,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.status = "contenido"
        self.contained_at = timestamp
        self.rotation_version = rotation_version

    def close(self, detail: str, *, by: Person, at: datetime) -> None:
        """A coadministrator closes a contained incident."""
        at = command_time(self, at)
        require_coadministrator(by, "close incidents")
        self._require_status("contenido", "close")
        self._closed(detail=_detail(detail), by=by.id, timestamp=at)

    @event(Closed)
    def _closed(self, detail: str, by: UUID, timestamp: datetime) -> None:
        self.status = "cerrado"
        self.closed_at = timestamp

    def _require_status(self, status: IncidentStatus, action: str) -> None:
        if self.status != status:
            raise InvalidTransitionError("incident", self.id, self.status, action)
