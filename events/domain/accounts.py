"""Requests to open an account (10.I–III; issue 19).

A district may not open accounts (10.II): it asks UTCSyD, by *vía oficial* (10.III; UTCSyD's
channel is ``redessociales@iecm.mx``, 10.IV), and UTCSyD decides whether opening it is viable
(10.I). Approval and registration are one step: a coadministrator registers the account *under*
the request (:meth:`District.register_account` and :meth:`AccountOpeningRequest.approve` in
one save), or records that it is not viable::

    solicitada ──approve (cuentas alta --solicitud)──▶ aprobada
        └──────reject (cuentas rechazar)────────────▶ rechazada

UTCSyD may still open an account on its own initiative (10.I), without a request.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.district import ChannelPayload, District
from events.domain.errors import (
    DistrictMismatchError,
    InvalidTransitionError,
    NotAllowedToReportError,
)
from events.domain.ids import parse_account_id
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.values import validate_text

__all__ = ["AccountOpeningRequest"]


@stable_topics("AccountOpeningRequest")
class AccountOpeningRequest(Aggregate):
    """A district's request to open an account on a platform. Create with :meth:`file`."""

    __deepcopy__ = aggregate_deepcopy

    class Filed(Aggregate.Created):
        district: str
        platform: str
        reason: str
        channel: ChannelPayload
        by: UUID

    class Approved(Aggregate.Event):
        """10.I: viable; the account was registered in the same save."""

        account: str
        by: UUID

    class Rejected(Aggregate.Event):
        """10.I: not viable."""

        reason: str
        by: UUID

    @event(Filed)
    def __init__(
        self,
        id: UUID,  # the library passes the id under this name
        district: str,
        platform: str,
        reason: str,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.district = district
        self.platform = platform
        self.reason = reason
        self.channel = OfficialChannel.from_event(channel)
        self.filed_by = by
        self.status = "solicitada"
        self.account: str | None = None
        self.decided_by: UUID | None = None
        self.decided_at: datetime | None = None
        self.decision_reason: str | None = None

    @classmethod
    def file(
        cls,
        district: District,
        platform: str,
        reason: str,
        *,
        channel: OfficialChannel,
        by: Person,
        at: datetime,
        request_id: UUID | None = None,
    ) -> AccountOpeningRequest:
        """10.II–III: the district's titular (or UTCSyD) asks to open an account on
        ``platform``, by ``channel``, saying what for."""
        at = as_utc(at)
        titular = district.titular_id == by.id and by.is_titular_of(district.code)
        if not titular and not by.is_coadministrator:
            raise NotAllowedToReportError(by.id, "request accounts", district.code)
        account = parse_account_id(f"{district.code}-{platform.strip().lower()}")
        return cls(
            id=request_id or uuid4(),
            district=district.code,
            platform=account.platform,
            reason=validate_text("reason", reason, max_length=2000, multiline=True),
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )

    def approve(self, district: District, account: str, *, by: Person, at: datetime) -> None:
        """10.I: UTCSyD found it viable and registered ``account`` (already on ``district``)."""
        at = command_time(self, at)
        require_coadministrator(by, "decide account requests")
        self._require_pending("aprobar")
        if district.code != self.district:
            raise DistrictMismatchError(self.district, district.code)
        current = district.open_account(account)
        if current.platform != self.platform:
            raise DistrictMismatchError(f"{self.district}-{self.platform}", current.account_id)
        self._approved(account=current.account_id, by=by.id, timestamp=at)

    @event(Approved)
    def _approved(self, account: str, by: UUID, timestamp: datetime) -> None:
        self.status = "aprobada"
        self.account = account
        self.decided_by = by
        self.decided_at = timestamp

    def reject(self, reason: str, *, by: Person, at: datetime) -> None:
        """10.I: UTCSyD found it not viable (``reason``)."""
        at = command_time(self, at)
        require_coadministrator(by, "decide account requests")
        self._require_pending("rechazar")
        text = validate_text("reason", reason, max_length=1000, multiline=True)
        self._rejected(reason=text, by=by.id, timestamp=at)

    @event(Rejected)
    def _rejected(self, reason: str, by: UUID, timestamp: datetime) -> None:
        self.status = "rechazada"
        self.decided_by = by
        self.decided_at = timestamp
        self.decision_reason = reason

    def _require_pending(self, action: str) -> None:
        if self.status != "solicitada":
            raise InvalidTransitionError("solicitud_cuenta", self.id, self.status, action)
