"""Configuration-change requests (6.XI, 11.1).

The original settings of an account — e-mail, phone, user name, password — may not change unless
UTCSyD is asked by *vía oficial*. A request is filed by the district (its titular or its
administrator), decided by a coadministrator, and applied only after approval::

    solicitada ──approve──▶ aprobada ──apply──▶ aplicada
        └──────reject─────▶ rechazada

Applying a change of e-mail, phone or user name is recorded on the district
(:meth:`District.change_account_setting`); a password change is a rotation confirmed with the
request (:meth:`District.confirm_rotation`). The request is marked applied in the same save, and
only once the district shows the change.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.district import ChannelPayload, District
from events.domain.errors import (
    ChangeNotRecordedError,
    DistrictMismatchError,
    InvalidTransitionError,
    NotAllowedToReportError,
)
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.values import (
    CHANGE_FIELDS,
    ChangeField,
    ChangeRequestStatus,
    choice,
    validate_text,
)

__all__ = ["ChangeRequest"]


def _reason(reason: str | None) -> str | None:
    return validate_text("reason", reason, max_length=1000, multiline=True) if reason else None


@stable_topics("ChangeRequest")
class ChangeRequest(Aggregate):
    """A request to change an account's original settings. Create with :meth:`file`."""

    __deepcopy__ = aggregate_deepcopy  # the state is plain data: copied cheaply

    class Filed(Aggregate.Created):
        district: str
        account: str
        field: str
        detail: str
        channel: ChannelPayload
        by: UUID

    class Approved(Aggregate.Event):
        reason: str | None
        by: UUID

    class Rejected(Aggregate.Event):
        reason: str | None
        by: UUID

    class Applied(Aggregate.Event):
        """``rotation_version`` is the password version a password change produced."""

        rotation_version: int | None
        by: UUID

    @event(Filed)
    def __init__(
        self,
        id: UUID,  # the library passes the id under this name
        district: str,
        account: str,
        field: ChangeField,
        detail: str,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.district = district
        self.account = account
        self.field: ChangeField = field
        self.detail = detail
        self.channel = OfficialChannel.from_event(channel)
        self.filed_by = by
        self.status: ChangeRequestStatus = "solicitada"
        self.decided_by: UUID | None = None
        self.decided_at: datetime | None = None
        self.decision_reason: str | None = None
        self.applied_by: UUID | None = None
        self.applied_at: datetime | None = None
        self.rotation_version: int | None = None

    @classmethod
    def file(
        cls,
        district: District,
        account: str,
        field: str,
        detail: str,
        *,
        channel: OfficialChannel,
        by: Person,
        at: datetime,
        request_id: UUID | None = None,
    ) -> ChangeRequest:
        """6.XI: the district's titular or administrator asks, by ``channel``, to change
        ``field`` (correo, telefono, usuario, contrasena, otro) of an open account."""
        at = as_utc(at)
        current = district.open_account(account)
        titular = district.titular_id == by.id and by.is_titular_of(district.code)
        if not titular and not district.is_administrator_of_record(by, at):
            raise NotAllowedToReportError(by.id, "file change requests", district.code)
        return cls(
            id=request_id or uuid4(),
            district=district.code,
            account=current.account_id,
            field=choice("field", field, CHANGE_FIELDS),
            detail=validate_text("detail", detail, max_length=2000, multiline=True),
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )

    def approve(self, *, by: Person, at: datetime, reason: str | None = None) -> None:
        """UTCSyD approves (6.XI): only a coadministrator, only a pending request."""
        at = command_time(self, at)
        require_coadministrator(by, "decide change requests")
        self._require_status("solicitada", "approve")
        self._approved(reason=_reason(reason), by=by.id, timestamp=at)

    @event(Approved)
    def _approved(self, reason: str | None, by: UUID, timestamp: datetime) -> None:
        self.status = "aprobada"
        self.decided_by = by
        self.decided_at = timestamp
        self.decision_reason = reason

    def reject(self, *, by: Person, at: datetime, reason: str | None = None) -> None:
        """UTCSyD rejects: only a coadministrator, only a pending request."""
        at = command_time(self, at)
        require_coadministrator(by, "decide change requests")
        self._require_status("solicitada", "reject")
        self._rejected(reason=_reason(reason), by=by.id, timestamp=at)

    @event(Rejected)
    def _rejected(self, reason: str | None, by: UUID, timestamp: datetime) -> None:
        self.status = "rechazada"
        self.decided_by = by
        self.decided_at = timestamp
        self.decision_reason = reason

    def apply(self, district: District, *, by: Person, at: datetime) -> None:
        """11.1.b: the approved change was made. For an e-mail, phone, user name or password
        change, ``district`` must already show it (recorded with this request)."""
        at = command_time(self, at)
        require_coadministrator(by, "apply change requests")
        self._require_status("aprobada", "apply")
        if district.code != self.district:
            raise DistrictMismatchError(self.district, district.code)
        rotation_version = None
        if self.field != "otro":
            if district.applied_change_requests.get(str(self.id)) != self.account:
                raise ChangeNotRecordedError(self.id, self.account)
            if self.field == "contrasena":
                rotation_version = district.account(self.account).current_version
        self._applied(rotation_version=rotation_version, by=by.id, timestamp=at)

    @event(Applied)
    def _applied(self, rotation_version: int | None, by: UUID, timestamp: datetime) -> None:
        self.status = "aplicada"
        self.applied_by = by
        self.applied_at = timestamp
        self.rotation_version = rotation_version

    def _require_status(self, status: ChangeRequestStatus, action: str) -> None:
        if self.status != status:
            raise InvalidTransitionError("change_request", self.id, self.status, action)
