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

import errno
import os
import re
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
        lambda e: f"Configuración no válida en {_attr(e, 'name')}: {_spanish_problem(e)}.",
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
    "AdministrativeTokenRequiredError": (
        EXIT_CONFIG,
        lambda e: (
            "Esta operación necesita un token administrativo de OpenBao, y el token raíz se "
            "revocó al terminar el primer «custodia init». Un operador genera uno con la llave "
            "de apertura («bao operator generate-root», ver README), lo pasa en "
            "CUSTODIA_VAULT_TOKEN y lo revoca al terminar («bao token revoke -self»)."
        ),
    ),
    "RootTokenGenerationError": (
        EXIT_CONFIG,
        lambda e: "OpenBao no completó la generación de un token raíz con la llave de apertura.",
    ),
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
    "ServiceAlreadyRunningError": (
        EXIT_CONFLICT,
        lambda e: (
            f"Ya hay un servicio de Custodia en ejecución para {_attr(e, 'home')}"
            + (f" (pid {_attr(e, 'pid')})" if _attr(e, "pid") else "")
            + ": use ese, o deténgalo antes con «custodia detener». No se inició nada."
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


# What a configuration error says (``ConfigurationError.problem``: the code's words), in Spanish.
_PROBLEMS: dict[str, str] = {
    "file not found": "el archivo no existe",
    "must be a port number": "debe ser un número de puerto",
    "not a number": "no es un número",
    "must be a whole number": "debe ser un número entero",
    "must start with nats:// or tls://": "debe empezar con nats:// o tls://",
    "must start with http:// or https:// (each address)": (
        "cada dirección debe empezar con http:// o https://"
    ),
    "must be 1, 3 or 5": "debe ser 1, 3 o 5",
    "must start with smtp:// or smtps://": "debe empezar con smtp:// o smtps://",
    "must contain {distrito}": "debe contener {distrito}",
    "quotes, backslash, spaces not allowed": "no admite comillas, diagonal invertida ni espacios",
    "shorter than the required classes": "es menor que las clases de caracteres exigidas",
    "rules too tight to draw a password": "las reglas no permiten generar una contraseña",
    "must be a table": "debe ser una tabla",
    "unknown key": "clave desconocida",
    "missing: the NATS auth callout needs it": "no existe (lo necesita el autenticador de NATS)",
    "not an account nkey seed": "no es una semilla de cuenta NATS",
    "required with an external OpenBao/Vault": "es obligatorio con un OpenBao externo",
    "missing: run «custodia init» first": "no existe: ejecute primero «custodia init»",
    "missing: run «custodia init» again": "no existe: ejecute de nuevo «custodia init»",
    "empty": "está vacío",
    "must be positive": "debe ser positivo",
    "letters, digits, '_' and '-' only": "solo letras, dígitos, '_' y '-'",
    "no character class enabled": "ninguna clase de caracteres activada",
}
_PROBLEM_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^must be at least (?P<n>\S+)$"), "debe ser al menos {n}"),
    (re.compile(r"^must be (?P<t>int|str|bool|float|list)$"), "tipo de valor incorrecto ({t})"),
    (re.compile(r"^not a number: (?P<v>.*)$"), "no es un número: {v}"),
    (re.compile(r"^not an integer: (?P<v>.*)$"), "no es un número entero: {v}"),
    (re.compile(r"^not set \(looked for (?P<v>.*)\)$"), "no está definida (se buscó {v})"),
    (
        re.compile(r"^'file' or 'memory', not (?P<v>.*)$"),
        "debe ser 'file' o 'memory', no {v}",
    ),
    (
        re.compile(r"^(?P<v>\d+) outside the platform's (?P<a>\d+)\.\.(?P<b>\d+)$"),
        "{v} fuera del intervalo de la plataforma ({a} a {b})",
    ),
]


def translated(patterns: list[tuple[re.Pattern[str], str]], text: str) -> str | None:
    """The template of the first of ``patterns`` that ``text`` matches, filled with the
    match's named groups; ``None`` if none matches."""
    for pattern, template in patterns:
        match = pattern.match(text)
        if match:
            return template.format(**match.groupdict())
    return None


def _spanish_problem(e: Any) -> str:
    """A configuration error's problem in Spanish (as it came, if it is new: it is then the
    code's own words, which a test keeps from reaching users)."""
    problem = _attr(e, "problem")
    if problem in _PROBLEMS:
        return _PROBLEMS[problem]
    return translated(_PROBLEM_PATTERNS, problem) or problem


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


# -- the domain's refusals (events.domain.errors) ----------------------------------------------

_FIELDS = {
    "contrasena": "la contraseña",
    "correo": "el correo",
    "telefono": "el teléfono",
    "usuario": "el usuario",
    "distrito": "el distrito",
    "cuenta": "la cuenta",
    "via_oficial": "la vía oficial",
    "fingerprint": "la huella",
    "role": "el rol",
    "district": "el distrito",
    "account": "la cuenta",
    "platform": "la plataforma",
    "email": "el correo",
    "phone": "el teléfono",
    "handle": "el usuario de la red",
    "reason": "el motivo",
    "incident_type": "el tipo de incidente",
    "detectado": "la hora de detección (AAAA-MM-DDTHH:MM)",
    "fecha": "la fecha (AAAA-MM-DD)",
    "hasta": "el periodo (--hasta antes de --desde)",
    "motivo": "el motivo",
    "measures": "las medidas",
    "field": "el campo",
}


# What a state machine refused to do (InvalidTransitionError.action), in Spanish.
_ACTIONS = {
    "approve": "aprobar",
    "reject": "rechazar",
    "apply": "aplicar",
    "notify": "notificar",
    "contain": "contener",
    "close": "cerrar",
    "dismiss": "descartar",
    "acknowledge": "registrar el enterado",
}


# What a ValidationError or InvalidTextError says is wrong, in Spanish (unknown: not said).
_VALIDATION_PROBLEMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:\w+: )?(?:required|empty)$"), "falta o está vacío"),
    (re.compile(r"^(?:\w+: )?(?:must be text|not text)$"), "debe ser texto"),
    (
        re.compile(r"^(?:\w+: )?longer than (?P<n>\d+) characters$"),
        "pasa de {n} caracteres",
    ),
    (re.compile(r"^(?:\w+: )?control characters$"), "tiene caracteres de control"),
    (
        re.compile(r"^shorter than (?P<n>\d+) characters$"),
        "debe tener al menos {n} caracteres",
    ),
    (re.compile(r"^same as the current one$"), "es igual a la actual"),
    (
        re.compile(r"^a titular's role names their district$"),
        "una persona titular lleva --distrito",
    ),
    (
        re.compile(r"^role (?P<r>\w+) is not tied to a district$"),
        "el rol {r} no lleva distrito",
    ),
    (re.compile(r"^(?:\w+ )?must be true or false$"), "debe ser sí o no"),
    (
        re.compile(r"^must be an integer of at least (?P<n>\d+)$"),
        "debe ser un número entero de al menos {n}",
    ),
]


