"""The institution's controls over how accounts are operated (8.A, 8.B) and who may hold them
(recertification), as facts in the ledger.

- :class:`DeviceRegistry` — 8.B: the institutional devices UTCSyD registers, each for one
  district. A read names its device; the district's reads from any other device are flagged
  (or refused, when the policy says so).
- :class:`WorkingCalendar` — 8.A: authorized other hours ("salvo que haya, por necesidades del
  servicio, una disposición que establezca algún otro horario"), the IECM's own non-working
  days, both on a *vía oficial*, and every policy the service ran under. A read is judged by
  the calendar recorded before it, so a report computed later uses the rules then in force.
- :class:`Recertification` — a campaign (``2026-T4``): each titular attests (or revokes) their
  enlace and accounts; UTCSyD attests its own roster. Attestations still missing after the
  deadline are overdue.

Each registry is one aggregate with a fixed id (campaigns: one per period), so its commands are
serialized by the ledger's optimistic concurrency like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from events.domain.base import command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.errors import (
    DomainError,
    NotDistrictAuthorityError,
    ValidationError,
)
from events.domain.ids import DistrictId
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.policy import Policy, SpecialHours
from events.domain.values import validate_device_id, validate_text

__all__ = [
    "DeviceNotRegisteredForDistrictError",
    "DeviceRegistry",
    "InstitutionalDevice",
    "InvalidRecertificationPeriodError",
    "Recertification",
    "RecertificationClosedError",
    "RegistryDeviceAlreadyRegisteredError",
    "RegistryDeviceNotFoundError",
    "WorkingCalendar",
]

CONTROLS_NAMESPACE: Final = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/controles")
_PERIOD: Final = re.compile(r"^(\d{4})-T([1-4])$")
_MAX_DESCRIPTION: Final = 200
_MAX_REASON: Final = 500


# --- errors -------------------------------------------------------------------------------


class RegistryDeviceAlreadyRegisteredError(DomainError):
    """8.B: ``device_id`` is registered already (for ``district``)."""

    def __init__(self, device_id: str, district: str) -> None:
        super().__init__(f"device {device_id} already registered for {district}")
        self.device_id = device_id
        self.district = district


class RegistryDeviceNotFoundError(DomainError):
    """8.B: no registered device ``device_id``."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id} not registered")
        self.device_id = device_id


class DeviceNotRegisteredForDistrictError(DomainError):
    """8.B, policy ``[equipos] exigir_registrado``: a read from ``device_id`` (None: no device
    named) is refused, the device not being registered for ``district``."""

    def __init__(self, device_id: str | None, district: str) -> None:
        super().__init__(f"device {device_id!r} not registered for {district}")
        self.device_id = device_id or ""
        self.district = district


class InvalidRecertificationPeriodError(ValidationError):
    """A campaign's period is ``AAAA-TN`` (a quarter): ``value`` is not."""

    def __init__(self, value: str) -> None:
        super().__init__("periodo", f"invalid period {value!r}")
        self.value = value


class RecertificationClosedError(DomainError):
    """Campaign ``period`` is not open for attestations (never opened)."""

    def __init__(self, period: str) -> None:
        super().__init__(f"recertification {period} is not open")
        self.period = period


# --- devices (8.B) ------------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionalDevice:
    device_id: str
    district: str
    description: str
    registered_at: datetime


