"""The command table of joiners, movers and leavers (issue 18): ``personas.contacto`` and
``personas.cambiar`` (the transfers of ``personas importar``), as the service runs them (see
:mod:`custody.service.commands`). Hires and departures of an import are ``personas.alta`` and
``personas.baja`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import people
from custody.app.custodia import Custodia
from custody.service.args import actor as _actor
from custody.service.args import channel_from
from custody.service.args import opt as _opt
from custody.service.args import text as _text
from custody.service.server import Call


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
    """The handlers of ``personas.contacto`` and ``personas.cambiar`` (specs in
    :mod:`custody.service.spec`; the contact's reply is sealed, so the reply key is checked before
    the read is recorded: a recorded read must reach its reader)."""
    return {
        "personas.contacto": lambda c: _contact(custodia, c),
        "personas.cambiar": lambda c: people.change_assignment(
            custodia,
            _actor(c),
            _text(c.args, "usuario", limit=64),
            _text(c.args, "rol", limit=20),
            _opt(c.args, "distrito", 8),
            channel_from(c.args),
        ),
    }
