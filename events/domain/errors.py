"""Errors raised by the domain model when it refuses a command.

Every error carries the facts of the refusal as attributes (identifiers, states, the offending
field) and an English message for logs; the Spanish text a user reads is produced at the command
line from the class and its attributes. No error ever carries secret material, and errors about
e-mail addresses carry the domain, not the address.

::

    DomainError
    ├── ValidationError                  malformed input
    │   ├── InvalidIdentifierError       district, account, platform, user name, device, ...
    │   │   └── InvalidUsernameError     not an OpenBao/Vault user name (events.domain.ids)
    │   ├── InvalidChoiceError           a value outside its vocabulary (role, reason, field, ...)
    │   ├── InvalidTextError             empty, too long, or with control characters
    │   ├── InvalidEmailError            not an e-mail address
    │   ├── InvalidPhoneError            not a phone number
    │   ├── InvalidHandleError           not a user name for the platform
    │   ├── InvalidOfficialChannelError  not a vía oficial (5.XXIII)
    │   ├── NaiveDatetimeError           a datetime without time zone
    │   ├── DetectionTimeError           an incident detected in the future or after its report
    │   ├── InvalidPeriodError           an absence period that ends before it starts
    │   └── DepartureIsNotAbsenceError   baja, promoción, cambio de adscripción (6.X)
    ├── TimeOrderError                   a command dated before the aggregate's last event
    ├── PermissionDeniedError            the actor may not do this
    │   ├── NotCoadministratorError      only UTCSyD (6.VI, 10.I)
    │   ├── NotDistrictAuthorityError    only the district's titular (or UTCSyD) (6.VII, 6.X)
    │   ├── NotEntitledToReadError       6.IX: not the holder nor a coadministrator
    │   ├── NotAllowedToReportError      not the district's titular, administrator or UTCSyD
    │   ├── NotExecutiveSecretariatError only the Secretaría Ejecutiva (8.C: its acknowledgement)
    │   └── SelfRevocationError          a coadministrator revoking their own role
    ├── RoleConflictError                readers (coadministrador, administrador) vs non-readers
    ├── NotDesignatableError             a person who cannot hold a district's credentials
    ├── DistrictMismatchError            an account, person or request of another district
    ├── DistrictStateError               a precondition on the district's state failed
    │   ├── NoAdministratorError
    │   ├── AlreadyAdministratorError
    │   ├── AbsenceAlreadyReportedError
    │   ├── NoAbsenceError
    │   ├── TitularAlreadyAppointedError a district that has a titular (``custodia titular``)
    │   └── NoActingTitularError
    ├── AccountStateError                a precondition on an account failed
    │   ├── AccountNotFoundError
    │   ├── AccountAlreadyRegisteredError
    │   ├── AccountClosedError
    │   ├── AccountPolicyViolationError  10.V, 10.VI, 10.VIII
    │   ├── RotationInProgressError
    │   ├── NoRotationInProgressError
    │   ├── RotationVersionError
    │   ├── NoCurrentCredentialError
    │   ├── CredentialVersionError       reading a version that is neither current nor staged
    │   ├── TotpNotRegisteredError
    │   └── TotpAlreadyRegisteredError
    ├── PersonStateError                 a precondition on a person failed
    │   ├── PersonalDataErasedError
    │   ├── PersonStillActiveError
    │   ├── RoleAlreadyGrantedError
    │   ├── RoleNotGrantedError
    │   ├── PersonDepartedError         a person who left for good (6.X)
    │   ├── DeviceAlreadyRegisteredError
    │   └── DeviceNotRegisteredError
    ├── InvalidTransitionError           a change request or incident in the wrong state
    ├── ChangeRequestMismatchError       a request used for another account or field (6.XI)
    ├── ChangeValueRequiredError         applying an e-mail, phone or handle change without it
    ├── ChangeNotRecordedError           applying a request whose change the district lacks
    └── ContainmentWithoutRotationError  containment with no rotation after the report (8.C)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

from events.errors import DomainError

__all__ = [
    "AbsenceAlreadyReportedError",
    "AccountAlreadyRegisteredError",
    "AccountClosedError",
    "AccountNotFoundError",
    "AccountPolicyViolationError",
    "AccountStateError",
    "AlreadyAdministratorError",
    "ChangeNotRecordedError",
    "ChangeRequestMismatchError",
    "ChangeValueRequiredError",
    "ContainmentWithoutRotationError",
    "CredentialVersionError",
    "DepartureIsNotAbsenceError",
    "DetectionTimeError",
    "DeviceAlreadyRegisteredError",
    "DeviceNotRegisteredError",
    "DistrictMismatchError",
    "DistrictStateError",
    "DomainError",
    "InvalidChoiceError",
    "InvalidEmailError",
    "InvalidHandleError",
    "InvalidIdentifierError",
    "InvalidOfficialChannelError",
    "InvalidPeriodError",
    "InvalidPhoneError",
    "InvalidTextError",
    "InvalidTransitionError",
    "InvalidUsernameError",
    "NaiveDatetimeError",
    "NoAbsenceError",
    "NoActingTitularError",
    "NoAdministratorError",
    "NoCurrentCredentialError",
    "NoRotationInProgressError",
    "NotAllowedToReportError",
    "NotCoadministratorError",
    "NotDesignatableError",
    "NotDistrictAuthorityError",
    "NotEntitledToReadError",
    "NotExecutiveSecretariatError",
    "PermissionDeniedError",
    "PersonDepartedError",
    "PersonStateError",
    "PersonStillActiveError",
    "PersonalDataErasedError",
    "RoleAlreadyGrantedError",
    "RoleConflictError",
    "RoleNotGrantedError",
    "RotationInProgressError",
    "RotationVersionError",
    "SelfRevocationError",
    "TimeOrderError",
    "TitularAlreadyAppointedError",
    "TotpAlreadyRegisteredError",
    "TotpNotRegisteredError",
    "ValidationError",
]


# --- malformed input -----------------------------------------------------------------------


class ValidationError(DomainError):
    """An argument is malformed; ``field`` names it, and ``problem`` (for this class itself:
    its subclasses say more in their own attributes) what is wrong, in the code's words:
    fixed texts that name no value, so they may be told to the caller."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        if type(self) is ValidationError:
            self.problem = message