def _validation_problem(problem: str) -> str:
    said = translated(_VALIDATION_PROBLEMS, problem)
    return f" ({said})" if said else ""


def _of(noun: str) -> str:
    """«de» + ``noun``, contracted as Spanish does (``de el`` → ``del``)."""
    return "del" + noun[2:] if noun.startswith("el ") else f"de {noun}"


def _field(e: Any, name: str = "field") -> str:
    value = _attr(e, name)
    return _FIELDS.get(value, value or "un dato")


def _violations(e: Any) -> str:
    names = {
        "correo_no_institucional": "correo fuera de iecm.mx (10.VIII)",
        "usuario_x_sin_sufijo_iecm": "usuario de X sin el sufijo IECM (10.VIII)",
        "cuenta_privada": "cuenta privada (10.VI)",
        "mensajes_privados_desactivados": "mensajes directos desactivados (10.V)",
        "telefono_faltante": "sin teléfono institucional (11.1.a)",
        "telefono_no_institucional": "teléfono fuera de la numeración institucional (11.1.a)",
        "telefono_distinto_al_registrado": "teléfono distinto del registrado (11.1)",
    }
    items = getattr(e, "violations", None) or []
    return "; ".join(names.get(str(v), str(v)) for v in items) or "incumple los lineamientos"


