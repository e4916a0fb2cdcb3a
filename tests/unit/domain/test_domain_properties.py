"""Properties over random command sequences (hypothesis stateful testing), plus two focused ones.

Two machines drive district DD05 and its people with random commands at random instants, many of
them ones the model should refuse: one designations, absences, accounts, rotations and reads; the
other change requests and incidents. After every command they check the invariants against an
independent reference (who should hold the credentials when, who is entitled, whether the command
should have been accepted) and against the events recorded so far:

- at most one holder, and it is who the reference says (the administrator, or the substitute
  during an absence's period);
- every change of holder opens one obligation for every open account, right after it;
- an obligation closes only by a confirmed rotation of its account, after it opened, to a version
  its outgoing holder had not seen — and every such rotation does close it;
- a read is recorded exactly when the reader is entitled (coadministrator, or holder with the
  administrator role); the titular and the secretaria never read;
- a change request is applied only after approval; incidents only move forward (containment
  may precede notification, closure needs both, a closed or dismissed incident takes no step,
  only the secretaria acknowledges, once, a notified incident);
- a refused command changes nothing; everything saved reloads equal through eventsourcing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from events.domain import (
    ChangeRequest,
    District,
    DomainError,
    Incident,
    NotEntitledToReadError,
    OfficialChannel,
    Person,
)

from .copy_check import assert_faithful_copy
from .domain_world import (
    FINGERPRINT,
    OFICIO,
    POLICY,
    T0,
    in_memory_application,
    later,
    make_world,
    new_person,
    sealed,
)

PLATFORMS = ("x", "facebook", "instagram")
# Weighted towards the people a command is meant for, so that most sequences get somewhere.
ADMINS = ("A", "B", "D")
CANDIDATES = ("A", "B", "D", "X", "A", "B", "D", "X", "C", "T", "S", "E")
READERS = (
    *("holder", "administrator", "holder", "administrator"),
    *("C", "X", "A", "B", "D", "T", "S", "E"),
)
AUTHORITIES_TRIED = ("T", "T", "T", "C", "X", "A", "S")
STEPS = st.sampled_from(
    [
        timedelta(minutes=1),
        timedelta(hours=2),
        timedelta(hours=9),
        timedelta(days=1),
        timedelta(days=3),
    ]
)
MEMO = OfficialChannel.memorandum("MEM/DD05/7")
INCIDENT_STEP_EVENTS = (
    Incident.Notified,
    Incident.Contained,
    Incident.Closed,
    Incident.Dismissed,
    Incident.Acknowledged,
)


@dataclass
class ExpectedAbsence:
    substitute: UUID
    starts_at: datetime
    ends_at: datetime | None


@dataclass
class TrackedObligation:
    account: str
    opened_at: datetime
    outgoing: UUID | None


class _Ledger(RuleBasedStateMachine):
    """People, district DD05 in operation, the reference, the checks, and the rules both
    machines share (time and rotations)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        coadmin = Person.bootstrap("utcsyd", **sealed("utcsyd"), at=T0)
        dual = new_person("dual", by=coadmin, role="administrador", district="DD05")
        dual.grant_role("coadministrador", by=coadmin, at=T0)
        self.people: dict[str, Person] = {
            "C": coadmin,
            "X": dual,
            "T": new_person("titular05", by=coadmin, role="titular", district="DD05"),
            "S": new_person("secretaria", by=coadmin, role="secretaria"),
            "A": new_person("ana", by=coadmin, role="administrador", district="DD05"),
            "B": new_person("beto", by=coadmin, role="administrador"),
            "D": new_person("dora", by=coadmin, role="administrador", district="DD05"),
            "E": new_person("otro06", by=coadmin, role="administrador", district="DD06"),
        }
        self.district = District.register("DD05", by=coadmin, at=T0)
        self.district.appoint_titular(self.people["T"], by=coadmin, at=T0)
        self.requests: list[ChangeRequest] = []
        self.incidents: list[Incident] = []
        self.app = in_memory_application()
        self.app.save(*self.people.values(), self.district)

        # The reference: what the guidelines say, computed independently of the model.
        self.admin: UUID | None = None
        self.absence: ExpectedAbsence | None = None
        self.open_accounts: set[str] = set()
        # What the recorded events say so far.
        self.holder: UUID | None = None
        self.obligations: dict[UUID, TrackedObligation] = {}
        self.seen: dict[tuple[str, int], set[UUID]] = {}
        self.request_status: dict[UUID, str] = {}
        self.incident_steps: dict[UUID, set[str]] = {}
        self.incident_rotation: dict[UUID, tuple[str, datetime]] = {}
        self.last_confirmed: dict[str, datetime] = {}
        self._start_in_operation()

    def _start_in_operation(self) -> None:
        """Most sequences are worth running from a district in operation: two accounts at
        version 1 and ana designated (set up through the checked path)."""
        titular, ana = self.people["T"], self.people["A"]
        for platform in ("x", "facebook"):
            self.register(platform, compliant=True, existing=False)
        assert self.attempt(
            lambda: self.district.designate(
                ana, by=titular, channel=OFICIO, policy=POLICY, at=self.now
            ),
            self.district,
        )
        self.admin = ana.id
        self.commit(self.district)
        for platform in ("x", "facebook"):
            self.start_rotation(platform, by="C", bump=1)
            self.finish_rotation(platform, confirm=True)
        assert not self.obligations

    def register(self, platform: str, *, compliant: bool, existing: bool) -> None:
        account = f"DD05-{platform}"
        done = self.attempt(
            lambda: self.district.register_account(
                account,
                handle="DD05IECM" if compliant else "dd05",
                email="dd05@iecm.mx" if compliant else "dd05@gmail.com",
                existing=existing,
                by=self.people["C"],
                at=self.now,
            ),
            self.district,
        )
        assert done == (account not in self.open_accounts and (compliant or existing))
        if done:
            self.open_accounts.add(account)
            self.commit(self.district)

    # --- the reference ---------------------------------------------------------------------

    def coadmins(self) -> set[UUID]:
        return {p.id for p in self.people.values() if p.is_coadministrator}

    def eligible(self, person: Person) -> bool:
        return person.has_role("administrador") and person.roles["administrador"] in (
            None,
            "DD05",
        )

    def absence_active(self, at: datetime) -> bool:
        absence = self.absence
        return absence is not None and (absence.ends_at is None or at < absence.ends_at)

    def expected_holder(self, at: datetime) -> UUID | None:
        absence = self.absence
        if self.admin is None:
            return None
        if absence is not None and self.absence_active(at) and absence.starts_at <= at:
            return absence.substitute
        return self.admin

    def entitled(self, person: Person, at: datetime) -> bool:
        if person.is_coadministrator:
            return True
        return person.id == self.expected_holder(at) and self.eligible(person)

    def person(self, who: str) -> Person:
        """A person by key, or by what they are now: `holder` (per the reference) or
        `administrator` (the designated one, absent or not)."""
        wanted = {"holder": self.expected_holder(self.now), "administrator": self.admin}
        if who in wanted:
            return next((p for p in self.people.values() if p.id == wanted[who]), self.people["A"])
        return self.people[who]

    def is_authority(self, person: Person) -> bool:
        # R9: the titular; UTCSyD only with a recorded exception (never tried here).
        return person.is_titular_of("DD05")

    # --- running commands ------------------------------------------------------------------

    def attempt(self, command: Callable[[], object], *aggregates: Aggregate) -> bool:
        """Runs a command; True if done (its events still pending), False if refused — after
        checking that the refusal changed nothing."""
        before = [copy.deepcopy(a) for a in aggregates]
        for aggregate, snapshot in zip(aggregates, before, strict=True):
            assert_faithful_copy(aggregate, snapshot)
        try:
            command()
        except DomainError:
            for aggregate, snapshot in zip(aggregates, before, strict=True):
                assert aggregate == snapshot, "a refused command changed the aggregate"
            return False
        return True

    def commit(self, *aggregates: Aggregate) -> None:
        """Checks the pending events against the (updated) reference, then saves them. The
        next command comes a second later (so that "after" is never "at the same time")."""
        self.check([e for a in aggregates for e in a.pending_events])
        self.app.save(*aggregates)
        self.now += timedelta(seconds=1)

    def run(self, command: Callable[[], object], *aggregates: Aggregate) -> bool:
        """A command that does not change the reference: attempt and commit."""
        done = self.attempt(command, *aggregates)
        if done:
            self.commit(*aggregates)
        return done

    def check(self, events: list[Any]) -> None:
        for index, event in enumerate(events):
            if isinstance(event, District.CredentialHolderChanged):
                assert event.previous_holder_id == self.holder, "holder changes form a chain"
                assert event.holder_id != event.previous_holder_id
                self.holder = event.holder_id
                following = []
                for later_event in events[index + 1 :]:
                    if not isinstance(later_event, District.RotationObligationOpened):
                        break
                    following.append(later_event)
                assert {o.account for o in following} == self.open_accounts
                assert len(following) == len(self.open_accounts)
                for obligation in following:
                    assert obligation.outgoing_holder_id == event.previous_holder_id
                    assert obligation.incoming_holder_id == event.holder_id
                    assert obligation.deadline == POLICY.rotation_deadline(event.timestamp)
            elif isinstance(event, District.RotationObligationOpened):
                self.obligations[event.obligation_id] = TrackedObligation(
                    event.account, event.timestamp, event.outgoing_holder_id
                )
            elif isinstance(event, District.RotationStarted):
                self.seen.setdefault((event.account, event.version), set()).add(event.by)
            elif isinstance(event, District.CredentialRead):
                assert event.by not in (self.people["T"].id, self.people["S"].id)
                assert event.by in self.coadmins() or event.by == self.expected_holder(
                    event.timestamp
                ), "a read was recorded for someone not entitled"
                if event.kind == "contrasena":
                    assert event.version is not None
                    self.seen.setdefault((event.account, event.version), set()).add(event.by)
            elif isinstance(event, District.RotationConfirmed):
                seen = self.seen.get((event.account, event.version), set())
                owed = {
                    oid
                    for oid, o in self.obligations.items()
                    if o.account == event.account and o.outgoing not in seen
                }
                assert set(event.closed_obligation_ids) == owed
                for oid in event.closed_obligation_ids:
                    assert self.obligations[oid].opened_at <= event.timestamp
                    del self.obligations[oid]
                self.last_confirmed[event.account] = event.timestamp
            elif isinstance(event, District.RotationObligationWithdrawn):
                closing = [
                    e
                    for e in events[index:]
                    if isinstance(e, District.AccountClosed) and e.account == event.account
                ]
                assert closing, "obligations are withdrawn only when their account closes"
                del self.obligations[event.obligation_id]
            elif isinstance(event, ChangeRequest.Filed):
                self.request_status[event.originator_id] = "solicitada"
            elif isinstance(event, ChangeRequest.Approved | ChangeRequest.Rejected):
                assert self.request_status[event.originator_id] == "solicitada"
                self.request_status[event.originator_id] = "decidida"
                if isinstance(event, ChangeRequest.Approved):
                    self.request_status[event.originator_id] = "aprobada"
            elif isinstance(event, ChangeRequest.Applied):
                assert self.request_status[event.originator_id] == "aprobada", (
                    "a change was applied without approval"
                )
                self.request_status[event.originator_id] = "aplicada"
            elif isinstance(event, Incident.Reported):
                assert event.detected_at <= event.timestamp
                self.incident_steps[event.originator_id] = set()
                self.incident_rotation[event.originator_id] = (event.account, event.timestamp)
            elif isinstance(event, INCIDENT_STEP_EVENTS):
                step = type(event).__name__
                done = self.incident_steps[event.originator_id]
                assert step not in done, "each step of an incident happens once"
                if step != "Acknowledged":
                    assert not done & {"Closed", "Dismissed"}, "a finished incident takes no step"
                if step == "Contained":
                    account, reported_at = self.incident_rotation[event.originator_id]
                    assert self.last_confirmed.get(account, reported_at) > reported_at
                if step == "Closed":
                    assert {"Notified", "Contained"} <= done, "closed before notice and containment"
                if step == "Acknowledged":
                    assert "Notified" in done, "acknowledged before being notified"
                    assert event.by == self.person("S").id, "only the secretaria acknowledges"
                done.add(step)
        open_in_model = {o.obligation_id for o in self.district.open_obligations()}
        assert open_in_model == set(self.obligations)
        assert self.district.holder_at(self.now) == self.expected_holder(self.now)

    def check_holder(self, done: bool) -> None:
        """The model predicts the reference's holder; after a command that depends on the
        holder succeeds, that holder is also the recorded one (a refused command records
        nothing, not even a substitution that fell due)."""
        assert self.district.holder_at(self.now) == self.expected_holder(self.now)
        if done:
            assert self.district.holder_id == self.expected_holder(self.now)
            assert self.holder == self.district.holder_id

    # --- rules -----------------------------------------------------------------------------

    @rule(step=STEPS)
    def time_passes(self, step: timedelta) -> None:
        self.now += step

    @rule(
        platform=st.sampled_from(PLATFORMS),
        by=st.sampled_from(("C", "X", "holder", "A")),
        bump=st.integers(0, 2),
    )
    def start_rotation(self, platform: str, by: str, bump: int) -> None:
        account = f"DD05-{platform}"
        highest = max((v for (a, v) in self.seen if a == account), default=0)
        self.run(
            lambda: self.district.start_rotation(
                account,
                version=highest + bump,
                fingerprint=FINGERPRINT,
                by=self.person(by),
                at=self.now,
            ),
            self.district,
        )

    @rule(platform=st.sampled_from(PLATFORMS), confirm=st.booleans())
    def finish_rotation(self, platform: str, confirm: bool) -> None:
        account = f"DD05-{platform}"
        staged = self._staged(account)
        version = staged if staged is not None else 1
        coadmin = self.people["C"]

        def confirm_it() -> object:
            return self.district.confirm_rotation(account, version=version, by=coadmin, at=self.now)

        def abandon_it() -> object:
            self.district.abandon_rotation(account, version=version, by=coadmin, at=self.now)
            return None

        command = confirm_it if confirm else abandon_it
        assert self.run(command, self.district) == (staged is not None)

    def _staged(self, account: str) -> int | None:
        current = self.district.accounts.get(account)
        return current.staged_version if current and current.is_open else None

    def teardown(self) -> None:
        aggregates: list[Aggregate] = [
            *self.people.values(),
            self.district,
            *self.requests,
            *self.incidents,
        ]
        for aggregate in aggregates:
            assert self.app.repository.get(aggregate.id) == aggregate


