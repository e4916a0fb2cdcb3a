"""Wiring: one bootstrap that builds the application, OpenBao adapters and the command service,
for ``custodia init`` and ``custodia servicio`` (STYLE: ports injected, built in one place)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from eventsourcing.application import AggregateNotFoundError

from custody import bootstrap, config
from custody.app.access import Access
from custody.app.custodia import Custodia, CustodiaApplication, bootstrap_ledger
from custody.config import Settings
from custody.errors import VaultPermissionDeniedError, VaultTokenInvalidError
from custody.service.commands import VaultAuthenticator, build_handlers
from custody.service.permissions import IDEMPOTENCY_BUCKET
from custody.service.server import CachedAuthenticator, Call, CommandService, Handler
from custody.stack.embedded import EmbeddedStack
from custody.stack.readside import REPORTS_DATABASE as REPORTS_DATABASE
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import create_service_token, ensure_layout
from custody.vault.personal_data import PersonalDataVault
from events.domain import Policy
from events.errors import ConfigurationError

if TYPE_CHECKING:
    from custody.stack.readside import ReportPosition
    from events.domain.person import Person
    from projections.scope import Scope

log = structlog.get_logger("custodia.runner")

ADVANCE_SECONDS = config.ADVANCE_SECONDS
REPORT_KINDS = ("cumplimiento", "rotaciones", "exposicion", "cambios", "incidentes", "lecturas")
FORMATS = ("tabla", "json", "csv", "html")


def load_policy(settings: Settings) -> Policy:
    return Policy.from_toml(settings.policy_file) if settings.policy_file else Policy()


def load_password_rules(settings: Settings) -> dict[str, Any] | None:
    """Per-platform password rules from the policy file's ``[contrasenas]`` table."""
    if not settings.policy_file:
        return None
    import tomllib

    from custody.app.passwords import rules_from_mapping

    with settings.policy_file.open("rb") as handle:
        table = tomllib.load(handle).get("contrasenas", {})
    return dict(rules_from_mapping(table)) if table else None


def make_application(endpoints: bootstrap.Endpoints) -> CustodiaApplication:
    env = endpoints.nats_env()
    # eventsourcing's aggregate cache, fast-forwarded from the store on every get (the default),
    # so another service instance's events are never missed: a command no longer replays a
    # district from its last snapshot.
    env.setdefault("AGGREGATE_CACHE_MAXSIZE", "1000")
    return CustodiaApplication(env=env)


@dataclass
class Services:
    """Everything the service process holds."""

    app: CustodiaApplication
    vault: VaultClient
    custodia: Custodia
    endpoints: bootstrap.Endpoints

    def close(self) -> None:
        self.app.close()


def build(settings: Settings, *, start: bool = False) -> Services:
    # The ledger is written as ``escritor``: it appends, but cannot create, purge or delete a
    # stream, nor delete a message (custody.service.permissions).
    endpoints = bootstrap.resolve(settings, "escritor", start=start)
    vault = VaultClient(
        endpoints.vault_addr, bootstrap.service_token(settings), verify=endpoints.vault_verify
    )
    app = make_application(endpoints)
    custodia = Custodia(
        app,
        Access(vault),
        Credentials(vault),
        PersonalDataVault(vault),
        load_policy(settings),
        password_rules=load_password_rules(settings),
    )
    return Services(app, vault, custodia, endpoints)


@dataclass(frozen=True)
class InitResult:
    nats_url: str
    vault_addr: str
    first_user: str
    ledger_created: bool
    layout_changes: int
    # False: a later ``init`` without an administrative token (the embedded root token was
    # revoked by the first one): OpenBao's layout was not checked again.
    layout_applied: bool = True
    root_token_revoked: bool = False


class AdministrativeTokenRequiredError(ConfigurationError):
    """``init`` must change OpenBao and has no administrative token (the embedded root token is
    revoked at the end of the first ``init``): an operator generates one with the unseal key."""

    def __init__(self, reason: str) -> None:
        super().__init__(config.VAULT_TOKEN.key, reason)
        self.reason = reason