_DOMAIN: dict[str, tuple[int, Render]] = {
    "ValidationError": (
        EXIT_USAGE,
        lambda e: f"Dato no válido: {_field(e)}{_validation_problem(_attr(e, 'problem'))}.",
    ),
    "UnknownArgumentError": (
        EXIT_USAGE,
        lambda e: (
            f"La orden «{_attr(e, 'command')}» no acepta "
            f"{', '.join('«' + str(n) + '»' for n in getattr(e, 'names', None) or [])}; "
            "no se hizo nada. Consulte la ayuda de la orden (--help)."
        ),
    ),
    "InvalidIdentifierError": (
        EXIT_USAGE,
        lambda e: (
            f"Identificador no válido para {_field(e, 'kind')}: «{_attr(e, 'value')}». "
            "Los distritos son DD01 … DD33 y las cuentas DD05-x, DD05-facebook, …"
        ),
    ),
    "InvalidChoiceError": (
        EXIT_USAGE,
        lambda e: (
            f"Valor no válido para {_field(e)}: «{_attr(e, 'value')}». "
            f"Use uno de: {', '.join(str(v) for v in getattr(e, 'allowed', []) or [])}."
        ),
    ),
    "InvalidTextError": (
        EXIT_USAGE,
        lambda e: f"Texto no válido en {_field(e)}{_validation_problem(_attr(e, 'problem'))}.",
    ),
    "InvalidEmailError": (
        EXIT_USAGE,
        lambda e: f"{_field(e).capitalize()} no es un correo válido.",
    ),
    "InvalidPhoneError": (
        EXIT_USAGE,
        lambda e: f"{_field(e).capitalize()} no es un teléfono válido.",
    ),
    "InvalidHandleError": (
        EXIT_USAGE,
        lambda e: f"«{_attr(e, 'handle')}» no es un usuario válido en {_attr(e, 'platform')}.",
    ),
    "InvalidOfficialChannelError": (
        EXIT_USAGE,
        lambda e: (
            "Se requiere una vía oficial (5.XXIII): --oficio REF, --memorandum REF o "
            "--correo-oficial remitente@iecm.mx (una sola)."
            + (" El remitente debe ser del dominio iecm.mx." if _attr(e, "domain") else "")
        ),
    ),
    "InvalidPeriodError": (EXIT_USAGE, lambda e: "El periodo de ausencia no es posible."),
    "DetectionTimeError": (
        EXIT_USAGE,
        lambda e: "La hora de detección no puede ser futura ni posterior al reporte.",
    ),
    "NotExecutiveSecretariatError": (
        EXIT_DENIED,
        lambda e: "Solo la Secretaría Ejecutiva puede darse por enterada de un incidente (8.C).",
    ),
    "TimeOrderError": (
        EXIT_CONFLICT,
        lambda e: "La fecha de la operación es anterior a la última registrada.",
    ),
    "PermissionDeniedError": (EXIT_DENIED, lambda e: "No tiene permiso para esta operación."),
    "NotCoadministratorError": (
        EXIT_DENIED,
        lambda e: (
            "Solo una persona coadministradora de la UTCSyD puede hacer esto (6.VI, 10.I, 11.1)."
        ),
    ),
    "NotDistrictAuthorityError": (
        EXIT_DENIED,
        lambda e: (
            f"Solo la persona titular de {_attr(e, 'district')} (o quien la supla por encargo "
            "de despacho) puede hacer esto (6.VII, 6.X); la UTCSyD, solo como excepción "
            'registrada: --excepcion "motivo" con vía oficial.'
        ),
    ),
    "NotEntitledToReadError": (
        EXIT_DENIED,
        lambda e: (
            f"No tiene acceso a las credenciales de {_attr(e, 'account')}: solo la persona "
            "administradora designada del distrito y la coadministración (6.IX)."
        ),
    ),
    "NotAllowedToReportError": (
        EXIT_DENIED,
        lambda e: (
            f"Solo la persona titular, la administradora de {_attr(e, 'district')} o la "
            "UTCSyD pueden hacer esto."
        ),
    ),
    "OwnFactorResetError": (
        EXIT_DENIED,
        lambda e: (
            "No puede restablecer su propio segundo factor: debe hacerlo otra persona "
            "coadministradora."
        ),
    ),
    "SecondFactorNotEnforcedError": (
        EXIT_DOMAIN,
        lambda e: (
            "OpenBao no exige segundo factor en esta instalación "
            "([segundo_factor] obligatorio = false)."
        ),
    ),
    "SecondFactorFirstError": (
        EXIT_DOMAIN,
        lambda e: (
            f"{_attr(e, 'username')} aún no usa el segundo factor, y el rol "
            f"{_attr(e, 'role')} lee credenciales: primero exíjaselo con «custodia personas "
            f"segundo-factor --usuario {_attr(e, 'username')}» (entréguele la contraseña de "
            "primer ingreso que se muestra) y repita el cambio. No se cambió nada."
        ),
    ),
    "AlreadySecondFactorMemberError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'username')} ya usa segundo factor.",
    ),
    "NotFirstLoginError": (
        EXIT_DENIED,
        lambda e: "Solo un primer ingreso puede registrar un segundo factor.",
    ),
    "FactorAlreadyEnrolledError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'username')} ya registró su segundo factor: no se genera otro.",
    ),
    "FirstLoginBeforeResetError": (
        EXIT_DENIED,
        lambda e: (
            f"El primer ingreso de {_attr(e, 'username')} es anterior al último"
            " restablecimiento de su segundo factor: inicie sesión de nuevo con la"
            " contraseña nueva."
        ),
    ),
    "NotSecondFactorMemberError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'username')} no usa segundo factor: no hay nada que restablecer.",
    ),
    "SelfRevocationError": (
        EXIT_DENIED,
        lambda e: "No puede revocar su propio rol de coadministración.",
    ),
    "RoleConflictError": (
        EXIT_DOMAIN,
        lambda e: (
            f"El rol {_attr(e, 'role')} no se puede combinar con {_attr(e, 'held')}: "
            "titulares y Secretaría Ejecutiva nunca leen credenciales (6.IX)."
        ),
    ),
    "NotDesignatableError": (
        EXIT_DOMAIN,
        lambda e: (
            f"Esa persona no puede ser administradora de {_attr(e, 'district')} "
            "(debe estar registrada con el rol administrador para ese distrito)."
        ),
    ),
    "DistrictMismatchError": (EXIT_DOMAIN, lambda e: "La operación mezcla distritos distintos."),
    "DistrictStateError": (
        EXIT_DOMAIN,
        lambda e: f"El estado de {_attr(e, 'district')} no lo permite.",
    ),
    "NoAdministratorError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'district')} no tiene persona administradora designada.",
    ),
    "AlreadyAdministratorError": (
        EXIT_DOMAIN,
        lambda e: f"Esa persona ya es la administradora designada de {_attr(e, 'district')}.",
    ),
    "AbsenceAlreadyReportedError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'district')} ya tiene una ausencia registrada.",
    ),
    "NoAbsenceError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'district')} no tiene ausencia registrada.",
    ),
    "TitularAlreadyAppointedError": (
        EXIT_CONFLICT,
        lambda e: (
            f"{_attr(e, 'district')} ya tiene persona titular. El cambio de titular se registra "
            f"con «custodia titular --distrito {_attr(e, 'district')} --persona U»."
        ),
    ),
    "NoActingTitularError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'district')} no tiene encargo de despacho registrado.",
    ),
    "AccountStateError": (
        EXIT_DOMAIN,
        lambda e: f"El estado de {_attr(e, 'account')} no lo permite.",
    ),
    "AccountNotFoundError": (
        EXIT_NOT_FOUND,
        lambda e: f"La cuenta {_attr(e, 'account')} no está registrada.",
    ),
    "AccountAlreadyRegisteredError": (
        EXIT_CONFLICT,
        lambda e: f"La cuenta {_attr(e, 'account')} ya está registrada.",
    ),
    "AccountClosedError": (
        EXIT_DOMAIN,
        lambda e: f"La cuenta {_attr(e, 'account')} está dada de baja.",
    ),
    "AccountPolicyViolationError": (
        EXIT_DOMAIN,
        lambda e: (
            f"La cuenta {_attr(e, 'account')} incumple los lineamientos: {_violations(e)}. "
            "Corrija los datos o, si la cuenta ya existe así, regístrela con --existente."
        ),
    ),
    "RotationInProgressError": (
        EXIT_CONFLICT,
        lambda e: (
            f"Ya hay una rotación en curso para {_attr(e, 'account')} (versión "
            f"{_attr(e, 'staged_version')}): confírmela o abandónela."
        ),
    ),
    "NoRotationInProgressError": (
        EXIT_DOMAIN,
        lambda e: (
            f"No hay rotación en curso para {_attr(e, 'account')}: inicie una con "
            "«custodia rotar iniciar»."
        ),
    ),
    "RotationVersionError": (
        EXIT_CONFLICT,
        lambda e: f"La versión no corresponde para {_attr(e, 'account')}.",
    ),
    "NoCurrentCredentialError": (
        EXIT_DOMAIN,
        lambda e: f"{_attr(e, 'account')} todavía no tiene una contraseña confirmada.",
    ),
    "CredentialVersionError": (
        EXIT_CONFLICT,
        lambda e: f"La versión no es la vigente de {_attr(e, 'account')}.",
    ),
    "TotpNotRegisteredError": (
        EXIT_DOMAIN,
        lambda e: (
            f"{_attr(e, 'account')} no tiene segundo factor (2FA) registrado; la UTCSyD lo "
            "registra con «custodia totp registrar»."
        ),
    ),
    "TotpAlreadyRegisteredError": (
        EXIT_CONFLICT,
        lambda e: f"{_attr(e, 'account')} ya tiene 2FA registrado.",
    ),
    "PersonStateError": (EXIT_DOMAIN, lambda e: "El estado de la persona no lo permite."),
    "PersonalDataErasedError": (
        EXIT_DOMAIN,
        lambda e: "Los datos personales de esa persona fueron borrados.",
    ),
    "PersonStillActiveError": (
        EXIT_DOMAIN,
        lambda e: "Esa persona aún tiene roles; revóquelos primero.",
    ),
    "RoleAlreadyGrantedError": (
        EXIT_CONFLICT,
        lambda e: f"Esa persona ya tiene el rol {_attr(e, 'role')}.",
    ),
    "PersonDepartedError": (
        EXIT_DOMAIN,
        lambda e: "Esa persona ya causó baja: no tiene roles y no se le pueden asignar.",
    ),
    "DepartureIsNotAbsenceError": (
        EXIT_USAGE,
        lambda e: (
            f"«{_attr(e, 'reason')}» es una salida definitiva, no una ausencia temporal: "
            "regístrela con «custodia personas baja --usuario U --motivo "
            f"{str(_attr(e, 'reason')).replace('_', '-')} <vía oficial>»."
        ),
    ),
    "RoleNotGrantedError": (
        EXIT_DOMAIN,
        lambda e: f"Esa persona no tiene el rol {_attr(e, 'role')}.",
    ),
    "DeviceAlreadyRegisteredError": (EXIT_CONFLICT, lambda e: "El dispositivo ya está registrado."),
    "DeviceNotRegisteredError": (EXIT_NOT_FOUND, lambda e: "El dispositivo no está registrado."),
    "InvalidTransitionError": (
        EXIT_DOMAIN,
        lambda e: (
            f"No se puede {_ACTIONS.get(_attr(e, 'action'), _attr(e, 'action'))} en estado "
            f"«{_attr(e, 'state').replace('_', ' ')}»."
        ),
    ),
    "ChangeRequestMismatchError": (
        EXIT_DOMAIN,
        lambda e: "La solicitud no ampara este cambio (6.XI).",
    ),
    "ChangeValueRequiredError": (
        EXIT_USAGE,
        lambda e: (
            f"Indique el valor nuevo {_of(_field(e, 'field'))} con --valor: el detalle de la "
            "solicitud es texto libre, no un valor. No se registró nada."
        ),
    ),
    "ChangeNotRecordedError": (
        EXIT_DOMAIN,
        lambda e: "La solicitud no se puede marcar como aplicada: el cambio no está registrado.",
    ),
    "ContainmentWithoutRotationError": (
        EXIT_DOMAIN,
        lambda e: (
            f"Para contener el incidente hay que rotar y confirmar la contraseña de "
            f"{_attr(e, 'account')} después del reporte (8.C)."
        ),
    ),
}

