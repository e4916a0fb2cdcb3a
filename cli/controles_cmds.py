"""The institution's controls (issue 19): ``equipos`` (8.B), ``horario especial`` and
``calendario inhabil`` (8.A), ``recertificar``. Thin wrappers that send a request to
``custodia servicio``; their Spanish error messages are registered here."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.messages import EXIT_CONFLICT, EXIT_DENIED, EXIT_NOT_FOUND, EXIT_USAGE, register
from cli.ordenes import Correo, Distrito, DistritoOpc, Fecha, Json, Memo, Oficio
from cli.remote import call, channel_args, show
from cli.spanish import App


def _attr(error: Any, name: str) -> str:
    return str(getattr(error, name, "") or "")


register(
    "RegistryDeviceAlreadyRegisteredError",
    EXIT_CONFLICT,
    lambda e: (
        f"El equipo «{_attr(e, 'device_id')}» ya está registrado (para {_attr(e, 'district')})."
    ),
)
register(
    "RegistryDeviceNotFoundError",
    EXIT_NOT_FOUND,
    lambda e: f"El equipo «{_attr(e, 'device_id')}» no está registrado.",
)
register(
    "DeviceNotRegisteredForDistrictError",
    EXIT_DENIED,
    lambda e: (
        (
            f"El equipo «{_attr(e, 'device_id')}» no es un equipo institucional registrado "
            f"para {_attr(e, 'district')}"
            if _attr(e, "device_id")
            else "Indique con --dispositivo el equipo institucional desde el que lee"
        )
        + " (8.B); la política exige equipos registrados. No se leyó nada."
    ),
)
register(
    "InvalidRecertificationPeriodError",
    EXIT_USAGE,
    lambda e: f"Periodo no válido: «{_attr(e, 'value')}». Use AAAA-TN, por ejemplo 2026-T4.",
)
register(
    "RecertificationClosedError",
    EXIT_NOT_FOUND,
    lambda e: (
        f"No hay campaña de recertificación abierta para {_attr(e, 'period')} "
        "(«custodia recertificar iniciar --periodo …»)."
    ),
)

Equipo = Annotated[str, typer.Option("--equipo", help="Identificador del equipo (inventario).")]
Periodo = Annotated[
    str | None, typer.Option("--periodo", help="Trimestre AAAA-TN (por omisión, el actual).")
]

# -- equipos (8.B) ----------------------------------------------------------------------------

equipos = App(name="equipos", help="Equipos institucionales por distrito (8.B).")


@equipos.command("alta")
def equipos_alta(
    equipo: Equipo,
    distrito: Distrito,
    descripcion: Annotated[str, typer.Option("--descripcion", help="Qué equipo es.")],
    json_output: Json = False,
) -> None:
    """Registra un equipo institucional de un distrito (solo coadministración). Las lecturas
    desde otros equipos quedan señaladas (o se rechazan si la política lo exige).

    Ejemplo: [cyan]custodia equipos alta --equipo PC-DD05-01 --distrito DD05
    --descripcion "PC de comunicación"[/cyan]
    """
    args = {"equipo": equipo, "distrito": distrito, "descripcion": descripcion}
    show(call("equipos.alta", args), json_output, "Equipo registrado")


@equipos.command("baja")
def equipos_baja(equipo: Equipo, json_output: Json = False) -> None:
    """Da de baja un equipo institucional (solo coadministración).

    Ejemplo: [cyan]custodia equipos baja --equipo PC-DD05-01[/cyan]
    """
    show(call("equipos.baja", {"equipo": equipo}), json_output, "Equipo dado de baja")


@equipos.command("lista")
def equipos_lista(json_output: Json = False) -> None:
    """Los equipos institucionales registrados (solo coadministración).

    Ejemplo: [cyan]custodia equipos lista --json[/cyan]
    """
    show(call("equipos.lista"), json_output, "Equipos institucionales")


# -- horario y calendario (8.A) ---------------------------------------------------------------

horario = App(name="horario", help="Horarios autorizados distintos al laboral (8.A).")


@horario.command("especial")
def horario_especial(
    desde: Annotated[str, typer.Option("--desde", help="Primer día (AAAA-MM-DD).")],
    hasta: Annotated[str, typer.Option("--hasta", help="Último día (AAAA-MM-DD).")],
    motivo: Annotated[str, typer.Option("--motivo", help="Proceso electoral, jornada, …")],
    inicio: Annotated[str | None, typer.Option("--inicio", help="Hora de inicio HH:MM.")] = None,
    fin: Annotated[str | None, typer.Option("--fin", help="Hora de fin HH:MM.")] = None,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Registra, por vía oficial, un horario autorizado: las lecturas dentro de él no se
    señalan como fuera de horario. Sin --inicio/--fin, los días completos.

    Ejemplo: [cyan]custodia horario especial --desde 2027-06-06 --hasta 2027-06-07
    --inicio 18:00 --fin 06:00 --motivo "jornada electoral" --oficio IECM/SE/100/2027[/cyan]
    """
    args: dict[str, Any] = {
        "desde": desde,
        "hasta": hasta,
        "inicio": inicio,
        "fin": fin,
        "motivo": motivo,
        **channel_args(oficio, memorandum, correo_oficial, fecha),
    }
    show(call("horario.especial", args), json_output, "Horario autorizado")