class InvalidIdentifierError(ValidationError):
    """``value`` is not a valid identifier of ``kind`` (district, account, platform, ...)."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(kind, f"invalid {kind} identifier: {value!r}")
        self.kind = kind
        self.value = value


class InvalidUsernameError(InvalidIdentifierError):
    """Not a user name OpenBao's userpass accepts as a login (:class:`events.domain.Username`).

    The value is not kept: a mistyped user name can be someone's real name."""

    def __init__(self) -> None:
        super().__init__("username", "…")


class InvalidChoiceError(ValidationError):
    """``value`` of ``field`` is not one of ``allowed``."""

    def __init__(self, field: str, value: str, allowed: Sequence[str]) -> None:
        super().__init__(field, f"{field}: {value!r} is not one of {', '.join(allowed)}")
        self.value = value
        self.allowed = tuple(allowed)


class InvalidTextError(ValidationError):
    """Free text in ``field`` is empty, too long or has control characters (``problem``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, f"{field}: {problem}")
        self.problem = problem


class InvalidEmailError(ValidationError):
    """``field`` is not an e-mail address (``problem``). The address itself is not kept."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, f"{field}: not an e-mail address ({problem})")
        self.problem = problem


class InvalidPhoneError(ValidationError):
    """``field`` is not a phone number."""

    def __init__(self, field: str) -> None:
        super().__init__(field, f"{field}: not a phone number")


class InvalidHandleError(ValidationError):
    """``handle`` is not a valid user name on ``platform``."""

    def __init__(self, platform: str, handle: str) -> None:
        super().__init__("handle", f"invalid {platform} user name: {handle!r}")
        self.platform = platform
        self.handle = handle


class InvalidOfficialChannelError(ValidationError):
    """Not a *vía oficial* (5.XXIII): ``kind`` and what is wrong (``problem``).

    For an e-mail, ``domain`` is the sender's domain (the address is not kept).
    """

    def __init__(self, kind: str, problem: str, domain: str | None = None) -> None:
        super().__init__("official_channel", f"invalid official channel ({kind}): {problem}")
        self.kind = kind
        self.problem = problem
        self.domain = domain


