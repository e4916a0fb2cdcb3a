"""One spec per command: every command ``custodia servicio`` answers, declared once (issue 17).

How to add a command:
1. Add its :class:`CommandSpec` to :data:`COMMANDS` below (name as in CLI.md, the arguments it
   takes, and ``read_only`` / ``sealed`` / ``sealed_reply`` / ``overlapping`` where they apply).
2. Write its handler, ``(Call) -> JSON-able data``, in your area's table (``*_commands.py``).
3. List that table once in ``custody.service.commands.handler_tables`` (a new module only).
4. Call it from the CLI: ``cli.remote.call("area.verb", {...})``.
5. Run tests/unit/custody/test_command_specs.py: one handler per spec, one spec per handler.

Everything else is derived from the spec: the server refuses arguments a command does not take,
opens its sealed arguments, asks for a reply key before a command whose reply is sealed, claims
a request id alongside the handler, and keeps no idempotency record for a read-only command;
the client seals the arguments named here and makes a reply key only when the reply needs one.

Converting a module written to the old pattern (an ``X_ARGUMENTS`` dict and ``x_handlers
(custodia)``, registered by hand in commands.py, protocol.py and server.py): move each entry of
``X_ARGUMENTS`` here as ``CommandSpec("x.verb", {...})`` (what it had in ``READ_ONLY`` or
``SEALED_ARGUMENTS`` becomes ``read_only=True`` / ``sealed={...}``), delete the dict and those
hand registrations, and add ``x_handlers(custodia)`` to ``handler_tables``. Argument readers
come from :mod:`custody.service.args`.

This module is the light half of the wire: it imports nothing but the standard library, so the
command line learns what a command seals without importing the application or the OpenBao
adapter (tests/unit/test_architecture.py checks it). Handlers are bound to these specs by the
composition root (:func:`custody.service.commands.build_handlers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class CommandSpec:
    """What one command is, as the service and the client both see it.

    ``arguments``: the only arguments it takes; anything else is refused, not ignored (a
    misspelt option sent by a script must not silently change what a command does).
    ``read_only``: changes nothing; answered again on a retry, no idempotency record.
    ``sealed``: arguments (passwords) that travel only sealed by OpenBao
    (:mod:`custody.vault.sealed_args`); one sent in the clear is refused.
    ``sealed_reply``: its reply carries a field sealed to the caller's reply key
    (:mod:`custody.service.protocol`); the key is checked before it runs, or a command already
    recorded in the ledger would be reported to its caller as failed.
    ``overlapping``: its use case calls ``actor.proceed()`` before any side effect, so its reads
    run while the request id is being claimed (:func:`custody.service.server.claim_overlapping`).
    ``caller_authorized``: its use case has OpenBao judge the caller's own token (its
    capabilities on the operation's marker, :mod:`custody.vault.credentials`) before its first
    side effect, and a dead token is refused there; so a token the service's cache holds is not
    looked up again first (one OpenBao call less per command). A refusal is then checked with
    OpenBao, so a revoked or expired session is still told as such.
    """

    name: str
    arguments: Set[str] = frozenset()
    read_only: bool = False
    sealed: Set[str] = frozenset()
    sealed_reply: bool = False
    overlapping: bool = False
    caller_authorized: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", frozenset(self.arguments))
        object.__setattr__(self, "sealed", frozenset(self.sealed))
        if not self.sealed <= self.arguments:
            raise ValueError(f"{self.name}: sealed arguments it does not take")
        if self.read_only and (self.overlapping or self.sealed or self.caller_authorized):
            raise ValueError(f"{self.name}: a read-only command neither claims nor seals")


def registry(*specs: CommandSpec) -> Mapping[str, CommandSpec]:
    """The specs by name (read-only); a name declared twice is a programming error."""
    table: dict[str, CommandSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"command declared twice: {spec.name}")
        table[spec.name] = spec
    return MappingProxyType(table)


# The official channel of a request (oficio, memorándum or correo oficial, and its date).
CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

COMMANDS = registry(
    CommandSpec("sesion.quien", read_only=True),
    # -- people and roles (CLI.md "personas") --
    CommandSpec(
        "personas.alta",
        {"usuario", "nombre", "correo", "telefono", "rol", "distrito", "contrasena"},
        sealed={"contrasena"},
    ),
    CommandSpec("personas.lista", read_only=True),
    CommandSpec("personas.revocar", {"usuario", "rol"} | CHANNEL),
    CommandSpec("personas.baja", {"usuario", "motivo"} | CHANNEL),
    CommandSpec("personas.borrar_datos", {"usuario"}),
    # 6.VII–6.VIII: a person's contact, read by the UTCSyD; the reply is sealed to the reader.
    CommandSpec("personas.contacto", {"usuario", "motivo"}, sealed_reply=True),
    # A transfer (``personas importar``): every other role ends, the new one is granted.
    CommandSpec("personas.cambiar", {"usuario", "rol", "distrito"} | CHANNEL),
    # The login's second factor (issue 18). ``confirmar``: sent by ``sesion iniciar`` after a
    # login OpenBao validated with a code. ``inscribir``: sent with a first-login token only
    # (the server refuses it from any other token, and any other command from that one); its
    # otpauth URI is sealed. The reset and the opt-in return a first-login password, sealed.
    CommandSpec("segundo_factor.confirmar"),
    CommandSpec("segundo_factor.inscribir", sealed_reply=True),
    CommandSpec("personas.restablecer_factor", {"usuario", "motivo"} | CHANNEL, sealed_reply=True),
    CommandSpec("personas.segundo_factor", {"usuario"}, sealed_reply=True),
    CommandSpec("reconciliar", {"reparar"}),
    # -- accounts, titulars, designations, absences --
    CommandSpec(
        "cuentas.alta",
        {"cuenta", "usuario", "correo", "telefono", "privada", "sin_mensajes", "existente"},
    ),
    CommandSpec("cuentas.lista", {"distrito"}, read_only=True),
    # The web view's download of the ledger's export bundle, in pages (NATS's 1 MiB replies):
    # ``evento``/``punto`` where this page starts, ``hasta``/``puntos`` the first page's extent.
    CommandSpec("bitacora.exportar", {"evento", "punto", "hasta", "puntos"}, read_only=True),
    CommandSpec("cuentas.baja", {"cuenta"} | CHANNEL),
    # ``publica``/``mensajes``: true, false, or absent (keeps the last recorded value).
    CommandSpec("cuentas.estado", {"cuenta", "publica", "mensajes", "telefono"}),
    # 10.I–III: a district asks, UTCSyD registers under the request or finds it not viable.
    CommandSpec("cuentas.solicitar", {"distrito", "plataforma", "motivo"} | CHANNEL),
    CommandSpec(
        "cuentas.aprobar",
        {"solicitud", "cuenta", "usuario", "correo", "telefono", "privada", "sin_mensajes"},
    ),
    CommandSpec("cuentas.rechazar", {"solicitud", "motivo"}),
    CommandSpec("cuentas.solicitudes", {"estado"}, read_only=True),
    CommandSpec("titular", {"distrito", "persona"} | CHANNEL),
    CommandSpec("titular.encargo", {"distrito", "persona", "desde", "hasta"} | CHANNEL),
    CommandSpec("titular.encargo_terminar", {"distrito"} | CHANNEL),
    CommandSpec("designar", {"distrito", "persona", "excepcion"} | CHANNEL),
    CommandSpec(
        "ausencia", {"distrito", "motivo", "desde", "hasta", "sustituto", "excepcion"} | CHANNEL
    ),
    CommandSpec("ausencia.terminar", {"distrito", "excepcion"} | CHANNEL),
    CommandSpec("historial", {"distrito", "fecha"}),
    # -- credentials: rotation, reveal, verification codes --
    CommandSpec(
        "rotar.iniciar", {"cuenta"}, sealed_reply=True, overlapping=True, caller_authorized=True
    ),
    CommandSpec("rotar.confirmar", {"cuenta", "solicitud"}),
    CommandSpec("rotar.abandonar", {"cuenta"}),
    CommandSpec(
        "revelar",
        {"cuenta", "motivo", "dispositivo"},
        sealed_reply=True,
        overlapping=True,
        caller_authorized=True,
    ),
    CommandSpec("totp.registrar", {"cuenta", "uri"}),
    CommandSpec(
        "codigo", {"cuenta", "motivo", "dispositivo"}, sealed_reply=True, caller_authorized=True
    ),
    # -- change requests --
    CommandSpec("cambios.solicitar", {"cuenta", "campo", "detalle"} | CHANNEL),
    CommandSpec("cambios.aprobar", {"solicitud", "motivo"}),
    CommandSpec("cambios.rechazar", {"solicitud", "motivo"}),
    CommandSpec("cambios.aplicar", {"solicitud", "valor"}),
    CommandSpec("cambios.lista", {"estado"}, read_only=True),
    # -- incidents --
    CommandSpec("incidentes.reportar", {"cuenta", "tipo", "descripcion", "detectado"}),
    CommandSpec("incidentes.notificar", {"incidente"} | CHANNEL),
    CommandSpec("incidentes.contener", {"incidente", "detalle"}),
    CommandSpec("incidentes.cerrar", {"incidente", "detalle"}),
    CommandSpec("incidentes.descartar", {"incidente", "motivo"}),
    CommandSpec("incidentes.enterado", {"incidente", "medidas"}),
    CommandSpec("incidentes.bitacora", {"distrito", "desde", "hasta"}, read_only=True),
    # -- read side (handlers bound by custody.runner: they need the projections) --
    CommandSpec("avisos.lista", read_only=True),
    CommandSpec("reporte", {"tipo", "formato", "distrito", "desde", "hasta"}),
    CommandSpec("bitacora.estado", read_only=True),
    # -- the institution's controls (issue 19; handlers in controls_commands.py) --
    CommandSpec("equipos.alta", {"equipo", "distrito", "descripcion"}),
    CommandSpec("equipos.baja", {"equipo"}),
    CommandSpec("equipos.lista"),
    # ``dia``: the day of the special hours (``fecha`` is the official document's date).
    CommandSpec("horario.especial", {"desde", "hasta", "inicio", "fin", "motivo"} | CHANNEL),
    CommandSpec("calendario.inhabil", {"dia"} | CHANNEL),
    CommandSpec("recertificar.iniciar", {"periodo", "vence"}),
    CommandSpec("recertificar.confirmar", {"distrito", "periodo"}),
    CommandSpec("recertificar.revocar", {"distrito", "periodo", "motivo"}),
)

# Derived, for the server's hot path (a set lookup per request).
READ_ONLY = frozenset(name for name, spec in COMMANDS.items() if spec.read_only)
CALLER_AUTHORIZED = frozenset(name for name, spec in COMMANDS.items() if spec.caller_authorized)
SEALED_ARGUMENTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {name: frozenset(spec.sealed) for name, spec in COMMANDS.items() if spec.sealed}
)


def spec_of(command: str) -> CommandSpec | None:
    """The spec of ``command``; ``None`` for a name the service does not answer."""
    return COMMANDS.get(command)
