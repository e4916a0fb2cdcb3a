"""A Dirección Distrital: who holds its credentials, its accounts, and their credentials' life.

One aggregate per district keeps every entitlement decision consistent: the designation, the
absence and substitution, the accounts, the rotations, the obligations and the reads all change
under one optimistic-concurrency version.

Rules (sections of the guidelines):

- 6.VII, 6.X: the titular — or the acting titular (*encargo de despacho*) while one is in
  force — designates the administrator and reports absences with a substitute; UTCSyD may do it
  only as a recorded exception (:class:`District.AuthorityExceptionRecorded`, with its reason).
  Whoever holds the credentials — the administrator, or the substitute during an absence — is
  the district's *holder*; there is at most one.
- 6.X: every change of holder (designation, end of designation, start of a substitution,
  return) opens one rotation obligation per open account, due by the policy's deadline. An
  obligation is fulfilled only by a confirmed rotation whose new version the outgoing holder has
  not seen; it is withdrawn only if its account closes.
- 6.X: a departure (*baja*, promotion, change of assignment) or the end of one role releases the
  person at once (:meth:`District.release_person`): their titularship, encargo, designation or
  substitution end, and every open account whose live version they have seen owes a rotation.
- 6.IX: a credential read is recorded only for the holder or a coadministrator; the model
  refuses anyone else. 8.A, 8.B: the read records whether it fell outside working hours and
  whether the device is registered.
- 10.I–VIII: only a coadministrator registers accounts; policy violations are refused unless
  an existing account is being recorded as it is.
- Events carry versions and keyed fingerprints, never a secret (8.D, 11.7).

An absence may start or end on a future date. Commands that depend on who holds the credentials
first bring the district up to date (:meth:`District.advance`), so a transition that fell due is
recorded, with its obligations, before the command's own events.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from events.domain.base import aggregate_deepcopy, atomic, command_time, stable_topics
from events.domain.clock import as_utc
from events.domain.errors import (
    AbsenceAlreadyReportedError,
    AccountAlreadyRegisteredError,
    AccountClosedError,
    AccountNotFoundError,
    AccountPolicyViolationError,
    AccountStateError,
    AlreadyAdministratorError,
    ChangeRequestMismatchError,
    ChangeValueRequiredError,
    CredentialVersionError,
    DepartureIsNotAbsenceError,
    DistrictMismatchError,
    DistrictStateError,
    InvalidPeriodError,
    InvalidTransitionError,
    NoAbsenceError,
    NoActingTitularError,
    NoAdministratorError,
    NoCurrentCredentialError,
    NoRotationInProgressError,
    NotDesignatableError,
    NotDistrictAuthorityError,
    NotEntitledToReadError,
    RotationInProgressError,
    RotationVersionError,
    TitularAlreadyAppointedError,
    TotpNotRegisteredError,
    ValidationError,
)
from events.domain.ids import DISTRICT_NAMESPACE, AccountId, DistrictId
from events.domain.official_channel import OfficialChannel
from events.domain.person import Person, require_coadministrator
from events.domain.policy import Policy
from events.domain.values import (
    ABSENCE_REASONS,
    DESIGNATION_END_REASONS,
    PERMANENT_REASONS,
    HolderChangeCause,
    ReaderRole,
    Violation,
    account_violations,
    choice,
    phone_violations,
    validate_device_id,
    validate_email,
    validate_fingerprint,
    validate_handle,
    validate_phone,
    validate_text,
)

__all__ = ["Absence", "Account", "Designation", "District", "RotationObligation"]

ChannelPayload = dict[str, str | None]


class ApplicableRequest(Protocol):
    """What a district reads of a change request it applies (6.XI, 11.1.b): the request is
    :class:`events.domain.change_request.ChangeRequest`, which is filed against a district and
    so imports this module; the district names only what it reads."""

    @property
    def id(self) -> UUID: ...

    @property
    def status(self) -> str: ...

    @property
    def district(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def field(self) -> str: ...


# --- state (plain data; see events.domain.transcodings for snapshots) ----------------------


@dataclass
class Designation:
    """The designated administrator (*enlace*, 5.VII) of a district."""

    person_id: UUID
    since: datetime
    channel: OfficialChannel | None
    by: UUID | None


@dataclass
class Absence:
    """6.X: the administrator's absence and their substitute. ``ends_on`` is the day the
    administrator is back (the substitution ends at 00:00 local of that day); None if open."""

    reason: str
    administrator_id: UUID
    substitute_id: UUID
    starts_on: date
    ends_on: date | None
    starts_at: datetime
    ends_at: datetime | None
    channel: OfficialChannel
    reported_at: datetime
    started_at: datetime | None = None

    @property
    def in_course(self) -> bool:
        return self.started_at is not None


@dataclass
class Account:
    """An institutional account (5.III) and what the ledger knows about its credential."""

    account_id: str
    platform: str
    handle: str
    email: str
    phone: str | None
    public: bool
    direct_messages: bool
    violations: list[str]
    existing: bool
    registered_at: datetime
    closed_at: datetime | None = None
    current_version: int | None = None
    current_fingerprint: str | None = None
    staged_version: int | None = None
    staged_fingerprint: str | None = None
    staged_rotation_id: str | None = None  # the open rotation's id ("" for a version 1 event)
    highest_version: int = 0
    # The highest version ever confirmed (the secrets server numbers versions by confirmations).
    highest_confirmed: int = 0
    last_confirmed_at: datetime | None = None
    totp_registered: bool = False
    totp_fingerprint: str = ""  # the registered seed's keyed hash ("" before version 2 events)
    secrets_destroyed_at: datetime | None = None  # 10: after closure (AccountSecretsDestroyed)
    # Who has seen each version (keys are versions as text, for JSON): reads and rotation starts.
    exposure: dict[str, list[UUID]] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def seen_by(self, version: int) -> frozenset[UUID]:
        return frozenset(self.exposure.get(str(version), ()))

    def _expose(self, version: int, person: UUID) -> None:
        seen = self.exposure.setdefault(str(version), [])
        if person not in seen:
            seen.append(person)


@dataclass
class RotationObligation:
    """6.X: a password change owed after a change of holder."""

    obligation_id: UUID
    account_id: str
    cause: str
    outgoing_holder_id: UUID | None
    incoming_holder_id: UUID | None
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None = None
    closed_by: UUID | None = None
    closed_by_version: int | None = None
    withdrawn_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.withdrawn_at is None


def _channel(payload: ChannelPayload | None) -> OfficialChannel | None:
    return OfficialChannel.from_event(payload) if payload else None


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(name, f"{name} must be true or false")
    return value


def _version(value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValidationError("version", "a version is a positive integer")
    return value


@stable_topics("District")
class District(Aggregate):
    """A district (DD01 … DD33). Create with :meth:`register`; its id is :meth:`create_id`."""

    __deepcopy__ = aggregate_deepcopy  # the state is plain data: copied cheaply

    # --- events ----------------------------------------------------------------------------

    class Registered(Aggregate.Created):
        code: str
        by: UUID

    class TitularAppointed(Aggregate.Event):
        person_id: UUID
        previous_id: UUID | None
        channel: ChannelPayload | None
        by: UUID

    class TitularEnded(Aggregate.Event):
        """6.X: the titular left the post (a departure or the end of the role); the district has
        no titular until one is appointed."""

        person_id: UUID
        reason: str
        channel: ChannelPayload | None
        by: UUID

    class ActingTitularAppointed(Aggregate.Event):
        """6.VII: while the titular is absent, ``person_id`` acts as titular (*encargo de
        despacho*) from 00:00 local of ``starts_on`` until 00:00 of ``ends_on`` (None: open)."""

        person_id: UUID
        starts_on: str
        ends_on: str | None
        starts_at: datetime
        ends_at: datetime | None
        channel: ChannelPayload
        by: UUID

    class ActingTitularEnded(Aggregate.Event):
        person_id: UUID
        reason: str
        channel: ChannelPayload | None
        by: UUID

    class AuthorityExceptionRecorded(Aggregate.Event):
        """6.VII: UTCSyD acted in the titular's stead (``action``): an exception, with its reason
        and vía oficial, flagged in compliance reports."""

        action: str
        reason: str
        channel: ChannelPayload | None
        by: UUID

    class AdministratorDesignated(Aggregate.Event):
        """6.VII, 6.X. The holder change, if any, follows as :class:`CredentialHolderChanged`."""

        person_id: UUID
        previous_id: UUID | None
        channel: ChannelPayload
        by: UUID

    class DesignationEnded(Aggregate.Event):
        person_id: UUID
        reason: str
        channel: ChannelPayload
        by: UUID

    class AbsenceReported(Aggregate.Event):
        reason: str
        administrator_id: UUID
        substitute_id: UUID
        starts_on: str
        ends_on: str | None
        starts_at: datetime
        ends_at: datetime | None
        channel: ChannelPayload
        by: UUID

    class AbsenceStarted(Aggregate.Event):
        """The substitution took effect; ``by`` is None when its start date came."""

        substitute_id: UUID
        by: UUID | None

    class AbsenceEnded(Aggregate.Event):
        kind: str
        channel: ChannelPayload | None
        by: UUID | None

    class CredentialHolderChanged(Aggregate.Event):
        """Who holds the district's credentials changed (6.X). ``versions_seen`` maps each open
        account to the live versions (current, staged) the previous holder had seen."""

        previous_holder_id: UUID | None
        holder_id: UUID | None
        cause: str
        versions_seen: dict[str, list[int]]
        by: UUID | None

    class RotationObligationOpened(Aggregate.Event):
        obligation_id: UUID
        account: str
        cause: str
        outgoing_holder_id: UUID | None
        incoming_holder_id: UUID | None
        deadline: datetime
        by: UUID | None

    class RotationObligationWithdrawn(Aggregate.Event):
        obligation_id: UUID
        account: str
        reason: str
        by: UUID

    class AccountRegistered(Aggregate.Event):
        account: str
        platform: str
        handle: str
        email: str
        phone: str | None
        public: bool
        direct_messages: bool
        violations: list[str]
        existing: bool
        by: UUID

    class AccountStatusRecorded(Aggregate.Event):
        """10.V, 10.VI, 11.1.a: visibility, direct messages and the phone as a coadministrator
        found them. Version 2 added ``phone`` (None: not looked at, or a version 1 event)."""

        class_version = 2

        account: str
        public: bool
        direct_messages: bool
        phone: str | None
        violations: list[str]
        by: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["phone"] = None

    class AccountSettingChanged(Aggregate.Event):
        """6.XI, 11.1: an original setting changed under an approved change request."""

        account: str
        setting: str
        value: str
        violations: list[str]
        change_request_id: UUID
        by: UUID

    class AccountClosed(Aggregate.Event):
        account: str
        channel: ChannelPayload
        by: UUID

    class AccountSecretsDestroyed(Aggregate.Event):
        """10: after the closure was recorded, the account's password (every version, staged
        included) and 2FA seed were destroyed in the secrets server. Until this event, a closed
        account's destruction is pending (``cuentas baja`` again finishes it)."""

        account: str
        by: UUID

    class TotpRegistered(Aggregate.Event):
        """A 2FA seed was stored. ``seed_fingerprint`` (a keyed hash, never the seed) lets
        reconciliation recognise a seed imported straight into the secrets server afterwards
        (issue 16, finding 11). Version 2 added it; version 1 events carry ""."""

        class_version = 2

        account: str
        replaced: bool
        seed_fingerprint: str
        by: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["seed_fingerprint"] = ""

    class RotationStarted(Aggregate.Event):
        """6.X: a new credential was staged. ``rotation_id`` names this rotation everywhere: the
        secrets server's tag on the staged credential, reconciliation and confirmation (issue 16,
        finding 9). Version 2 added it; version 1 events carry "" (the custody layer then derives
        the id as it used to)."""

        class_version = 2

        account: str
        version: int
        fingerprint: str
        rotation_id: str
        by: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["rotation_id"] = ""

    class RotationConfirmed(Aggregate.Event):
        account: str
        version: int
        fingerprint: str
        previous_version: int | None
        closed_obligation_ids: list[UUID]
        change_request_id: UUID | None
        by: UUID

    class RotationAbandoned(Aggregate.Event):
        account: str
        version: int
        reason: str | None
        by: UUID

    class CredentialRead(Aggregate.Event):
        """6.IX, 8.A, 8.B: a credential was shown to ``by``.

        Version 2 added ``kind``: version 1 recorded only password reads (before TOTP codes).
        """

        class_version = 2

        account: str
        kind: str
        version: int | None
        reader_role: str
        purpose: str
        device_id: str | None
        registered_device: bool
        outside_working_hours: bool
        by: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["kind"] = "contrasena"

    class ReadVoided(Aggregate.Event):
        """6.IX: a read recorded just before did not hand ``by`` the credential after all: the
        secrets server refused or failed the caller's read (``reason``, an error name). The
        command service records a read while its wrapped read is still on the way; this says
        it never arrived. Whoever was recorded stays counted as exposed (conservative)."""

        account: str
        kind: str
        version: int | None
        reason: str
        by: UUID

    # --- creation --------------------------------------------------------------------------

    @staticmethod
    def create_id(code: str) -> UUID:
        """The id of district ``code`` (canonical, ``DD05``): the same in every installation."""
        return uuid5(DISTRICT_NAMESPACE, str(DistrictId(code)))

    @event(Registered)
    def __init__(self, code: str, by: UUID, timestamp: datetime) -> None:
        self.code = code
        self.titular_id: UUID | None = None
        self.acting_titular_id: UUID | None = None
        self.acting_titular_from: datetime | None = None
        self.acting_titular_until: datetime | None = None
        self.administrator: Designation | None = None
        self.absence: Absence | None = None
        self.holder_id: UUID | None = None
        self.accounts: dict[str, Account] = {}
        self.obligations: dict[str, RotationObligation] = {}
        self.applied_change_requests: dict[str, str] = {}

    @classmethod
    def register(cls, code: str, *, by: Person, at: datetime) -> District:
        """A coadministrator registers the district (``custodia init`` does all 33)."""
        require_coadministrator(by, "register districts")
        return cls(code=str(DistrictId.parse(code)), by=by.id, timestamp=as_utc(at))

    # --- queries ---------------------------------------------------------------------------

    @property
    def district_id(self) -> DistrictId:
        return DistrictId(self.code)

    def account(self, account: str) -> Account:
        """The account (open or closed); :class:`AccountNotFoundError` if never registered."""
        account_id = self._account_id(account)
        try:
            return self.accounts[account_id]
        except KeyError:
            raise AccountNotFoundError(account_id) from None

    def open_account(self, account: str) -> Account:
        """The account if it is open; :class:`AccountClosedError` if closed."""
        current = self.account(account)
        if not current.is_open:
            raise AccountClosedError(current.account_id)
        return current

    def open_accounts(self) -> list[Account]:
        return [self.accounts[key] for key in sorted(self.accounts) if self.accounts[key].is_open]

    def open_obligations(self, account: str | None = None) -> list[RotationObligation]:
        return [
            o
            for o in self.obligations.values()
            if o.is_open and (account is None or o.account_id == account)
        ]

    def exposure(self, account: str, version: int) -> frozenset[UUID]:
        """Who has seen ``version`` of ``account`` (readers and the coadministrator who
        generated it)."""
        return self.account(account).seen_by(version)

    def holder_at(self, at: datetime) -> UUID | None:
        """Who holds the credentials at ``at``, counting absences that fell due since the last
        event (without recording anything)."""
        at = as_utc(at)
        absence = self.absence
        if absence is None or self.administrator is None:
            return self.holder_id
        ended = absence.ends_at is not None and absence.ends_at <= at
        if absence.in_course:
            return self.administrator.person_id if ended else absence.substitute_id
        if absence.starts_at <= at and not ended:
            return absence.substitute_id
        return self.holder_id

    def reader_role(self, person: Person, at: datetime) -> ReaderRole | None:
        """6.IX: in what capacity ``person`` may read this district's credentials at ``at``, or
        None. Coadministrators always; the holder while eligible; nobody else."""
        if person.is_coadministrator:
            return "coadministrador"
        if person.id != self.holder_at(at) or person.designation_problem(self.code):
            return None
        absence = self.absence
        if absence is not None and absence.substitute_id == person.id:
            return "sustituto"
        return "administrador"

    def is_administrator_of_record(self, person: Person, at: datetime) -> bool:
        """The designated administrator or the current holder (who may file requests and
        report incidents)."""
        designated = self.administrator is not None and self.administrator.person_id == person.id
        return designated or person.id == self.holder_at(at)

    # --- titular and designations (6.VII, 6.X) ---------------------------------------------

    @atomic
    def appoint_titular(
        self,
        person: Person,
        *,
        by: Person,
        channel: OfficialChannel | None = None,
        at: datetime,
        vacant_only: bool = False,
    ) -> None:
        """A coadministrator records who is the district's titular (the person must hold the
        titular role for this district). ``vacant_only``: only if the district has none
        (:class:`TitularAlreadyAppointedError` otherwise)."""
        at = command_time(self, at)
        require_coadministrator(by, "appoint titulares")
        if vacant_only and self.titular_id is not None:
            raise TitularAlreadyAppointedError(self.code, self.titular_id)
        if not person.is_titular_of(self.code):
            raise NotDesignatableError(person.id, self.code, "not titular of this district")
        if person.id == self.titular_id:
            raise DistrictStateError(self.code, f"{person.id} is already titular of {self.code}")
        self._titular_appointed(
            person_id=person.id,
            previous_id=self.titular_id,
            channel=channel.to_event() if channel else None,
            by=by.id,
            timestamp=at,
        )

    @event(TitularAppointed)
    def _titular_appointed(
        self,
        person_id: UUID,
        previous_id: UUID | None,
        channel: ChannelPayload | None,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.titular_id = person_id

    def titular_at(self, at: datetime) -> UUID | None:
        """Who acts as titular at ``at``: the acting titular while an encargo is in force,
        else the titular (None: nobody)."""
        acting = self._acting_in_force(as_utc(at))
        return acting if acting is not None else self.titular_id

    def _acting_in_force(self, at: datetime) -> UUID | None:
        acting: UUID | None = getattr(self, "acting_titular_id", None)
        start: datetime | None = getattr(self, "acting_titular_from", None)
        until: datetime | None = getattr(self, "acting_titular_until", None)
        if acting is None or start is None or at < start or (until is not None and until <= at):
            return None
        return acting

    @atomic
    def appoint_acting_titular(
        self,
        person: Person,
        *,
        starts_on: date,
        ends_on: date | None = None,
        by: Person,
        channel: OfficialChannel,
        policy: Policy,
        at: datetime,
    ) -> None:
        """6.VII: while the titular is absent, ``person`` acts as titular (*encargo de despacho*)
        from 00:00 local of ``starts_on`` until 00:00 of ``ends_on`` (None: until ended). The
        titular or UTCSyD records it, on a vía oficial. An acting titular never reads
        credentials (6.IX): a reader (administrador, coadministrador) cannot be one."""
        at = command_time(self, at)
        if not by.is_coadministrator and not (
            self.titular_id == by.id and by.is_titular_of(self.code)
        ):
            raise NotDistrictAuthorityError(by.id, "appoint acting titulares", self.code)
        if person.has_departed or person.erased:
            raise NotDesignatableError(person.id, self.code, "has left")
        if person.id == self.titular_id:
            raise NotDesignatableError(person.id, self.code, "is the titular")
        if person.has_role("administrador") or person.is_coadministrator:
            raise NotDesignatableError(person.id, self.code, "reads credentials (6.IX)")
        if type(starts_on) is not date or (ends_on is not None and type(ends_on) is not date):
            raise ValidationError("period", "acting titular dates are calendar dates")
        if ends_on is not None and ends_on <= starts_on:
            raise InvalidPeriodError(starts_on, ends_on, "ends before it starts")
        if ends_on is not None and ends_on <= policy.local_date(at):
            raise InvalidPeriodError(starts_on, ends_on, "already over")
        current = getattr(self, "acting_titular_id", None)
        if current is not None:
            self._acting_titular_ended(
                person_id=current, reason="reemplazo", channel=None, by=by.id, timestamp=at
            )
        self._acting_titular_appointed(
            person_id=person.id,
            starts_on=starts_on.isoformat(),
            ends_on=ends_on.isoformat() if ends_on else None,
            starts_at=policy.start_of_day(starts_on),
            ends_at=policy.start_of_day(ends_on) if ends_on else None,
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )

    @event(ActingTitularAppointed)
    def _acting_titular_appointed(
        self,
        person_id: UUID,
        starts_on: str,
        ends_on: str | None,
        starts_at: datetime,
        ends_at: datetime | None,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.acting_titular_id = person_id
        self.acting_titular_from = starts_at
        self.acting_titular_until = ends_at

    @atomic
    def end_acting_titular(
        self, *, by: Person, channel: OfficialChannel | None = None, at: datetime
    ) -> None:
        """6.VII: the titular is back; the encargo ends now."""
        at = command_time(self, at)
        if not by.is_coadministrator and not (
            self.titular_id == by.id and by.is_titular_of(self.code)
        ):
            raise NotDistrictAuthorityError(by.id, "end acting titulares", self.code)
        current = getattr(self, "acting_titular_id", None)
        if current is None:
            raise NoActingTitularError(self.code)
        self._acting_titular_ended(
            person_id=current,
            reason="regreso_titular",
            channel=channel.to_event() if channel else None,
            by=by.id,
            timestamp=at,
        )

    @event(ActingTitularEnded)
    def _acting_titular_ended(
        self,
        person_id: UUID,
        reason: str,
        channel: ChannelPayload | None,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.acting_titular_id = None
        self.acting_titular_from = None
        self.acting_titular_until = None

    @event(TitularEnded)
    def _titular_ended(
        self,
        person_id: UUID,
        reason: str,
        channel: ChannelPayload | None,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.titular_id = None

    @event(AuthorityExceptionRecorded)
    def _authority_exception_recorded(
        self,
        action: str,
        reason: str,
        channel: ChannelPayload | None,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        pass  # a fact for the compliance report (6.VII); no state changes

    # --- departures and role endings (6.X) --------------------------------------------------

    @atomic
    def release_person(
        self,
        person: Person,
        *,
        roles: frozenset[str],
        reason: str,
        cause: Literal["salida", "revocacion"],
        by: Person,
        channel: OfficialChannel | None,
        policy: Policy,
        at: datetime,
    ) -> list[str]:
        """6.X: ``person`` no longer holds ``roles`` (all of them for a departure) — UTCSyD
        records it. At once: a titular's post and an encargo end; an administrator's designation
        ends (the district has no administrator until the titular designates) and so does an
        absence they were part of; whoever held the credentials through them stops. Every open
        account whose live version (current or staged) they have seen owes one rotation, unless
        the change of holder already opened one. Returns the accounts that now owe a rotation
        because of this (empty: the district had nothing to do with them)."""
        at = command_time(self, at)
        self._advance(policy, at)
        require_coadministrator(by, "end roles")
        payload = channel.to_event() if channel else None
        ends_reader = bool(roles & {"administrador", "coadministrador"})
        if "titular" in roles and self.titular_id == person.id:
            self._titular_ended(
                person_id=person.id, reason=reason, channel=payload, by=by.id, timestamp=at
            )
        if cause == "salida" and getattr(self, "acting_titular_id", None) == person.id:
            self._acting_titular_ended(
                person_id=person.id, reason=reason, channel=payload, by=by.id, timestamp=at
            )
        owed: list[str] = []
        if "administrador" in roles:
            absence = self.absence
            if self.administrator is not None and self.administrator.person_id == person.id:
                if absence is not None:
                    self._absence_ended(kind="salida", channel=payload, by=by.id, timestamp=at)
                self._designation_ended(
                    person_id=person.id,
                    reason=reason,
                    channel=payload or {},
                    by=by.id,
                    timestamp=at,
                )
                owed += self._change_holder(None, cause, by.id, policy, at)
            elif absence is not None and absence.substitute_id == person.id:
                self._absence_ended(kind="salida", channel=payload, by=by.id, timestamp=at)
        if ends_reader and self.holder_id == person.id:
            owed += self._change_holder(None, cause, by.id, policy, at)
        if ends_reader:
            deadline = policy.rotation_deadline(at)
            for account in self.open_accounts():
                if account.account_id in owed or not self._live_versions_seen_in(
                    account, person.id
                ):
                    continue
                if any(
                    o.outgoing_holder_id == person.id and o.cause in ("salida", "revocacion")
                    for o in self.open_obligations(account.account_id)
                ):
                    continue  # already owed for this person (a retried departure)
                self._rotation_obligation_opened(
                    obligation_id=uuid5(self.id, f"obligation-{len(self.obligations) + 1}"),
                    account=account.account_id,
                    cause=cause,
                    outgoing_holder_id=person.id,
                    incoming_holder_id=self.holder_id,
                    deadline=deadline,
                    by=by.id,
                    timestamp=at,
                )
                owed.append(account.account_id)
        return owed

    @staticmethod
    def _live_versions_seen_in(account: Account, person: UUID) -> list[int]:
        return [
            v
            for v in (account.current_version, account.staged_version)
            if v is not None and person in account.seen_by(v)
        ]

    @atomic
    def designate(
        self,
        person: Person,
        *,
        by: Person,
        channel: OfficialChannel,
        policy: Policy,
        at: datetime,
        exception: str | None = None,
    ) -> None:
        """6.VII, 6.X: designates ``person`` as administrator. The previous holder loses the
        credentials at once and every open account owes a rotation. Designating during an
        absence ends it (the new administrator replaces both); so does designating the absent
        administrator again (they are back). ``exception``: UTCSyD's reason to act in the
        titular's stead (6.VII)."""
        at = command_time(self, at)
        self._advance(policy, at)
        self._require_authority(by, "designate administrators", at, exception, channel)
        problem = person.designation_problem(self.code)
        if problem:
            raise NotDesignatableError(person.id, self.code, problem)
        previous = self.administrator.person_id if self.administrator else None
        if previous == person.id and self.absence is None and self.holder_id == person.id:
            raise AlreadyAdministratorError(self.code, person.id)
        if self.absence is not None:
            self._absence_ended(kind="designacion", channel=None, by=by.id, timestamp=at)
        self._administrator_designated(
            person_id=person.id,
            previous_id=previous,
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )
        self._change_holder(person.id, "designacion", by.id, policy, at)

    @event(AdministratorDesignated)
    def _administrator_designated(
        self,
        person_id: UUID,
        previous_id: UUID | None,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.administrator = Designation(person_id, timestamp, _channel(channel), by)

    @atomic
    def end_designation(
        self,
        reason: str,
        *,
        by: Person,
        channel: OfficialChannel,
        policy: Policy,
        at: datetime,
        exception: str | None = None,
    ) -> None:
        """6.X: the administrator leaves (promotion, *baja*, change of assignment, other) with no
        successor yet: nobody at the district holds the credentials, and rotations are owed."""
        at = command_time(self, at)
        self._advance(policy, at)
        self._require_authority(by, "end designations", at, exception, channel)
        ended_reason = choice("reason", reason, DESIGNATION_END_REASONS)
        if self.administrator is None:
            raise NoAdministratorError(self.code)
        if self.absence is not None:
            self._absence_ended(kind="fin_designacion", channel=None, by=by.id, timestamp=at)
        self._designation_ended(
            person_id=self.administrator.person_id,
            reason=ended_reason,
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )
        self._change_holder(None, "fin_designacion", by.id, policy, at)

    @event(DesignationEnded)
    def _designation_ended(
        self,
        person_id: UUID,
        reason: str,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.administrator = None

    # --- absences and substitutions (6.X) --------------------------------------------------

    @atomic
    def report_absence(
        self,
        reason: str,
        *,
        substitute: Person,
        starts_on: date,
        ends_on: date | None = None,
        by: Person,
        channel: OfficialChannel,
        policy: Policy,
        at: datetime,
        exception: str | None = None,
    ) -> None:
        """6.X: the administrator will be (or is) absent; ``substitute`` holds the credentials
        from 00:00 local of ``starts_on`` (or now, if that has passed) until 00:00 of
        ``ends_on``, when the administrator returns. Each change of holder owes rotations."""
        at = command_time(self, at)
        self._advance(policy, at)
        if isinstance(reason, str) and reason.strip().lower().replace("-", "_") in (
            PERMANENT_REASONS
        ):
            # 6.X: a departure is not an absence (no return, no substitute): personas baja.
            raise DepartureIsNotAbsenceError(reason.strip().lower().replace("-", "_"))
        self._require_authority(by, "report absences", at, exception, channel)
        absence_reason = choice("reason", reason, ABSENCE_REASONS)
        if self.administrator is None:
            raise NoAdministratorError(self.code)
        if self.absence is not None:
            raise AbsenceAlreadyReportedError(self.code)
        problem = substitute.designation_problem(self.code)
        if problem is None and substitute.id == self.administrator.person_id:
            problem = "is the absent administrator"
        if problem:
            raise NotDesignatableError(substitute.id, self.code, problem)
        if type(starts_on) is not date or (ends_on is not None and type(ends_on) is not date):
            raise ValidationError("period", "absence dates are calendar dates")
        if ends_on is not None and ends_on <= starts_on:
            raise InvalidPeriodError(starts_on, ends_on, "ends before it starts")
        if ends_on is not None and ends_on <= policy.local_date(at):
            raise InvalidPeriodError(starts_on, ends_on, "already over")
        starts_at = policy.start_of_day(starts_on)
        self._absence_reported(
            reason=absence_reason,
            administrator_id=self.administrator.person_id,
            substitute_id=substitute.id,
            starts_on=starts_on.isoformat(),
            ends_on=ends_on.isoformat() if ends_on else None,
            starts_at=starts_at,
            ends_at=policy.start_of_day(ends_on) if ends_on else None,
            channel=channel.to_event(),
            by=by.id,
            timestamp=at,
        )
        if starts_at <= at:
            self._absence_started(substitute_id=substitute.id, by=by.id, timestamp=at)
            self._change_holder(substitute.id, "sustitucion", by.id, policy, at)

    @event(AbsenceReported)
    def _absence_reported(
        self,
        reason: str,
        administrator_id: UUID,
        substitute_id: UUID,
        starts_on: str,
        ends_on: str | None,
        starts_at: datetime,
        ends_at: datetime | None,
        channel: ChannelPayload,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        self.absence = Absence(
            reason=reason,
            administrator_id=administrator_id,
            substitute_id=substitute_id,
            starts_on=date.fromisoformat(starts_on),
            ends_on=date.fromisoformat(ends_on) if ends_on else None,
            starts_at=starts_at,
            ends_at=ends_at,
            channel=OfficialChannel.from_event(channel),
            reported_at=timestamp,
        )

    @event(AbsenceStarted)
    def _absence_started(self, substitute_id: UUID, by: UUID | None, timestamp: datetime) -> None:
        assert self.absence is not None
        self.absence.started_at = timestamp

    @atomic
    def end_absence(
        self,
        *,
        by: Person,
        channel: OfficialChannel | None = None,
        policy: Policy,
        at: datetime,
        exception: str | None = None,
    ) -> None:
        """6.X: the administrator is back early (or the absence is cancelled before it
        starts). A return is a change of holder: rotations are owed."""
        at = command_time(self, at)
        self._advance(policy, at)
        self._require_authority(by, "end absences", at, exception, channel)
        absence = self.absence
        if absence is None or self.administrator is None:
            raise NoAbsenceError(self.code)
        payload = channel.to_event() if channel else None
        if not absence.in_course:
            self._absence_ended(kind="cancelada", channel=payload, by=by.id, timestamp=at)
            return
        self._absence_ended(kind="regreso_anticipado", channel=payload, by=by.id, timestamp=at)
        self._change_holder(self.administrator.person_id, "regreso", by.id, policy, at)

    @event(AbsenceEnded)
    def _absence_ended(
        self, kind: str, channel: ChannelPayload | None, by: UUID | None, timestamp: datetime
    ) -> None:
        self.absence = None

    @atomic
    def advance(self, *, policy: Policy, at: datetime) -> None:
        """Records the absence starts and returns that fell due by ``at`` (a service task calls
        this regularly; commands that depend on the holder call it first)."""
        self._advance(policy, command_time(self, at))

    def _advance(self, policy: Policy, at: datetime) -> None:
        absence = self.absence
        if absence is None or self.administrator is None:
            return
        if not absence.in_course and absence.starts_at <= at:
            if absence.ends_at is not None and absence.ends_at <= at:
                # The whole period passed unrecorded: the substitute never held anything.
                self._absence_ended(kind="no_iniciada", channel=None, by=None, timestamp=at)
                return
            self._absence_started(substitute_id=absence.substitute_id, by=None, timestamp=at)
            self._change_holder(absence.substitute_id, "sustitucion", None, policy, at)
        if absence.in_course and absence.ends_at is not None and absence.ends_at <= at:
            self._absence_ended(kind="regreso_programado", channel=None, by=None, timestamp=at)
            self._change_holder(self.administrator.person_id, "regreso", None, policy, at)

    def _change_holder(
        self,
        holder: UUID | None,
        cause: HolderChangeCause,
        by: UUID | None,
        policy: Policy,
        at: datetime,
    ) -> list[str]:
        # 6.X: "a fin de realizar el cambio de contraseñas" — one obligation per open account.
        previous = self.holder_id
        if holder == previous:
            return []
        self._credential_holder_changed(
            previous_holder_id=previous,
            holder_id=holder,
            cause=cause,
            versions_seen=self._live_versions_seen(previous) if previous else {},
            by=by,
            timestamp=at,
        )
        deadline = policy.rotation_deadline(at)
        opened = []
        for account in self.open_accounts():
            self._rotation_obligation_opened(
                obligation_id=uuid5(self.id, f"obligation-{len(self.obligations) + 1}"),
                account=account.account_id,
                cause=cause,
                outgoing_holder_id=previous,
                incoming_holder_id=holder,
                deadline=deadline,
                by=by,
                timestamp=at,
            )
            opened.append(account.account_id)
        return opened

    def _live_versions_seen(self, person: UUID) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {}
        for account in self.open_accounts():
            versions = [
                v
                for v in (account.current_version, account.staged_version)
                if v is not None and person in account.seen_by(v)
            ]
            if versions:
                seen[account.account_id] = versions
        return seen

    @event(CredentialHolderChanged)
    def _credential_holder_changed(
        self,
        previous_holder_id: UUID | None,
        holder_id: UUID | None,
        cause: str,
        versions_seen: dict[str, list[int]],
        by: UUID | None,
        timestamp: datetime,
    ) -> None:
        self.holder_id = holder_id

    @event(RotationObligationOpened)
    def _rotation_obligation_opened(
        self,
        obligation_id: UUID,
        account: str,
        cause: str,
        outgoing_holder_id: UUID | None,
        incoming_holder_id: UUID | None,
        deadline: datetime,
        by: UUID | None,
        timestamp: datetime,
    ) -> None:
        self.obligations[str(obligation_id)] = RotationObligation(
            obligation_id=obligation_id,
            account_id=account,
            cause=cause,
            outgoing_holder_id=outgoing_holder_id,
            incoming_holder_id=incoming_holder_id,
            opened_at=timestamp,
            deadline=deadline,
        )

    @atomic
    def open_age_obligations(self, *, policy: Policy, at: datetime) -> list[str]:
        """Maximum password age (policy ``plazos.antiguedad_maxima_dias``): one rotation
        obligation (cause ``antiguedad``) for each open account whose current password is
        older. Once per password: not again while one opened after that password became
        current exists, so a restarted service repeating this records nothing new."""
        at = command_time(self, at)
        opened: list[str] = []
        for account in self.open_accounts():
            if account.current_version is None:
                continue
            since = account.last_confirmed_at or account.registered_at
            if at - since < policy.max_password_age:
                continue
            if any(
                o.account_id == account.account_id
                and o.cause == "antiguedad"
                and o.opened_at >= since
                for o in self.obligations.values()
            ):
                continue
            self._rotation_obligation_opened(
                obligation_id=uuid5(self.id, f"obligation-{len(self.obligations) + 1}"),
                account=account.account_id,
                cause="antiguedad",
                outgoing_holder_id=None,  # any confirmed rotation fulfils it
                incoming_holder_id=self.holder_id,
                deadline=policy.rotation_deadline(at),
                by=None,
                timestamp=at,
            )
            opened.append(account.account_id)
        return opened

    # --- accounts (10.I–VIII) --------------------------------------------------------------

    @atomic
    def register_account(
        self,
        account: str,
        *,
        handle: str,
        email: str,
        phone: str | None = None,
        public: bool = True,
        direct_messages: bool = True,
        existing: bool = False,
        by: Person,
        at: datetime,
    ) -> list[Violation]:
        """10.I–II: a coadministrator registers an account of this district; returns its
        violations. 10.III, 10.VIII: the e-mail must be ``@iecm.mx``; an X user name must end in
        ``IECM``; 10.VI: public; 10.V: direct messages on. A violating account is refused unless
        ``existing`` (an account that already exists as it is), whose violations are recorded."""
        at = command_time(self, at)
        require_coadministrator(by, "register accounts")
        account_id = self._account_id(account)
        previous = self.accounts.get(account_id)
        if previous is not None and previous.is_open:
            raise AccountAlreadyRegisteredError(account_id)
        platform = account_id.platform
        checked_handle = validate_handle(platform, handle)
        checked_email = validate_email("email", email)
        checked_phone = validate_phone("phone", phone) if phone is not None else None
        is_public = _flag("public", public)
        has_dms = _flag("direct_messages", direct_messages)
        is_existing = _flag("existing", existing)
        violations = account_violations(
            platform, checked_handle, checked_email, public=is_public, direct_messages=has_dms
        )
        if violations and not is_existing:
            raise AccountPolicyViolationError(account_id, violations)
        self._account_registered(
            account=str(account_id),
            platform=platform,
            handle=checked_handle,
            email=checked_email,
            phone=checked_phone,
            public=is_public,
            direct_messages=has_dms,
            violations=list(violations),
            existing=is_existing,
            by=by.id,
            timestamp=at,
        )
        return violations

    @event(AccountRegistered)
    def _account_registered(
        self,
        account: str,
        platform: str,
        handle: str,
        email: str,
        phone: str | None,
        public: bool,
        direct_messages: bool,
        violations: list[str],
        existing: bool,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        previous = self.accounts.get(account)
        self.accounts[account] = Account(
            account_id=account,
            platform=platform,
            handle=handle,
            email=email,
            phone=phone,
            public=public,
            direct_messages=direct_messages,
            violations=list(violations),
            existing=existing,
            registered_at=timestamp,
            # A re-registered account never reuses a version number.
            highest_version=previous.highest_version if previous else 0,
            highest_confirmed=previous.highest_confirmed if previous else 0,
            exposure=previous.exposure if previous else {},
        )

    @atomic
    def record_account_status(
        self,
        account: str,
        *,
        public: bool,
        direct_messages: bool,
        by: Person,
        at: datetime,
        phone: str | None = None,
        phone_prefixes: Iterable[str] = (),
    ) -> list[Violation]:
        """10.V, 10.VI, 11.1.a: a coadministrator records the visibility, direct messages and
        (``phone``) the phone found on the platform; the resulting violations are recorded (and
        returned). Without ``phone`` the registered one is judged; none at all is a violation,
        as is one outside ``phone_prefixes`` (the policy's numbering) or one that differs from
        the registered phone (an original setting changed without a request, 11.1)."""
        at = command_time(self, at)
        require_coadministrator(by, "record account status")
        current = self.open_account(account)
        is_public = _flag("public", public)
        has_dms = _flag("direct_messages", direct_messages)
        observed = validate_phone("phone", phone) if phone is not None else None
        violations = account_violations(
            current.platform,
            current.handle,
            current.email,
            public=is_public,
            direct_messages=has_dms,
        ) + phone_violations(
            observed if observed is not None else current.phone,
            registered=current.phone,
            prefixes=tuple(phone_prefixes),
        )
        self._account_status_recorded(
            account=current.account_id,
            public=is_public,
            direct_messages=has_dms,
            phone=observed,
            violations=list(violations),
            by=by.id,
            timestamp=at,
        )
        return violations

    @event(AccountStatusRecorded)
    def _account_status_recorded(
        self,
        account: str,
        public: bool,
        direct_messages: bool,
        phone: str | None,
        violations: list[str],
        by: UUID,
        timestamp: datetime,
    ) -> None:
        current = self.accounts[account]
        current.public = public
        current.direct_messages = direct_messages
        if current.phone is None and phone is not None:
            current.phone = phone  # a first fact, not a change of an original setting
        current.violations = list(violations)

    @atomic
    def change_account_setting(
        self,
        request: ApplicableRequest,
        value: str | None,
        *,
        by: Person,
        at: datetime,
    ) -> None:
        """6.XI, 11.1: applies an approved request to change the account's e-mail, phone or user
        name to ``value``, which is required (the request's detail is free text, not a value).
        The change may not introduce a policy violation. Mark the request applied in the same
        save (:meth:`events.domain.change_request.ChangeRequest.apply`)."""
        at = command_time(self, at)
        require_coadministrator(by, "change account settings")
        self._require_applicable(request)
        current = self.open_account(request.account)
        setting = request.field
        if setting in ("correo", "usuario", "telefono") and (value is None or not value.strip()):
            raise ChangeValueRequiredError(request.id, setting)
        value = value or ""
        email, handle = current.email, current.handle
        if setting == "correo":
            email = new_value = validate_email("email", value)
        elif setting == "usuario":
            handle = new_value = validate_handle(current.platform, value)
        elif setting == "telefono":
            new_value = validate_phone("phone", value)
        else:
            raise ChangeRequestMismatchError(request.id, f"{setting} is not an account setting")
        violations = account_violations(
            current.platform,
            handle,
            email,
            public=current.public,
            direct_messages=current.direct_messages,
        )
        introduced = [v for v in violations if v not in current.violations]
        if introduced:
            raise AccountPolicyViolationError(current.account_id, introduced)
        self._account_setting_changed(
            account=current.account_id,
            setting=setting,
            value=new_value,
            violations=list(violations),
            change_request_id=request.id,
            by=by.id,
            timestamp=at,
        )

    @event(AccountSettingChanged)
    def _account_setting_changed(
        self,
        account: str,
        setting: str,
        value: str,
        violations: list[str],
        change_request_id: UUID,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        current = self.accounts[account]
        if setting == "correo":
            current.email = value
        elif setting == "usuario":
            current.handle = value
        else:
            current.phone = value
        current.violations = list(violations)
        self.applied_change_requests[str(change_request_id)] = account

    @atomic
    def close_account(
        self, account: str, *, by: Person, channel: OfficialChannel, at: datetime
    ) -> None:
        """A coadministrator closes an account: a staged rotation is abandoned and its open
        obligations are withdrawn (nothing left to rotate)."""
        at = command_time(self, at)
        require_coadministrator(by, "close accounts")
        current = self.open_account(account)
        if current.staged_version is not None:
            self._rotation_abandoned(
                account=current.account_id,
                version=current.staged_version,
                reason="cuenta_cerrada",
                by=by.id,
                timestamp=at,
            )
        for obligation in self.open_obligations(current.account_id):
            self._rotation_obligation_withdrawn(
                obligation_id=obligation.obligation_id,
                account=current.account_id,
                reason="cuenta_cerrada",
                by=by.id,
                timestamp=at,
            )
        self._account_closed(
            account=current.account_id, channel=channel.to_event(), by=by.id, timestamp=at
        )

    @event(RotationObligationWithdrawn)
    def _rotation_obligation_withdrawn(
        self, obligation_id: UUID, account: str, reason: str, by: UUID, timestamp: datetime
    ) -> None:
        self.obligations[str(obligation_id)].withdrawn_at = timestamp

    @event(AccountClosed)
    def _account_closed(
        self, account: str, channel: ChannelPayload, by: UUID, timestamp: datetime
    ) -> None:
        self.accounts[account].closed_at = timestamp

    def destruction_pending(self, account: str) -> bool:
        """10: the account is closed and its secrets are not yet recorded as destroyed."""
        current = self.account(account)
        return not current.is_open and current.secrets_destroyed_at is None

    @atomic
    def record_secrets_destroyed(self, account: str, *, by: Person, at: datetime) -> None:
        """10: the secrets server destroyed the closed account's password and 2FA seed."""
        at = command_time(self, at)
        require_coadministrator(by, "close accounts")
        current = self.account(account)
        if current.is_open:
            raise AccountStateError(current.account_id, "not closed")
        if current.secrets_destroyed_at is not None:
            return
        self._account_secrets_destroyed(account=current.account_id, by=by.id, timestamp=at)

    @event(AccountSecretsDestroyed)
    def _account_secrets_destroyed(self, account: str, by: UUID, timestamp: datetime) -> None:
        self.accounts[account].secrets_destroyed_at = timestamp

    @atomic
    def register_totp(
        self, account: str, *, by: Person, at: datetime, seed_fingerprint: str = ""
    ) -> None:
        """A coadministrator stored (or replaced) the account's 2FA seed in the TOTP engine;
        ``seed_fingerprint`` is a keyed hash computed by the custody layer."""
        at = command_time(self, at)
        require_coadministrator(by, "register TOTP seeds")
        current = self.open_account(account)
        self._totp_registered(
            account=current.account_id,
            replaced=current.totp_registered,
            seed_fingerprint=validate_fingerprint(seed_fingerprint) if seed_fingerprint else "",
            by=by.id,
            timestamp=at,
        )

    @event(TotpRegistered)
    def _totp_registered(
        self, account: str, replaced: bool, seed_fingerprint: str, by: UUID, timestamp: datetime
    ) -> None:
        self.accounts[account].totp_registered = True
        self.accounts[account].totp_fingerprint = seed_fingerprint

    # --- rotations -------------------------------------------------------------------------

    @atomic
    def start_rotation(
        self,
        account: str,
        *,
        version: int,
        fingerprint: str,
        by: Person,
        at: datetime,
        rotation_id: str = "",
    ) -> None:
        """A coadministrator staged ``version`` (a new password, shown to them once). Confirmed
        versions only grow; an abandoned version's number may be staged again (the secrets
        server numbers versions by what was confirmed), and whoever saw the abandoned one is
        then counted as exposed to it too (conservative). ``fingerprint`` is a keyed hash
        computed by the custody layer."""
        at = command_time(self, at)
        require_coadministrator(by, "rotate credentials")
        current = self.open_account(account)
        if current.staged_version is not None:
            raise RotationInProgressError(current.account_id, current.staged_version)
        confirmed = max(current.highest_confirmed, current.current_version or 0)
        if _version(version) <= confirmed:
            raise RotationVersionError(current.account_id, version, f"greater than {confirmed}")
        self._rotation_started(
            account=current.account_id,
            version=version,
            fingerprint=validate_fingerprint(fingerprint),
            rotation_id=validate_text("rotation_id", rotation_id, max_length=64)
            if rotation_id
            else "",
            by=by.id,
            timestamp=at,
        )

    @event(RotationStarted)
    def _rotation_started(
        self,
        account: str,
        version: int,
        fingerprint: str,
        rotation_id: str,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        current = self.accounts[account]
        current.staged_version = version
        current.staged_fingerprint = fingerprint
        current.staged_rotation_id = rotation_id
        current.highest_version = max(current.highest_version, version)
        current._expose(version, by)  # the generated password is shown to its coadministrator

    @atomic
    def confirm_rotation(
        self,
        account: str,
        *,
        version: int,
        by: Person,
        at: datetime,
        change_request: ApplicableRequest | None = None,
    ) -> list[UUID]:
        """The staged ``version`` was applied on the platform and becomes current. It fulfils
        the account's open obligations whose outgoing holder has not seen it (returned).

        With ``change_request`` (an approved request to change the password, 6.XI) the rotation
        is that request's change; mark the request applied in the same save."""
        at = command_time(self, at)
        require_coadministrator(by, "rotate credentials")
        current = self.open_account(account)
        if current.staged_version is None:
            raise NoRotationInProgressError(current.account_id)
        if version != current.staged_version:
            raise RotationVersionError(current.account_id, version, str(current.staged_version))
        if change_request is not None:
            self._require_applicable(change_request)
            if change_request.field != "contrasena" or change_request.account != current.account_id:
                raise ChangeRequestMismatchError(
                    change_request.id, f"not a password change of {current.account_id}"
                )
        seen = current.seen_by(version)
        fulfilled = [
            o.obligation_id
            for o in self.open_obligations(current.account_id)
            if o.outgoing_holder_id is None or o.outgoing_holder_id not in seen
        ]
        assert current.staged_fingerprint is not None
        self._rotation_confirmed(
            account=current.account_id,
            version=version,
            fingerprint=current.staged_fingerprint,
            previous_version=current.current_version,
            closed_obligation_ids=fulfilled,
            change_request_id=change_request.id if change_request else None,
            by=by.id,
            timestamp=at,
        )
        return fulfilled

    @event(RotationConfirmed)
    def _rotation_confirmed(
        self,
        account: str,
        version: int,
        fingerprint: str,
        previous_version: int | None,
        closed_obligation_ids: list[UUID],
        change_request_id: UUID | None,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        current = self.accounts[account]
        current.current_version = version
        current.highest_confirmed = max(current.highest_confirmed, version)
        current.current_fingerprint = fingerprint
        current.staged_version = None
        current.staged_fingerprint = None
        current.staged_rotation_id = None
        current.last_confirmed_at = timestamp
        for obligation_id in closed_obligation_ids:
            obligation = self.obligations[str(obligation_id)]
            obligation.closed_at = timestamp
            obligation.closed_by = by
            obligation.closed_by_version = version
        if change_request_id is not None:
            self.applied_change_requests[str(change_request_id)] = account

    @atomic
    def abandon_rotation(
        self,
        account: str,
        *,
        version: int,
        by: Person,
        reason: str | None = None,
        at: datetime,
    ) -> None:
        """The staged ``version`` was not applied; the current version stays."""
        at = command_time(self, at)
        require_coadministrator(by, "rotate credentials")
        current = self.open_account(account)
        if current.staged_version is None:
            raise NoRotationInProgressError(current.account_id)
        if version != current.staged_version:
            raise RotationVersionError(current.account_id, version, str(current.staged_version))
        self._rotation_abandoned(
            account=current.account_id,
            version=version,
            reason=validate_text("reason", reason, max_length=500) if reason else None,
            by=by.id,
            timestamp=at,
        )

    @event(RotationAbandoned)
    def _rotation_abandoned(
        self, account: str, version: int, reason: str | None, by: UUID, timestamp: datetime
    ) -> None:
        current = self.accounts[account]
        current.staged_version = None
        current.staged_fingerprint = None
        current.staged_rotation_id = None

    # --- reads (6.IX, 8.A, 8.B) ------------------------------------------------------------

    @atomic
    def record_read(
        self,
        account: str,
        *,
        reader: Person,
        version: int,
        purpose: str,
        device_id: str | None,
        policy: Policy,
        at: datetime,
        district_devices: Collection[str] = (),
    ) -> ReaderRole:
        """6.IX: records that ``reader`` is shown ``version`` of the account's password, or refuses
        with :class:`NotEntitledToReadError`. The current version is for the holder and
        coadministrators; a staged one only for coadministrators. Returns the capacity."""
        at = command_time(self, at)
        self._advance(policy, at)
        account_id = self._account_id(account)
        role = self.reader_role(reader, at)
        if role is None:
            raise NotEntitledToReadError(reader.id, account_id)
        current = self.open_account(account_id)
        staged = current.staged_version is not None and version == current.staged_version
        if staged and role != "coadministrador":
            raise NotEntitledToReadError(reader.id, account_id, staged=True)
        if not staged:
            if current.current_version is None:
                raise NoCurrentCredentialError(account_id)
            if version != current.current_version:
                raise CredentialVersionError(account_id, version)
        self._record(
            current,
            "contrasena",
            version,
            role,
            reader,
            purpose,
            device_id,
            policy,
            at,
            district_devices,
        )
        return role

    @atomic
    def record_code_read(
        self,
        account: str,
        *,
        reader: Person,
        purpose: str,
        device_id: str | None,
        policy: Policy,
        at: datetime,
        district_devices: Collection[str] = (),
    ) -> ReaderRole:
        """Like :meth:`record_read`, for a current TOTP code (never the seed)."""
        at = command_time(self, at)
        self._advance(policy, at)
        account_id = self._account_id(account)
        role = self.reader_role(reader, at)
        if role is None:
            raise NotEntitledToReadError(reader.id, account_id)
        current = self.open_account(account_id)
        if not current.totp_registered:
            raise TotpNotRegisteredError(account_id)
        self._record(
            current,
            "codigo_totp",
            None,
            role,
            reader,
            purpose,
            device_id,
            policy,
            at,
            district_devices,
        )
        return role

    def _record(
        self,
        account: Account,
        kind: str,
        version: int | None,
        role: ReaderRole,
        reader: Person,
        purpose: str,
        device_id: str | None,
        policy: Policy,
        at: datetime,
        district_devices: Collection[str] = (),
    ) -> None:
        device = validate_device_id(device_id) if device_id is not None else None
        # 8.B: an institutional device of this district (events.domain.controls), or one
        # registered for the reader (the older, per-person registration).
        registered = device is not None and (
            device in district_devices or reader.has_device(device)
        )
        self._credential_read(
            account=account.account_id,
            kind=kind,
            version=version,
            reader_role=role,
            purpose=validate_text("purpose", purpose, max_length=500),
            device_id=device,
            registered_device=registered,  # 8.B
            outside_working_hours=policy.is_outside_working_hours(at),  # 8.A
            by=reader.id,
            timestamp=at,
        )

    @event(CredentialRead)
    def _credential_read(
        self,
        account: str,
        kind: str,
        version: int | None,
        reader_role: str,
        purpose: str,
        device_id: str | None,
        registered_device: bool,
        outside_working_hours: bool,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        if kind == "contrasena" and version is not None:
            self.accounts[account]._expose(version, by)

    @atomic
    def void_read(
        self, account: str, *, reader: Person, version: int, reason: str, at: datetime
    ) -> None:
        """A password read recorded for ``reader`` (:meth:`record_read`) was not delivered:
        the secrets server refused or failed it (``reason``: the error's name)."""
        at = command_time(self, at)
        current = self.account(account)
        self._read_voided(
            account=current.account_id,
            kind="contrasena",
            version=_version(version),
            reason=validate_text("reason", reason, max_length=100),
            by=reader.id,
            timestamp=at,
        )

    @event(ReadVoided)
    def _read_voided(
        self,
        account: str,
        kind: str,
        version: int | None,
        reason: str,
        by: UUID,
        timestamp: datetime,
    ) -> None:
        pass  # who was recorded as exposed stays so (conservative)

    # --- helpers ---------------------------------------------------------------------------

    def _account_id(self, account: str) -> AccountId:
        account_id = AccountId.parse(account)
        if account_id.district != self.code:
            raise DistrictMismatchError(self.code, account_id.district)
        return account_id

    def _require_authority(
        self,
        by: Person,
        action: str,
        at: datetime,
        exception: str | None = None,
        channel: OfficialChannel | None = None,
    ) -> None:
        # 6.VII, 6.X: the titular designates — or the acting titular while an encargo is
        # in force. UTCSyD only as a recorded exception, with a reason and a vía oficial.
        if self.titular_id == by.id and by.is_titular_of(self.code):
            return
        if self._acting_in_force(at) == by.id and not by.has_departed:
            return
        if by.is_coadministrator and exception and channel is not None:
            self._authority_exception_recorded(
                action=action,
                reason=validate_text("exception", exception, max_length=500),
                channel=channel.to_event(),
                by=by.id,
                timestamp=at,
            )
            return
        raise NotDistrictAuthorityError(by.id, action, self.code)

    def _require_applicable(self, request: ApplicableRequest) -> None:
        # 6.XI, 11.1.b: only an approved request, of this district, applied once.
        if request.status != "aprobada":
            raise InvalidTransitionError("change_request", request.id, request.status, "apply")
        if request.district != self.code:
            raise DistrictMismatchError(self.code, request.district)
        if str(request.id) in self.applied_change_requests:
            raise ChangeRequestMismatchError(request.id, "already applied")
