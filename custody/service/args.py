"""Reading a request's caller and arguments: types and lengths checked here; the rules are
the domain's.

Every handler reads its arguments through these (``text(c.args, "cuenta", limit=64)``); a
wrong type, an overlong value or a control character is a :class:`ValidationError` naming the
argument, before any use case runs. Which arguments a command takes at all is its spec's
(:mod:`custody.service.spec`), checked before the handler is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from custody.app.custodia import Actor
from custody.service.protocol import MAX_TEXT
from events.domain import InvalidOfficialChannelError, OfficialChannel, ValidationError
from events.domain.values import validate_phone

if TYPE_CHECKING:
    from custody.service.server import Call


def actor(call: Call) -> Actor:
    """The caller of ``call`` as the use cases see them (``proceed``: see the spec's
    ``overlapping``)."""
    return Actor(call.caller.username, call.caller.token, call.proceed)


def text(
    args: Mapping[str, Any], name: str, *, required: bool = True, limit: int = MAX_TEXT
) -> str:
    """The text argument ``name`` ("" when absent and not ``required``)."""
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(name, "required")
        return ""
    if not isinstance(value, str):
        raise ValidationError(name, "must be text")
    if len(value) > limit:
        raise ValidationError(name, f"longer than {limit} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise ValidationError(name, "control characters")
    return value


def opt(args: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    """The optional text argument ``name``, ``None`` when absent."""
    return text(args, name, required=False, limit=limit) or None


def phone(args: Mapping[str, Any], name: str) -> str | None:
    # A person's contact data is sealed, never seen by the domain: validated here.
    value = opt(args, name, 40)
    return validate_phone(name, value) if value else None


def flag(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def day(args: Mapping[str, Any], name: str, *, required: bool) -> date | None:
    """The date argument ``name`` (``AAAA-MM-DD``)."""
    value = text(args, name, required=required, limit=10)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, "expected AAAA-MM-DD") from None


def channel_from(args: Mapping[str, Any]) -> OfficialChannel:
    """The *vía oficial* of a request, its arguments type-checked first (a non-text reference
    would otherwise be recorded as its ``str()``, a malformed ``fecha`` would crash)."""
    for name in ("oficio", "memorandum", "correo_oficial"):
        opt(args, name, 200)
    day(args, "fecha", required=False)
    dated = args.get("fecha")
    when = date.fromisoformat(dated) if isinstance(dated, str) and dated else None
    given = [(k, args.get(k)) for k in ("oficio", "memorandum", "correo_oficial") if args.get(k)]
    if len(given) != 1:  # the domain checks the rest (iecm.mx, the reference's form)
        raise InvalidOfficialChannelError("via_oficial", "exactly one is required")
    kind, value = given[0]
    if kind == "oficio":
        return OfficialChannel.oficio(str(value), when)
    if kind == "memorandum":
        return OfficialChannel.memorandum(str(value), when)
    return OfficialChannel.email(str(value), when)


def has_channel(args: Mapping[str, Any]) -> bool:
    # Any value but absent/empty counts: a wrongly typed one is then refused, not ignored.
    return any(args.get(k) not in (None, "") for k in ("oficio", "memorandum", "correo_oficial"))


def optional_channel(args: Mapping[str, Any]) -> OfficialChannel | None:
    """The *vía oficial* when the request names one, else ``None``."""
    return channel_from(args) if has_channel(args) else None
