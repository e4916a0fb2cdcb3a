"""People (issue 18: joiners, movers and leavers): :class:`People`, the use cases of a person's
registration (``personas alta``: their role and their login), ``sesion quien`` and ``personas
lista``; reading a person's contact data, and a person's change of assignment (a transfer:
another role or district). The leavers' use cases are :mod:`custody.app.leavers`.

Contact data (6.VII, 6.VIII, 9.XX) are sealed under the person's own transit key
(:mod:`custody.vault.personal_data`). A read opens them inside the service, records the read in
the ledger (who, whose, why: never the data) and only then lets them out, sealed for the caller
(fail closed: a read that cannot be recorded shows nothing).
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import Any

import structlog

from custody.app.base import Actor, PersonAlreadyRegisteredError, ScopeError
from custody.app.designations import Designations
from custody.app.leavers import Leavers
from events.domain import Person, Username, parse_district_id, person_id, require_coadministrator
from events.domain.errors import PersonalDataErasedError, PersonDepartedError
from events.domain.official_channel import OfficialChannel
from events.domain.values import ROLES, choice, validate_text
from projections.scope import sees_every_district

log = structlog.get_logger("custodia.app.people")

CONTACT_FIELDS = ("nombre", "correo", "telefono")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def read_contact(custodia: People, actor: Actor, username: str, purpose: str) -> dict[str, Any]:
    """``personas contacto``: a coadministrator reads ``username``'s name, e-mail and phone.

    Order: (1) the domain's checks on the reader and the person (a coadministrator; the person's
    data not erased; a purpose) — a refusal writes nothing and opens nothing; (2) the sealed data
    are opened with the service's own token, inside the service (an erased key refuses here:
    nothing recorded, nothing shown); (3) the read is recorded in the ledger; (4) only then the
    data are returned. A failure at (3) returns nothing."""
    reader = custodia.person(actor.username)
    require_coadministrator(reader, "read contact data")  # before any decryption
    name = str(Username.parse(username))
    with custodia.ledger.person_lock(person_id(name)):
        person = custodia.person(name)
        now = custodia.clock()
        person.record_contact_read(reader=reader, purpose=purpose, at=now)
        if person.personal_data is None:  # pragma: no cover - erased people refused above
            raise PersonalDataErasedError(person.id)
        opened = custodia.pii.open(str(person.id), person.personal_data)
        actor.proceed()
        custodia.ledger.save(person)
    log.info("custody.person.contact_read", reader=actor.username, person=person.username)
    return {
        "usuario": person.username,
        **{key: opened.get(key) or None for key in CONTACT_FIELDS},
    }


def change_assignment(
    custodia: People,
    actor: Actor,
    username: str,
    role: str,
    district: str | None,
    channel: OfficialChannel,
) -> dict[str, Any]:
    """``cambio`` of ``personas importar``: a transfer (*cambio de adscripción*) — the person
    ends up holding exactly ``role`` (for ``district``).

    Every role held that is not the new one ends as ``personas revocar`` ends it (OpenBao first,
    rotation obligations for what they could read, the vía oficial recorded); then the new role
    is granted as ``personas alta`` grants it (ledger, then OpenBao's role group; a titular's
    post recorded in the district). Checked on a copy first, so a refused transfer changes
    nothing. Idempotent: a person already holding exactly that role is left alone
    (``sin_cambios``); after a crash between the two halves, the same command completes it."""
    role = choice("rol", role, ROLES)  # the one spelling every check below compares with
    by = custodia.person(actor.username)
    require_coadministrator(by, "change assignments")
    person = custodia.person(username)
    if person.has_departed:
        raise PersonDepartedError(person.id)
    code = str(parse_district_id(district)) if district else None
    if dict(person.roles) == {role: code}:
        return {"usuario": person.username, "rol": role, "distrito": code, "sin_cambios": True}
    ending = [held for held, where in person.roles.items() if (held, where) != (role, code)]
    keep = role in person.roles and person.roles[role] == code
    # The domain's checks on a copy never saved: the new role's conflicts, the district.
    trial: Person = deepcopy(person)
    now = custodia.clock()
    for held in ending:
        trial.revoke_role(held, by=by, at=now)
    if not keep:
        trial.grant_role(role, district=code, by=by, at=now)
    custodia.require_titular_vacancy(role, code, person.id)
    ended = []
    for held in ending:
        custodia.revoke_role(actor, person.username, held, channel)
        ended.append(held)
    if not keep:
        person = custodia.person(person.username)
        person.grant_role(role, district=code, by=by, at=custodia.clock())
        custodia.ledger.save(person)
        vault_role = role if role in ("coadministrador", "titular", "secretaria") else None
        custodia.access.ensure_person(
            person.username,
            None,
            vault_role,
            caller_token=actor.token,
        )
        if role == "titular" and code:
            custodia.appoint_registered_titular(by, person, code)
    return {
        "usuario": person.username,
        "rol": role,
        "distrito": code,
        "roles_terminados": ended,
        "sin_cambios": False,
    }


class People(Leavers, Designations):
    """A person registered with their role and login; who is acting; the list of people."""

    def register_person(
        self,
        actor: Actor,
        username: str,
        *,
        name: str,
        email: str,
        phone: str | None,
        role: str,
        district: str | None,
        password: str | None,
    ) -> dict[str, Any]:
        """A coadministrator registers a person, their role and their login.

        Order, so that nothing is left half-written: (1) every check — the user name (the one
        parser, :class:`events.domain.Username`), the caller, the role and district (the
        domain, on a trial aggregate that is never saved), the password; (2) the login,
        created in OpenBao, whose refusal is the check that no other login has that name;
        (3) the ledger; (4) the login's identity and role group. A failure at (2) writes
        nothing. A failure at (3) leaves a login that grants nothing (no group, no ledger
        registration: the service refuses every command of an unregistered person), and at
        (4) a registration whose group reconciliation puts back; either way the same command
        again completes the registration (the login is adopted by proving its password)."""
        username = Username.parse(username)
        # The one spelling the checks below compare with: "Coadministrador" must not be a
        # coadministrator for the ledger but no one for OpenBao's groups and the second factor.
        role = choice("rol", role, ROLES)
        by = self.ledger.person(actor.username)
        require_coadministrator(by, "register people")  # before any key is created in OpenBao
        # Issue 18: before anything is written (a retry finds its own person there: no refusal).
        self.require_titular_vacancy(role, district, person_id(username))
        now = self.clock()
        code = str(parse_district_id(district)) if district else None
        if password is not None:
            validate_text("contrasena", password, max_length=256)
        pid = person_id(username)
        existing = self.ledger.registered(pid)
        if existing is not None:
            if existing.erased or role not in existing.roles or existing.roles[role] != code:
                raise PersonAlreadyRegisteredError(username)
        else:
            # The domain's checks (role, district, role conflicts) on an aggregate never saved.
            trial = Person.register(
                username, personal_data="-", personal_data_key="-", by=by, at=now
            )
            trial.grant_role(role, district=code, by=by, at=now)
        if password is not None:
            self.access.create_login(username, password)
        if existing is None:
            sealed = self.pii.seal(
                str(pid), {"nombre": name, "correo": email, "telefono": phone or ""}
            )
            person = Person.register(
                username, personal_data=sealed, personal_data_key=f"pii-{pid}", by=by, at=now
            )
            person.grant_role(role, district=code, by=by, at=now)
            try:
                self.ledger.save(person)
            except BaseException:
                if password is not None:
                    # The service may not delete a login: it stays, granting nothing, until
                    # the same command is sent again.
                    log.warning("custody.person.login_without_registration", username=username)
                raise
        vault_role = role if role in ("coadministrador", "titular", "secretaria") else None
        # The login is the service's to create; a role group is written with the requesting
        # coadministrator's own token (the service's may not touch role groups: issue 16).
        self.access.ensure_person(
            username,
            None,
            vault_role,
            caller_token=actor.token,
        )
        if role == "titular" and code:
            registered = existing if existing is not None else person
            self.appoint_registered_titular(by, registered, code)
        return {"usuario": str(username), "rol": role, "distrito": code}

    def whoami(self, actor: Actor) -> dict[str, Any]:
        person = self.ledger.person(actor.username)
        return {"usuario": actor.username, "roles": dict(person.roles)}

    def list_people(self, actor: Actor) -> list[dict[str, Any]]:
        by = self.ledger.person(actor.username)
        if not sees_every_district(by.roles):
            raise ScopeError(actor.username, "*")
        people = []
        for item in self.ledger.all_of(Person):
            people.append(
                {
                    "usuario": getattr(item, "username", None),
                    "roles": dict(item.roles),
                    "borrado": item.erased,
                    "baja": _iso(getattr(item, "departed_at", None)),
                    # Issue 18: inscrito | restablecido | null (the resets are in the ledger).
                    "segundo_factor": item.second_factor,
                }
            )
        return sorted(people, key=lambda p: str(p["usuario"]))
