"""The command table of joiners, movers and leavers (issue 18): ``personas.contacto`` and
``personas.cambiar`` (the transfers of ``personas importar``), as the service runs them (see
:mod:`custody.service.commands`). Hires and departures of an import are ``personas.alta`` and
``personas.baja`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import people
from custody.app.custodia import Actor, Custodia
from custody.service.commands import _opt, _text, channel_from
from custody.service.server import Call

_CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

# The arguments each command takes (CLI.md); merged into custody.service.commands.ARGUMENTS.
PEOPLE_ARGUMENTS: dict[str, frozenset[str]] = {
    "personas.contacto": frozenset({"usuario", "motivo"}),
    "personas.cambiar": frozenset({"usuario", "rol", "distrito"}) | _CHANNEL,
}


def _actor(call: Call) -> Actor:
    return Actor(call.caller.username, call.caller.token, call.proceed)


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


def people_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of :data:`PEOPLE_ARGUMENTS`' commands."""
    # Defined after the argument table that imports this module: imported here.
    from custody.service.commands import _requiring_reply_key

    return {
        # The reply key is checked before the read is recorded: a recorded read must reach
        # its reader.
        "personas.contacto": _requiring_reply_key(lambda c: _contact(custodia, c)),
        "personas.cambiar": lambda c: people.change_assignment(
            custodia,
            _actor(c),
            _text(c.args, "usuario", limit=64),
            _text(c.args, "rol", limit=20),
            _opt(c.args, "distrito", 8),
            channel_from(c.args),
        ),
    }
