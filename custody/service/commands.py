"""The handlers of the core commands of CLI.md, and their binding to the specs.

A handler takes the :class:`~custody.service.server.Call` (authenticated caller, arguments,
request id) and returns plain JSON-able data. Arguments are read with
:mod:`custody.service.args`; the rules are the domain's. Sensitive results (a staged password, a
wrapping token) are sealed for the caller.

What each command is (its arguments, read-only or not, what it seals) is declared once, in
:mod:`custody.service.spec`; :func:`bind` derives from that spec the checks every handler is
wrapped in. To add a command, see that module's docstring.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from custody.app import second_factor
from custody.app.access import login_name
from custody.app.custodia import Custodia
from custody.app.incidents import day_bound, local_minute
from custody.errors import (
    VaultNotFoundError,
    VaultSealedError,
    VaultServerError,
    VaultUnavailableError,
    VaultUnreachableError,
)
from custody.service import protocol
from custody.service.accounts_commands import account_handlers
from custody.service.args import (
    actor,
    channel_from,
    day,
    flag,
    opt,
    optional_channel,
    phone,
    text,
)
from custody.service.controls_commands import control_handlers
from custody.service.factor_commands import factor_handlers
from custody.service.people_commands import people_handlers
from custody.service.server import Call, Caller, Handler, NotAuthenticatedError, claim_overlapping
from custody.service.spec import COMMANDS, CommandSpec
from custody.service.web_commands import web_handlers
from custody.vault.client import TokenInfo, VaultClient
from events.domain import ValidationError
from events.domain.values import validate_email
from events.errors import ConfigurationError


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
        infra = (VaultUnreachableError, VaultUnavailableError, VaultSealedError, VaultServerError)
        try:
            found: TokenInfo | None = self.client.lookup_self(token)
        except infra:
            raise  # OpenBao could not answer (e.g. a failover): not a verdict on the token
        except Exception:  # any refusal means: not authenticated
            found = None
        if found is None:
            # A first-login token (issue 18) holds no policy, not even lookup-self: the service
            # asks OpenBao about it with its own token, and takes nothing else this way.
            try:
                found = self.client.lookup_token(token)
            except infra:
                raise
            except Exception:
                raise NotAuthenticatedError("invalid") from None
            if found.first_login_user is None:
                raise NotAuthenticatedError("invalid")
        info = found
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


def _sealed(call: Call, data: dict[str, Any], *secret_keys: str) -> dict[str, Any]:
    out = dict(data)
    for key in secret_keys:
        if key in out:
            out[key] = call.seal(out[key])
    return out


def _register(custodia: Custodia, call: Call) -> dict[str, Any]:
    """``personas alta``; then, for a person who can read credentials, the login's second
    factor is prepared (issue 18: their first login enrols it)."""
    password = opt(call.args, "contrasena", 256)
    registered = custodia.register_person(
        actor(call),
        text(call.args, "usuario", limit=64),
        name=text(call.args, "nombre", limit=200),
        email=validate_email("correo", text(call.args, "correo", limit=200)),
        phone=phone(call.args, "telefono"),
        role=text(call.args, "rol", limit=20),
        district=opt(call.args, "distrito", 8),
        password=password,
    )
    second_factor.on_registered(
        custodia, actor(call), str(registered["usuario"]), str(registered["rol"]), password
    )
    return registered


def core_handlers(custodia: Custodia) -> dict[str, Handler]:
    """The handlers of the core commands (CLI.md)."""
    return {
        "sesion.quien": lambda c: custodia.whoami(actor(c)),
        "personas.alta": lambda c: _register(custodia, c),
        "personas.lista": lambda c: custodia.list_people(actor(c)),
        "personas.revocar": lambda c: custodia.revoke_role(
            actor(c),
            text(c.args, "usuario", limit=64),
            text(c.args, "rol", limit=20),
            optional_channel(c.args),
        ),
        "personas.baja": lambda c: custodia.depart(
            actor(c),
            text(c.args, "usuario", limit=64),
            text(c.args, "motivo", limit=40),
            channel_from(c.args),
        ),
        "personas.borrar_datos": lambda c: custodia.erase_person(
            actor(c), text(c.args, "usuario", limit=64)
        ),
        "reconciliar": lambda c: custodia.reconcile(actor(c), flag(c.args, "reparar", False)),
        "cuentas.alta": lambda c: custodia.register_account(
            actor(c),
            text(c.args, "cuenta", limit=64),
            handle=text(c.args, "usuario", limit=100),
            email=text(c.args, "correo", limit=200),
            phone=opt(c.args, "telefono", 40),
            public=not flag(c.args, "privada", False),
            direct_messages=not flag(c.args, "sin_mensajes", False),
            existing=flag(c.args, "existente", False),
        ),
        "cuentas.lista": lambda c: custodia.list_accounts(actor(c), opt(c.args, "distrito", 8)),
        "titular": lambda c: custodia.appoint_titular(
            actor(c),
            text(c.args, "distrito", limit=8),
            text(c.args, "persona", limit=64),
            optional_channel(c.args),
        ),
        "titular.encargo": lambda c: custodia.appoint_acting_titular(
            actor(c),
            text(c.args, "distrito", limit=8),
            text(c.args, "persona", limit=64),
            starts_on=day(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=day(c.args, "hasta", required=False),
            channel=channel_from(c.args),
        ),
        "titular.encargo_terminar": lambda c: custodia.end_acting_titular(
            actor(c),
            text(c.args, "distrito", limit=8),
            optional_channel(c.args),
        ),
        "designar": lambda c: custodia.designate(
            actor(c),
            text(c.args, "distrito", limit=8),
            text(c.args, "persona", limit=64),
            channel_from(c.args),
            opt(c.args, "excepcion", 500),
        ),
        "historial": lambda c: custodia.history(
            actor(c), text(c.args, "distrito", limit=8), day(c.args, "fecha", required=False)
        ),
        "ausencia": lambda c: custodia.report_absence(
            actor(c),
            text(c.args, "distrito", limit=8),
            reason=text(c.args, "motivo", limit=40).replace("-", "_"),
            starts_on=day(c.args, "desde", required=True),  # type: ignore[arg-type]
            ends_on=day(c.args, "hasta", required=False),
            substitute=text(c.args, "sustituto", limit=64),
            channel=channel_from(c.args),
            exception=opt(c.args, "excepcion", 500),
        ),
        "ausencia.terminar": lambda c: custodia.end_absence(
            actor(c),
            text(c.args, "distrito", limit=8),
            optional_channel(c.args),
            opt(c.args, "excepcion", 500),
        ),
        "rotar.iniciar": lambda c: _sealed(
            c, custodia.start_rotation(actor(c), text(c.args, "cuenta", limit=64)), "contrasena"
        ),
        "rotar.confirmar": lambda c: custodia.confirm_rotation(
            actor(c), text(c.args, "cuenta", limit=64), opt(c.args, "solicitud", 64)
        ),
        "rotar.abandonar": lambda c: custodia.abandon_rotation(
            actor(c), text(c.args, "cuenta", limit=64)
        ),
        "revelar": lambda c: _sealed(
            c,
            custodia.reveal(
                actor(c),
                text(c.args, "cuenta", limit=64),
                text(c.args, "motivo", limit=500),
                opt(c.args, "dispositivo", 100),
            ),
            "envoltorio",
        ),
        "totp.registrar": lambda c: custodia.register_totp(
            actor(c), text(c.args, "cuenta", limit=64), text(c.args, "uri", limit=2048)
        ),
        "codigo": lambda c: _sealed(
            c,
            custodia.totp_code(
                actor(c),
                text(c.args, "cuenta", limit=64),
                opt(c.args, "motivo", 500) or "código de verificación",
                opt(c.args, "dispositivo", 100),
            ),
            "envoltorio",
        ),
        "cambios.solicitar": lambda c: custodia.file_change_request(
            actor(c),
            text(c.args, "cuenta", limit=64),
            text(c.args, "campo", limit=20),
            text(c.args, "detalle", limit=2000),
            channel_from(c.args),
            c.request_id,
        ),
        "cambios.aprobar": lambda c: custodia.decide_change_request(
            actor(c), text(c.args, "solicitud", limit=64), True, opt(c.args, "motivo", 2000)
        ),
        "cambios.rechazar": lambda c: custodia.decide_change_request(
            actor(c), text(c.args, "solicitud", limit=64), False, opt(c.args, "motivo", 2000)
        ),
        "cambios.aplicar": lambda c: custodia.apply_change_request(
            actor(c), text(c.args, "solicitud", limit=64), opt(c.args, "valor", 200)
        ),
        "cambios.lista": lambda c: custodia.list_change_requests(
            actor(c), opt(c.args, "estado", 20)
        ),
        "incidentes.reportar": lambda c: custodia.report_incident(
            actor(c),
            text(c.args, "cuenta", limit=64),
            text(c.args, "tipo", limit=40).replace("-", "_"),
            text(c.args, "descripcion", limit=4000),
            c.request_id,
            local_minute(opt(c.args, "detectado", 32), custodia.policy.zone),
        ),
        "incidentes.notificar": lambda c: custodia.notify_incident(
            actor(c), text(c.args, "incidente", limit=64), channel_from(c.args)
        ),
        "incidentes.contener": lambda c: custodia.contain_incident(
            actor(c), text(c.args, "incidente", limit=64), text(c.args, "detalle", limit=4000)
        ),
        "incidentes.cerrar": lambda c: custodia.close_incident(
            actor(c), text(c.args, "incidente", limit=64), text(c.args, "detalle", limit=4000)
        ),
        "incidentes.descartar": lambda c: custodia.dismiss_incident(
            actor(c), text(c.args, "incidente", limit=64), text(c.args, "motivo", limit=4000)
        ),
        "incidentes.enterado": lambda c: custodia.acknowledge_incident(
            actor(c), text(c.args, "incidente", limit=64), opt(c.args, "medidas", 4000)
        ),
        "incidentes.bitacora": lambda c: custodia.list_incidents(
            actor(c),
            opt(c.args, "distrito", 8),
            day_bound(opt(c.args, "desde", 10), custodia.policy.zone, end=False),
            day_bound(opt(c.args, "hasta", 10), custodia.policy.zone, end=True),
        ),
    }


def handler_tables(custodia: Custodia) -> Iterator[Mapping[str, Handler]]:
    """Every table of handlers run on the application: one line per module of commands."""
    yield core_handlers(custodia)
    yield control_handlers(custodia)  # issue 19: devices, hours, recertification
    yield people_handlers(custodia)  # issue 18: contact reads, transfers
    yield account_handlers(custodia)  # issue 19: an account's life, opening to closure (10)
    yield web_handlers(custodia)  # issue 20: what the web view needs of the service
    yield factor_handlers(custodia)  # issue 18: the login's second factor


class UnknownArgumentError(ValidationError):
    """A request carries an argument its command does not take."""

    def __init__(self, command: str, names: list[str]) -> None:
        super().__init__(names[0], "unknown argument")
        self.command = command
        self.names = names


def checking_arguments(spec: CommandSpec, handler: Handler) -> Handler:
    """``handler``, refusing (before anything runs) arguments ``spec`` does not take."""
    allowed = spec.arguments

    def checked(call: Call) -> Any:
        unknown = sorted(str(name)[:40] for name in call.args if name not in allowed)
        if unknown:
            raise UnknownArgumentError(spec.name, unknown[:5])
        return handler(call)

    return checked


def requiring_reply_key(handler: Handler) -> Handler:
    """``handler``, refusing a request without a usable reply key before it runs."""

    def checked(call: Call) -> Any:
        if not protocol.valid_reply_key(call.reply_key):
            raise protocol.ProtocolError("missing or invalid reply key")
        return handler(call)

    return checked


def opening_sealed(spec: CommandSpec, handler: Handler, vault: VaultClient) -> Handler:
    """``handler``, seeing the sealed arguments of ``spec`` opened with the service's own
    token, and refusing one sent in the clear (custody.vault.sealed_args)."""
    from custody.vault.sealed_args import open_arguments

    def opened(call: Call) -> Any:
        args = open_arguments(vault, spec.name, call.request_id, call.args)
        return handler(replace(call, args=args))

    return opened


def bind(
    handlers: Mapping[str, Handler],
    vault: VaultClient,
    specs: Mapping[str, CommandSpec] = COMMANDS,
) -> dict[str, Handler]:
    """Every handler wrapped in what its spec asks for; :class:`ConfigurationError` unless each
    spec has exactly one handler and each handler a spec."""
    missing, unknown = sorted(specs.keys() - handlers.keys()), sorted(handlers.keys() - specs)
    if missing or unknown:
        problem = f"without a handler: {missing}; without a spec: {unknown}"
        raise ConfigurationError("custody.service.spec.COMMANDS", problem)
    bound: dict[str, Handler] = {}
    for name, handler in handlers.items():
        spec = specs[name]
        if spec.sealed_reply:
            handler = requiring_reply_key(handler)
        if spec.sealed:
            handler = opening_sealed(spec, handler, vault)
        handler = checking_arguments(spec, handler)
        if spec.overlapping:
            # Their use case calls ``actor.proceed()`` before its first side effect (the
            # Custodia methods say where): their ledger and OpenBao reads run while the
            # request id is being claimed.
            handler = claim_overlapping(handler)
        bound[name] = handler
    return bound


def build_handlers(
    custodia: Custodia, vault: VaultClient, extra: Mapping[str, Handler] | None = None
) -> dict[str, Handler]:
    """Every command the service answers, bound to its spec: the tables run on the application
    and ``extra`` (the composition root's: reports, ledger status, notices). ``vault`` (the
    service's token) opens sealed arguments."""
    handlers: dict[str, Handler] = {}
    for table in (*handler_tables(custodia), extra or {}):
        twice = handlers.keys() & table.keys()
        if twice:
            raise ConfigurationError("handler_tables", f"handled twice: {sorted(twice)}")
        handlers.update(table)
    return bind(handlers, vault)
