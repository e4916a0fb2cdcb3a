"""Joiners, movers and leavers (issue 18, R2, R9) as a property over random command sequences.

A hypothesis state machine drives two districts (DD05, DD06) and their people through
designations, absences and their ends, acting titulares, reads, rotations, role revocations and
departures, each attempted by whoever the strategy picks (many are refused). After every
command it checks, on the aggregates and on the events the command recorded:

- each district has at most one current holder, and that holder is an administrator (never
  someone who left, never someone whose administrator role was revoked);
- nobody who left holds anything: no role, no titularship, no encargo, no designation, no
  substitution, no credentials;
- every change of who could read an account opened exactly one obligation for it: a change of
  holder one per open account, a departure or revocation one per open account whose live
  version the person had seen (unless the change of holder already covered it);
- only the titular or the acting titular in force designates; UTCSyD only with a recorded
  exception.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from events.domain import District, DomainError, Person

from .domain_world import FINGERPRINT, OFICIO, POLICY, T0, new_person, sealed

DISTRICTS = ("DD05", "DD06")
DEPARTING = ("A", "B", "D", "E", "K", "T5", "R")
ADMINS = ("A", "B", "D", "E")


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        coadmin = Person.bootstrap("utcsyd", **sealed("utcsyd"), at=T0)
        self.people: dict[str, Person] = {
            "C": coadmin,
            "K": new_person("utcsyd2", by=coadmin, role="coadministrador"),
            "T5": new_person("titular05", by=coadmin, role="titular", district="DD05"),
            "T6": new_person("titular06", by=coadmin, role="titular", district="DD06"),
            "A": new_person("ana", by=coadmin, role="administrador", district="DD05"),
            "B": new_person("beto", by=coadmin, role="administrador", district="DD05"),
            "D": new_person("dora", by=coadmin, role="administrador"),
            "E": new_person("eva", by=coadmin, role="administrador", district="DD06"),
            "R": new_person("rosa", by=coadmin, role="secretaria"),
        }
        self.now = T0 + timedelta(minutes=1)
        self.districts: dict[str, District] = {}
        for code in DISTRICTS:
            district = District.register(code, by=coadmin, at=T0)
            titular = self.people["T5" if code == "DD05" else "T6"]
            district.appoint_titular(titular, by=coadmin, at=T0)
            district.register_account(
                f"{code}-x",
                handle=f"{code}IECM",
                email=f"{code.lower()}.x@iecm.mx",
                by=coadmin,
                at=T0,
            )
            district.start_rotation(
                f"{code}-x", version=1, fingerprint=FINGERPRINT, by=coadmin, at=T0
            )
            district.confirm_rotation(f"{code}-x", version=1, by=coadmin, at=T0)
            district.collect_events()
            self.districts[code] = district

    # --- helpers ---------------------------------------------------------------------------

    def tick(self) -> None:
        self.now += timedelta(seconds=1)

    def attempt(self, command: Any) -> bool:
        try:
            command()
        except DomainError as error:
            event(f"refused: {type(error).__name__}")
            return False
        event("done")
        return True

    def live_seen(self, district: District, person: UUID) -> set[str]:
        return {
            a.account_id
            for a in district.open_accounts()
            if any(
                v is not None and person in a.seen_by(v)
                for v in (a.current_version, a.staged_version)
            )
        }

    def check_obligations(self, district: District, recorded: Sequence[Any]) -> Counter[str]:
        """Every change of holder in ``events`` opened exactly one obligation per open account,
        right after it; returns the obligations opened per account."""
        events = list(recorded)
        opened: Counter[str] = Counter(
            e.account for e in events if isinstance(e, District.RotationObligationOpened)
        )
        changes = [e for e in events if isinstance(e, District.CredentialHolderChanged)]
        for change in changes:
            after = events[events.index(change) + 1 :]
            following = []
            for e in after:
                if not isinstance(e, District.RotationObligationOpened):
                    break
                following.append(e)
            accounts = [a.account_id for a in district.open_accounts()]
            assert sorted(e.account for e in following) == sorted(accounts)
            assert all(e.outgoing_holder_id == change.previous_holder_id for e in following)
        return opened

    # --- rules -----------------------------------------------------------------------------

    @rule(
        code=st.sampled_from(DISTRICTS),
        who=st.sampled_from(ADMINS),
        by=st.sampled_from(("T5", "T6", "R", "C", "C!", "A")),
    )
    def designate(self, code: str, who: str, by: str) -> None:
        district, person = self.districts[code], self.people[who]
        actor = self.people[by.rstrip("!")]
        exception = "instrucción de la DAOD" if by.endswith("!") else None
        authority = (
            district.titular_id == actor.id and actor.is_titular_of(code)
        ) or district.titular_at(self.now) == actor.id
        done = self.attempt(
            lambda: district.designate(
                person, by=actor, channel=OFICIO, policy=POLICY, at=self.now, exception=exception
            )
        )
        events = district.collect_events()
        if done:
            assert authority or (actor.is_coadministrator and exception)
            excepted = [e for e in events if isinstance(e, District.AuthorityExceptionRecorded)]
            assert len(excepted) == (0 if authority else 1)
            assert district.holder_id == person.id
        self.check_obligations(district, events)
        self.tick()

    @rule(
        code=st.sampled_from(DISTRICTS),
        who=st.sampled_from(ADMINS),
        days=st.none() | st.integers(min_value=1, max_value=3),
    )
    def absence(self, code: str, who: str, days: int | None) -> None:
        district = self.districts[code]
        titular = self.people["T5" if code == "DD05" else "T6"]
        today = POLICY.local_date(self.now)
        self.attempt(
            lambda: district.report_absence(
                "vacaciones",
                substitute=self.people[who],
                starts_on=today,
                ends_on=today + timedelta(days=days) if days else None,
                by=titular,
                channel=OFICIO,
                policy=POLICY,
                at=self.now,
            )
        )
        self.check_obligations(district, district.collect_events())
        self.tick()

    @rule(code=st.sampled_from(DISTRICTS))
    def end_absence(self, code: str) -> None:
        district = self.districts[code]
        titular = self.people["T5" if code == "DD05" else "T6"]
        self.attempt(lambda: district.end_absence(by=titular, policy=POLICY, at=self.now))
        self.check_obligations(district, district.collect_events())
        self.tick()

    @rule(code=st.sampled_from(DISTRICTS), end=st.booleans())
    def encargo(self, code: str, end: bool) -> None:
        district = self.districts[code]
        titular = self.people["T5" if code == "DD05" else "T6"]
        if end:
            self.attempt(lambda: district.end_acting_titular(by=titular, at=self.now))
        else:
            self.attempt(
                lambda: district.appoint_acting_titular(
                    self.people["R"],
                    starts_on=POLICY.local_date(self.now),
                    by=titular,
                    channel=OFICIO,
                    policy=POLICY,
                    at=self.now,
                )
            )
        district.collect_events()
        self.tick()

    @rule(step=st.sampled_from([timedelta(hours=3), timedelta(days=1), timedelta(days=2)]))
    def time_passes(self, step: timedelta) -> None:
        self.now += step
        for district in self.districts.values():
            district.advance(policy=POLICY, at=self.now)
            self.check_obligations(district, district.collect_events())

    @rule(code=st.sampled_from(DISTRICTS), who=st.sampled_from(("holder", "C", "K")))
    def read(self, code: str, who: str) -> None:
        district = self.districts[code]
        holder = district.holder_at(self.now)
        reader = (
            next((p for p in self.people.values() if p.id == holder), None)
            if who == "holder"
            else self.people[who]
        )
        account = district.account(f"{code}-x")
        if reader is None or account.current_version is None:
            return
        self.attempt(
            lambda: district.record_read(
                f"{code}-x",
                reader=reader,
                version=account.current_version or 0,
                purpose="publicar",
                device_id=None,
                policy=POLICY,
                at=self.now,
            )
        )
        self.check_obligations(district, district.collect_events())
        self.tick()

    @rule(code=st.sampled_from(DISTRICTS), by=st.sampled_from(("C", "K")))
    def rotate(self, code: str, by: str) -> None:
        district = self.districts[code]
        account = district.account(f"{code}-x")
        version = max(account.highest_version, account.highest_confirmed) + 1
        actor = self.people[by]

        def both() -> None:
            district.start_rotation(
                f"{code}-x", version=version, fingerprint=FINGERPRINT, by=actor, at=self.now
            )
            district.confirm_rotation(f"{code}-x", version=version, by=actor, at=self.now)

        self.attempt(both)
        district.collect_events()
        self.tick()

    def _release(self, person: Person, roles: frozenset[str], departure: bool) -> None:
        """What the custody layer does after the person's command: release them everywhere,
        checking the obligations each district opened."""
        by = self.people["C"]
        for district in self.districts.values():
            seen = self.live_seen(district, person.id)
            holder_before = district.holder_id
            already = {
                o.account_id
                for o in district.open_obligations()
                if o.outgoing_holder_id == person.id and o.cause in ("salida", "revocacion")
            }
            owed = district.release_person(
                person,
                roles=roles,
                reason="baja" if departure else "otro",
                cause="salida" if departure else "revocacion",
                by=by,
                channel=OFICIO,
                policy=POLICY,
                at=self.now,
            )
            events = district.collect_events()
            opened = self.check_obligations(district, events)
            assert all(count == 1 for count in opened.values()), opened
            changed = district.holder_id != holder_before
            reader = bool(roles & {"administrador", "coadministrador"})
            expected = set()
            if changed:
                expected = {a.account_id for a in district.open_accounts()}
            if reader:
                expected |= seen - already
            assert set(opened) == expected == set(owed)

    @rule(who=st.sampled_from(DEPARTING))
    def depart(self, who: str) -> None:
        person = self.people[who]
        done = self.attempt(
            lambda: person.depart("baja", by=self.people["C"], channel=OFICIO, at=self.now)
        )
        if done:
            person.collect_events()
            self._release(
                person,
                frozenset({"titular", "administrador", "coadministrador", "secretaria"}),
                departure=True,
            )
        self.tick()

    @rule(
        who=st.sampled_from(DEPARTING), role=st.sampled_from(("administrador", "coadministrador"))
    )
    def revoke(self, who: str, role: str) -> None:
        person = self.people[who]
        done = self.attempt(lambda: person.revoke_role(role, by=self.people["C"], at=self.now))
        if done:
            person.collect_events()
            self._release(person, frozenset({role}), departure=False)
        self.tick()

    @rule(who=st.sampled_from(ADMINS))
    def grant_back(self, who: str) -> None:
        person = self.people[who]
        district = {"A": "DD05", "B": "DD05", "E": "DD06", "D": None}[who]
        self.attempt(
            lambda: person.grant_role(
                "administrador", district=district, by=self.people["C"], at=self.now
            )
        )
        person.collect_events()
        self.tick()

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def one_eligible_holder_per_district(self) -> None:
        by_id = {p.id: p for p in self.people.values()}
        for code, district in self.districts.items():
            holder = district.holder_at(self.now)
            if holder is None:
                continue
            person = by_id[holder]
            assert not person.has_departed
            assert person.designation_problem(code) is None, (code, person.username)
            absence = district.absence
            assert holder in {
                district.administrator.person_id if district.administrator else None,
                absence.substitute_id if absence else None,
            }

    @invariant()
    def nobody_who_left_holds_anything(self) -> None:
        for person in self.people.values():
            if not person.has_departed:
                continue
            assert person.roles == {}
            for district in self.districts.values():
                held = {
                    district.titular_id,
                    getattr(district, "acting_titular_id", None),
                    district.administrator.person_id if district.administrator else None,
                    district.absence.substitute_id if district.absence else None,
                    district.holder_id,
                    district.holder_at(self.now),
                }
                assert person.id not in held


TestLifecycle = LifecycleMachine.TestCase
TestLifecycle.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
