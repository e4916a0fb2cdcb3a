"""The command table: each command of CLI.md, as the service runs it.

A handler takes the :class:`~custody.service.server.Call` (authenticated caller, arguments, request
id)
and returns plain JSON-able data. Arguments are validated here (types, lengths); the rules are
the domain's. Sensitive results (a staged password, a wrapping token) are sealed for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from custody.app.custodia import Actor, Custodia
from custody.app.custodia import channel_from as _channel_from
from custody.app.incidents import day_bound, local_minute
from custody.service import protocol
from custody.service.protocol import MAX_TEXT
from custody.service.server import Call, Caller, Handler, claim_overlapping
from custody.vault.client import TokenInfo, VaultClient
from events.domain import ValidationError
from events.domain.values import validate_email, validate_phone


class VaultAuthenticator:
    """Authenticates a caller's token with OpenBao itself (``auth/token/lookup-self``).

    A request token (a child of a person's session, custody.vault.session) names its owner by its
    entity only: the person is the login (userpass alias) of that entity, read with the
    service's own token (no use of the caller's use-limited token is spent on it). Its metadata
    is ignored: the person who made it chose it."""

    def __init__(self, client: VaultClient) -> None:
        self.client = client
        self._accessor: str | None = None

    def authenticate(self, token: str) -> Caller:
        from custody.errors import (
            VaultSealedError,
            VaultServerError,
            VaultUnavailableError,
            VaultUnreachableError,
        )
        from custody.service.server import NotAuthenticatedError

        infra = (VaultUnreachableError, VaultUnavailableError, VaultSealedError, VaultServerError)
        try:
            info = self.client.lookup_self(token)
        except infra:
            raise  # OpenBao could not answer (e.g. a failover): not a verdict on the token
        except Exception:  # any refusal means: not authenticated
            info = None
        if info is None:
            # A first-login token (issue 18) holds no policy, not even lookup-self: the service
            # asks OpenBao about it with its own token, and takes nothing else this way.
            try:
                info = self.client.lookup_token(token)
            except infra:
                raise
            except Exception:
                raise NotAuthenticatedError("invalid") from None
            if info.first_login_user is None:
                raise NotAuthenticatedError("invalid")
        if info.first_login_user is not None:
            return self._first_login(info, token)
        username = info.username
        if info.child:
            try:
                username = self._login_of(info.entity_id)
            except (
                VaultUnreachableError,
                VaultUnavailableError,
                VaultSealedError,
                VaultServerError,
            ):
                raise
            except Exception:
                raise NotAuthenticatedError("no-identity") from None
        if not username:
            raise NotAuthenticatedError("no-identity")
        return Caller(
            username=username,
            entity_id=info.entity_id or "",
            policies=info.policies + info.identity_policies,
            token=token,
            expires_at=info.expire_time,
        )

    def _first_login(self, info: TokenInfo, token: str) -> Caller:
        """The caller of a first-login token: the user OpenBao issued it to on the first-login
        mount (its path), flagged so the service lets it send one command only."""
        from custody.service.server import NotAuthenticatedError
        from events.domain import Username

        try:
            username = str(Username.parse(info.first_login_user or ""))
        except Exception:
            raise NotAuthenticatedError("no-identity") from None
        return Caller(
            username=username,
            entity_id=info.entity_id or "",
            policies=(),
            token=token,
            expires_at=info.expire_time,
            first_login=True,
        )

    def _login_of(self, entity_id: str | None) -> str | None:
        """The login name of ``entity_id`` on the people's userpass mount (its name if none)."""
        from custody.app.access import login_name
        from custody.errors import VaultNotFoundError

        if not entity_id:
            return None
        if self._accessor is None:
            body = self.client.read("sys/auth", operation="lookup-person")
            mounts = body.get("data") or body
            entry = mounts.get(self.client.mounts.userpass + "/") or {}
            self._accessor = str(entry.get("accessor") or "")
        try:
            entity = self.client.read(f"identity/entity/id/{entity_id}", operation="lookup-person")
        except VaultNotFoundError:
            return None
        return login_name(entity.get("data") or {}, self._accessor)


