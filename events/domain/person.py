"""People: their roles, their institutional devices and their protected personal data.

A person's id is derived from their OpenBao/Vault user name (:func:`events.domain.ids.person_id`);
the user name, their login identifier, is recorded in clear at registration so the ledger names
who did what. Personal details (name, e-mail, phone) never appear in clear in an event (8.D,
11.7; 9.IV, 9.XX): the custody layer seals them and the events carry only that opaque ciphertext
and a reference to its key. Erasing a person records the fact; the custody layer destroys the key,
so the ciphertext left in old events becomes unreadable while the ledger still verifies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.errors import (
    DeviceAlreadyRegisteredError,
    DeviceNotRegisteredError,
    NotCoadministratorError,
    PersonalDataErasedError,
    PersonDepartedError,
    PersonStillActiveError,
    RoleAlreadyGrantedError,
    RoleConflictError,
    RoleNotGrantedError,
    SelfRevocationError,
    ValidationError,
)
from events.domain.ids import DistrictId, normalize_username, person_id
from events.domain.official_channel import OfficialChannel
from events.domain.values import (
    DEPARTURE_REASONS,
    ROLES,
    Role,
    choice,
    validate_device_id,
    validate_text,
)

__all__ = ["CREDENTIAL_READERS", "NEVER_READERS", "Person", "require_coadministrator"]

# 6.IX: only administrators and coadministrators hold credentials; the titular and the
# Secretaría Ejecutiva never do, so a person cannot be both kinds at once.
CREDENTIAL_READERS: Final[frozenset[str]] = frozenset({"coadministrador", "administrador"})
NEVER_READERS: Final[frozenset[str]] = frozenset({"titular", "secretaria"})

_MAX_SEALED = 65_536


def require_coadministrator(person: Person, action: str) -> None:
    """Refuses with :class:`NotCoadministratorError` unless ``person`` is one (UTCSyD)."""
    if not person.is_coadministrator:
        raise NotCoadministratorError(person.id, action)


def _sealed(field: str, value: str) -> str:
    # The domain cannot check that this is ciphertext; it only keeps it opaque and bounded.
    return validate_text(field, value, max_length=_MAX_SEALED)


@stable_topics("Person")
class Person(Aggregate):
    """A person who uses Custodia, with roles (5.XIII, 5.XIV, 5.XVIII, 5.XIX) and devices (8.B).

    Create with :meth:`register` (by a coadministrator) or :meth:`bootstrap` (the first
    coadministrator, at ``custodia init``).
    """

    __deepcopy__ = aggregate_deepcopy  # the state is plain data: copied cheaply

    class Registered(Aggregate.Created):
        # The OpenBao/Vault user name: the person's login identifier, kept in clear so the ledger
        # names who did what; name, e-mail and phone are in the sealed ``personal_data`` (9.XX).
        username: str
        personal_data: str
        personal_data_key: str
        by: UUID | None

    class RoleGranted(Aggregate.Event):
        role: str
        district: str | None
        by: UUID | None

    class RoleRevoked(Aggregate.Event):
        role: str
        by: UUID

    class DeviceRegistered(Aggregate.Event):
        device_id: str
        by: UUID

    class DeviceRetired(Aggregate.Event):
        device_id: str
        by: UUID

    class PersonalDataReplaced(Aggregate.Event):
        personal_data: str
        personal_data_key: str
        by: UUID

    class PersonalDataErased(Aggregate.Event):
        by: UUID

    class Departed(Aggregate.Event):
        """6.X: the person left for good (*baja*, promotion, change of assignment): every role
        they held (``roles``) ended at once, and their login was disabled."""

        reason: str
        roles: dict[str, str | None]
        channel: dict[str, str | None]
        by: UUID

    class SecondFactorEnrolled(Aggregate.Event):
        """Issue 18: the person enrolled their login second factor (OpenBao's TOTP) and proved
        it with a first code; no secret, no code."""

    class SecondFactorReset(Aggregate.Event):
        """Issue 18: a coadministrator reset the person's lost second factor (the secret was
        destroyed in OpenBao; a new first login was made) for ``reason``, on a vía oficial."""

        reason: str
        channel: dict[str, str | None]
        by: UUID

    class SecondFactorRequired(Aggregate.Event):
        """Issue 18: a coadministrator put a person who reads no credential (a titular, the
        Secretaría) under the login second factor, at their request."""

        by: UUID

    @staticmethod
    def create_id(username: str) -> UUID:
        """The id of the person with this OpenBao/Vault user name."""
        return person_id(username)

    @event(Registered)
    def __init__(
        self,
        id: UUID,  # the library passes the id under this name
        username: str,
        personal_data: str,
        personal_data_key: str,
        by: UUID | None,
        timestamp: datetime,
    ) -> None:
        self.username = username
        self.personal_data: str | None = personal_data
        self.personal_data_key: str | None = personal_data_key
        self.erased = False
        self.roles: dict[str, str | None] = {}
        self.devices: dict[str, datetime] = {}
        self.departed_at: datetime | None = None

    # --- creation --------------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        username: str,
        *,
        personal_data: str,
        personal_data_key: str,
        by: Person,
        at: datetime,
    ) -> Person:
        """A coadministrator registers a person; ``personal_data`` is sealed by the caller."""
        require_coadministrator(by, "register people")
        return cls(
            id=person_id(username),
            username=normalize_username(username),
            personal_data=_sealed("personal_data", personal_data),
            personal_data_key=_sealed("personal_data_key", personal_data_key),
            by=by.id,
            timestamp=as_utc(at),
        )

    @classmethod
    def bootstrap(
        cls, username: str, *, personal_data: str, personal_data_key: str, at: datetime
    ) -> Person:
        """The first coadministrator, registered by nobody (only ``custodia init`` calls this,
        and only on an empty ledger)."""
        at = as_utc(at)
        person = cls(
            id=person_id(username),
            username=normalize_username(username),
            personal_data=_sealed("personal_data", personal_data),
            personal_data_key=_sealed("personal_data_key", personal_data_key),
            by=None,
            timestamp=at,
        )
        person._role_granted(role="coadministrador", district=None, by=None, timestamp=at)
        return person

    # --- queries ---------------------------------------------------------------------------

    @property
    def is_coadministrator(self) -> bool:
        return "coadministrador" in self.roles

    def has_role(self, role: Role, district: str | None = None) -> bool:
        """Holds ``role`` (for ``district``, when given)."""
        if role not in self.roles:
            return False
        return district is None or self.roles[role] == district

    def is_titular_of(self, district: str) -> bool:
        return self.has_role("titular", district)

    def designation_problem(self, district: str) -> str | None:
        """Why this person cannot hold ``district``'s credentials, or None if they can (6.IX)."""
        if self.erased:
            return "personal data erased"
        if "administrador" not in self.roles:
            return "not an administrator"
        assigned = self.roles["administrador"]
        if assigned is not None and assigned != district:
            return f"administrator of {assigned}"
        return None

    @property
    def has_departed(self) -> bool:
        # getattr: snapshots taken before departures existed lack the attribute.
        return getattr(self, "departed_at", None) is not None

    def has_device(self, device_id: str) -> bool:
        return device_id in self.devices

    # --- commands --------------------------------------------------------------------------

    def grant_role(
        self, role: str, *, district: str | None = None, by: Person, at: datetime
    ) -> None:
        """A coadministrator grants ``role``; a titular's role names their district, an
        administrator's may; coadministrators and the secretaria have none."""
        at = command_time(self, at)
        require_coadministrator(by, "grant roles")
        granted = choice("role", role, ROLES)
        self._require_not_erased()
        if self.has_departed:
            raise PersonDepartedError(self.id)
        if granted in self.roles:
            raise RoleAlreadyGrantedError(self.id, granted)
        code: str | None = None
        if district is not None:
            if granted in ("coadministrador", "secretaria"):
                raise ValidationError("district", f"role {granted} is not tied to a district")
            code = str(DistrictId.parse(district))
        elif granted == "titular":
            raise ValidationError("district", "a titular's role names their district")
        for held in self.roles:
            if (granted in CREDENTIAL_READERS and held in NEVER_READERS) or (
                granted in NEVER_READERS and held in CREDENTIAL_READERS
            ):
                raise RoleConflictError(self.id, granted, held)
        self._role_granted(role=granted, district=code, by=by.id, timestamp=at)

    @event(RoleGranted)
    def _role_granted(
        self, role: str, district: str | None, by: UUID | None, timestamp: datetime
    ) -> None:
        self.roles[role] = district

    def revoke_role(self, role: str, *, by: Person, at: datetime) -> None:
        """A coadministrator revokes ``role``; not their own coadministrator role."""
        at = command_time(self, at)
        require_coadministrator(by, "revoke roles")
        revoked = choice("role", role, ROLES)
        if revoked not in self.roles:
            raise RoleNotGrantedError(self.id, revoked)
        if revoked == "coadministrador" and by.id == self.id:
            raise SelfRevocationError(self.id)
        self._role_revoked(role=revoked, by=by.id, timestamp=at)

    @event(RoleRevoked)
    def _role_revoked(self, role: str, by: UUID, timestamp: datetime) -> None:
        del self.roles[role]

    def depart(
        self, reason: str, *, by: Person, channel: OfficialChannel, at: datetime
    ) -> dict[str, str | None]:
        """6.X: a coadministrator records that this person left for good (``reason``: baja,
        promocion, cambio_adscripcion, otro) on a vía oficial. Every role ends at once; returns
        the roles they held. A coadministrator cannot record their own departure."""
        at = command_time(self, at)
        require_coadministrator(by, "record departures")
        why = choice("reason", reason, DEPARTURE_REASONS)
        if self.has_departed:
            raise PersonDepartedError(self.id)
        if by.id == self.id:
            raise SelfRevocationError(self.id)
        held = dict(self.roles)
        self._departed(reason=why, roles=held, channel=channel.to_event(), by=by.id, timestamp=at)
        return held

    @event(Departed)
    def _departed(
        self,
        reason: str,
        roles: dict[str, str | None],
        channel: dict[str, str | None],
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.roles = {}
        self.departed_at = timestamp

    @property
    def second_factor(self) -> str | None:
        """``inscrito`` (enrolled), ``restablecido`` (reset) or ``exigido`` (an opt-in), both
        awaiting an enrolment, or None."""
        # getattr: snapshots taken before the second factor existed lack the attribute.
        return getattr(self, "_second_factor", None)

    def enrol_second_factor(self, *, at: datetime) -> None:
        """The person proved their newly enrolled factor (a login OpenBao validated)."""
        at = command_time(self, at)
        if self.has_departed:
            raise PersonDepartedError(self.id)
        self._second_factor_enrolled(timestamp=at)

    @event(SecondFactorEnrolled)
    def _second_factor_enrolled(self, timestamp: datetime) -> None:
        self._second_factor: str | None = "inscrito"

    def require_second_factor(self, *, by: Person, at: datetime) -> None:
        """A coadministrator puts this person under the second factor (an opt-in)."""
        at = command_time(self, at)
        require_coadministrator(by, "require second factors")
        if self.has_departed:
            raise PersonDepartedError(self.id)
        self._second_factor_required(by=by.id, timestamp=at)

    @event(SecondFactorRequired)
    def _second_factor_required(self, by: UUID, timestamp: datetime) -> None:
        self._second_factor = "exigido"

    def reset_second_factor(
        self, reason: str, *, by: Person, channel: OfficialChannel, at: datetime
    ) -> None:
        """A coadministrator resets this person's lost factor; never their own."""
        at = command_time(self, at)
        require_coadministrator(by, "reset second factors")
        why = validate_text("reason", reason, max_length=500)
        if self.has_departed:
            raise PersonDepartedError(self.id)
        if by.id == self.id:
            raise SelfRevocationError(self.id)
        self._second_factor_reset(reason=why, channel=channel.to_event(), by=by.id, timestamp=at)

    @event(SecondFactorReset)
    def _second_factor_reset(
        self, reason: str, channel: dict[str, str | None], by: UUID, timestamp: datetime
    ) -> None:
        self._second_factor = "restablecido"
        self._second_factor_reset_at = timestamp

    @property
    def second_factor_reset_at(self) -> datetime | None:
        """When the person's factor was last reset (a first login issued before it may not
        enrol: it belonged to the lost factor's time)."""
        found: datetime | None = getattr(self, "_second_factor_reset_at", None)
        return found

    def register_device(self, device_id: str, *, by: Person, at: datetime) -> None:
        """8.B: a coadministrator registers an institutional device used by this person."""
        at = command_time(self, at)
        require_coadministrator(by, "register devices")
        device = validate_device_id(device_id)
        self._require_not_erased()
        if device in self.devices:
            raise DeviceAlreadyRegisteredError(self.id, device)
        self._device_registered(device_id=device, by=by.id, timestamp=at)

    @event(DeviceRegistered)
    def _device_registered(self, device_id: str, by: UUID, timestamp: datetime) -> None:
        self.devices[device_id] = timestamp

    def retire_device(self, device_id: str, *, by: Person, at: datetime) -> None:
        at = command_time(self, at)
        require_coadministrator(by, "retire devices")
        device = validate_device_id(device_id)
        if device not in self.devices:
            raise DeviceNotRegisteredError(self.id, device)
        self._device_retired(device_id=device, by=by.id, timestamp=at)

    @event(DeviceRetired)
    def _device_retired(self, device_id: str, by: UUID, timestamp: datetime) -> None:
        del self.devices[device_id]

    def replace_personal_data(
        self, *, personal_data: str, personal_data_key: str, by: Person, at: datetime
    ) -> None:
        """New sealed personal data (a correction, or a re-encryption under a new key)."""
        at = command_time(self, at)
        require_coadministrator(by, "change personal data")
        self._require_not_erased()
        self._personal_data_replaced(
            personal_data=_sealed("personal_data", personal_data),
            personal_data_key=_sealed("personal_data_key", personal_data_key),
            by=by.id,
            timestamp=at,
        )

    @event(PersonalDataReplaced)
    def _personal_data_replaced(
        self, personal_data: str, personal_data_key: str, by: UUID, timestamp: datetime
    ) -> None:
        self.personal_data = personal_data
        self.personal_data_key = personal_data_key

    def erase_personal_data(self, *, by: Person, at: datetime) -> None:
        """9.XX: erasure on a data-protection request; only once the person holds no role."""
        at = command_time(self, at)
        require_coadministrator(by, "erase personal data")
        self._require_not_erased()
        if self.roles:
            raise PersonStillActiveError(self.id, sorted(self.roles))
        self._personal_data_erased(by=by.id, timestamp=at)

    @event(PersonalDataErased)
    def _personal_data_erased(self, by: UUID, timestamp: datetime) -> None:
        self.personal_data = None
        self.personal_data_key = None
        self.erased = True
        self.devices.clear()

    def _require_not_erased(self) -> None:
        if self.erased:
            raise PersonalDataErasedError(self.id)

    # --- issue 18: reads of contact data (6.VII, 6.VIII; R9) ------------------------------

    class ContactRead(Aggregate.Event):
        """A coadministrator (``by``) read this person's name, e-mail and phone, for
        ``purpose``. The data themselves are never in the event (R7)."""

        purpose: str
        by: UUID

    def record_contact_read(self, *, reader: Person, purpose: str, at: datetime) -> None:
        """6.VII, 6.VIII: the UTCSyD keeps direct contact with the enlaces; each read of a
        person's contact data is a fact of the ledger. Only a coadministrator reads them, and
        only while they exist (an erased person's stay unreadable: 9.XX)."""
        at = command_time(self, at)
        require_coadministrator(reader, "read contact data")
        self._require_not_erased()
        why = validate_text("purpose", purpose, max_length=500)
        self._contact_read(purpose=why, by=reader.id, timestamp=at)

    @event(ContactRead)
    def _contact_read(self, purpose: str, by: UUID, timestamp: datetime) -> None:
        """Nothing changes in the person: the read is the fact."""