class DistrictMachine(_Ledger):
    """Designations, absences, accounts, rotations and reads."""

    @rule(after=st.sampled_from([timedelta(0), timedelta(seconds=1)]))
    def until_midnight(self, after: timedelta) -> None:
        """Absences start and end at local midnight: land on the boundary."""
        self.now = POLICY.start_of_day(POLICY.local_date(self.now) + timedelta(days=1)) + after

    @rule()
    def advance(self) -> None:
        assert self.run(lambda: self.district.advance(policy=POLICY, at=self.now), self.district)
        self.check_holder(done=True)
        self._forget_finished_absence()

    @rule(who=st.sampled_from(CANDIDATES), by=st.sampled_from(AUTHORITIES_TRIED))
    def designate(self, who: str, by: str) -> None:
        person, actor = self.people[who], self.people[by]
        # Designating the absent administrator again brings them back (issue 18).
        expected = (
            self.is_authority(actor)
            and self.eligible(person)
            and (person.id != self.admin or self.absence_active(self.now))
        )
        done = self.attempt(
            lambda: self.district.designate(
                person, by=actor, channel=OFICIO, policy=POLICY, at=self.now
            ),
            self.district,
        )
        assert done == expected
        if done:
            self.admin, self.absence = person.id, None
            self.commit(self.district)
        self.check_holder(done)

    @rule(by=st.sampled_from(AUTHORITIES_TRIED), reason=st.sampled_from(["baja", "promocion"]))
    def end_designation(self, by: str, reason: str) -> None:
        actor = self.people[by]
        expected = self.is_authority(actor) and self.admin is not None
        done = self.attempt(
            lambda: self.district.end_designation(
                reason, by=actor, channel=OFICIO, policy=POLICY, at=self.now
            ),
            self.district,
        )
        assert done == expected
        if done:
            self.admin, self.absence = None, None
            self.commit(self.district)
        self.check_holder(done)

    @rule(
        who=st.sampled_from(CANDIDATES),
        by=st.sampled_from(AUTHORITIES_TRIED),
        offset=st.integers(min_value=-2, max_value=4),
        length=st.none() | st.integers(min_value=1, max_value=5),
    )
    def report_absence(self, who: str, by: str, offset: int, length: int | None) -> None:
        substitute, actor = self.people[who], self.people[by]
        today = POLICY.local_date(self.now)
        starts_on = today + timedelta(days=offset)
        ends_on = starts_on + timedelta(days=length) if length else None
        expected = (
            self.is_authority(actor)
            and self.admin is not None
            and not self.absence_active(self.now)
            and self.eligible(substitute)
            and substitute.id != self.admin
            and (ends_on is None or ends_on > today)
        )
        done = self.attempt(
            lambda: self.district.report_absence(
                "vacaciones",
                substitute=substitute,
                starts_on=starts_on,
                ends_on=ends_on,
                by=actor,
                channel=OFICIO,
                policy=POLICY,
                at=self.now,
            ),
            self.district,
        )
        assert done == expected
        if done:
            self.absence = ExpectedAbsence(
                substitute.id,
                max(POLICY.start_of_day(starts_on), self.now),
                POLICY.start_of_day(ends_on) if ends_on else None,
            )
            self.commit(self.district)
        self.check_holder(done)

    @rule(by=st.sampled_from(AUTHORITIES_TRIED))
    def end_absence(self, by: str) -> None:
        actor = self.people[by]
        expected = self.is_authority(actor) and self.absence_active(self.now)
        done = self.attempt(
            lambda: self.district.end_absence(by=actor, policy=POLICY, at=self.now),
            self.district,
        )
        assert done == expected
        if done:
            self.absence = None
            self.commit(self.district)
        self.check_holder(done)
        self._forget_finished_absence()

    def _forget_finished_absence(self) -> None:
        if self.absence is not None and not self.absence_active(self.now):
            self.absence = None

    @rule(who=st.sampled_from(ADMINS))
    def toggle_administrator_role(self, who: str) -> None:
        person = self.people[who]
        if person.has_role("administrador"):
            command = lambda: person.revoke_role(  # noqa: E731
                "administrador", by=self.people["C"], at=self.now
            )
        else:
            command = lambda: person.grant_role(  # noqa: E731
                "administrador", district="DD05", by=self.people["C"], at=self.now
            )
        assert self.run(command, person)

    @rule(platform=st.sampled_from(PLATFORMS), compliant=st.booleans(), existing=st.booleans())
    def register_account(self, platform: str, compliant: bool, existing: bool) -> None:
        self.register(platform, compliant=compliant, existing=existing)

    @rule(platform=st.sampled_from(PLATFORMS))
    def close_account(self, platform: str) -> None:
        account = f"DD05-{platform}"
        done = self.attempt(
            lambda: self.district.close_account(
                account, by=self.people["C"], channel=OFICIO, at=self.now
            ),
            self.district,
        )
        assert done == (account in self.open_accounts)
        if done:
            self.open_accounts.discard(account)
            self.commit(self.district)

    @rule(
        platform=st.sampled_from(PLATFORMS),
        who=st.sampled_from(READERS),
        staged=st.booleans(),
        voided=st.booleans(),
    )
    def read(self, platform: str, who: str, staged: bool, voided: bool) -> None:
        """Reads the staged version if asked and there is one, else the current one (version
        errors are the unit tests' business; here entitlement is); a read may then be voided
        (its wrapped read failed), which changes nobody's exposure."""
        account, reader = f"DD05-{platform}", self.person(who)
        current = self.district.accounts.get(account)
        staged = staged and current is not None and current.staged_version is not None
        version = None
        if current is not None:
            version = current.staged_version if staged else current.current_version
        done = self.run(
            lambda: self.district.record_read(
                account,
                reader=reader,
                version=version if version is not None else 10_000,  # none to read
                purpose="operar la cuenta",
                device_id=None,
                policy=POLICY,
                at=self.now,
            ),
            self.district,
        )
        expected = (
            account in self.open_accounts
            and version is not None
            and self.entitled(reader, self.now)
            and (not staged or reader.is_coadministrator)
        )
        assert done == expected
        self.check_holder(done)
        if done and voided and version is not None:
            exposed = self.district.exposure(account, version)
            assert self.run(
                lambda: self.district.void_read(
                    account, reader=reader, version=version, reason="VaultServerError", at=self.now
                ),
                self.district,
            )
            assert self.district.exposure(account, version) == exposed