def _text(
    args: Mapping[str, Any], name: str, *, required: bool = True, limit: int = MAX_TEXT
) -> str:
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


def _opt(args: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    return _text(args, name, required=False, limit=limit) or None


def _phone(args: Mapping[str, Any], name: str) -> str | None:
    # A person's contact data is sealed, never seen by the domain: validated here.
    value = _opt(args, name, 40)
    return validate_phone(name, value) if value else None


def _flag(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _date(args: Mapping[str, Any], name: str, *, required: bool) -> date | None:
    text = _text(args, name, required=required, limit=10)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(name, "expected AAAA-MM-DD") from None


def channel_from(args: Mapping[str, Any]) -> Any:
    """The *vía oficial* of a request, its arguments type-checked first (a non-text reference
    would otherwise be recorded as its ``str()``, a malformed ``fecha`` would crash)."""
    for name in ("oficio", "memorandum", "correo_oficial"):
        _opt(args, name, 200)
    _date(args, "fecha", required=False)
    return _channel_from(args)


_CHANNEL = frozenset({"oficio", "memorandum", "correo_oficial", "fecha"})

# The arguments each command takes (CLI.md). Anything else is refused, not ignored: a misspelt
# option sent by a script must not silently change what a command does.
ARGUMENTS: dict[str, frozenset[str]] = {
    "sesion.quien": frozenset(),
    "personas.alta": frozenset(
        {"usuario", "nombre", "correo", "telefono", "rol", "distrito", "contrasena"}
    ),
    "personas.lista": frozenset(),
    "personas.revocar": frozenset({"usuario", "rol"}) | _CHANNEL,
    "personas.baja": frozenset({"usuario", "motivo"}) | _CHANNEL,
    "personas.borrar_datos": frozenset({"usuario"}),
    "reconciliar": frozenset({"reparar"}),
    "cuentas.alta": frozenset(
        {"cuenta", "usuario", "correo", "telefono", "privada", "sin_mensajes", "existente"}
    ),
    "cuentas.lista": frozenset({"distrito"}),
    "cuentas.baja": frozenset({"cuenta"}) | _CHANNEL,
    "titular": frozenset({"distrito", "persona"}) | _CHANNEL,
    "titular.encargo": frozenset({"distrito", "persona", "desde", "hasta"}) | _CHANNEL,
    "titular.encargo_terminar": frozenset({"distrito"}) | _CHANNEL,
    "designar": frozenset({"distrito", "persona", "excepcion"}) | _CHANNEL,
    "ausencia": frozenset({"distrito", "motivo", "desde", "hasta", "sustituto", "excepcion"})
    | _CHANNEL,
    "ausencia.terminar": frozenset({"distrito", "excepcion"}) | _CHANNEL,
    "historial": frozenset({"distrito", "fecha"}),
    "rotar.iniciar": frozenset({"cuenta"}),
    "rotar.confirmar": frozenset({"cuenta", "solicitud"}),
    "rotar.abandonar": frozenset({"cuenta"}),
    "revelar": frozenset({"cuenta", "motivo", "dispositivo"}),
    "totp.registrar": frozenset({"cuenta", "uri"}),
    "codigo": frozenset({"cuenta", "motivo", "dispositivo"}),
    "cambios.solicitar": frozenset({"cuenta", "campo", "detalle"}) | _CHANNEL,
    "cambios.aprobar": frozenset({"solicitud", "motivo"}),
    "cambios.rechazar": frozenset({"solicitud", "motivo"}),
    "cambios.aplicar": frozenset({"solicitud", "valor"}),
    "cambios.lista": frozenset({"estado"}),
    "incidentes.reportar": frozenset({"cuenta", "tipo", "descripcion", "detectado"}),
    "incidentes.notificar": frozenset({"incidente"}) | _CHANNEL,
    "incidentes.contener": frozenset({"incidente", "detalle"}),
    "incidentes.cerrar": frozenset({"incidente", "detalle"}),
    "incidentes.descartar": frozenset({"incidente", "motivo"}),
    "incidentes.enterado": frozenset({"incidente", "medidas"}),
    "incidentes.bitacora": frozenset({"distrito", "desde", "hasta"}),
    "avisos.lista": frozenset(),
    "reporte": frozenset({"tipo", "formato", "distrito", "desde", "hasta"}),
    "bitacora.estado": frozenset(),
}


def _control_arguments() -> dict[str, frozenset[str]]:
    from custody.service.controls_commands import (
        CONTROL_ARGUMENTS,  # devices, hours, recertification
    )

    return CONTROL_ARGUMENTS


ARGUMENTS.update(_control_arguments())


def _factor_arguments() -> dict[str, frozenset[str]]:
    from custody.service.factor_commands import FACTOR_ARGUMENTS  # issue 18: second factor

    return FACTOR_ARGUMENTS


ARGUMENTS.update(_factor_arguments())


class UnknownArgumentError(ValidationError):
    """A request carries an argument its command does not take."""

    def __init__(self, command: str, names: list[str]) -> None:
        super().__init__(names[0], "unknown argument")
        self.command = command
        self.names = names


def checking_arguments(command: str, handler: Handler) -> Handler:
    """``handler``, refusing (before anything runs) arguments ``command`` does not take."""
    allowed = ARGUMENTS[command]  # a command without a schema is a programming error

    def checked(call: Call) -> Any:
        unknown = sorted(str(name)[:40] for name in call.args if name not in allowed)
        if unknown:
            raise UnknownArgumentError(command, unknown[:5])
        return handler(call)

    return checked


# Commands whose reply carries a sealed field: the reply key is checked before they run, or a
# command already recorded in the ledger would be reported to its caller as failed.
SEALING_COMMANDS = frozenset({"rotar.iniciar", "revelar", "codigo"})
# Commands whose Custodia method calls ``actor.proceed()`` before any side effect.
CLAIM_OVERLAPPING = frozenset({"rotar.iniciar", "revelar"})


def _requiring_reply_key(handler: Callable[[Call], Any]) -> Handler:
    def checked(call: Call) -> Any:
        if not protocol.valid_reply_key(call.reply_key):
            raise protocol.ProtocolError("missing or invalid reply key")
        return handler(call)

    return checked


def opening_sealed(command: str, handler: Handler, vault: VaultClient) -> Handler:
    """``handler``, seeing the password arguments of ``command`` opened with the service's own
    token, and refusing one sent in the clear (custody.vault.sealed_args)."""
    from dataclasses import replace

    from custody.vault.sealed_args import SEALED_ARGUMENTS, open_arguments

    if command not in SEALED_ARGUMENTS:
        return handler

    def opened(call: Call) -> Any:
        args = open_arguments(vault, command, call.request_id, call.args)
        return handler(replace(call, args=args))

    return opened


def build_handlers(custodia: Custodia, vault: VaultClient) -> dict[str, Handler]:
    """Every command the service answers; ``vault`` (the service's token) opens sealed
    password arguments."""

    def actor(call: Call) -> Actor:
        return Actor(call.caller.username, call.caller.token, call.proceed)

    def sealed(call: Call, data: dict[str, Any], *secret_keys: str) -> dict[str, Any]:
        out = dict(data)
        for key in secret_keys:
            if key in out:
                out[key] = call.seal(out[key])
        return out

    table: dict[str, Callable[[Call], Any]] = {
        "sesion.quien": lambda c: custodia.whoami(actor(c)),
        "personas.alta": lambda c: custodia.register_person(
            actor(c),
            _text(c.args, "usuario", limit=64),
            name=_text(c.args, "nombre", limit=200),
            email=validate_email("correo", _text(c.args, "correo", limit=200)),
            phone=_phone(c.args, "telefono"),
            role=_text(c.args, "rol", limit=20),
            district=_opt(c.args, "distrito", 8),
            password=_opt(c.args, "contrasena", 256),
        ),
        "personas.lista": lambda c: custodia.list_people(actor(c)),
        "personas.revocar": lambda c: custodia.revoke_role(
            actor(c),
            _text(c.args, "usuario", limit=64),
            _text(c.args, "rol", limit=20),
            channel_from(c.args) if _has_channel(c.args) else None,
        ),
        "personas.baja": lambda c: custodia.depart(
            actor(c),
            _text(c.args, "usuario", limit=64),
            _text(c.args, "motivo", limit=40),
            channel_from(c.args),
        ),
        "personas.borrar_datos": lambda c: custodia.erase_person(
            actor(c), _text(c.args, "usuario", limit=64)
        ),
        "reconciliar": lambda c: custodia.reconcile(actor(c), _flag(c.args, "reparar", False)),
        "cuentas.alta": lambda c: custodia.register_account(
            actor(c),
            _text(c.args, "cuenta", limit=64),
            handle=_text(c.args, "usuario", limit=100),
            email=_text(c.args, "correo", limit=200),
            phone=_opt(c.args, "telefono", 40),
            public=not _flag(c.args, "privada", False),
            direct_messages=not _flag(c.args, "sin_mensajes", False),
            existing=_flag(c.args, "existente", False),
        ),
        "cuentas.lista": lambda c: custodia.list_accounts(actor(c), _opt(c.args, "distrito", 8)),
        "cuentas.baja": lambda c: custodia.close_account(
            actor(c), _text(c.args, "cuenta", limit=64), channel_from(c.args)
        ),
        "titular": lambda c: custodia.appoint_titular(
            actor(c),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "persona", limit=64),
            channel_from(c.args) if _has_channel(c.args) else None,
        ),
        "titular.encargo": lambda c: custodia.appoint_acting_titular(
            actor(c),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "persona", limit=64),
            starts_on=_date(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=_date(c.args, "hasta", required=False),
            channel=channel_from(c.args),
        ),
        "titular.encargo_terminar": lambda c: custodia.end_acting_titular(
            actor(c),
            _text(c.args, "distrito", limit=8),
            channel_from(c.args) if _has_channel(c.args) else None,
        ),
        "designar": lambda c: custodia.designate(
            actor(c),
            _text(c.args, "distrito", limit=8),
            _text(c.args, "persona", limit=64),
            channel_from(c.args),
            _opt(c.args, "excepcion", 500),
        ),
        "historial": lambda c: custodia.history(
            actor(c), _text(c.args, "distrito", limit=8), _date(c.args, "fecha", required=False)
        ),
        "ausencia": lambda c: custodia.report_absence(
            actor(c),
            _text(c.args, "distrito", limit=8),
            reason=_text(c.args, "motivo", limit=40).replace("-", "_"),
            starts_on=_date(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=_date(c.args, "hasta", required=False),
            substitute=_text(c.args, "sustituto", limit=64),
            channel=channel_from(c.args),
            exception=_opt(c.args, "excepcion", 500),
        ),
        "ausencia.terminar": lambda c: custodia.end_absence(
            actor(c),
            _text(c.args, "distrito", limit=8),
            channel_from(c.args) if _has_channel(c.args) else None,
            _opt(c.args, "excepcion", 500),
        ),
        "rotar.iniciar": lambda c: sealed(
            c, custodia.start_rotation(actor(c), _text(c.args, "cuenta", limit=64)), "contrasena"
        ),
        "rotar.confirmar": lambda c: custodia.confirm_rotation(
            actor(c), _text(c.args, "cuenta", limit=64), _opt(c.args, "solicitud", 64)
        ),
        "rotar.abandonar": lambda c: custodia.abandon_rotation(
            actor(c), _text(c.args, "cuenta", limit=64)
        ),
        "revelar": lambda c: sealed(
            c,
            custodia.reveal(
                actor(c),
                _text(c.args, "cuenta", limit=64),
                _text(c.args, "motivo", limit=500),
                _opt(c.args, "dispositivo", 100),
            ),
            "envoltorio",
        ),
        "totp.registrar": lambda c: custodia.register_totp(
            actor(c), _text(c.args, "cuenta", limit=64), _text(c.args, "uri", limit=2048)
        ),
        "codigo": lambda c: sealed(
            c,
            custodia.totp_code(
                actor(c),
                _text(c.args, "cuenta", limit=64),
                _opt(c.args, "motivo", 500) or "código de verificación",
                _opt(c.args, "dispositivo", 100),
            ),
            "envoltorio",
        ),
        "cambios.solicitar": lambda c: custodia.file_change_request(
            actor(c),
            _text(c.args, "cuenta", limit=64),
            _text(c.args, "campo", limit=20),
            _text(c.args, "detalle", limit=2000),
            channel_from(c.args),
            c.request_id,
        ),
        "cambios.aprobar": lambda c: custodia.decide_change_request(
            actor(c), _text(c.args, "solicitud", limit=64), True, _opt(c.args, "motivo", 2000)
        ),
        "cambios.rechazar": lambda c: custodia.decide_change_request(
            actor(c), _text(c.args, "solicitud", limit=64), False, _opt(c.args, "motivo", 2000)
        ),
        "cambios.aplicar": lambda c: custodia.apply_change_request(
            actor(c), _text(c.args, "solicitud", limit=64), _opt(c.args, "valor", 200)
        ),
        "cambios.lista": lambda c: custodia.list_change_requests(
            actor(c), _opt(c.args, "estado", 20)
        ),
        "incidentes.reportar": lambda c: custodia.report_incident(
            actor(c),
            _text(c.args, "cuenta", limit=64),
            _text(c.args, "tipo", limit=40).replace("-", "_"),
            _text(c.args, "descripcion", limit=4000),
            c.request_id,
            local_minute(_opt(c.args, "detectado", 32), custodia.policy.zone),
        ),
        "incidentes.notificar": lambda c: custodia.notify_incident(
            actor(c), _text(c.args, "incidente", limit=64), channel_from(c.args)
        ),
        "incidentes.contener": lambda c: custodia.contain_incident(
            actor(c), _text(c.args, "incidente", limit=64), _text(c.args, "detalle", limit=4000)
        ),
        "incidentes.cerrar": lambda c: custodia.close_incident(
            actor(c), _text(c.args, "incidente", limit=64), _text(c.args, "detalle", limit=4000)
        ),
        "incidentes.descartar": lambda c: custodia.dismiss_incident(
            actor(c), _text(c.args, "incidente", limit=64), _text(c.args, "motivo", limit=4000)
        ),
        "incidentes.enterado": lambda c: custodia.acknowledge_incident(
            actor(c), _text(c.args, "incidente", limit=64), _opt(c.args, "medidas", 4000)
        ),
        "incidentes.bitacora": lambda c: custodia.list_incidents(
            actor(c),
            _opt(c.args, "distrito", 8),
            day_bound(_opt(c.args, "desde", 10), custodia.policy.zone, end=False),
            day_bound(_opt(c.args, "hasta", 10), custodia.policy.zone, end=True),
        ),
    }
    from custody.service.controls_commands import control_handlers

    table.update(control_handlers(custodia))  # issue 19: devices, hours, recertification
    from custody.service.factor_commands import factor_handlers

    table.update(factor_handlers(custodia))  # issue 18: the login second factor
    for name in SEALING_COMMANDS & set(table):
        table[name] = _requiring_reply_key(table[name])
    checked = {
        name: checking_arguments(name, opening_sealed(name, handler, vault))
        for name, handler in table.items()
    }
    # These call ``actor.proceed()`` before their first side effect (the Custodia methods
    # say where): their ledger and OpenBao reads run while the request id is being claimed.
    for name in CLAIM_OVERLAPPING:
        checked[name] = claim_overlapping(checked[name])
    return checked


def _has_channel(args: Mapping[str, Any]) -> bool:
    # Any value but absent/empty counts: a wrongly typed one is then refused, not ignored.
    return any(args.get(k) not in (None, "") for k in ("oficio", "memorandum", "correo_oficial"))
