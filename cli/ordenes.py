"""The user commands: thin wrappers that send a request to ``custodia servicio``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli.remote import call, channel_args, show
from cli.spanish import App

Json = Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")]
Codigo = Annotated[
    str | None,
    typer.Option(
        "--codigo", help="Código de seis dígitos de su segundo factor, si OpenBao lo exige."
    ),
]
Distrito = Annotated[str, typer.Option("--distrito", help="Distrito: DD05, 5, 05 o dd05.")]
DistritoOpc = Annotated[
    str | None, typer.Option("--distrito", help="Limita a un distrito (DD05, 5, 05, dd05).")
]
Cuenta = Annotated[str, typer.Option("--cuenta", help="Cuenta: distrito y plataforma (DD05-x).")]
Oficio = Annotated[str | None, typer.Option("--oficio", help="Vía oficial: número de oficio.")]
Memo = Annotated[
    str | None, typer.Option("--memorandum", help="Vía oficial: número de memorándum.")
]
Correo = Annotated[
    str | None,
    typer.Option("--correo-oficial", help="Vía oficial: remitente con dominio iecm.mx."),
]
Fecha = Annotated[
    str | None, typer.Option("--fecha", help="Fecha del documento oficial (AAAA-MM-DD).")
]


def _read_secret_stdin(flag: bool, prompt: str) -> str:
    from cli.output import ask_secret

    value = sys.stdin.readline().rstrip("\n") if flag else ask_secret(prompt)
    if not value:
        from events.domain import ValidationError

        raise ValidationError("contrasena", "empty")
    return value


# -- sesion -----------------------------------------------------------------------------------

sesion = App(name="sesion", help="Iniciar, cerrar y consultar la sesión (token de OpenBao).")


@sesion.command("iniciar")
def sesion_iniciar(
    usuario: Annotated[str, typer.Option("--usuario", help="Su usuario de OpenBao/Vault.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Lee la contraseña de la entrada estándar.")
    ] = False,
    codigo: Codigo = None,
    json_output: Json = False,
) -> None:
    """Se autentica contra OpenBao y guarda el token (modo 0600) en CUSTODIA_HOME.

    Quien puede leer credenciales usa un segundo factor que exige OpenBao: en su primer
    ingreso se muestra una sola vez el URI otpauth (y un código QR) para su aplicación
    autenticadora; desde entonces se requiere --codigo. Tras un restablecimiento, use la
    contraseña de primer ingreso que le entregó la UTCSyD para registrar el factor nuevo.

    Ejemplo: [cyan]echo "$CLAVE" | custodia sesion iniciar --usuario ana --password-stdin[/cyan]
    Con segundo factor: [cyan]... --password-stdin --codigo 123456[/cyan]
    """
    from cli.factor import login_or_enrol

    login_or_enrol(usuario, _read_secret_stdin(password_stdin, "Contraseña"), codigo, json_output)


@sesion.command("contrasena")
def sesion_contrasena(
    usuario: Annotated[
        str | None,
        typer.Option("--usuario", help="Su usuario (por omisión, el de la sesión abierta)."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Lee de la entrada estándar dos líneas: la contraseña actual y la nueva.",
        ),
    ] = False,
    codigo: Codigo = None,
    json_output: Json = False,
) -> None:
    """Cambia su propia contraseña de OpenBao (al menos 12 caracteres, distinta de la actual).

    Pide la contraseña actual (y el código del segundo factor, si lo usa): una sesión abierta
    sola no basta. Cámbiela en su primer ingreso: así nadie más, tampoco quien le dio la
    contraseña inicial, la conoce. Nadie puede cambiar la contraseña de otra persona.

    Ejemplo: [cyan]custodia sesion contrasena[/cyan]
    Con segundo factor: [cyan]custodia sesion contrasena --codigo 123456[/cyan]
    """
    from cli.factor import change_password

    change_password(usuario, password_stdin, codigo, json_output)


@sesion.command("cerrar")
def sesion_cerrar() -> None:
    """Revoca el token de la sesión en OpenBao y lo olvida.

    Ejemplo: [cyan]custodia sesion cerrar[/cyan]
    """
    from cli.remote import settings
    from custody.vault import session as sessions

    who = sessions.logout(sessions.session_path(settings()))
    typer.echo(f"Sesión de {who} cerrada." if who else "No había sesión abierta.")


@sesion.command("quien")
def sesion_quien(json_output: Json = False) -> None:
    """Muestra quién es usted y sus roles según la bitácora.

    Ejemplo: [cyan]custodia sesion quien --json[/cyan]
    """
    show(call("sesion.quien"), json_output, "Sesión")


# -- personas ---------------------------------------------------------------------------------

personas = App(name="personas", help="Personas y sus roles (solo coadministración registra).")


@personas.command("alta")
def personas_alta(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario de OpenBao/Vault.")],
    nombre: Annotated[str, typer.Option("--nombre", help="Nombre completo (dato protegido).")],
    correo: Annotated[str, typer.Option("--correo", help="Correo institucional.")],
    rol: Annotated[
        str,
        typer.Option("--rol", help="coadministrador, titular, administrador o secretaria."),
    ],
    distrito: DistritoOpc = None,
    telefono: Annotated[str | None, typer.Option("--telefono", help="Teléfono.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Contraseña inicial por la entrada estándar.")
    ] = False,
    json_output: Json = False,
) -> None:
    """Registra a una persona, su rol y su acceso (userpass) en OpenBao.

    Ejemplo: [cyan]echo "$CLAVE" | custodia personas alta --usuario luis --nombre "Luis P."
    --correo luis@iecm.mx --rol titular --distrito DD05 --password-stdin[/cyan]
    """
    password = _read_secret_stdin(password_stdin, "Contraseña inicial")
    data = call(
        "personas.alta",
        {
            "usuario": usuario,
            "nombre": nombre,
            "correo": correo,
            "rol": rol,
            "distrito": distrito,
            "telefono": telefono,
            "contrasena": password,
        },
    )
    show(data, json_output, "Persona registrada")
    if not json_output:
        typer.echo(
            "Pida a la persona que cambie esa contraseña inicial en su primer ingreso, con "
            "«custodia sesion contrasena»: mientras no lo haga, usted también la conoce."
        )


@personas.command("lista")
def personas_lista(json_output: Json = False) -> None:
    """Personas y sus roles (coadministración y Secretaría Ejecutiva).

    Ejemplo: [cyan]custodia personas lista[/cyan]
    """
    show(call("personas.lista"), json_output, "Personas")


@personas.command("revocar")
def personas_revocar(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario de la persona.")],
    rol: Annotated[str, typer.Option("--rol", help="Rol que se revoca.")],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Termina un rol (coadministración) con los efectos de una baja para ese rol: termina su
    designación o titularidad, pierde el acceso en OpenBao de inmediato y se abren
    obligaciones de rotación de toda cuenta que pudo leer o vio desde su última rotación.

    Ejemplo: [cyan]custodia personas revocar --usuario bety --rol administrador[/cyan]
    """
    data = call(
        "personas.revocar",
        {"usuario": usuario, "rol": rol, **channel_args(oficio, memorandum, correo_oficial, fecha)},
    )
    show(data, json_output, "Rol revocado")