@stable_topics("DeviceRegistry")
class DeviceRegistry(Aggregate):
    """8.B: the institutional devices, each registered for one district by UTCSyD."""

    class Opened(Aggregate.Created):
        by: UUID

    class DeviceRegistered(Aggregate.Event):
        device_id: str
        district: str
        description: str
        by: UUID

    class DeviceRetired(Aggregate.Event):
        device_id: str
        district: str
        by: UUID

    @staticmethod
    def create_id() -> UUID:
        return uuid5(CONTROLS_NAMESPACE, "equipos")

    @event(Opened)
    def __init__(self, id: UUID, by: UUID, timestamp: datetime) -> None:
        self.devices: dict[str, InstitutionalDevice] = {}

    @classmethod
    def open(cls, *, by: Person, at: datetime) -> DeviceRegistry:
        require_coadministrator(by, "register devices")
        return cls(id=cls.create_id(), by=by.id, timestamp=as_utc(at))

    def is_registered(self, device_id: str | None, district: str) -> bool:
        """8.B: ``device_id`` is an institutional device of ``district``."""
        found = self.devices.get(device_id or "")
        return found is not None and found.district == district

    def devices_of(self, district: str) -> frozenset[str]:
        return frozenset(d.device_id for d in self.devices.values() if d.district == district)

    def register(
        self, device_id: str, *, district: str, description: str, by: Person, at: datetime
    ) -> InstitutionalDevice:
        at = command_time(self, at)
        require_coadministrator(by, "register devices")
        device = validate_device_id(device_id)
        code = str(DistrictId.parse(district))
        text = validate_text("descripcion", description, max_length=_MAX_DESCRIPTION)
        if device in self.devices:
            raise RegistryDeviceAlreadyRegisteredError(device, self.devices[device].district)
        self._registered(device_id=device, district=code, description=text, by=by.id, timestamp=at)
        return self.devices[device]

    @event(DeviceRegistered)
    def _registered(
        self, device_id: str, district: str, description: str, by: UUID, timestamp: datetime
    ) -> None:
        self.devices[device_id] = InstitutionalDevice(device_id, district, description, timestamp)

    def retire(self, device_id: str, *, by: Person, at: datetime) -> InstitutionalDevice:
        at = command_time(self, at)
        require_coadministrator(by, "retire devices")
        device = validate_device_id(device_id)
        found = self.devices.get(device)
        if found is None:
            raise RegistryDeviceNotFoundError(device)
        self._retired(device_id=device, district=found.district, by=by.id, timestamp=at)
        return found

    @event(DeviceRetired)
    def _retired(self, device_id: str, district: str, by: UUID, timestamp: datetime) -> None:
        del self.devices[device_id]


# --- working calendar (8.A) ---------------------------------------------------------------


