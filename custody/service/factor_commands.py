"""The commands of the login second factor (issue 18), as the service runs them (see
:mod:`custody.service.commands` and :mod:`custody.app.second_factor`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from custody.app import second_factor
from custody.app.custodia import Custodia
from custody.service.args import actor as _actor
from custody.service.args import channel_from
from custody.service.args import text as _text
from custody.service.server import Call


# The arguments each command takes; merged into custody.service.commands.ARGUMENTS.
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
    """The handlers of the second factor's commands (specs in :mod:`custody.service.spec`;
    the sealed replies' reply key is checked before anything runs)."""
    return {
        "segundo_factor.confirmar": lambda c: second_factor.confirm_enrolment(custodia, _actor(c)),
        "segundo_factor.inscribir": lambda c: _enrol(custodia, c),
        # The reply carries a sealed password: the reply key is checked before anything runs.
        "personas.restablecer_factor": lambda c: _reset(custodia, c),
        "personas.segundo_factor": lambda c: _require(custodia, c),
    }
