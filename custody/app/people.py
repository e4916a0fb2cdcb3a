"""Joiners, movers and leavers (issue 18): reading a person's contact data, and a person's
change of assignment (a transfer: another role or district), on top of :class:`Custodia`.

Contact data (R7, R9; 6.VII, 6.VIII, 9.XX) are sealed under the person's own transit key
(:mod:`custody.vault.personal_data`). A read opens them inside the service, records the read in
the ledger (who, whose, why: never the data) and only then lets them out, sealed for the caller
(fail closed: a read that cannot be recorded shows nothing).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import structlog

from custody.app.custodia import Actor, Custodia
from events.domain import Person, Username, parse_district_id, require_coadministrator
from events.domain.errors import PersonalDataErasedError, PersonDepartedError
from events.domain.official_channel import OfficialChannel

log = structlog.get_logger("custodia.app.people")

CONTACT_FIELDS = ("nombre", "correo", "telefono")


def read_contact(custodia: Custodia, actor: Actor, username: str, purpose: str) -> dict[str, Any]:
    """``personas contacto``: a coadministrator reads ``username``'s name, e-mail and phone.

    Order: (1) the domain's checks on the reader and the person (a coadministrator; the person's
    data not erased; a purpose) — a refusal writes nothing and opens nothing; (2) the sealed data
    are opened with the service's own token, inside the service (an erased key refuses here:
    nothing recorded, nothing shown); (3) the read is recorded in the ledger; (4) only then the
    data are returned. A failure at (3) returns nothing."""
    reader = custodia.person(actor.username)
    require_coadministrator(reader, "read contact data")  # before any decryption
    name = str(Username.parse(username))
    with custodia.ledger.lock(f"person:{name}"):
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
    custodia: Custodia,
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
            vault_role,  # type: ignore[arg-type]
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