# -- OpenBao and the event store ---------------------------------------------------------------

_INFRA: dict[str, tuple[int, Render]] = {
    "VaultUnreachableError": (
        EXIT_UNAVAILABLE,
        lambda e: f"OpenBao no responde en {_attr(e, 'addr')}. Revise con «custodia estado».",
    ),
    "VaultSealedError": (
        EXIT_UNAVAILABLE,
        lambda e: (
            "OpenBao está sellado: no se puede leer ni escribir ningún secreto hasta abrirlo."
        ),
    ),
    "VaultUnavailableError": (
        EXIT_UNAVAILABLE,
        lambda e: "OpenBao no puede atender ahora; intente de nuevo.",
    ),
    "VaultServerError": (EXIT_UNAVAILABLE, lambda e: "OpenBao falló al atender la operación."),
    "LoginRefusedError": (
        EXIT_DENIED,
        lambda e: (
            f"OpenBao no aceptó el usuario «{_attr(e, 'username')}» con esa contraseña: revise "
            "ambos. Tras varios intentos fallidos, OpenBao bloquea el acceso 15 minutos."
        ),
    ),
    "VaultPermissionDeniedError": (
        EXIT_DENIED,
        lambda e: (
            "OpenBao negó el acceso: su sesión no tiene permiso para esta operación"
            + (f" sobre {_attr(e, 'account')}" if _attr(e, "account") else "")
            + " (6.IX). Si acaba de iniciar sesión, revise su usuario y contraseña."
        ),
    ),
    "OwnPasswordDeniedError": (
        EXIT_DENIED,
        lambda e: (
            f"OpenBao no permite a «{_attr(e, 'username')}» cambiar su contraseña: su acceso se "
            "creó antes de esta función. La contraseña no cambió. Pida a la coadministración que "
            "ejecute «custodia init» con el token administrativo."
        ),
    ),
    "SecondFactorRequiredError": (
        EXIT_DENIED,
        lambda e: (
            f"OpenBao exige el segundo factor de {_attr(e, 'username')}: repita con "
            "«--codigo» y el código de seis dígitos de su aplicación autenticadora. Si aún no "
            "lo registra, hágalo primero con «custodia sesion iniciar»."
        ),
    ),
    "SecondFactorRefusedError": (
        EXIT_DENIED,
        lambda e: (
            "OpenBao rechazó el código del segundo factor (incorrecto o ya usado). "
            "Espere el siguiente código e intente de nuevo."
        ),
    ),
    "VaultTokenInvalidError": (
        EXIT_DENIED,
        lambda e: (
            "Su sesión ya no es válida (venció o fue revocada). Inicie otra con "
            "«custodia sesion iniciar»."
        ),
    ),
    "VaultNotFoundError": (
        EXIT_NOT_FOUND,
        lambda e: (
            "No hay credencial guardada"
            + (f" para {_attr(e, 'account')}" if _attr(e, "account") else "")
            + ": rótela primero con «custodia rotar iniciar»."
        ),
    ),
    "VaultCasConflictError": (
        EXIT_CONFLICT,
        lambda e: (
            f"Otra persona cambió la credencial de {_attr(e, 'account')} al mismo tiempo; "
            "la suya no se aplicó. Consulte el estado y vuelva a intentarlo."
        ),
    ),
    "VaultInvalidRequestError": (
        EXIT_USAGE,
        # Where and why (OpenBao's own words, never a secret body's: the client omits those).
        lambda e: (
            "OpenBao rechazó los datos de la operación"
            + (f" ({e.operation} en {e.path})" if getattr(e, "path", None) else "")
            + (f": {e.reason}" if getattr(e, "reason", None) else "")
            + "."
        ),
    ),
    "VaultLayoutError": (
        EXIT_CONFIG,
        lambda e: "OpenBao no tiene la configuración que Custodia espera; ejecute «custodia init».",
    ),
    "WrappingTokenInvalidError": (
        EXIT_DENIED,
        lambda e: (
            "La entrega de un solo uso ya fue usada o venció: nadie más debería haberla "
            "abierto; si no fue usted, repórtelo como incidente."
        ),
    ),
    "WrappingPathMismatchError": (
        EXIT_DENIED,
        lambda e: "La entrega recibida no corresponde a lo pedido; no se muestra.",
    ),
    "CustodyInputError": (EXIT_USAGE, lambda e: "Dato no válido."),
    "InvalidAccountError": (
        EXIT_USAGE,
        lambda e: f"«{_attr(e, 'value')}» no es una cuenta (p. ej. DD05-x).",
    ),
    "InvalidDistrictError": (
        EXIT_USAGE,
        lambda e: f"«{_attr(e, 'value')}» no es un distrito (DD01 … DD33).",
    ),
    "InvalidUsernameError": (
        EXIT_USAGE,
        lambda e: (
            "El usuario no es válido para OpenBao: de 1 a 64 letras sin acentos, dígitos, "
            "«.», «_» o «-», que empiece y termine con letra o dígito y sin «..» "
            "(p. ej. ana.lopez). No se registró nada."
        ),
    ),
    "UnknownRoleError": (EXIT_USAGE, lambda e: f"Rol desconocido: {_attr(e, 'role')}."),
    "InvalidOtpauthUriError": (
        EXIT_USAGE,
        lambda e: "El URI de 2FA no es un otpauth://totp/ válido (se lee de la entrada estándar).",
    ),
    "CustodyStateError": (
        EXIT_DOMAIN,
        lambda e: "El estado del resguardo no permite la operación.",
    ),
    "AccountDestructionPendingError": (
        EXIT_DOMAIN,
        lambda e: (
            f"La baja de {_attr(e, 'account')} quedó registrada en la bitácora, pero OpenBao no "
            f"destruyó aún su contraseña y semilla 2FA ({_attr(e, 'reason')}). La destrucción "
            f"está pendiente: repita «custodia cuentas baja --cuenta {_attr(e, 'account')}» "
            "(con la misma vía oficial) para terminarla."
        ),
    ),
    "NoStagedRotationError": (
        EXIT_DOMAIN,
        lambda e: f"No hay contraseña preparada para {_attr(e, 'account')}.",
    ),
    "LoginTakenError": (
        EXIT_CONFLICT,
        lambda e: (
            f"Ya existe en OpenBao un acceso con el usuario {_attr(e, 'username')} y la "
            "contraseña dada no es la suya; no se registró nada. Elija otro usuario."
        ),
    ),
    "UnknownPersonError": (
        EXIT_NOT_FOUND,
        lambda e: f"La persona {_attr(e, 'username')} no existe en OpenBao.",
    ),
    "AggregateVersionConflictError": (
        EXIT_CONFLICT,
        lambda e: (
            "Otra persona registró un cambio sobre los mismos datos al mismo tiempo; "
            "el suyo no se aplicó. Vuelva a intentarlo."
        ),
    ),
    "EventStoreUnavailableError": (
        EXIT_UNAVAILABLE,
        lambda e: "La bitácora (NATS) no respondió a tiempo; no se registró nada.",
    ),
    "OutcomeUnknownError": (
        EXIT_UNAVAILABLE,
        lambda e: "No se supo si la bitácora registró la operación; consulte antes de repetirla.",
    ),
    # custody.app.custodia / service / client / session
    "PersonAlreadyRegisteredError": (
        EXIT_CONFLICT,
        lambda e: (
            f"El usuario {_attr(e, 'username')} ya está registrado en Custodia con otro rol "
            "o distrito; no se cambió nada."
        ),
    ),
    "PersonNotFoundError": (
        EXIT_NOT_FOUND,
        lambda e: f"La persona {_attr(e, 'username')} no está registrada en Custodia.",
    ),
    "PersonNotRegisteredError": (
        EXIT_DENIED,
        lambda e: f"El usuario {_attr(e, 'username')} no está registrado en Custodia.",
    ),
    "NotFoundError": (
        EXIT_NOT_FOUND,
        lambda e: f"No existe {_attr(e, 'kind')} {_attr(e, 'identifier')}.",
    ),
    "ConflictError": (
        EXIT_CONFLICT,
        lambda e: (
            "Otra persona cambió los mismos datos al mismo tiempo; su operación no se "
            "aplicó. Consulte el estado y vuelva a intentarlo."
        ),
    ),
    "ScopeError": (
        EXIT_DENIED,
        lambda e: (
            "Su función no da acceso a esta información (es de la coadministración y de la "
            "Secretaría Ejecutiva)."
            if _attr(e, "district") in ("", "*")
            else f"No tiene acceso a la información de {_attr(e, 'district')}."
        ),
    ),
    "NotAuthenticatedError": (
        EXIT_DENIED,
        lambda e: (
            "Su sesión no es válida (vencida o revocada). "
            "Inicie otra con «custodia sesion iniciar»."
        ),
    ),
    "UnknownCommandError": (EXIT_USAGE, lambda e: "El servicio no conoce esa orden."),
    "RequestInProgressError": (
        EXIT_CONFLICT,
        lambda e: (
            "Esa misma solicitud todavía se está procesando; consulte el estado en un momento."
        ),
    ),
    "RequestAbandonedError": (
        EXIT_UNAVAILABLE,
        lambda e: (
            "La instancia del servicio que atendía la solicitud se detuvo antes de responder; "
            "no se sabe si se aplicó. Consulte antes de repetirla."
        ),
    ),
    "InternalError": (EXIT_DOMAIN, lambda e: "Falla interna del servicio; quedó en su registro."),
    "SealedArgumentError": (
        EXIT_USAGE,
        lambda e: (
            "La contraseña debe viajar sellada con OpenBao y no se recibió así (o el sello es de "
            "otra solicitud); no se registró nada. Use la versión actual de «custodia»."
        ),
    ),
    "ProtocolError": (EXIT_USAGE, lambda e: "Solicitud mal formada."),
    "ServiceUnavailableError": (
        EXIT_UNAVAILABLE,
        lambda e: (
            "El servicio de Custodia no responde. ¿Está en ejecución «custodia servicio»? "
            "Revise con «custodia estado»."
        ),
    ),
    "NoSessionError": (
        EXIT_DENIED,
        lambda e: "No hay sesión abierta. Inicie una con «custodia sesion iniciar --usuario U».",
    ),
    "SessionExpiredError": (
        EXIT_DENIED,
        lambda e: (
            f"La sesión de {_attr(e, 'username')} venció. "
            "Inicie otra con «custodia sesion iniciar»."
        ),
    ),
}