class NaiveDatetimeError(ValidationError):
    """``field`` is a datetime without a time zone; the model only accepts aware ones."""

    def __init__(self, field: str) -> None:
        super().__init__(field, f"{field}: a timezone-aware datetime is required")


class InvalidPeriodError(ValidationError):
    """An absence period is impossible (``problem``)."""

    def __init__(self, starts_on: date, ends_on: date | None, problem: str) -> None:
        super().__init__("period", f"invalid period {starts_on}..{ends_on}: {problem}")
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.problem = problem


class DetectionTimeError(ValidationError):
    """An incident's detection time is impossible (``problem``: ``futuro``, in the future;
    ``despues_del_reporte``, after it was reported)."""

    def __init__(self, detected_at: datetime, reported_at: datetime, problem: str) -> None:
        super().__init__(
            "detectado",
            f"detected at {detected_at.isoformat()}, reported at {reported_at.isoformat()}: "
            f"{problem}",
        )
        self.detected_at = detected_at
        self.reported_at = reported_at
        self.problem = problem


class DepartureIsNotAbsenceError(ValidationError):
    """6.X: ``reason`` (baja, promoción, cambio de adscripción) is a departure for good, not a
    temporary absence: it is recorded as a departure of the person."""

    def __init__(self, reason: str) -> None:
        super().__init__("reason", f"{reason} is a departure, not an absence")
        self.reason = reason


# --- time ----------------------------------------------------------------------------------


class TimeOrderError(DomainError):
    """A command dated ``at`` arrived after an event of the same aggregate dated ``last``."""

    def __init__(self, aggregate_id: UUID, at: datetime, last: datetime) -> None:
        super().__init__(f"{aggregate_id}: command at {at.isoformat()} precedes {last.isoformat()}")
        self.aggregate_id = aggregate_id
        self.at = at
        self.last = last


# --- who may do what -----------------------------------------------------------------------


class PermissionDeniedError(DomainError):
    """``person_id`` may not perform ``action``."""

    def __init__(self, person_id: UUID, action: str, message: str | None = None) -> None:
        super().__init__(message or f"{person_id} may not {action}")
        self.person_id = person_id
        self.action = action


class NotCoadministratorError(PermissionDeniedError):
    """Only a coadministrator (UTCSyD) may perform ``action`` (6.VI, 10.I, 11.1)."""


class NotDistrictAuthorityError(PermissionDeniedError):
    """Only the titular of ``district`` (or UTCSyD on their *vía oficial*) may do ``action``."""

    def __init__(self, person_id: UUID, action: str, district: str) -> None:
        super().__init__(person_id, action, f"{person_id} may not {action} for {district}")
        self.district = district


class NotEntitledToReadError(PermissionDeniedError):
    """6.IX: ``person_id`` does not hold ``account``'s credentials now."""

    def __init__(self, person_id: UUID, account: str, staged: bool = False) -> None:
        what = "the staged credential of" if staged else "the credentials of"
        super().__init__(person_id, "read", f"{person_id} may not read {what} {account}")
        self.account = account
        self.staged = staged


class NotAllowedToReportError(PermissionDeniedError):
    """``person_id`` is not the titular, the administrator of ``district``, nor UTCSyD."""

    def __init__(self, person_id: UUID, action: str, district: str) -> None:
        super().__init__(person_id, action, f"{person_id} may not {action} for {district}")
        self.district = district


class NotExecutiveSecretariatError(PermissionDeniedError):
    """Only the Secretaría Ejecutiva (role ``secretaria``) may perform ``action`` (8.C)."""


class SelfRevocationError(PermissionDeniedError):
    """A coadministrator may not revoke their own role (another must do it)."""

    def __init__(self, person_id: UUID) -> None:
        super().__init__(person_id, "revoke their own coadministrator role")


class RoleConflictError(DomainError):
    """``role`` cannot be combined with ``held``: titular and secretaria never read (6.IX)."""

    def __init__(self, person_id: UUID, role: str, held: str) -> None:
        super().__init__(f"{person_id}: role {role} conflicts with {held}")
        self.person_id = person_id
        self.role = role
        self.held = held


