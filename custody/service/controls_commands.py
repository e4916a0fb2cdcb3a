"""The command table of the institution's controls (issue 19): ``equipos``, ``horario``,
``calendario`` and ``recertificar``, as the service runs them. What each command takes is its
spec's (:mod:`custody.service.spec`); this table is listed in
:func:`custody.service.commands.handler_tables`."""

from __future__ import annotations

from custody.app import controls
from custody.app.custodia import Custodia
from custody.service.args import actor, channel_from, day, opt, text
from custody.service.server import Handler


def control_handlers(custodia: Custodia) -> dict[str, Handler]:
    """The handlers of the controls' commands (their specs: custody.service.spec)."""
    return {
        "equipos.alta": lambda c: controls.register_device(
            custodia,
            actor(c),
            text(c.args, "equipo", limit=100),
            text(c.args, "distrito", limit=8),
            text(c.args, "descripcion", limit=200),
        ),
        "equipos.baja": lambda c: controls.retire_device(
            custodia, actor(c), text(c.args, "equipo", limit=100)
        ),
        "equipos.lista": lambda c: controls.list_devices(custodia, actor(c)),
        "horario.especial": lambda c: controls.authorize_hours(
            custodia,
            actor(c),
            starts_on=day(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=day(c.args, "hasta", required=True),  # type: ignore[arg-type]
            start=opt(c.args, "inicio", 5),
            end=opt(c.args, "fin", 5),
            reason=text(c.args, "motivo", limit=500),
            channel=channel_from(c.args),
        ),
        "calendario.inhabil": lambda c: controls.declare_non_working_day(
            custodia,
            actor(c),
            day(c.args, "dia", required=True),  # type: ignore[arg-type]
            channel_from(c.args),
        ),
        "recertificar.iniciar": lambda c: controls.open_recertification(
            custodia,
            actor(c),
            text(c.args, "periodo", limit=10),
            day(c.args, "vence", required=False),
        ),
        "recertificar.confirmar": lambda c: controls.confirm_recertification(
            custodia, actor(c), opt(c.args, "distrito", 8), opt(c.args, "periodo", 10)
        ),
        "recertificar.revocar": lambda c: controls.revoke_recertification(
            custodia,
            actor(c),
            text(c.args, "distrito", limit=8),
            text(c.args, "motivo", limit=500),
            opt(c.args, "periodo", 10),
        ),
    }
