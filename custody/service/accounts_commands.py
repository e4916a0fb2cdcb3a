"""The command table of an account's life after registration (10; issue 19): ``cuentas
estado`` and ``cuentas baja``, as the service runs them (see :mod:`custody.service.commands`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from custody.app import accounts
from custody.app.custodia import Actor, Custodia
from custody.service.commands import _phone, _text, channel_from
from custody.service.server import Call
from events.domain import ValidationError

_CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

# The arguments each command takes (CLI.md); merged into custody.service.commands.ARGUMENTS.
ACCOUNT_ARGUMENTS: dict[str, frozenset[str]] = {
    # ``publica``/``mensajes``: true, false, or absent (keeps the last recorded value).
    "cuentas.estado": frozenset({"cuenta", "publica", "mensajes", "telefono"}),
    "cuentas.baja": frozenset({"cuenta"}) | _CHANNEL,
}


def _actor(call: Call) -> Actor:
    return Actor(call.caller.username, call.caller.token, call.proceed)


def _maybe(args: Mapping[str, Any], name: str) -> bool | None:
    value = args.get(name)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(name, "must be true, false or absent")
    return value


def account_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of :data:`ACCOUNT_ARGUMENTS`' commands."""
    return {
        "cuentas.estado": lambda c: accounts.record_status(
            custodia,
            _actor(c),
            _text(c.args, "cuenta", limit=64),
            public=_maybe(c.args, "publica"),
            direct_messages=_maybe(c.args, "mensajes"),
            phone=_phone(c.args, "telefono"),
        ),
        "cuentas.baja": lambda c: accounts.close(
            custodia, _actor(c), _text(c.args, "cuenta", limit=64), channel_from(c.args)
        ),
    }