class LifecycleMachine(_Ledger):
    """Change requests and incidents on a district in operation (with rotations, which both
    depend on)."""

    # --- change requests -------------------------------------------------------------------

    @rule(
        platform=st.sampled_from(PLATFORMS[:2]),
        field=st.sampled_from(("otro", "contrasena", "correo")),
        step=st.sampled_from(("file", "approve", "reject", "apply", "apply")),
        by=st.sampled_from(("C", "C", "T", "holder", "S")),
    )
    def change_request(self, platform: str, field: str, step: str, by: str) -> None:
        """Files a request for the account, or moves its latest request along (possibly in
        the wrong order, or by the wrong person)."""
        account, actor = f"DD05-{platform}", self.person(by)
        pending = [r for r in self.requests if r.account == account and r.field == field]
        if step == "file" or not pending:
            try:
                request = ChangeRequest.file(
                    self.district, account, field, "Ajuste", channel=MEMO, by=actor, at=self.now
                )
            except DomainError:
                return
            self.requests.append(request)
            self.commit(request)
            return
        request = pending[-1]
        if step in ("approve", "reject"):
            decide = request.approve if step == "approve" else request.reject
            self.run(lambda: decide(by=actor, at=self.now), request)
            return

        def apply() -> None:
            if request.field == "contrasena":
                staged = self._staged(request.account)
                self.district.confirm_rotation(
                    request.account,
                    version=staged or 1,
                    by=actor,
                    at=self.now,
                    change_request=request,
                )
            elif request.field == "correo":
                self.district.change_account_setting(
                    request, "nuevo.dd05@iecm.mx", by=actor, at=self.now
                )
            request.apply(self.district, by=actor, at=self.now)

        self.run(apply, self.district, request)

    # --- incidents -------------------------------------------------------------------------

    @rule(
        platform=st.sampled_from(PLATFORMS[:2]),
        step=st.sampled_from(("report", "notify", "contain", "close", "dismiss", "acknowledge")),
        by=st.sampled_from(("C", "C", "T", "holder", "S")),
    )
    def incident(self, platform: str, step: str, by: str) -> None:
        """Reports an incident on the account, or handles its latest open one (possibly out
        of order, or by the wrong person)."""
        account, actor = f"DD05-{platform}", self.person(by)
        open_ones = [i for i in self.incidents if i.account == account and i.is_open]
        if step == "report" or not open_ones:
            try:
                incident = Incident.report(
                    self.district,
                    account,
                    "intervencion",
                    "Publicaciones ajenas",
                    by=actor,
                    policy=POLICY,
                    at=self.now,
                )
            except DomainError:
                return
            self.incidents.append(incident)
            self.commit(incident)
            return
        incident = open_ones[-1]
        commands: dict[str, Callable[[], None]] = {
            "notify": lambda: incident.notify(channel=OFICIO, by=actor, at=self.now),
            "contain": lambda: incident.contain(self.district, "Rotada", by=actor, at=self.now),
            "close": lambda: incident.close("Cerrado", by=actor, at=self.now),
            "dismiss": lambda: incident.dismiss("Falsa alarma", by=actor, at=self.now),
            "acknowledge": lambda: incident.acknowledge("Medidas", by=actor, at=self.now),
        }
        self.run(commands[step], incident)


