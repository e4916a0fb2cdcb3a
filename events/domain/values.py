"""The domain's vocabularies and the validation of plain values.

Vocabulary values are the guidelines' own Spanish words, stored as plain strings in events (they
are data the reports show, not code). Each vocabulary is a ``Literal`` type for mypy and a tuple
for checks at run time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final, Literal, TypeVar, cast, get_args

from events.domain.errors import (
    InvalidChoiceError,
    InvalidEmailError,
    InvalidHandleError,
    InvalidIdentifierError,
    InvalidPhoneError,
    InvalidTextError,
)

__all__ = [
    "ABSENCE_REASONS",
    "CHANGE_FIELDS",
    "DEPARTURE_REASONS",
    "DESIGNATION_END_REASONS",
    "INCIDENT_TYPES",
    "INSTITUTIONAL_DOMAIN",
    "PERMANENT_REASONS",
    "ROLES",
    "X_HANDLE_SUFFIX",
    "AbsenceEndKind",
    "AbsenceReason",
    "ChangeField",
    "ChangeRequestStatus",
    "DesignationEndReason",
    "HolderChangeCause",
    "IncidentStatus",
    "IncidentType",
    "ReadKind",
    "ReaderRole",
    "Role",
    "Violation",
    "account_violations",
    "choice",
    "email_domain",
    "is_institutional_email",
    "phone_violations",
    "validate_device_id",
    "validate_email",
    "validate_fingerprint",
    "validate_handle",
    "validate_phone",
    "validate_text",
]

# 5.XIII, 5.XIV, 5.XVIII, 5.XIX: who is who.
Role = Literal["coadministrador", "titular", "administrador", "secretaria"]
ROLES: Final = cast(tuple[Role, ...], get_args(Role))

# 6.X: why a designated administrator stops holding the credentials.
# Temporary only (6.X): the person comes back. Events recorded before the split may still carry
# "promocion", "baja" or "cambio_adscripcion" as an absence reason.
AbsenceReason = Literal["vacaciones", "salud", "licencia", "comision", "otro"]
ABSENCE_REASONS: Final = cast(tuple[AbsenceReason, ...], get_args(AbsenceReason))
# A designation ends for good only for these; vacations and health leave are absences.
DesignationEndReason = Literal["promocion", "baja", "cambio_adscripcion", "otro"]
DESIGNATION_END_REASONS: Final = cast(
    tuple[DesignationEndReason, ...], get_args(DesignationEndReason)
)

# 6.X: a departure for good ends every role and designation of the person at once.
DEPARTURE_REASONS: Final = cast(tuple[DesignationEndReason, ...], get_args(DesignationEndReason))
# What may never be reported as an absence: ``ausencia`` names ``personas baja`` for these.
PERMANENT_REASONS: Final = frozenset({"baja", "promocion", "cambio_adscripcion"})

# Why the person holding a district's credentials changed (each opens obligations, 6.X).
HolderChangeCause = Literal[
    "designacion", "fin_designacion", "sustitucion", "regreso", "salida", "revocacion"
]
# How an absence ended.
AbsenceEndKind = Literal[
    "regreso_programado",  # its end date came
    "regreso_anticipado",  # the titular ended it early
    "cancelada",  # ended before it started
    "designacion",  # a new administrator was designated during it
    "fin_designacion",  # the absent administrator's designation ended
    "no_iniciada",  # its whole period passed before the model could start it
    "salida",  # the absent administrator or the substitute left (6.X)
]

# 6.XI, 11.1.a: what a configuration-change request may ask to change.
ChangeField = Literal["correo", "telefono", "usuario", "contrasena", "otro"]
CHANGE_FIELDS: Final = cast(tuple[ChangeField, ...], get_args(ChangeField))
ChangeRequestStatus = Literal["solicitada", "aprobada", "rechazada", "aplicada"]

# 8.C, 9.XVIII: intervened by outsiders / operated by unauthorized staff, and what else puts an
# account at risk (issue 19): impersonation, lost access, a leaked credential, anything else.
IncidentType = Literal[
    "intervencion",
    "operacion_no_autorizada",
    "suplantacion",
    "perdida_acceso",
    "filtracion",
    "otro",
]
INCIDENT_TYPES: Final = cast(tuple[IncidentType, ...], get_args(IncidentType))
# ``descartado``: closed as a false alarm.
IncidentStatus = Literal["reportado", "notificado", "contenido", "cerrado", "descartado"]

# What was read: the account's password or a current TOTP code (never the seed).
ReadKind = Literal["contrasena", "codigo_totp"]
# In what capacity a reader was entitled (6.IX).
ReaderRole = Literal["coadministrador", "administrador", "sustituto"]

# 10.V, 10.VI, 10.VIII, 11.1.a: an account's policy status.
Violation = Literal[
    "correo_no_institucional",
    "usuario_x_sin_sufijo_iecm",
    "cuenta_privada",
    "mensajes_privados_desactivados",
    "telefono_faltante",
    "telefono_no_institucional",
    "telefono_distinto_al_registrado",
]

T = TypeVar("T", bound=str)


def choice(field: str, value: str, allowed: tuple[T, ...]) -> T:
    """``value`` if it is one of ``allowed`` (hyphens read as underscores), else an error."""
    normalized = value.strip().lower().replace("-", "_") if isinstance(value, str) else ""
    for candidate in allowed:
        if candidate == normalized:
            return candidate
    raise InvalidChoiceError(field, str(value), allowed)


_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}


def validate_text(field: str, value: str, *, max_length: int, multiline: bool = False) -> str:
    """Free text, stripped: not empty, at most ``max_length``, no control characters."""
    if not isinstance(value, str):
        raise InvalidTextError(field, "not text")
    text = value.strip()
    if not text:
        raise InvalidTextError(field, "empty")
    if len(text) > max_length:
        raise InvalidTextError(field, f"longer than {max_length} characters")
    allowed = {"\n", "\t"} if multiline else set()
    if any(unicodedata.category(c) in _CONTROL and c not in allowed for c in text):
        raise InvalidTextError(field, "control characters")
    return text


# 5.XXIII, 10.VIII: the institute's mail domain, compared exactly (no subdomains).
INSTITUTIONAL_DOMAIN: Final = "iecm.mx"
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN = re.compile(r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def validate_email(field: str, value: str) -> str:
    """An e-mail address (``local@domain``, ASCII), stripped, with its domain lowercased."""
    if not isinstance(value, str):
        raise InvalidEmailError(field, "not text")
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmailError(field, "missing @")
    if len(address) > 254 or len(local) > 64:
        raise InvalidEmailError(field, "too long")
    if not _LOCAL_PART.fullmatch(local):
        raise InvalidEmailError(field, "invalid local part")
    if not _DOMAIN.fullmatch(domain):
        raise InvalidEmailError(field, "invalid domain")
    return f"{local}@{domain.lower()}"


def email_domain(address: str) -> str:
    """The domain of an address returned by :func:`validate_email`."""
    return address.rpartition("@")[2]


def is_institutional_email(address: str) -> bool:
    """True if ``address`` (validated) is in ``iecm.mx`` exactly: no lookalikes, no subdomains."""
    return email_domain(address) == INSTITUTIONAL_DOMAIN


_PHONE_EXTENSION = re.compile(r"(?:ext\.?|extensi[oó]n|x)\s*([0-9]{1,6})$", re.IGNORECASE)
_PHONE_SEPARATORS = re.compile(r"[\s().-]")


def validate_phone(field: str, value: str) -> str:
    """A phone number: optional ``+``, 8–15 digits with common separators, optional extension.

    Returned in a canonical form, ``+525512345678`` or ``5512345678 ext 123``.
    """
    if not isinstance(value, str):
        raise InvalidPhoneError(field)
    text = value.strip()
    extension = ""
    match = _PHONE_EXTENSION.search(text)
    if match:
        extension = f" ext {match.group(1)}"
        text = text[: match.start()].rstrip(" ,;")
    digits = _PHONE_SEPARATORS.sub("", text)
    plus = digits.startswith("+")
    digits = digits.removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise InvalidPhoneError(field)
    return ("+" if plus else "") + digits + extension


# 10.VIII: X user names are 1–15 letters, digits or underscores; other platforms are laxer.
_X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}", re.ASCII)
_HANDLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}", re.ASCII)


def validate_handle(platform: str, value: str) -> str:
    """An account's user name on ``platform``, without a leading ``@``."""
    handle = value.strip().removeprefix("@") if isinstance(value, str) else ""
    pattern = _X_HANDLE if platform == "x" else _HANDLE
    if not pattern.fullmatch(handle):
        raise InvalidHandleError(platform, str(value))
    return handle