MESSAGES.update(_DOMAIN)
MESSAGES.update(_INFRA)


_ERRNO_REASONS: dict[int, str] = {
    errno.ENOENT: "no existe (o no existe la carpeta que lo contiene)",
    errno.EACCES: "no tiene permiso",
    errno.EPERM: "no tiene permiso",
    errno.EISDIR: "es una carpeta, no un archivo",
    errno.ENOTDIR: "una parte de la ruta no es una carpeta",
    errno.ENOSPC: "no queda espacio en el disco",
    errno.EROFS: "el sistema de archivos es de solo lectura",
    errno.EEXIST: "ya existe",
    errno.ENAMETOOLONG: "el nombre es demasiado largo",
}


def file_problem(exc: OSError) -> str:
    """A file the user named (``--salida``, ``--archivo``) that could not be written or read,
    in Spanish: which file and why (nothing was written: writers use a temporary file)."""
    reason = _ERRNO_REASONS.get(exc.errno or 0, f"error del sistema {exc.errno}")
    name = os.fsdecode(exc.filename)
    folder, base = os.path.split(name)
    if base.startswith(".") and base.endswith(".partial"):  # the writer's temporary file
        name = os.path.join(folder, base[1 : -len(".partial")])
    return f"No se pudo usar «{name}»: {reason}."
