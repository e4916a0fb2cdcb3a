"""A NATS server with Custodia's accounts and the auth callout, and people logged in to OpenBao:
what the per-person NATS identity tests connect with."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client

from custody.service.callout import AuthCallout, inbox_prefix, issuer_public_key, new_issuer_seed
from custody.service.commands import VaultAuthenticator
from custody.service.permissions import EVENT_SUBJECTS, LEDGER_STREAMS, NatsUser, generate_users
from custody.service.permissions import render_accounts as render
from custody.stack.servers import BaoProcess, NatsConfig, NatsProcess, free_port, start_nats
from custody.vault.client import VaultClient

MOUNT = "userpass-nats"
PASSWORD = "clave-de-prueba-{}-1"  # test passwords, from the user name


@dataclass
class Accounts:
    """The users of custody.service.permissions and the callout's issuer seed of one test server."""

    users: dict[str, NatsUser] = field(default_factory=generate_users)
    seed: str = field(default_factory=new_issuer_seed, repr=False)

    def render(self, streams: list[str] | None = None, subjects: list[str] | None = None) -> str:
        return render(
            self.users,
            streams or LEDGER_STREAMS,
            subjects or EVENT_SUBJECTS,
            issuer_public_key(self.seed),
        )

    def password(self, user: str) -> str:
        return self.users[user].password


def start_secured_nats(workdir: Path, accounts: Accounts, extra: str | None = None) -> NatsProcess:
    port = free_port()
    config = NatsConfig(
        store_dir=workdir / "js",
        port=port,
        http_port=free_port(exclude={port}),
        extra=extra if extra is not None else accounts.render(),
    )
    proc = start_nats(config, workdir / "nats.conf", workdir / "nats.log")
    asyncio.run(_jetstream_ready(proc.url, accounts))
    return proc


async def _jetstream_ready(url: str, accounts: Accounts) -> None:
    """Until the account's JetStream answers (right after a start it may not have responders)."""
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeoutError

    nc = await nats.connect(url, user="administrador", password=accounts.password("administrador"))
    try:
        for _ in range(100):
            try:
                await nc.jetstream(timeout=1).account_info()
                return
            except (NoRespondersError, NatsTimeoutError):
                await asyncio.sleep(0.1)
        raise RuntimeError("JetStream did not start")
    finally:
        await nc.close()


def people_tokens(bao: BaoProcess, names: tuple[str, ...]) -> dict[str, str]:
    """Each person (userpass at a mount of this module) logged in: their OpenBao tokens."""
    root = VaultClient(bao.addr, bao.root_token)
    with contextlib.suppress(Exception):  # enabled by an earlier module of the session
        root.write(f"sys/auth/{MOUNT}", {"type": "userpass"}, operation="enable-auth")
    tokens = {}
    for name in names:
        root.write(
            f"auth/{MOUNT}/users/{name}",
            {"password": PASSWORD.format(name), "token_ttl": "10m"},
            operation="write-user",
        )
        tokens[name] = VaultClient(bao.addr).login_userpass(
            name, PASSWORD.format(name), mount=MOUNT
        )
    return tokens


@contextlib.asynccontextmanager
async def running_callout(url: str, accounts: Accounts, bao: BaoProcess) -> AsyncIterator[None]:
    """The auth callout, as ``custodia servicio`` runs it (checks tokens with OpenBao)."""
    nc = await nats.connect(
        url, user="autenticador", password=accounts.password("autenticador"), name="callout"
    )
    callout = AuthCallout(VaultAuthenticator(VaultClient(bao.addr, bao.root_token)), accounts.seed)
    await callout.start(nc)
    try:
        yield
    finally:
        await callout.stop()
        await nc.close()


async def connect_person(
    url: str, name: str, token: str, errors: list[str] | None = None
) -> Client:
    """``name``'s connection: their token is the credential, their inbox prefix their own."""

    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    return await nats.connect(
        url,
        token=token,
        inbox_prefix=inbox_prefix(name),
        allow_reconnect=False,
        error_cb=on_error,
        name=f"persona-{uuid.uuid4().hex[:6]}",
    )