class NotDesignatableError(DomainError):
    """``person_id`` cannot hold ``district``'s credentials (``problem``)."""

    def __init__(self, person_id: UUID, district: str, problem: str) -> None:
        super().__init__(f"{person_id} cannot be designated for {district}: {problem}")
        self.person_id = person_id
        self.district = district
        self.problem = problem


class DistrictMismatchError(DomainError):
    """Something of district ``actual`` was used where ``expected`` was required."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"expected district {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


# --- district state ------------------------------------------------------------------------


class DistrictStateError(DomainError):
    """A precondition on ``district``'s state does not hold."""

    def __init__(self, district: str, message: str) -> None:
        super().__init__(message)
        self.district = district


class NoAdministratorError(DistrictStateError):
    """``district`` has no designated administrator."""

    def __init__(self, district: str) -> None:
        super().__init__(district, f"{district} has no designated administrator")


class AlreadyAdministratorError(DistrictStateError):
    """``person_id`` is already ``district``'s designated administrator."""

    def __init__(self, district: str, person_id: UUID) -> None:
        super().__init__(district, f"{person_id} is already the administrator of {district}")
        self.person_id = person_id


class AbsenceAlreadyReportedError(DistrictStateError):
    """``district`` already has an absence reported (scheduled or in course)."""

    def __init__(self, district: str) -> None:
        super().__init__(district, f"{district} already has an absence reported")


class NoAbsenceError(DistrictStateError):
    """``district`` has no absence reported."""

    def __init__(self, district: str) -> None:
        super().__init__(district, f"{district} has no absence reported")


# --- accounts and credentials --------------------------------------------------------------


class AccountStateError(DomainError):
    """A precondition on ``account`` does not hold."""

    def __init__(self, account: str, message: str) -> None:
        super().__init__(message)
        self.account = account


class AccountNotFoundError(AccountStateError):
    """``account`` is not registered."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"account {account} is not registered")


class AccountAlreadyRegisteredError(AccountStateError):
    """``account`` is already registered and open."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"account {account} is already registered")


class AccountClosedError(AccountStateError):
    """``account`` is closed."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"account {account} is closed")


class AccountPolicyViolationError(AccountStateError):
    """``account`` would break 10.V, 10.VI or 10.VIII: ``violations`` lists the codes."""

    def __init__(self, account: str, violations: Sequence[str]) -> None:
        super().__init__(account, f"account {account} violates policy: {', '.join(violations)}")
        self.violations = tuple(violations)


class RotationInProgressError(AccountStateError):
    """``account`` already has ``staged_version`` staged."""

    def __init__(self, account: str, staged_version: int) -> None:
        super().__init__(account, f"{account} already has version {staged_version} staged")
        self.staged_version = staged_version


class NoRotationInProgressError(AccountStateError):
    """``account`` has nothing staged."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"{account} has no rotation in progress")


class RotationVersionError(AccountStateError):
    """``version`` is not acceptable for ``account``: ``expected`` says what would be."""

    def __init__(self, account: str, version: int, expected: str) -> None:
        super().__init__(account, f"{account}: version {version} is wrong, expected {expected}")
        self.version = version
        self.expected = expected


class NoCurrentCredentialError(AccountStateError):
    """``account`` has no confirmed credential yet."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"{account} has no current credential")


class CredentialVersionError(AccountStateError):
    """``version`` of ``account`` is neither current nor staged."""

    def __init__(self, account: str, version: int) -> None:
        super().__init__(account, f"{account}: version {version} is neither current nor staged")
        self.version = version


class TotpNotRegisteredError(AccountStateError):
    """``account`` has no 2FA seed registered."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"{account} has no TOTP seed registered")


class TotpAlreadyRegisteredError(AccountStateError):
    """``account`` already has a 2FA seed registered."""

    def __init__(self, account: str) -> None:
        super().__init__(account, f"{account} already has a TOTP seed registered")


class TitularAlreadyAppointedError(DistrictStateError):
    """``district`` already has a titular (``titular_id``): a change of titular is its own act."""

    def __init__(self, district: str, titular_id: UUID) -> None:
        super().__init__(district, f"{district} already has a titular ({titular_id})")
        self.titular_id = titular_id


class NoActingTitularError(DistrictStateError):
    """``district`` has no acting titular (*encargo de despacho*) to end."""

    def __init__(self, district: str) -> None:
        super().__init__(district, f"{district} has no acting titular")