# 10.VIII: "las direcciones contarán invariablemente con el sufijo IECM". Compared
# case-sensitively: the guideline writes it in capitals and the handle is the account's public
# face; "dd05iecm" is reported as a violation so UTCSyD can fix the display form.
X_HANDLE_SUFFIX: Final = "IECM"


def account_violations(
    platform: str, handle: str, email: str, *, public: bool, direct_messages: bool
) -> list[Violation]:
    """The policy violations of an account with these facts (validated values)."""
    violations: list[Violation] = []
    if not is_institutional_email(email):  # 10.VIII, 11.1.a
        violations.append("correo_no_institucional")
    if platform == "x" and not handle.endswith(X_HANDLE_SUFFIX):  # 10.VIII
        violations.append("usuario_x_sin_sufijo_iecm")
    if not public:  # 10.VI
        violations.append("cuenta_privada")
    if not direct_messages:  # 10.V
        violations.append("mensajes_privados_desactivados")
    return violations


def _national_digits(phone: str) -> str:
    """The digits of a phone returned by :func:`validate_phone`, without extension nor
    Mexico's country code: ``+525554833800`` and ``5554833800`` compare equal."""
    digits = phone.split(" ext ")[0].removeprefix("+")
    return digits[2:] if phone.startswith("+52") else digits


