"""Helpers shared by the Vault-side integration tests."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from custody.app.access import Access
from custody.app.custodia import Actor, Custodia, CustodiaApplication, bootstrap_ledger
from custody.stack.servers import BaoProcess
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import create_service_token, ensure_layout
from custody.vault.personal_data import PersonalDataVault
from events.domain import Policy, person_id


@dataclass
class User:
    """A person with a userpass login; ``token`` is a fresh login token."""

    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    client: VaultClient = field(repr=False)

    def login(self) -> str:
        return self.client.login_userpass(self.username, self.password)


MakeUser = Callable[..., User]


def new_event_id() -> str:
    return str(uuid.uuid4())


def set_credential(
    credentials: Credentials, coadmin_token: str, account: str, password: str
) -> int:
    """Stage and confirm ``password`` as the account's new current credential; its version."""
    event = new_event_id()
    base = credentials.current_version(account)
    credentials.stage(coadmin_token, account, password, event, base, staged_by="test")
    return credentials.confirm(coadmin_token, account, event).version


@dataclass
class LedgerWorld:
    """Custodia's use cases on their own OpenBao and a namespace of their own on NATS, with
    ``ana``, the first coadministrator, registered as ``custodia init`` leaves her."""

    vault: VaultClient  # the service's token
    app: CustodiaApplication
    custodia: Custodia
    ana: Actor


def service_application(nats_url: str, namespace: str) -> CustodiaApplication:
    """The ledger application on JetStream (namespace ``namespace``) with the aggregate cache
    ``custodia servicio`` runs it with (fast-forward on)."""
    return CustodiaApplication(
        env={
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": nats_url,
            "NATS_NAMESPACE": namespace,
            "AGGREGATE_CACHE_MAXSIZE": "1000",  # as the service runs it
        }
    )


@contextmanager
def ledger_world(
    bao: BaoProcess,
    nats_url: str,
    namespace: str,
    *,
    make: Callable[..., Custodia] = Custodia,
    application: Callable[[str, str], CustodiaApplication] | None = None,
) -> Iterator[LedgerWorld]:
    """The layout made with ``bao``'s root token, the service's token, the application on
    JetStream (namespace ``namespace``; ``application(nats_url, namespace)`` when given), the
    use cases built by ``make`` and ``ana`` bootstrapped in the ledger and logged in. The
    application is closed afterwards (``bao`` is the caller's to stop)."""
    assert bao.root_token
    root = VaultClient(bao.addr, bao.root_token)
    ensure_layout(root)
    vault = root.with_token(create_service_token(root))
    app = (
        application(nats_url, namespace)
        if application
        else CustodiaApplication(
            env={
                "PERSISTENCE_MODULE": "events.jetstream",
                "NATS_URL": nats_url,
                "NATS_NAMESPACE": namespace,
            }
        )
    )
    try:
        pii = PersonalDataVault(vault)
        custodia = make(app, Access(vault), Credentials(vault), pii, Policy())
        sealed = pii.seal(str(person_id("ana")), {"nombre": "Ana", "correo": "ana@iecm.mx"})
        assert bootstrap_ledger(app, "ana", sealed, f"pii-{person_id('ana')}", datetime.now(UTC))
        password = secrets.token_urlsafe(18)
        Access(root).ensure_person("ana", password, "coadministrador")  # as init does
        ana = Actor("ana", vault.with_token(None).login_userpass("ana", password))
        yield LedgerWorld(vault, app, custodia, ana)
    finally:
        app.close()


def register_account(custodia: Custodia, actor: Actor, account: str) -> None:
    """Register ``account`` (a public account with direct messages, handle DD05IECM) as
    ``actor``, as the Vault-side tests need one."""
    custodia.register_account(
        actor,
        account,
        handle="DD05IECM",
        email="dd05.x@iecm.mx",
        phone=None,
        public=True,
        direct_messages=True,
        existing=False,
    )