calendario = App(name="calendario", help="Días inhábiles del IECM (8.A).")


@calendario.command("inhabil")
def calendario_inhabil(
    fecha: Annotated[str, typer.Option("--fecha", help="El día inhábil (AAAA-MM-DD).")],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha_oficio: Annotated[
        str | None,
        typer.Option("--fecha-oficio", help="Fecha del documento oficial (AAAA-MM-DD)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Registra, por vía oficial, un día inhábil del propio IECM: cuenta para el horario de
    las lecturas y para los plazos en días hábiles.

    Ejemplo: [cyan]custodia calendario inhabil --fecha 2026-12-24 --oficio IECM/SA/50/2026[/cyan]
    """
    args = {"dia": fecha, **channel_args(oficio, memorandum, correo_oficial, fecha_oficio)}
    show(call("calendario.inhabil", args), json_output, "Día inhábil")


# -- recertificar -----------------------------------------------------------------------------

recertificar = App(name="recertificar", help="Campañas de recertificación de enlaces y cuentas.")


@recertificar.command("iniciar")
def recertificar_iniciar(
    periodo: Annotated[str, typer.Option("--periodo", help="Trimestre AAAA-TN (2026-T4).")],
    vence: Annotated[
        str | None, typer.Option("--vence", help="Último día para responder (AAAA-MM-DD).")
    ] = None,
    json_output: Json = False,
) -> None:
    """Abre una campaña (solo coadministración): cada titular confirma su enlace y sus
    cuentas; la UTCSyD, su propio personal. Lo no confirmado a tiempo aparece en el reporte
    de cumplimiento.

    Ejemplo: [cyan]custodia recertificar iniciar --periodo 2026-T4[/cyan]
    """
    show(
        call("recertificar.iniciar", {"periodo": periodo, "vence": vence}),
        json_output,
        "Recertificación abierta",
    )


@recertificar.command("confirmar")
def recertificar_confirmar(
    distrito: DistritoOpc = None, periodo: Periodo = None, json_output: Json = False
) -> None:
    """La persona titular confirma su enlace y cuentas (--distrito); sin --distrito, la
    coadministración confirma el personal de la UTCSyD.

    Ejemplo: [cyan]custodia recertificar confirmar --distrito DD05[/cyan]
    """
    show(
        call("recertificar.confirmar", {"distrito": distrito, "periodo": periodo}),
        json_output,
        "Recertificación",
    )


@recertificar.command("revocar")
def recertificar_revocar(
    distrito: Distrito,
    motivo: Annotated[str, typer.Option("--motivo", help="Por qué no confirma a su enlace.")],
    periodo: Periodo = None,
    json_output: Json = False,
) -> None:
    """La persona titular no confirma a su enlace: el distrito no cumple mientras esa persona
    siga designada (designe a otra con «custodia designar»).

    Ejemplo: [cyan]custodia recertificar revocar --distrito DD05 --motivo "cambió de área"[/cyan]
    """
    args = {"distrito": distrito, "motivo": motivo, "periodo": periodo}
    show(call("recertificar.revocar", args), json_output, "Recertificación")


def register_commands(app: App) -> None:
    """Add these commands to the root app."""
    app.add_typer(equipos, name="equipos")
    app.add_typer(horario, name="horario")
    app.add_typer(calendario, name="calendario")
    app.add_typer(recertificar, name="recertificar")