_SLOW_IS_FINE = [HealthCheck.too_slow]
DistrictMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None, suppress_health_check=_SLOW_IS_FINE
)
LifecycleMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=_SLOW_IS_FINE
)
TestDistrictMachine = DistrictMachine.TestCase
TestLifecycleMachine = LifecycleMachine.TestCase


# --- focused properties ----------------------------------------------------------------------

READER_KEYS = ("administrator", "substitute", "coadmin", "titular", "secretaria", "other", "carla")


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(min_value=-2, max_value=3),
    length=st.none() | st.integers(min_value=1, max_value=4),
    minutes=st.integers(min_value=0, max_value=8 * 24 * 60),
    reader=st.sampled_from(READER_KEYS),
    role_revoked=st.booleans(),
)
def test_reads_are_recorded_exactly_for_whoever_is_entitled_at_that_moment(
    offset: int, length: int | None, minutes: int, reader: str, role_revoked: bool
) -> None:
    """R1 / 6.IX around an absence: at any moment, a read succeeds iff the reader is a
    coadministrator, or the holder for that moment (the substitute within the absence's
    period, the administrator outside it) still holding the administrator role."""
    world = make_world()
    starts_on = date(2025, 3, 3) + timedelta(days=offset)
    ends_on = starts_on + timedelta(days=length) if length else None
    if ends_on is not None and ends_on <= date(2025, 3, 3):
        ends_on = date(2025, 3, 4)
    world.district.report_absence(
        "vacaciones",
        substitute=world.beto,
        starts_on=starts_on,
        ends_on=ends_on,
        by=world.titular,
        channel=OFICIO,
        policy=POLICY,
        at=later(10),
    )
    person = {
        "administrator": world.ana,
        "substitute": world.beto,
        "coadmin": world.coadmin,
        "titular": world.titular,
        "secretaria": world.secretaria,
        "other": world.other,
        "carla": world.carla,
    }[reader]
    if role_revoked and person.has_role("administrador"):
        person.revoke_role("administrador", by=world.coadmin, at=later(11))
    at = later(11 + minutes)
    start = max(POLICY.start_of_day(starts_on), later(10))
    end = POLICY.start_of_day(ends_on) if ends_on else None
    substituting = start <= at and (end is None or at < end)
    holder = world.beto if substituting else world.ana
    entitled = person.is_coadministrator or (person is holder and person.has_role("administrador"))
    try:
        world.district.record_read(
            "DD05-x",
            reader=person,
            version=1,
            purpose="operar",
            device_id=None,
            policy=POLICY,
            at=at,
        )
    except NotEntitledToReadError:
        assert not entitled
    else:
        assert entitled
        assert world.district.holder_id == holder.id