# --- people --------------------------------------------------------------------------------


class PersonStateError(DomainError):
    """A precondition on person ``person_id`` does not hold."""

    def __init__(self, person_id: UUID, message: str) -> None:
        super().__init__(message)
        self.person_id = person_id


class PersonalDataErasedError(PersonStateError):
    """``person_id``'s personal data was erased; the person can no longer be changed."""

    def __init__(self, person_id: UUID) -> None:
        super().__init__(person_id, f"{person_id}: personal data erased")


class PersonStillActiveError(PersonStateError):
    """``person_id`` still holds ``roles``; revoke them before erasing personal data."""

    def __init__(self, person_id: UUID, roles: Sequence[str]) -> None:
        super().__init__(person_id, f"{person_id} still holds roles: {', '.join(roles)}")
        self.roles = tuple(roles)


class RoleAlreadyGrantedError(PersonStateError):
    """``person_id`` already holds ``role``."""

    def __init__(self, person_id: UUID, role: str) -> None:
        super().__init__(person_id, f"{person_id} already holds {role}")
        self.role = role


class RoleNotGrantedError(PersonStateError):
    """``person_id`` does not hold ``role``."""

    def __init__(self, person_id: UUID, role: str) -> None:
        super().__init__(person_id, f"{person_id} does not hold {role}")
        self.role = role


class PersonDepartedError(PersonStateError):
    """``person_id`` left for good (6.X): they hold nothing and can be given nothing."""

    def __init__(self, person_id: UUID) -> None:
        super().__init__(person_id, f"{person_id} has left")


class DeviceAlreadyRegisteredError(PersonStateError):
    """``device_id`` is already registered for ``person_id``."""

    def __init__(self, person_id: UUID, device_id: str) -> None:
        super().__init__(person_id, f"{person_id}: device {device_id} already registered")
        self.device_id = device_id


class DeviceNotRegisteredError(PersonStateError):
    """``device_id`` is not registered for ``person_id``."""

    def __init__(self, person_id: UUID, device_id: str) -> None:
        super().__init__(person_id, f"{person_id}: device {device_id} not registered")
        self.device_id = device_id


# --- change requests and incidents ---------------------------------------------------------


class InvalidTransitionError(DomainError):
    """``action`` is not possible on ``kind`` ``aggregate_id`` in ``state``."""

    def __init__(self, kind: str, aggregate_id: UUID, state: str, action: str) -> None:
        super().__init__(f"{kind} {aggregate_id} is {state}: cannot {action}")
        self.kind = kind
        self.aggregate_id = aggregate_id
        self.state = state
        self.action = action


class ChangeRequestMismatchError(DomainError):
    """Change request ``request_id`` does not cover this change (``problem``) (6.XI)."""

    def __init__(self, request_id: UUID, problem: str) -> None:
        super().__init__(f"change request {request_id}: {problem}")
        self.request_id = request_id
        self.problem = problem


class ChangeValueRequiredError(DomainError):
    """Applying ``request_id`` changes the account's ``field`` and no new value was given (the
    request's free-text detail is not a value) (6.XI, 11.1)."""

    def __init__(self, request_id: UUID, field: str) -> None:
        super().__init__(f"change request {request_id}: the new {field} is required")
        self.request_id = request_id
        self.field = field


class ChangeNotRecordedError(DomainError):
    """``request_id`` cannot be marked applied: ``account`` shows no change for it."""

    def __init__(self, request_id: UUID, account: str) -> None:
        super().__init__(f"change request {request_id}: no change recorded on {account}")
        self.request_id = request_id
        self.account = account


class ContainmentWithoutRotationError(DomainError):
    """8.C: incident ``incident_id`` cannot be contained without a rotation after the report."""

    def __init__(
        self,
        incident_id: UUID,
        account: str,
        reported_at: datetime,
        last_confirmed_at: datetime | None,
    ) -> None:
        super().__init__(
            f"incident {incident_id}: no rotation of {account} confirmed after "
            f"{reported_at.isoformat()}"
        )
        self.incident_id = incident_id
        self.account = account
        self.reported_at = reported_at
        self.last_confirmed_at = last_confirmed_at
