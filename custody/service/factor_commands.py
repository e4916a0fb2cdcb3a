"""The commands of the login second factor (issue 18), as the service runs them (see
:mod:`custody.service.commands` and :mod:`custody.app.second_factor`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import second_factor
from custody.app.custodia import Actor, Custodia
from custody.service.commands import _text, channel_from
from custody.service.server import Call

_CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

# The arguments each command takes; merged into custody.service.commands.ARGUMENTS.
FACTOR_ARGUMENTS: dict[str, frozenset[str]] = {
    # Sent by ``sesion iniciar`` after a login OpenBao validated with a code.
    "segundo_factor.confirmar": frozenset(),
    # Sent with a first-login token only (custody.service.server refuses it from any other
    # token, and any other command from that one): the reply's otpauth URI is sealed.
    "segundo_factor.inscribir": frozenset(),
    "personas.restablecer_factor": frozenset({"usuario", "motivo"}) | _CHANNEL,
    "personas.segundo_factor": frozenset({"usuario"}),
}


def _actor(call: Call) -> Actor:
    return Actor(call.caller.username, call.caller.token, call.proceed)


def _reset(custodia: Custodia, call: Call) -> dict[str, Any]:
    out = second_factor.reset(
        custodia,
        _actor(call),
        _text(call.args, "usuario", limit=64),
        _text(call.args, "motivo", limit=500),
        channel_from(call.args),
    )
    out["contrasena"] = call.seal(out["contrasena"])  # shown once, to the coadministrator
    return out


def _enrol(custodia: Custodia, call: Call) -> dict[str, Any]:
    out = second_factor.enrol(custodia, _actor(call), call.caller.first_login)
    out["otpauth"] = call.seal(out["otpauth"])  # shown once, to the person enrolling
    return out


def _require(custodia: Custodia, call: Call) -> dict[str, Any]:
    out = second_factor.require(custodia, _actor(call), _text(call.args, "usuario", limit=64))
    out["contrasena"] = call.seal(out["contrasena"])  # shown once, to the coadministrator
    return out


def factor_handlers(custodia: Custodia) -> dict[str, Callable[[Call], Any]]:
    """The handlers of :data:`FACTOR_ARGUMENTS`' commands."""
    from custody.service.commands import _requiring_reply_key

    return {
        "segundo_factor.confirmar": lambda c: second_factor.confirm_enrolment(custodia, _actor(c)),
        "segundo_factor.inscribir": _requiring_reply_key(lambda c: _enrol(custodia, c)),
        # The reply carries a sealed password: the reply key is checked before anything runs.
        "personas.restablecer_factor": _requiring_reply_key(lambda c: _reset(custodia, c)),
        "personas.segundo_factor": _requiring_reply_key(lambda c: _require(custodia, c)),
    }
