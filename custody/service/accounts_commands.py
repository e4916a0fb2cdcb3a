"""The command table of an account's life (10; issue 19): requests to open accounts and their
decision, ``cuentas estado`` and ``cuentas baja``, as the service runs them (see
:mod:`custody.service.commands`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from custody.app import accounts
from custody.app.custodia import Custodia
from custody.service.args import actor as _actor
from custody.service.args import channel_from
from custody.service.args import flag as _flag
from custody.service.args import opt as _opt
from custody.service.args import phone as _phone
from custody.service.args import text as _text
from custody.service.server import Call
from events.domain import ValidationError


def _maybe(args: Mapping[str, Any], name: str) -> bool | None:
    value = args.get(name)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(name, "must be true, false or absent")
    return value


def account_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of the account commands (specs in :mod:`custody.service.spec`)."""
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
        "cuentas.solicitar": lambda c: accounts.request_opening(
            custodia,
            _actor(c),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "plataforma", limit=40),
            _text(c.args, "motivo", limit=2000),
            channel_from(c.args),
            c.request_id,
        ),
        "cuentas.aprobar": lambda c: accounts.register_requested(
            custodia,
            _actor(c),
            _text(c.args, "solicitud", limit=64),
            _text(c.args, "cuenta", limit=64),
            handle=_text(c.args, "usuario", limit=100),
            email=_text(c.args, "correo", limit=200),
            phone=_opt(c.args, "telefono", 40),
            public=not _flag(c.args, "privada", False),
            direct_messages=not _flag(c.args, "sin_mensajes", False),
        ),
        "cuentas.rechazar": lambda c: accounts.reject_request(
            custodia,
            _actor(c),
            _text(c.args, "solicitud", limit=64),
            _text(c.args, "motivo", limit=1000),
        ),
        "cuentas.solicitudes": lambda c: accounts.list_requests(
            custodia, _actor(c), _opt(c.args, "estado", 20)
        ),
    }
