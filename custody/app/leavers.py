"""Leavers (6.X; 9.IV, 9.XX): one role revoked, a departure (``personas baja``), and the erasure
of a person's personal data.

A role revoked or a departure takes access away first: OpenBao's identity is disabled (a
departure) and the district and role groups are emptied before the ledger records the end
(revoke before record), so the same command again after a failure completes it; every account
the person could read, or has seen since its last rotation, then owes one. An erasure destroys
the person's transit key: their sealed personal data become unrecoverable, and the ledger keeps
verifying.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from custody.app.base import Actor
from custody.app.holders import HolderChanges
from events.domain import DistrictId, Person
from events.domain.official_channel import OfficialChannel
from events.domain.values import ROLES, choice


class Leavers(HolderChanges):
    """A person's roles ended, their departure, and the erasure of their personal data."""

    def revoke_role(
        self, actor: Actor, username: str, role: str, channel: OfficialChannel | None = None
    ) -> dict[str, Any]:
        """6.X: a coadministrator ends one role, with the effects of a departure for that role:
        a titular's post ends; an administrator's designation or substitution ends and their
        district group is emptied at once; every account the person could read or has seen
        since its last rotation owes one (for a coadministrator: every one they revealed or
        generated). OpenBao first, then the ledger (revoke before record)."""
        role = choice("rol", role, ROLES)  # the one spelling every check below compares with
        by = self.ledger.person(actor.username)
        person = self.ledger.person(username)
        district = person.roles.get(role)
        now = self.clock()
        person.revoke_role(role, by=by, at=now)  # refused here if they do not hold it
        codes = [district] if role == "titular" and district else list(DistrictId.all())
        owed: list[str] = []
        if role in ("titular", "administrador", "coadministrador"):
            owed = self._release(
                by, person, frozenset({role}), "otro", "revocacion", channel, codes
            )
        if role in ("coadministrador", "titular", "secretaria"):
            self.access.remove_role_member(
                role,
                person.username,  # as OpenBao stores it, whatever case was typed
                caller_token=actor.token,
            )
        self.ledger.save(person)
        return {"usuario": person.username, "rol_revocado": role, "obligaciones_abiertas": owed}

    def depart(
        self, actor: Actor, username: str, reason: str, channel: OfficialChannel
    ) -> dict[str, Any]:
        """6.X: ``personas baja``. At once: the person's identity is disabled in OpenBao
        (every session and child token refused from the next request, the login too), every
        role and designation ends (district groups emptied, role groups left), and every
        account they could read or have seen since its last rotation owes one. The ledger
        records the departure last, so a retried ``baja`` after a failure completes it."""
        by = self.ledger.person(actor.username)
        person = self.ledger.person(username)
        held = person.depart(reason.replace("-", "_"), by=by, channel=channel, at=self.clock())
        self.access.disable_person(person.username, caller_token=actor.token)
        owed = self._release(
            by,
            person,
            frozenset({"titular", "administrador", "coadministrador", "secretaria"}),
            reason.replace("-", "_"),
            "salida",
            channel,
            list(DistrictId.all()),
        )
        for role in ("coadministrador", "titular", "secretaria"):
            if role in held:
                self.access.remove_role_member(
                    role,
                    person.username,
                    caller_token=actor.token,
                )
        self.ledger.save(person)
        return {
            "usuario": person.username,
            "motivo": reason.replace("-", "_"),
            "roles_terminados": held,
            "acceso": "deshabilitado",
            "obligaciones_abiertas": owed,
        }

    def _release(
        self,
        by: Person,
        person: Person,
        roles: frozenset[str],
        reason: str,
        cause: Literal["salida", "revocacion"],
        channel: OfficialChannel | None,
        codes: list[Any],
    ) -> list[str]:
        """Release ``person`` from ``roles`` in each district of ``codes``; a district whose
        holder changes has its OpenBao group emptied before the ledger write. Returns the
        accounts that now owe a rotation."""
        owed: list[str] = []
        for code in codes:
            with self.ledger.lock(str(code)):
                item = self.ledger.district(code)
                now = self.clock()
                owed += item.release_person(
                    person,
                    roles=roles,
                    reason=reason,
                    cause=cause,
                    by=by,
                    channel=channel,
                    policy=self.policy,
                    at=now,
                )
                if item.pending_events:
                    self._change_holder(item, partial(self.ledger.save, item), now)
        return owed

    def erase_person(self, actor: Actor, username: str) -> dict[str, Any]:
        """9.IV, 9.XX: the person's sealed personal data becomes unrecoverable (their transit key
        is destroyed); the ledger keeps verifying. Roles must have been revoked first."""
        by = self.ledger.person(actor.username)
        person = self.ledger.person(username)
        person.erase_personal_data(by=by, at=self.clock())
        self.ledger.save(person)
        self.pii.erase(str(person.id))
        return {"usuario": username, "datos_borrados": True}