def initialize(
    settings: Settings, username: str, password: str, name: str, email: str
) -> InitResult:
    """``custodia init``: servers (embedded), OpenBao layout, service token, NATS streams, the
    first coadministrator and the 33 districts. Idempotent.

    The embedded OpenBao's root token is revoked at the end (issue 16, finding 6): nobody keeps
    a token that can do everything. A later ``init`` without CUSTODIA_VAULT_TOKEN finds no
    administrative token; if the first coadministrator and the ledger are already there it
    only checks them, with the service's token, and says the layout was not applied again.

    Streams and the idempotency bucket are created here, as the administrative NATS identity
    (``administrador``): the running service may not create, change or delete them."""
    from events.domain import Username

    # Before anything starts or is written: the ledger and OpenBao get the same, canonical name.
    username = Username.parse(username)
    endpoints = bootstrap.resolve(settings, "administrador", start=True)
    embedded_root = not settings.vault_token and settings.embedded_vault
    token = bootstrap.admin_token(settings)
    if token is not None and embedded_root and not _token_valid(endpoints, token):
        # Revoked by an earlier ``init`` that stopped before deleting the file.
        EmbeddedStack(settings.home).forget_root_token()
        token = None
    if token is None:
        return _initialize_again(settings, endpoints, username)
    admin = VaultClient(endpoints.vault_addr, token, verify=endpoints.vault_verify)
    from custody.app.second_factor import SecondFactor, required_by_policy

    report = ensure_layout(admin, second_factor=required_by_policy(settings.policy_file))
    token_file = settings.home / "secrets" / bootstrap.SERVICE_TOKEN_FILE
    if not token_file.exists():
        bootstrap.save_service_token(settings, create_service_token(admin))
    from custody.ledger.service import ensure_signer_token

    ensure_signer_token(settings, admin)  # the ledger follower signs with a token of its own
    access = Access(admin)
    pii = PersonalDataVault(admin)
    app = make_application(endpoints)
    try:
        from events.domain import person_id

        pid = person_id(username)
        sealed = pii.seal(str(pid), {"nombre": name, "correo": email, "telefono": ""})
        created = bootstrap_ledger(app, username, sealed, f"pii-{pid}", datetime.now(UTC))
        prepare_streams(app, endpoints.replicas)
    finally:
        app.close()
    access.ensure_person(username, password, "coadministrador")
    if created:
        # Issue 18: the first coadministrator enrols a second factor at their first login.
        SecondFactor(access).prepare(username, password)
    changes = len(getattr(report, "created", [])) + len(getattr(report, "updated", []))
    revoked = False
    if embedded_root:
        # Nobody keeps the root token: an operator regenerates one with the unseal key
        # (``bao operator generate-root``) when needed. Revoked first, then its file deleted:
        # a crash in between leaves a dead token, which the next ``init`` recognises.
        admin.revoke_self()
        EmbeddedStack(settings.home).forget_root_token()
        revoked = True
        log.info("vault.root_token.revoked")
    return InitResult(
        endpoints.nats_url,
        endpoints.vault_addr,
        username,
        created,
        changes,
        root_token_revoked=revoked,
    )


def _token_valid(endpoints: bootstrap.Endpoints, token: str) -> bool:
    try:
        VaultClient(endpoints.vault_addr, token, verify=endpoints.vault_verify).lookup_self()
    except (VaultPermissionDeniedError, VaultTokenInvalidError):
        return False
    return True


def _initialize_again(
    settings: Settings, endpoints: bootstrap.Endpoints, username: str
) -> InitResult:
    """``init`` once the root token is gone: only what the service's token can check."""
    from events.domain import person_id

    token_file = settings.home / "secrets" / bootstrap.SERVICE_TOKEN_FILE
    if not token_file.exists():
        raise AdministrativeTokenRequiredError("no service token and no administrative token")
    app = make_application(endpoints)
    try:
        app.repository.get(person_id(username))
        prepare_streams(app, endpoints.replicas)  # an upgrade may bring new streams
    except AggregateNotFoundError:
        raise AdministrativeTokenRequiredError(
            f"{username} is not in the ledger; registering a first coadministrator again "
            "needs an administrative token"
        ) from None
    finally:
        app.close()
    service = VaultClient(
        endpoints.vault_addr, bootstrap.service_token(settings), verify=endpoints.vault_verify
    )
    Access(service).ensure_person(username)  # the identity is there (its password unchanged)
    return InitResult(
        endpoints.nats_url, endpoints.vault_addr, username, False, 0, layout_applied=False
    )


