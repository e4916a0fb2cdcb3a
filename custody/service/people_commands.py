"""The command table of joiners, movers and leavers (issue 18): ``personas.contacto`` and
``personas.cambiar`` (the transfers of ``personas importar``), as the service runs them (see
:mod:`custody.service.commands`). Hires and departures of an import are ``personas.alta`` and
``personas.baja`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import people, second_factor
from custody.app.custodia import Custodia
from custody.service.args import actor as _actor
from custody.service.args import channel_from
from custody.service.args import opt as _opt
from custody.service.args import text as _text
from custody.service.server import Call
from events.domain import require_coadministrator
from events.domain.values import ROLES, choice


def _contact(custodia: Custodia, call: Call) -> dict[str, Any]:
    data = people.read_contact(
        custodia,
        _actor(call),
        _text(call.args, "usuario", limit=64),
        _text(call.args, "motivo", limit=500),
    )
    # Sealed for the caller: the reply (and its copy kept for retries in the service's
    # idempotency bucket) never carries the contact in clear.
    return {
        key: (call.seal(value) if key in people.CONTACT_FIELDS and value is not None else value)
        for key, value in data.items()
    }


def _transfer(custodia: Custodia, call: Call) -> dict[str, Any]:
    """``personas.cambiar``: into a role that reads credentials only under the second factor
    already (checked before anything changes; ``personas alta`` makes the factor's first login
    itself, a transfer has no password for one)."""
    actor = _actor(call)
    require_coadministrator(custodia.person(actor.username), "change assignments")
    username = _text(call.args, "usuario", limit=64)
    role = choice("rol", _text(call.args, "rol", limit=20), ROLES)
    if role not in custodia.person(username).roles:
        second_factor.require_factor_for(custodia, username, role)
    return people.change_assignment(
        custodia,
        actor,
        username,
        role,
        _opt(call.args, "distrito", 8),
        channel_from(call.args),
    )


def people_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of ``personas.contacto`` and ``personas.cambiar`` (specs in
    :mod:`custody.service.spec`; the contact's reply is sealed, so the reply key is checked before
    the read is recorded: a recorded read must reach its reader)."""
    return {
        "personas.contacto": lambda c: _contact(custodia, c),
        "personas.cambiar": lambda c: _transfer(custodia, c),
    }