@settings(max_examples=100, deadline=None)
@given(
    exposures=st.lists(
        st.tuples(st.sampled_from(("read", "start")), st.sampled_from(("outgoing", "coadmin"))),
        max_size=4,
    )
)
def test_an_obligation_closes_only_with_a_version_its_outgoing_holder_never_saw(
    exposures: list[tuple[str, str]],
) -> None:
    """R2: whoever saw the staged version (by generating it or reading it) — if that includes
    the outgoing holder, confirming it leaves their obligation open; otherwise it closes it."""
    world = make_world(designate=False)
    dual = new_person("dual", by=world.coadmin, role="administrador", district="DD05")
    dual.grant_role("coadministrador", by=world.coadmin, at=T0)
    district = world.district
    district.designate(dual, by=world.titular, channel=OFICIO, policy=POLICY, at=later(2))
    for account in ("DD05-x", "DD05-facebook"):  # fulfil the designation's obligations
        district.start_rotation(
            account, version=2, fingerprint=FINGERPRINT, by=world.coadmin, at=later(3)
        )
        district.confirm_rotation(account, version=2, by=world.coadmin, at=later(3))
    starts = [who for kind, who in exposures if kind == "start"]
    starter = dual if starts[:1] == ["outgoing"] else world.coadmin
    district.start_rotation("DD05-x", version=3, fingerprint=FINGERPRINT, by=starter, at=later(4))
    for kind, who in exposures:
        if kind == "read":
            district.record_read(
                "DD05-x",
                reader=dual if who == "outgoing" else world.coadmin,
                version=3,
                purpose="revisar",
                device_id=None,
                policy=POLICY,
                at=later(5),
            )
    outgoing_saw = starter is dual or ("read", "outgoing") in exposures
    district.designate(world.ana, by=world.titular, channel=OFICIO, policy=POLICY, at=later(6))
    owed = district.open_obligations("DD05-x")
    assert [o.outgoing_holder_id for o in owed] == [dual.id]
    fulfilled = district.confirm_rotation("DD05-x", version=3, by=world.coadmin, at=later(7))
    assert (fulfilled == [owed[0].obligation_id]) is not outgoing_saw
    assert (district.open_obligations("DD05-x") == []) is not outgoing_saw
