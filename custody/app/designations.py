"""Designations and absences (6.VII, 6.X): who is a district's titular, its acting titular
(*encargo de despacho*), its administrator and, during the administrator's absence, their
substitute; and each role's history with its vía oficial.

A change of who holds the credentials goes through :class:`custody.app.holders.HolderChanges`:
OpenBao's district group follows the ledger (revoke before record, grant after).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from custody.app.base import Actor, ScopeError
from custody.app.holders import HolderChanges
from events.domain import (
    Person,
    TitularAlreadyAppointedError,
    parse_district_id,
    require_coadministrator,
)
from events.domain.official_channel import OfficialChannel
from projections.history import designation_history
from projections.scope import sees_every_district


class Designations(HolderChanges):
    """Who holds each of a district's roles, and from when to when."""

    def appoint_titular(
        self, actor: Actor, district: str, username: str, channel: OfficialChannel | None
    ) -> dict[str, Any]:
        """``custodia titular``: the district's titular is now ``username``. A registered person
        without the titular role gets it; the previous titular's role ends with the post."""
        by = self.ledger.person(actor.username)
        require_coadministrator(by, "appoint titulares")  # before the idempotent answer below
        person = self.ledger.person(username)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            if item.titular_id == person.id and person.is_titular_of(code):
                # Already so (``personas alta --rol titular`` named them): nothing to record.
                return {"distrito": code, "titular": username, "saliente": None}
            now = self.clock()
            changed: list[Person] = []
            if not person.is_titular_of(code):
                person.grant_role("titular", district=code, by=by, at=now)
                changed.append(person)
            previous = item.titular_id
            item.appoint_titular(person, by=by, channel=channel, at=now)
            outgoing = None
            if previous is not None and previous != person.id:
                old = self.ledger.person(self.ledger.username_of(previous) or "")
                if old.is_titular_of(code):
                    old.revoke_role("titular", by=by, at=now)
                    changed.append(old)
                    outgoing = old.username
            if outgoing:  # revoke before record
                self.access.remove_role_member("titular", outgoing, caller_token=actor.token)
            self.ledger.save(item, *changed)
            if person in changed:
                self.access.add_role_member("titular", person.username, caller_token=actor.token)
        return {"distrito": code, "titular": username, "saliente": outgoing}

    def require_titular_vacancy(self, role: str, district: str | None, pid: UUID) -> None:
        """``personas alta --rol titular --distrito DD05`` names DD05's titular only when it has
        none; otherwise the change of titular is ``custodia titular`` (refused here, before
        anything is written)."""
        if role != "titular" or not district:
            return
        current = self.ledger.district(parse_district_id(district)).titular_id
        if current is not None and current != pid:
            raise TitularAlreadyAppointedError(str(parse_district_id(district)), current)

    def appoint_registered_titular(self, by: Person, person: Person, code: str) -> None:
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            if item.titular_id == person.id:  # a retried registration: appointed already
                return
            item.appoint_titular(person, by=by, at=self.clock(), vacant_only=True)
            self.ledger.save(item)

    def appoint_acting_titular(
        self,
        actor: Actor,
        district: str,
        username: str,
        *,
        starts_on: date,
        ends_on: date | None,
        channel: OfficialChannel,
    ) -> dict[str, Any]:
        """6.VII: an acting titular (*encargo de despacho*) while the titular is absent."""
        by, person = self.ledger.person(actor.username), self.ledger.person(username)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            item.appoint_acting_titular(
                person,
                starts_on=starts_on,
                ends_on=ends_on,
                by=by,
                channel=channel,
                policy=self.policy,
                at=self.clock(),
            )
            self.ledger.save(item)
        return {
            "distrito": code,
            "encargado": username,
            "desde": starts_on.isoformat(),
            "hasta": ends_on.isoformat() if ends_on else None,
        }

    def end_acting_titular(
        self, actor: Actor, district: str, channel: OfficialChannel | None
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            item.end_acting_titular(by=by, channel=channel, at=self.clock())
            self.ledger.save(item)
        return {"distrito": code, "titular": self.ledger.username_of(item.titular_id)}

    def designate(
        self,
        actor: Actor,
        district: str,
        username: str,
        channel: OfficialChannel,
        exception: str | None = None,
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        person = self.ledger.person(username)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            now = self.clock()
            outgoing = self.ledger.username_of(item.holder_at(now))
            item.designate(
                person, by=by, channel=channel, policy=self.policy, at=now, exception=exception
            )
            self._change_holder(item, lambda: self.ledger.save(item), now)
            obligations = item.open_obligations()
        return {
            "distrito": code,
            "administrador": username,
            "saliente": outgoing,
            "obligaciones_abiertas": len(obligations),
        }

    def report_absence(
        self,
        actor: Actor,
        district: str,
        *,
        reason: str,
        starts_on: date,
        ends_on: date | None,
        substitute: str,
        channel: OfficialChannel,
        exception: str | None = None,
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        sub = self.ledger.person(substitute)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            now = self.clock()
            item.report_absence(
                reason,
                substitute=sub,
                starts_on=starts_on,
                ends_on=ends_on,
                by=by,
                channel=channel,
                policy=self.policy,
                at=now,
                exception=exception,
            )
            self._change_holder(item, lambda: self.ledger.save(item), now)
            holder = self.ledger.username_of(item.holder_at(now))
        return {
            "distrito": code,
            "sustituto": substitute,
            "titular_de_credenciales": holder,
            "obligaciones_abiertas": len(item.open_obligations()),
        }

    def end_absence(
        self,
        actor: Actor,
        district: str,
        channel: OfficialChannel | None,
        exception: str | None = None,
    ) -> dict[str, Any]:
        by = self.ledger.person(actor.username)
        code = str(parse_district_id(district))
        with self.ledger.lock(code):
            item = self.ledger.district(code)
            now = self.clock()
            outgoing = self.ledger.username_of(item.holder_at(now))
            item.end_absence(
                by=by, channel=channel, policy=self.policy, at=now, exception=exception
            )
            self._change_holder(item, lambda: self.ledger.save(item), now)
        return {
            "distrito": code,
            "administrador": self.ledger.username_of(item.holder_at(now)),
            "saliente": outgoing,
            "obligaciones_abiertas": len(item.open_obligations()),
        }

    def history(self, actor: Actor, district: str, on: date | None) -> list[dict[str, Any]]:
        """6.VII: every holder of every role of the district (titular, acting titular,
        administrator, substitute) with from/to and vía oficial; ``on``: who held each role
        that day. For coadministrators, the Secretaría Ejecutiva and the district's titular."""
        by = self.ledger.person(actor.username)
        code = str(parse_district_id(district))
        item = self.ledger.district(code)
        allowed = (
            sees_every_district(by.roles)
            or (by.is_titular_of(code) and item.titular_id == by.id)
            or item.titular_at(self.clock()) == by.id
        )
        if not allowed:
            raise ScopeError(actor.username, code)
        names: dict[UUID, str | None] = {}

        def name_of(pid: UUID) -> str | None:
            if pid not in names:
                names[pid] = self.ledger.username_of(pid)
            return names[pid]

        events = self.ledger.app.repository.event_store.get(item.id)
        return designation_history(events, name_of, on=on)