def _hhmm(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = time.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ValidationError(name, "expected HH:MM") from None
    return parsed.strftime("%H:%M")


def _day(name: str, value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, "expected AAAA-MM-DD") from None


@stable_topics("WorkingCalendar")
class WorkingCalendar(Aggregate):
    """8.A: authorized other hours, the IECM's non-working days and the policies in force."""

    class Opened(Aggregate.Created):
        by: UUID | None

    class SpecialHoursAuthorized(Aggregate.Event):
        starts_on: str
        ends_on: str
        start: str | None
        end: str | None
        reason: str
        channel: dict[str, str | None]
        by: UUID

    class NonWorkingDayDeclared(Aggregate.Event):
        day: str
        channel: dict[str, str | None]
        by: UUID

    class PolicyAdopted(Aggregate.Event):
        """The service started under these settings (``Policy.settings``), different from the
        last ones recorded. ``by`` is None: the service records it, not a person."""

        settings: dict[str, Any]
        by: UUID | None

    @staticmethod
    def create_id() -> UUID:
        return uuid5(CONTROLS_NAMESPACE, "calendario")

    @event(Opened)
    def __init__(self, id: UUID, by: UUID | None, timestamp: datetime) -> None:
        self.special_hours: list[SpecialHours] = []
        self.non_working_days: set[date] = set()
        self.settings: dict[str, Any] | None = None

    @classmethod
    def open(cls, *, by: UUID | None, at: datetime) -> WorkingCalendar:
        return cls(id=cls.create_id(), by=by, timestamp=as_utc(at))

    def apply_to(self, policy: Policy) -> Policy:
        """``policy`` with the days and hours recorded here (the rules in force now)."""
        return policy.with_calendar(self.non_working_days, self.special_hours)

    def authorize_hours(
        self,
        *,
        starts_on: date | str,
        ends_on: date | str,
        start: str | None,
        end: str | None,
        reason: str,
        channel: OfficialChannel,
        by: Person,
        at: datetime,
    ) -> SpecialHours:
        """8.A: other hours, on a *vía oficial* (a coadministrator records the disposition)."""
        at = command_time(self, at)
        require_coadministrator(by, "authorize other hours")
        first, last = _day("desde", starts_on), _day("hasta", ends_on)
        if last < first:
            raise ValidationError("hasta", "before desde")
        if (start is None) != (end is None):
            raise ValidationError("fin" if end is None else "inicio", "give both or neither")
        begin, finish = _hhmm("inicio", start), _hhmm("fin", end)
        if begin is not None and begin == finish:
            raise ValidationError("fin", "equal to inicio")
        self._hours_authorized(
            starts_on=first.isoformat(),
            ends_on=last.isoformat(),
            start=begin,
            end=finish,
            reason=validate_text("motivo", reason, max_length=_MAX_REASON),
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )
        return self.special_hours[-1]

    @event(SpecialHoursAuthorized)
    def _hours_authorized(
        self,
        starts_on: str,
        ends_on: str,
        start: str | None,
        end: str | None,
        reason: str,
        channel: dict[str, str | None],
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.special_hours.append(
            SpecialHours(
                date.fromisoformat(starts_on),
                date.fromisoformat(ends_on),
                time.fromisoformat(start) if start else None,
                time.fromisoformat(end) if end else None,
            )
        )

    def declare_non_working_day(
        self, day: date | str, *, channel: OfficialChannel, by: Person, at: datetime
    ) -> bool:
        """The IECM's own non-working day; False (nothing recorded) if it is one already."""
        at = command_time(self, at)
        require_coadministrator(by, "declare non-working days")
        parsed = _day("fecha", day)
        if parsed in self.non_working_days:
            return False
        self._day_declared(
            day=parsed.isoformat(), channel=channel.to_event(), by=by.id, timestamp=at
        )
        return True

    @event(NonWorkingDayDeclared)
    def _day_declared(
        self, day: str, channel: dict[str, str | None], by: UUID, timestamp: datetime
    ) -> None:
        self.non_working_days.add(date.fromisoformat(day))

    def adopt(self, policy: Policy, *, at: datetime) -> bool:
        """Records ``policy``'s settings if they differ from the last recorded (True)."""
        at = command_time(self, at)
        settings = policy.settings()
        if settings == self.settings:
            return False
        self._adopted(settings=settings, by=None, timestamp=at)
        return True

    @event(PolicyAdopted)
    def _adopted(self, settings: dict[str, Any], by: UUID | None, timestamp: datetime) -> None:
        self.settings = settings


# --- recertification ----------------------------------------------------------------------


def parse_period(value: str) -> str:
    """``2026-T4`` (also ``2026-t4``): a quarter."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _PERIOD.fullmatch(text):
        raise InvalidRecertificationPeriodError(str(value))
    return text


@dataclass(frozen=True)
class Attestation:
    """A district's (or UTCSyD's, ``district`` "UTCSyD") answer in a campaign."""

    district: str
    outcome: str  # "confirmada" | "revocada"
    administrator_id: UUID | None
    accounts: tuple[str, ...]
    at: datetime
    by: UUID


UTCSYD: Final = "UTCSyD"


@stable_topics("Recertification")
class Recertification(Aggregate):
    """A recertification campaign for one quarter."""

    class Opened(Aggregate.Created):
        period: str
        due: datetime
        by: UUID

    class DistrictAttested(Aggregate.Event):
        """The titular confirms ``administrator_id`` (their enlace) and ``accounts``."""

        district: str
        administrator_id: UUID | None
        accounts: list[str]
        by: UUID

    class DistrictRevoked(Aggregate.Event):
        """The titular does not confirm their enlace (``administrator_id``): ``reason``."""

        district: str
        administrator_id: UUID | None
        reason: str
        by: UUID

    class RosterAttested(Aggregate.Event):
        """UTCSyD confirms its own roster of coadministrators."""

        coadministrators: list[str]
        by: UUID

    @staticmethod
    def create_id(period: str) -> UUID:
        return uuid5(CONTROLS_NAMESPACE, f"recertificacion:{parse_period(period)}")

    @event(Opened)
    def __init__(self, id: UUID, period: str, due: datetime, by: UUID, timestamp: datetime) -> None:
        self.period = period
        self.due = due
        self.opened_at = timestamp
        self.attestations: dict[str, Attestation] = {}

    @classmethod
    def open(cls, period: str, *, due: datetime, by: Person, at: datetime) -> Recertification:
        require_coadministrator(by, "open recertifications")
        at, due = as_utc(at), as_utc(due, "due")
        if due <= at:
            raise ValidationError("vence", "not after now")
        code = parse_period(period)
        return cls(id=cls.create_id(code), period=code, due=due, by=by.id, timestamp=at)

    def status(self, district: str, at: datetime) -> str:
        """``confirmada``, ``revocada``, ``pendiente`` or (past the due date) ``vencida``."""
        found = self.attestations.get(district)
        if found is not None:
            return found.outcome
        return "vencida" if as_utc(at) > self.due else "pendiente"

    def attest(
        self,
        district: str,
        *,
        titular_id: UUID | None,
        administrator_id: UUID | None,
        accounts: list[str],
        by: Person,
        at: datetime,
    ) -> None:
        """The titular of ``district`` (``titular_id``: the one the district appointed)
        confirms who their enlace is and their accounts."""
        at = command_time(self, at)
        code = self._titular_district(district, titular_id, by)
        self._attested(
            district=code,
            administrator_id=administrator_id,
            accounts=sorted(accounts),
            by=by.id,
            timestamp=at,
        )

    @event(DistrictAttested)
    def _attested(
        self,
        district: str,
        administrator_id: UUID | None,
        accounts: list[str],
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.attestations[district] = Attestation(
            district, "confirmada", administrator_id, tuple(accounts), timestamp, by
        )

    def revoke(
        self,
        district: str,
        *,
        titular_id: UUID | None,
        administrator_id: UUID | None,
        reason: str,
        by: Person,
        at: datetime,
    ) -> None:
        """The titular of ``district`` does not confirm their enlace (``administrator_id``)."""
        at = command_time(self, at)
        code = self._titular_district(district, titular_id, by)
        self._revoked(
            district=code,
            administrator_id=administrator_id,
            reason=validate_text("motivo", reason, max_length=_MAX_REASON),
            by=by.id,
            timestamp=at,
        )

    @event(DistrictRevoked)
    def _revoked(
        self,
        district: str,
        administrator_id: UUID | None,
        reason: str,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.attestations[district] = Attestation(
            district, "revocada", administrator_id, (), timestamp, by
        )

    def attest_roster(self, coadministrators: list[str], *, by: Person, at: datetime) -> None:
        at = command_time(self, at)
        require_coadministrator(by, "attest the UTCSyD roster")
        self._roster_attested(coadministrators=sorted(coadministrators), by=by.id, timestamp=at)

    @event(RosterAttested)
    def _roster_attested(self, coadministrators: list[str], by: UUID, timestamp: datetime) -> None:
        self.attestations[UTCSYD] = Attestation(
            UTCSYD, "confirmada", None, tuple(coadministrators), timestamp, by
        )

    def _titular_district(self, district: str, titular_id: UUID | None, by: Person) -> str:
        code = str(DistrictId.parse(district))
        # The titular answers for their own district (6.I, 6.VII); nobody else attests for it.
        if not by.is_titular_of(code) or by.id != titular_id:
            raise NotDistrictAuthorityError(by.id, "attest the recertification", code)
        return code