def prepare_streams(app: Any, replicas: int, *, patience: float = 90.0) -> None:
    """Create what the service writes to but may not create (administrative identity): the
    ledger's checkpoints stream and the idempotency bucket (the events and snapshots streams
    are made by the application itself). A cluster whose JetStream is still electing its
    leaders is waited for, up to ``patience`` seconds."""
    import time

    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js.errors import BucketNotFoundError, ServiceUnavailableError

    from custody.ledger.names import LedgerNames
    from custody.ledger.nats_io import ensure_checkpoints_stream
    from custody.service.server import idempotency_bucket_config
    from events.jetstream.errors import EventStoreUnavailableError

    factory: Any = app.factory
    conn = factory.connection

    async def bucket() -> None:
        js = conn.client.jetstream(timeout=10)
        try:
            await js.key_value(IDEMPOTENCY_BUCKET)
        except BucketNotFoundError:
            await js.create_key_value(idempotency_bucket_config(replicas))

    deadline = time.monotonic() + patience
    while True:
        try:
            ensure_checkpoints_stream(conn, LedgerNames.for_app("custodia", ""), replicas=replicas)
            conn.run(bucket())
            return
        except (
            EventStoreUnavailableError,
            NatsTimeoutError,
            NoRespondersError,
            ServiceUnavailableError,
            TimeoutError,
        ) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("flujos_no_listos", error=type(exc).__name__)
            time.sleep(1.0)


async def serve(settings: Settings, *, ready: Any = None) -> None:
    """Run the command service until SIGINT/SIGTERM."""
    import nats

    from custody.stack.embedded import EmbeddedStack

    # Before anything is started: not initialized, or another service for this home, is said
    # at once (nothing to stop afterwards).
    bootstrap.service_token(settings)
    claim = EmbeddedStack(settings.home).claim_service()
    services = build(settings, start=settings.embedded_nats or settings.embedded_vault)
    from custody.stack.readside import ReadSide, ReportPosition

    # The projections and the ledger follower run in a child process (custody.stack.readside).
    read_side = ReadSide()
    read_side.start()
    projections = ReportPosition(
        services.endpoints.nats_env(), settings.home / REPORTS_DATABASE, services.app.recorder
    )
    from custody.stack.notices import make_notices_handler  # issue 19

    handlers = build_handlers(
        services.custodia,
        services.vault,
        {  # the read side's commands (their specs: custody.service.spec)
            "reporte": make_report_handler(services, projections, settings),
            "bitacora.estado": make_ledger_status_handler(services, settings),
            "avisos.lista": make_notices_handler(services, settings.home),
        },
    )
    authenticator = CachedAuthenticator(VaultAuthenticator(services.vault))
    service = CommandService(
        handlers,
        authenticator,
        replicas=services.endpoints.replicas,
        person_inboxes=True,
    )
    # Two NATS identities: the responder answers commands and may publish only to inboxes; the
    # writer holds the idempotency bucket (and, through the application, the ledger).
    responder = bootstrap.resolve(settings, "servicio")
    nc = await nats.connect(
        **responder.nats_options(),  # type: ignore[arg-type]
        name="custodia-servicio",
        max_reconnect_attempts=-1,
        error_cb=_log_nats_error,
    )
    writer = await nats.connect(
        **services.endpoints.nats_options(),  # type: ignore[arg-type]
        name="custodia-escritor",
        max_reconnect_attempts=-1,
        error_cb=_log_nats_error,
    )
    await service.start(nc, writer)
    # The auth callout: people connect to NATS with their OpenBao token (custody.service.callout);
    # each connection's token is checked with OpenBao itself, never from a cache (and then
    # remembered for that connection's request).
    from custody.service.callout import AuthCallout

    gatekeeper = await nats.connect(
        **bootstrap.resolve(settings, "autenticador").nats_options(),  # type: ignore[arg-type]
        name="custodia-autenticador",
        max_reconnect_attempts=-1,
        error_cb=_log_nats_error,
    )
    callout = AuthCallout(authenticator, bootstrap.callout_seed(settings))
    await callout.start(gatekeeper)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    stack = EmbeddedStack(settings.home)
    stack.record_service(os.getpid())
    from custody.app.controls import record_policy

    try:
        # The rules this service judges by are in the ledger before it answers (issue 19).
        await asyncio.to_thread(record_policy, services.custodia)
    except Exception:
        log.exception("politica_no_registrada")  # the periodic pass tries again
    log.info("servicio_listo", nats=services.endpoints.nats_url)
    if ready is not None:
        ready()
    advance = asyncio.create_task(_advance_loop(services, stop))
    from custody.vault.audit_follower import start_audit_follower

    audit = start_audit_follower(services, settings)  # reads bypassing the ledger (issue 16)
    from custody.ledger.alerts import start_alert_watcher

    alerts = start_alert_watcher(services, settings)  # the follower's alerts: incidents
    try:
        await stop.wait()
    finally:
        advance.cancel()
        if audit is not None:
            await asyncio.to_thread(audit.stop)
        if alerts is not None:
            await asyncio.to_thread(alerts.stop)
        await callout.stop()
        await service.stop()
        await nc.drain()
        await writer.drain()
        await gatekeeper.drain()
        await asyncio.to_thread(read_side.stop)
        projections.close()
        services.close()
        stack.record_service(None)
        claim.close()