@personas.command("segundo-factor")
def personas_segundo_factor(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario (titular o secretaria).")],
    json_output: Json = False,
) -> None:
    """Exige el segundo factor a una persona que no lee credenciales (titular o Secretaría
    Ejecutiva) que lo pide (solo coadministración; queda en la bitácora). Quien lee
    credenciales ya lo tiene desde su alta. Se crea un primer ingreso con una contraseña nueva,
    que se muestra una sola vez para entregarla a la persona: con ella registra su factor en
    «custodia sesion iniciar»; después usa su contraseña de siempre con «--codigo».

    Ejemplo: [cyan]custodia personas segundo-factor --usuario luis[/cyan]
    """
    data = call("personas.segundo_factor", {"usuario": usuario})
    if json_output:
        show(data, True)
        return
    typer.echo(f"{data['usuario']} usará segundo factor desde ahora.")
    typer.echo("Contraseña de primer ingreso (se muestra una sola vez; entréguela a la persona):")
    typer.echo(f"  {data['contrasena']}")


@personas.command("restablecer-factor")
def personas_restablecer_factor(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario que perdió su factor.")],
    motivo: Annotated[str, typer.Option("--motivo", help="Por qué se restablece.")],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Restablece el segundo factor perdido de otra persona (solo coadministración, con vía
    oficial; queda en la bitácora). OpenBao olvida el factor anterior y se crea un primer
    ingreso con una contraseña nueva, que se muestra una sola vez para entregarla a la
    persona: con ella registra su factor nuevo en «custodia sesion iniciar».

    Ejemplo: [cyan]custodia personas restablecer-factor --usuario bety --motivo "extravío
    del teléfono" --oficio UTCSyD/077/2026[/cyan]
    """
    data = call(
        "personas.restablecer_factor",
        {
            "usuario": usuario,
            "motivo": motivo,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    if json_output:
        show(data, True)
        return
    typer.echo(f"Segundo factor de {data['usuario']} restablecido.")
    typer.echo("Contraseña de primer ingreso (se muestra una sola vez; entréguela a la persona):")
    typer.echo(f"  {data['contrasena']}")
    typer.echo(
        "La persona inicia sesión con esa contraseña para registrar su factor nuevo; después "
        "sigue usando su contraseña de siempre con «--codigo»."
    )


@personas.command("baja")
def personas_baja(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario de la persona que sale.")],
    motivo: Annotated[
        str, typer.Option("--motivo", help="baja, promocion, cambio-adscripcion u otro.")
    ],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Registra la salida definitiva de una persona (6.X): de inmediato terminan todos sus
    roles y designaciones, su identidad queda deshabilitada en OpenBao (sesiones e inicio de
    sesión rechazados) y se abren obligaciones de rotación de toda cuenta que pudo leer o vio
    desde su última rotación. El distrito queda sin persona administradora hasta que su
    titular designe.

    Ejemplo: [cyan]custodia personas baja --usuario bety --motivo promocion
    --oficio DD05/060/2026[/cyan]
    """
    data = call(
        "personas.baja",
        {
            "usuario": usuario,
            "motivo": motivo,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Baja registrada")


@personas.command("borrar-datos")
def personas_borrar_datos(
    usuario: Annotated[str, typer.Option("--usuario", help="Usuario de la persona.")],
    json_output: Json = False,
) -> None:
    """Borra los datos personales (nombre, correo, teléfono) de una persona sin roles: su llave
    de cifrado se destruye y la bitácora sigue verificándose (9.IV, 9.XX).

    Ejemplo: [cyan]custodia personas borrar-datos --usuario bety[/cyan]
    """
    show(call("personas.borrar_datos", {"usuario": usuario}), json_output, "Datos borrados")


def reconciliar(
    reparar: Annotated[
        bool, typer.Option("--reparar", help="Corrige en OpenBao lo que la bitácora indica.")
    ] = False,
    json_output: Json = False,
) -> None:
    """Compara OpenBao con la bitácora (membresías de grupos, versiones de credenciales) y, con
    --reparar, corrige el lado de OpenBao (coadministración).

    Ejemplo: [cyan]custodia reconciliar --reparar[/cyan]
    """
    show(call("reconciliar", {"reparar": reparar}), json_output, "Reconciliación")


# -- cuentas ----------------------------------------------------------------------------------

cuentas = App(name="cuentas", help="Cuentas institucionales de redes sociales (10.I–VIII).")


@cuentas.command("alta")
def cuentas_alta(
    distrito: Distrito,
    plataforma: Annotated[str, typer.Option("--plataforma", help="facebook, x, tiktok, …")],
    usuario: Annotated[str, typer.Option("--usuario", help="Nombre de usuario en la red.")],
    correo: Annotated[str, typer.Option("--correo", help="Correo @iecm.mx de la cuenta.")],
    telefono: Annotated[
        str | None, typer.Option("--telefono", help="Teléfono institucional.")
    ] = None,
    privada: Annotated[bool, typer.Option("--privada", help="La cuenta no es pública.")] = False,
    sin_mensajes: Annotated[
        bool, typer.Option("--sin-mensajes", help="Mensajes directos desactivados.")
    ] = False,
    existente: Annotated[
        bool,
        typer.Option("--existente", help="Registra una cuenta ya existente aunque incumpla."),
    ] = False,
    solicitud: Annotated[
        str | None,
        typer.Option(
            "--solicitud",
            help="La solicitud del distrito que se aprueba al registrar la cuenta (10.I).",
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Registra una cuenta institucional; rechaza correos fuera de iecm.mx y cuentas de X sin el
    sufijo IECM, salvo que se registre como existente (queda como incumplimiento). Con
    --solicitud, la UTCSyD aprueba la solicitud del distrito y registra la cuenta a la vez.

    Ejemplo: [cyan]custodia cuentas alta --distrito DD05 --plataforma x --usuario DD05IECM
    --correo dd05.x@iecm.mx[/cyan]
    """
    from events.domain import parse_district_id

    account = f"{parse_district_id(distrito)}-{plataforma.strip().lower()}"
    if solicitud is not None:
        if existente:
            raise typer.BadParameter(
                "una solicitud abre una cuenta nueva", param_hint="--existente"
            )
        requested = {
            "solicitud": solicitud,
            "cuenta": account,
            "usuario": usuario,
            "correo": correo,
            "telefono": telefono,
            "privada": privada,
            "sin_mensajes": sin_mensajes,
        }
        show(
            call("cuentas.aprobar", requested), json_output, "Solicitud aprobada; cuenta registrada"
        )
        return
    data = call(
        "cuentas.alta",
        {
            "cuenta": account,
            "usuario": usuario,
            "correo": correo,
            "telefono": telefono,
            "privada": privada,
            "sin_mensajes": sin_mensajes,
            "existente": existente,
        },
    )
    show(data, json_output, "Cuenta registrada")


@cuentas.command("lista")
def cuentas_lista(distrito: DistritoOpc = None, json_output: Json = False) -> None:
    """Cuentas y su estado (cumplimiento de 10.V–VIII, versión de credencial, obligaciones).

    Ejemplo: [cyan]custodia cuentas lista --distrito DD05[/cyan]
    """
    rows = call("cuentas.lista", {"distrito": distrito})
    if not json_output:
        keep = (
            "cuenta",
            "usuario",
            "publica",
            "mensajes",
            "violaciones",
            "version",
            "obligaciones_abiertas",
        )
        rows = [{k: r.get(k) for k in keep} for r in rows]
    show(rows, json_output, "Cuentas")


@cuentas.command("solicitar")
def cuentas_solicitar(
    distrito: Distrito,
    plataforma: Annotated[str, typer.Option("--plataforma", help="facebook, x, tiktok, …")],
    motivo: Annotated[
        str, typer.Option("--motivo", help="Para qué plan de trabajo se necesita la cuenta.")
    ],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """La persona titular solicita a la UTCSyD abrir una cuenta (10.II–III: los distritos no
    abren cuentas), con vía oficial (p. ej. --correo-oficial redessociales@iecm.mx). La UTCSyD
    decide su viabilidad: «cuentas alta --solicitud ID» o «cuentas rechazar».

    Ejemplo: [cyan]custodia cuentas solicitar --distrito DD05 --plataforma tiktok --motivo
    "Difusión del proceso electoral" --oficio DD05/120/2026[/cyan]
    """
    args = {
        "distrito": distrito,
        "plataforma": plataforma,
        "motivo": motivo,
        **channel_args(oficio, memorandum, correo_oficial, fecha),
    }
    show(call("cuentas.solicitar", args), json_output, "Solicitud de cuenta registrada")


@cuentas.command("rechazar")
def cuentas_rechazar(
    solicitud: Annotated[str, typer.Option("--solicitud", help="La solicitud de cuenta.")],
    motivo: Annotated[str, typer.Option("--motivo", help="Por qué no es viable (10.I).")],
    json_output: Json = False,
) -> None:
    """La UTCSyD determina que abrir la cuenta solicitada no es viable (10.I).

    Ejemplo: [cyan]custodia cuentas rechazar --solicitud ID --motivo "Duplica la cuenta
    institucional"[/cyan]
    """
    data = call("cuentas.rechazar", {"solicitud": solicitud, "motivo": motivo})
    show(data, json_output, "Solicitud de cuenta rechazada")


@cuentas.command("solicitudes")
def cuentas_solicitudes(
    estado: Annotated[
        str | None,
        typer.Option("--estado", help="solicitada, aprobada o rechazada."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Solicitudes de apertura de cuentas y su estado.

    Ejemplo: [cyan]custodia cuentas solicitudes --estado solicitada[/cyan]
    """
    show(call("cuentas.solicitudes", {"estado": estado}), json_output, "Solicitudes de cuenta")


@cuentas.command("estado")
def cuentas_estado(
    cuenta: Cuenta,
    publica: Annotated[
        bool | None,
        typer.Option("--publica/--privada", help="Visibilidad encontrada en la plataforma."),
    ] = None,
    mensajes: Annotated[
        bool | None,
        typer.Option(
            "--con-mensajes/--sin-mensajes", help="Mensajes directos encontrados en la plataforma."
        ),
    ] = None,
    telefono: Annotated[
        str | None,
        typer.Option("--telefono", help="Teléfono asociado encontrado en la plataforma."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Registra la configuración actual de la cuenta tal como está en la plataforma (10.V,
    10.VI, 11.1.a); lo que no se indique conserva su último valor. Un teléfono ausente o no
    institucional es un incumplimiento, visible en «cuentas lista» y en el reporte.

    Ejemplo: [cyan]custodia cuentas estado --cuenta DD05-x --publica --con-mensajes
    --telefono "+52 55 5483 3800"[/cyan]
    """
    data = call(
        "cuentas.estado",
        {"cuenta": cuenta, "publica": publica, "mensajes": mensajes, "telefono": telefono},
    )
    show(data, json_output, "Estado de la cuenta registrado")


@cuentas.command("baja")
def cuentas_baja(
    cuenta: Cuenta,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Da de baja una cuenta, con vía oficial: tras el registro final en la bitácora se
    destruyen en OpenBao su contraseña (todas las versiones) y su semilla 2FA, y se muestra lo
    que falta hacer en la plataforma. Si la destrucción queda pendiente, repetir la orden la
    termina.

    Ejemplo: [cyan]custodia cuentas baja --cuenta DD05-tiktok --oficio IECM/UTCSyD/101/2026[/cyan]
    """
    data = call(
        "cuentas.baja",
        {"cuenta": cuenta, **channel_args(oficio, memorandum, correo_oficial, fecha)},
    )
    if json_output:
        show(data, True, "Cuenta cerrada")
        return
    checklist = data.get("lista_verificacion") or [] if isinstance(data, dict) else []
    summary = {k: v for k, v in data.items() if k != "lista_verificacion"}
    show(summary, False, "Cuenta cerrada; contraseña y semilla 2FA destruidas en OpenBao")
    typer.echo("\nPendiente en la plataforma (lista de verificación):")
    for number, item in enumerate(checklist, 1):
        typer.echo(f"  {number}. {item}")


# -- designaciones ----------------------------------------------------------------------------


Excepcion = Annotated[
    str | None,
    typer.Option(
        "--excepcion",
        help="Solo UTCSyD: motivo para actuar en lugar de la persona titular (queda registrado "
        "como excepción y aparece en el reporte de cumplimiento).",
    ),
]


def designar(
    distrito: Distrito,
    persona: Annotated[str, typer.Option("--persona", help="Usuario de la persona designada.")],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    excepcion: Excepcion = None,
    json_output: Json = False,
) -> None:
    """Designa a la persona administradora de cuenta (enlace) del distrito (6.VII, 6.X); quien
    la tenía pierde el acceso de inmediato y se abren obligaciones de rotación. Solo la persona
    titular (o quien la supla por encargo); la UTCSyD solo como excepción (--excepcion).

    Ejemplo: [cyan]custodia designar --distrito DD05 --persona bety --oficio DD05/045/2026[/cyan]
    """
    data = call(
        "designar",
        {
            "distrito": distrito,
            "persona": persona,
            "excepcion": excepcion,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Designación registrada")


def historial(
    distrito: Distrito,
    fecha: Annotated[
        str | None,
        typer.Option("--fecha", help="Quién tenía cada rol ese día (AAAA-MM-DD, hora de CDMX)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Quién tuvo cada rol del distrito (titular, titular por encargo, administradora,
    sustituta), desde cuándo, hasta cuándo y con qué vía oficial.

    Ejemplo: [cyan]custodia historial --distrito DD05 --fecha 2026-03-12[/cyan]
    """
    rows = call("historial", {"distrito": distrito, "fecha": fecha})
    show(rows, json_output, "Historial de designaciones")


def _required(value: str | None, flag: str) -> str:
    # The group's options are optional for its subcommands' sake; without one, they are needed.
    if not value:
        from typer._click.exceptions import UsageError

        raise UsageError(f"Falta la opción obligatoria {flag}.")
    return value


DistritoGrupo = Annotated[
    str | None, typer.Option("--distrito", help="Distrito: DD05, 5, 05 o dd05.")
]


titular_app = App(
    name="titular",
    # The help is the callback's docstring (with its example); a subcommand is optional.
    invoke_without_command=True,
    no_args_is_help=False,
    subcommand_metavar="[COMANDO [ARGUMENTOS]...]",
)


@titular_app.callback()
def titular(
    ctx: typer.Context,
    distrito: DistritoGrupo = None,
    persona: Annotated[
        str | None, typer.Option("--persona", help="Usuario de la persona titular.")
    ] = None,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Registra a la persona titular de la Dirección Distrital (coadministración); quien lo
    era deja el rol. Subcomandos: encargo (quien la suple en su ausencia) y fin-encargo.

    Ejemplo: [cyan]custodia titular --distrito DD05 --persona luis[/cyan]
    """
    if ctx.invoked_subcommand is not None:
        return
    distrito = _required(distrito, "--distrito")
    persona = _required(persona, "--persona")
    data = call(
        "titular",
        {
            "distrito": distrito,
            "persona": persona,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Titular registrada")


@titular_app.command("encargo")
def titular_encargo(
    distrito: Distrito,
    persona: Annotated[str, typer.Option("--persona", help="Usuario de quien queda encargada.")],
    desde: Annotated[str, typer.Option("--desde", help="Primer día del encargo (AAAA-MM-DD).")],
    hasta: Annotated[
        str | None, typer.Option("--hasta", help="Día en que regresa la titular (AAAA-MM-DD).")
    ] = None,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Registra el encargo de despacho durante la ausencia de la persona titular: en ese
    periodo quien queda encargada designa y reporta ausencias (la titular o la UTCSyD).

    Ejemplo: [cyan]custodia titular encargo --distrito DD05 --persona rosa --desde 2026-12-01
    --hasta 2026-12-15 --oficio DD05/070/2026[/cyan]
    """
    data = call(
        "titular.encargo",
        {
            "distrito": distrito,
            "persona": persona,
            "desde": desde,
            "hasta": hasta,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Encargo registrado")


@titular_app.command("fin-encargo")
def titular_fin_encargo(
    distrito: Distrito,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Termina el encargo de despacho: la persona titular regresó.

    Ejemplo: [cyan]custodia titular fin-encargo --distrito DD05[/cyan]
    """
    data = call(
        "titular.encargo_terminar",
        {"distrito": distrito, **channel_args(oficio, memorandum, correo_oficial, fecha)},
    )
    show(data, json_output, "Encargo terminado")


ausencia_app = App(
    name="ausencia",
    # The help is the callback's docstring (with its example); a subcommand is optional.
    invoke_without_command=True,
    no_args_is_help=False,
    subcommand_metavar="[COMANDO [ARGUMENTOS]...]",
)


@ausencia_app.callback()
def ausencia(
    ctx: typer.Context,
    distrito: DistritoGrupo = None,
    motivo: Annotated[
        str | None,
        typer.Option(
            "--motivo",
            help="vacaciones, salud, licencia, comision u otro (una salida definitiva es "
            "«custodia personas baja»).",
        ),
    ] = None,
    desde: Annotated[
        str | None, typer.Option("--desde", help="Primer día de ausencia (AAAA-MM-DD).")
    ] = None,
    sustituto: Annotated[
        str | None, typer.Option("--sustituto", help="Usuario de quien sustituye.")
    ] = None,
    hasta: Annotated[
        str | None, typer.Option("--hasta", help="Día en que regresa (AAAA-MM-DD).")
    ] = None,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    excepcion: Excepcion = None,
    json_output: Json = False,
) -> None:
    """Registra una ausencia temporal de la persona administradora y su sustitución (6.X); al
    regresar (--hasta, o «ausencia terminar») recupera el acceso, lo que es otro cambio de
    designación. Una baja, promoción o cambio de adscripción es «custodia personas baja».

    Ejemplo: [cyan]custodia ausencia --distrito DD05 --motivo vacaciones --desde 2026-12-01
    --hasta 2026-12-15 --sustituto beto --oficio DD05/050/2026[/cyan]
    """
    if ctx.invoked_subcommand is not None:
        return
    data = call(
        "ausencia",
        {
            "distrito": _required(distrito, "--distrito"),
            "motivo": _required(motivo, "--motivo"),
            "desde": _required(desde, "--desde"),
            "hasta": hasta,
            "sustituto": _required(sustituto, "--sustituto"),
            "excepcion": excepcion,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Ausencia registrada")


@ausencia_app.command("terminar")
def ausencia_terminar(
    distrito: Distrito,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    excepcion: Excepcion = None,
    json_output: Json = False,
) -> None:
    """Termina ahora la ausencia: la persona administradora vuelve a tener el acceso, quien la
    sustituía lo pierde de inmediato y se abren obligaciones de rotación (6.X).

    Ejemplo: [cyan]custodia ausencia terminar --distrito DD05 --oficio DD05/052/2026[/cyan]
    """
    data = call(
        "ausencia.terminar",
        {
            "distrito": distrito,
            "excepcion": excepcion,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Ausencia terminada")


# -- credenciales -----------------------------------------------------------------------------

rotar = App(name="rotar", help="Rotación de contraseñas (coadministración).")


@rotar.command("iniciar")
def rotar_iniciar(cuenta: Cuenta, json_output: Json = False) -> None:
    """Genera y prepara una contraseña nueva y robusta; se muestra una sola vez para aplicarla
    en la plataforma. Después: [cyan]custodia rotar confirmar[/cyan].

    Ejemplo: [cyan]custodia rotar iniciar --cuenta DD05-x[/cyan]
    """
    data = call("rotar.iniciar", {"cuenta": cuenta})
    if json_output:
        show(
            {
                "cuenta": data["cuenta"],
                "version": data["version"],
                "contrasena": data["contrasena"],
            },
            True,
        )
        return
    typer.echo(f"Contraseña preparada para {data['cuenta']} (versión {data['version']}):")
    typer.echo(f"  {data['contrasena']}")
    typer.echo("Aplíquela en la plataforma y confirme con «custodia rotar confirmar».")


@rotar.command("confirmar")
def rotar_confirmar(
    cuenta: Cuenta,
    solicitud: Annotated[
        str | None, typer.Option("--solicitud", help="Solicitud de cambio aprobada que aplica.")
    ] = None,
    json_output: Json = False,
) -> None:
    """La contraseña preparada pasa a ser la vigente; cierra las obligaciones de rotación.

    Ejemplo: [cyan]custodia rotar confirmar --cuenta DD05-x[/cyan]
    """
    show(
        call("rotar.confirmar", {"cuenta": cuenta, "solicitud": solicitud}),
        json_output,
        "Rotación confirmada",
    )


@rotar.command("abandonar")
def rotar_abandonar(cuenta: Cuenta, json_output: Json = False) -> None:
    """Descarta la contraseña preparada; la vigente no cambia.

    Ejemplo: [cyan]custodia rotar abandonar --cuenta DD05-x[/cyan]
    """
    show(call("rotar.abandonar", {"cuenta": cuenta}), json_output, "Rotación abandonada")


def revelar(
    cuenta: Cuenta,
    motivo: Annotated[
        str, typer.Option("--motivo", help="Para qué se necesita (queda en bitácora).")
    ],
    dispositivo: Annotated[
        str | None,
        typer.Option("--dispositivo", help="Equipo institucional desde el que lee (8.B)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Muestra la contraseña vigente. La lectura se registra en la bitácora antes; si no se
    puede registrar, no se muestra nada (6.IX).

    Ejemplo: [cyan]custodia revelar --cuenta DD05-x --motivo "publicar la parrilla"[/cyan]
    """
    from cli.remote import session, vault_verify
    from custody.vault.client import VaultClient
    from custody.vault.credentials import Credentials

    data = call("revelar", {"cuenta": cuenta, "motivo": motivo, "dispositivo": dispositivo})
    credential = Credentials(VaultClient(session().vault_addr, verify=vault_verify())).unwrap(
        data["envoltorio"], data["cuenta"]
    )
    out = {"cuenta": data["cuenta"], "version": data["version"], "contrasena": credential.password}
    if json_output:
        show(out, True)
        return
    typer.echo(f"{out['cuenta']} (versión {out['version']}): {out['contrasena']}")
    if data.get("fuera_de_horario"):
        typer.echo("Aviso: lectura fuera del horario laboral (8.A); queda señalada.", err=True)


totp = App(name="totp", help="Segundo factor (TOTP) en el motor de OpenBao.")


@totp.command("registrar")
def totp_registrar(cuenta: Cuenta, json_output: Json = False) -> None:
    """Guarda la semilla 2FA (URI otpauth:// por la entrada estándar) en el motor TOTP de
    OpenBao; nadie puede volver a leerla.

    Ejemplo: [cyan]custodia totp registrar --cuenta DD05-x < uri.txt[/cyan]
    """
    uri = sys.stdin.readline().strip()
    show(call("totp.registrar", {"cuenta": cuenta, "uri": uri}), json_output, "2FA registrado")


def codigo(
    cuenta: Cuenta,
    motivo: Annotated[str | None, typer.Option("--motivo", help="Para qué se necesita.")] = None,
    dispositivo: Annotated[str | None, typer.Option("--dispositivo", help="Equipo (8.B).")] = None,
    json_output: Json = False,
) -> None:
    """Muestra un código 2FA vigente (queda registrado en la bitácora).

    Ejemplo: [cyan]custodia codigo --cuenta DD05-x[/cyan]
    """
    from cli.remote import session, vault_verify
    from custody.vault.client import VaultClient
    from custody.vault.credentials import Credentials

    data = call("codigo", {"cuenta": cuenta, "motivo": motivo, "dispositivo": dispositivo})
    code = Credentials(VaultClient(session().vault_addr, verify=vault_verify())).unwrap_totp(
        data["envoltorio"], data["cuenta"]
    )
    out: dict[str, Any] = {
        "cuenta": data["cuenta"],
        "codigo": code.code,
        "valido_hasta": code.valid_until.isoformat(),
    }
    if json_output:
        show(out, True)
        return
    typer.echo(f"{out['cuenta']}: {out['codigo']} (válido hasta {out['valido_hasta']})")


# -- cambios ----------------------------------------------------------------------------------

cambios = App(name="cambios", help="Solicitudes de cambio de configuración (6.XI, 11.1).")


@cambios.command("solicitar")
def cambios_solicitar(
    cuenta: Cuenta,
    campo: Annotated[
        str, typer.Option("--campo", help="correo, telefono, usuario, contrasena u otro.")
    ],
    detalle: Annotated[str, typer.Option("--detalle", help="Qué se pide y por qué.")],
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Presenta una solicitud de cambio de configuración con su vía oficial.

    Ejemplo: [cyan]custodia cambios solicitar --cuenta DD05-x --campo telefono --detalle
    "nuevo conmutador" --memorandum DD05/077/2026[/cyan]
    """
    data = call(
        "cambios.solicitar",
        {
            "cuenta": cuenta,
            "campo": campo,
            "detalle": detalle,
            **channel_args(oficio, memorandum, correo_oficial, fecha),
        },
    )
    show(data, json_output, "Solicitud presentada")


def _decide(
    command: str, solicitud: str, motivo: str | None, json_output: bool, title: str
) -> None:
    show(call(command, {"solicitud": solicitud, "motivo": motivo}), json_output, title)


Solicitud = Annotated[str, typer.Option("--solicitud", help="Identificador de la solicitud.")]
Motivo = Annotated[str | None, typer.Option("--motivo", help="Motivo de la decisión.")]


@cambios.command("aprobar")
def cambios_aprobar(solicitud: Solicitud, motivo: Motivo = None, json_output: Json = False) -> None:
    """Aprueba una solicitud (coadministración).

    Ejemplo: [cyan]custodia cambios aprobar --solicitud 3f2c…[/cyan]
    """
    _decide("cambios.aprobar", solicitud, motivo, json_output, "Solicitud aprobada")


@cambios.command("rechazar")
def cambios_rechazar(
    solicitud: Solicitud, motivo: Motivo = None, json_output: Json = False
) -> None:
    """Rechaza una solicitud (coadministración).

    Ejemplo: [cyan]custodia cambios rechazar --solicitud 3f2c… --motivo "sin oficio"[/cyan]
    """
    _decide("cambios.rechazar", solicitud, motivo, json_output, "Solicitud rechazada")


@cambios.command("aplicar")
def cambios_aplicar(
    solicitud: Solicitud,
    valor: Annotated[str | None, typer.Option("--valor", help="El valor nuevo aplicado.")] = None,
    json_output: Json = False,
) -> None:
    """Registra como aplicada una solicitud aprobada (una contraseña: confirma la rotación).

    Ejemplo: [cyan]custodia cambios aplicar --solicitud 3f2c… --valor 5555555555[/cyan]
    """
    show(
        call("cambios.aplicar", {"solicitud": solicitud, "valor": valor}),
        json_output,
        "Solicitud aplicada",
    )


@cambios.command("lista")
def cambios_lista(
    estado: Annotated[
        str | None, typer.Option("--estado", help="solicitada, aprobada, rechazada o aplicada.")
    ] = None,
    json_output: Json = False,
) -> None:
    """Solicitudes y su estado.

    Ejemplo: [cyan]custodia cambios lista --estado solicitada[/cyan]
    """
    rows = call("cambios.lista", {"estado": estado})
    if not json_output:
        rows = [
            {k: r.get(k) for k in ("solicitud", "cuenta", "campo", "estado", "via_oficial")}
            for r in rows
        ]
    show(rows, json_output, "Solicitudes de cambio")


# -- incidentes -------------------------------------------------------------------------------

incidentes = App(
    name="incidentes", help="Incidentes: cuentas intervenidas u operadas sin autorización."
)
Incidente = Annotated[str, typer.Option("--incidente", help="Identificador del incidente.")]
Detalle = Annotated[str, typer.Option("--detalle", help="Qué se hizo.")]


@incidentes.command("reportar")
def incidentes_reportar(
    cuenta: Cuenta,
    tipo: Annotated[
        str,
        typer.Option(
            "--tipo",
            help="intervencion, operacion-no-autorizada, suplantacion, perdida-acceso, "
            "filtracion u otro.",
        ),
    ],
    descripcion: Annotated[str, typer.Option("--descripcion", help="Qué ocurrió.")],
    detectado: Annotated[
        str | None,
        typer.Option(
            "--detectado",
            help="Cuándo se detectó (AAAA-MM-DDTHH:MM, hora de la Ciudad de México); "
            "por omisión, ahora.",
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Reporta un incidente (8.C, 9.XVIII); corre el plazo para notificar a la Secretaría
    Ejecutiva, y se avisa de inmediato a la Secretaría Ejecutiva, a la UTCSyD y al titular.

    Ejemplo: [cyan]custodia incidentes reportar --cuenta DD05-x --tipo intervencion
    --descripcion "publicaciones ajenas" --detectado 2026-03-02T09:15[/cyan]
    """
    data = call(
        "incidentes.reportar",
        {"cuenta": cuenta, "tipo": tipo, "descripcion": descripcion, "detectado": detectado},
    )
    show(data, json_output, "Incidente reportado")


@incidentes.command("notificar")
def incidentes_notificar(
    incidente: Incidente,
    oficio: Oficio = None,
    memorandum: Memo = None,
    correo_oficial: Correo = None,
    fecha: Fecha = None,
    json_output: Json = False,
) -> None:
    """Registra la notificación a la Secretaría Ejecutiva, con su vía oficial.

    Ejemplo: [cyan]custodia incidentes notificar --incidente 9a1b… --oficio UTCSyD/200/2026[/cyan]
    """
    data = call(
        "incidentes.notificar",
        {"incidente": incidente, **channel_args(oficio, memorandum, correo_oficial, fecha)},
    )
    show(data, json_output, "Notificación registrada")


@incidentes.command("contener")
def incidentes_contener(incidente: Incidente, detalle: Detalle, json_output: Json = False) -> None:
    """Registra la contención (requiere una rotación confirmada después del reporte; puede
    preceder a la notificación).

    Ejemplo: [cyan]custodia incidentes contener --incidente 9a1b… --detalle "rotada"[/cyan]
    """
    show(
        call("incidentes.contener", {"incidente": incidente, "detalle": detalle}),
        json_output,
        "Incidente contenido",
    )


@incidentes.command("cerrar")
def incidentes_cerrar(incidente: Incidente, detalle: Detalle, json_output: Json = False) -> None:
    """Cierra un incidente contenido y ya notificado.

    Ejemplo: [cyan]custodia incidentes cerrar --incidente 9a1b… --detalle "sin más actividad"[/cyan]
    """
    show(
        call("incidentes.cerrar", {"incidente": incidente, "detalle": detalle}),
        json_output,
        "Incidente cerrado",
    )


@incidentes.command("descartar")
def incidentes_descartar(
    incidente: Incidente,
    motivo: Annotated[str, typer.Option("--motivo", help="Por qué fue una falsa alarma.")],
    json_output: Json = False,
) -> None:
    """Cierra un incidente como falsa alarma (estado «descartado»), con su motivo.

    Ejemplo: [cyan]custodia incidentes descartar --incidente 9a1b… --motivo "publicación
    programada por el distrito"[/cyan]
    """
    show(
        call("incidentes.descartar", {"incidente": incidente, "motivo": motivo}),
        json_output,
        "Incidente descartado",
    )


@incidentes.command("enterado")
def incidentes_enterado(
    incidente: Incidente,
    medidas: Annotated[
        str | None, typer.Option("--medidas", help="Medidas que ordena la Secretaría.")
    ] = None,
    json_output: Json = False,
) -> None:
    """La Secretaría Ejecutiva se da por enterada de un incidente notificado (8.C).

    Ejemplo: [cyan]custodia incidentes enterado --incidente 9a1b… --medidas "informar al
    Consejo"[/cyan]
    """
    show(
        call("incidentes.enterado", {"incidente": incidente, "medidas": medidas}),
        json_output,
        "Enterado registrado",
    )


@incidentes.command("bitacora")
def incidentes_bitacora(
    distrito: DistritoOpc = None,
    desde: Annotated[
        str | None, typer.Option("--desde", help="Reportados desde este día (AAAA-MM-DD).")
    ] = None,
    hasta: Annotated[
        str | None, typer.Option("--hasta", help="Reportados hasta este día (AAAA-MM-DD).")
    ] = None,
    json_output: Json = False,
) -> None:
    """La bitácora de incidentes con sus tiempos (Secretaría Ejecutiva, coadministración).

    Ejemplo: [cyan]custodia incidentes bitacora --desde 2026-03-01 --hasta 2026-03-31
    --json[/cyan]
    """
    rows = call("incidentes.bitacora", {"distrito": distrito, "desde": desde, "hasta": hasta})
    if not json_output:
        keys = ("incidente", "cuenta", "tipo", "estado", "detectado", "reportado")
        rows = [
            {**{k: r.get(k) for k in keys}, "notificado_a_tiempo": r.get("notificado_a_tiempo")}
            for r in rows
        ]
    show(rows, json_output, "Incidentes")


def register(app: App) -> None:
    """Add the user commands to the root app."""
    app.add_typer(sesion, name="sesion")
    from cli.personas_cmds import register as register_people  # issue 18

    register_people(personas)
    app.add_typer(personas, name="personas")
    app.add_typer(cuentas, name="cuentas")
    app.add_typer(titular_app, name="titular")
    app.command("designar")(designar)
    app.add_typer(ausencia_app, name="ausencia")
    app.command("historial")(historial)
    app.add_typer(rotar, name="rotar")
    app.command("revelar")(revelar)
    app.command("reconciliar")(reconciliar)
    app.add_typer(totp, name="totp")
    app.command("codigo")(codigo)
    app.add_typer(cambios, name="cambios")
    app.add_typer(incidentes, name="incidentes")