def phone_prefix_digits(prefix: str) -> str:
    """A numbering prefix (``+52 55 5483``) as national digits (``555483``); "" if it is not
    one (the policy refuses such a prefix when it loads)."""
    text = _PHONE_SEPARATORS.sub("", prefix.strip())
    digits = text.removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        return ""
    return digits[2:] if text.startswith("+52") else digits


def phone_violations(
    observed: str | None, *, registered: str | None, prefixes: Iterable[str]
) -> list[Violation]:
    """11.1.a: the account is tied to an institutional phone. ``observed`` is the phone found
    on the platform (or the registered one), validated; ``prefixes`` are the institution's
    numbering (policy ``[cuentas] prefijos_telefono``; none configured: only a missing phone
    is a violation, as nothing says which numbers are the institution's)."""
    if observed is None:
        return ["telefono_faltante"]
    violations: list[Violation] = []
    wanted = [phone_prefix_digits(p) for p in prefixes if p]
    if wanted and not any(_national_digits(observed).startswith(w) for w in wanted):
        violations.append("telefono_no_institucional")
    if registered is not None and _national_digits(observed) != _national_digits(registered):
        violations.append("telefono_distinto_al_registrado")  # 11.1.a: original settings kept
    return violations


_FINGERPRINT = re.compile(r"(?:[0-9a-f]{2}){8,64}", re.ASCII)


def validate_fingerprint(value: str) -> str:
    """A keyed fingerprint computed by the custody layer: lowercase hex, 16–128 digits.

    Never the secret: the domain cannot tell, so the custody layer must only pass an HMAC.
    """
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
        raise InvalidIdentifierError("fingerprint", "…")
    return value


_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)


def validate_device_id(value: str) -> str:
    """An institutional device's identifier (8.B), as registered by UTCSyD."""
    device = value.strip() if isinstance(value, str) else ""
    if not _DEVICE_ID.fullmatch(device):
        raise InvalidIdentifierError("device", str(value))
    return device