async def _log_nats_error(exc: Exception) -> None:
    """A refusal by the NATS server (a permissions violation) is logged, never raised."""
    log.warning("nats_error", error=type(exc).__name__, detalle=str(exc)[:200])


def report_scope(person: Person) -> Scope:
    """The caller's report scope, from their roles in the ledger (most privileged first)."""
    from custody.app.custodia import ScopeError
    from projections.scope import scope_of

    scope = scope_of(person.roles)
    if scope is None:
        raise ScopeError(person.username, "*")
    return scope


def make_ledger_status_handler(services: Services, settings: Settings) -> Handler:
    """``bitacora.estado``: what the service last saw of the ledger's integrity (as ``estado
    --json``'s ``bitacora``) and the ledger's public keyring (as ``bitacora clave-publica``),
    for anyone registered: nothing in it is secret. The web view's ``/bitacora``."""
    from custody.app.custodia import Actor
    from custody.app.ledger_status import read_status
    from custody.ledger.transit_signer import fetch_public_keyring
    from events.errors import CustodiaError

    def handler(call: Call) -> dict[str, Any]:
        actor = Actor(call.caller.username, call.caller.token)
        services.custodia.person(actor.username)  # registered people only
        status = read_status(settings.home) or {
            "integra": None,
            "alertas": None,
            "ultima_alerta": None,
            "incidentes_abiertos": [],
            "revisado": None,
        }
        try:
            keyring: dict[str, Any] | None = fetch_public_keyring(services.vault).to_json()
        except CustodiaError:
            keyring = None
        return {**status, "clave_publica": keyring}

    return handler


def make_report_handler(
    services: Services, projections: ReportPosition, settings: Settings
) -> Handler:
    """``reporte``: a report from the projections, in the caller's scope (issue 8)."""
    from datetime import UTC, date, datetime, time

    from custody.app.custodia import Actor
    from custody.service.args import opt as _opt
    from custody.service.args import text as _text
    from projections.render import render
    from projections.reports import ReportFilter, load_report

    policy = load_policy(settings)

    def instant(text: str | None, end: bool) -> datetime | None:
        if not text:
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            from events.domain import ValidationError

            raise ValidationError("fecha", "expected AAAA-MM-DD") from None
        moment = time.max if end else time.min
        return datetime.combine(day, moment, tzinfo=policy.zone).astimezone(UTC)

    def handler(call: Call) -> dict[str, Any]:
        from events.domain import InvalidChoiceError, parse_district_id

        kind = _text(call.args, "tipo", limit=20)
        fmt = _opt(call.args, "formato", 10) or "json"
        if kind not in REPORT_KINDS:
            raise InvalidChoiceError("tipo", kind, REPORT_KINDS)
        if fmt not in FORMATS:
            raise InvalidChoiceError("formato", fmt, FORMATS)
        actor = Actor(call.caller.username, call.caller.token)
        scope = report_scope(services.custodia.person(actor.username))
        district = _opt(call.args, "distrito", 8)
        filters = ReportFilter(
            district=str(parse_district_id(district)) if district else None,
            since=instant(_opt(call.args, "desde", 10), False),
            until=instant(_opt(call.args, "hasta", 10), True),
        )
        # A report reflects every command acknowledged before it was asked for.
        try:
            projections.wait(projections.ledger_position(), timeout=10)
        except TimeoutError:
            log.warning("reporte_con_retraso")
        report = load_report(
            kind, scope, filters, database=settings.home / REPORTS_DATABASE, policy=policy
        )
        return {"filas": report.rows, "contenido": render(report, fmt, policy)}

    return handler


def advance_seconds() -> float:
    """``CUSTODIA_AVANCE_SECONDS``: how often absences due by the calendar are recorded and
    OpenBao's district groups are brought back to the ledger's holders."""
    from custody.config import ServiceTimings

    return ServiceTimings.from_env().advance_seconds


async def _advance_loop(services: Services, stop: asyncio.Event) -> None:
    """Absences that start or end by the calendar change the holder: record and sync."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(services.custodia.advance_all)
        except Exception:
            log.exception("avance_fallido")
        try:
            # issue 19: the policy in force recorded; passwords past their maximum age
            from custody.app.controls import advance

            await asyncio.to_thread(advance, services.custodia)
        except Exception:
            log.exception("avance_controles_fallido")
        try:
            await asyncio.wait_for(stop.wait(), advance_seconds())
        except TimeoutError:
            continue
