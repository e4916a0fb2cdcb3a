"""The command table of the institution's controls (issue 19): ``equipos``, ``horario``,
``calendario`` and ``recertificar``, as the service runs them (see
:mod:`custody.service.commands`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import controls
from custody.app.custodia import Actor, Custodia
from custody.service.commands import _date, _opt, _text, channel_from
from custody.service.server import Call

_CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

# The arguments each command takes (CLI.md); merged into custody.service.commands.ARGUMENTS.
CONTROL_ARGUMENTS: dict[str, frozenset[str]] = {
    "equipos.alta": frozenset({"equipo", "distrito", "descripcion"}),
    "equipos.baja": frozenset({"equipo"}),
    "equipos.lista": frozenset(),
    # ``dia``: the day of the special hours (``fecha`` is the official document's date).
    "horario.especial": frozenset({"desde", "hasta", "inicio", "fin", "motivo"}) | _CHANNEL,
    "calendario.inhabil": frozenset({"dia"}) | _CHANNEL,
    "recertificar.iniciar": frozenset({"periodo", "vence"}),
    "recertificar.confirmar": frozenset({"distrito", "periodo"}),
    "recertificar.revocar": frozenset({"distrito", "periodo", "motivo"}),
}


def _actor(call: Call) -> Actor:
    return Actor(call.caller.username, call.caller.token, call.proceed)


def control_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of :data:`CONTROL_ARGUMENTS`' commands."""
    return {
        "equipos.alta": lambda c: controls.register_device(
            custodia,
            _actor(c),
            _text(c.args, "equipo", limit=100),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "descripcion", limit=200),
        ),
        "equipos.baja": lambda c: controls.retire_device(
            custodia, _actor(c), _text(c.args, "equipo", limit=100)
        ),
        "equipos.lista": lambda c: controls.list_devices(custodia, _actor(c)),
        "horario.especial": lambda c: controls.authorize_hours(
            custodia,
            _actor(c),
            starts_on=_date(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=_date(c.args, "hasta", required=True),  # type: ignore[arg-type]
            start=_opt(c.args, "inicio", 5),
            end=_opt(c.args, "fin", 5),
            reason=_text(c.args, "motivo", limit=500),
            channel=channel_from(c.args),
        ),
        "calendario.inhabil": lambda c: controls.declare_non_working_day(
            custodia,
            _actor(c),
            _date(c.args, "dia", required=True),  # type: ignore[arg-type]
            channel_from(c.args),
        ),
        "recertificar.iniciar": lambda c: controls.open_recertification(
            custodia,
            _actor(c),
            _text(c.args, "periodo", limit=10),
            _date(c.args, "vence", required=False),
        ),
        "recertificar.confirmar": lambda c: controls.confirm_recertification(
            custodia, _actor(c), _opt(c.args, "distrito", 8), _opt(c.args, "periodo", 10)
        ),
        "recertificar.revocar": lambda c: controls.revoke_recertification(
            custodia,
            _actor(c),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "motivo", limit=500),
            _opt(c.args, "periodo", 10),
        ),
    }
