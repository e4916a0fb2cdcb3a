"""Issue 17: ``bitacora …`` and ``reporte reconstruir`` connect to NATS with the settings every
command uses: ``CUSTODIA_NATS_CREDS`` (a credentials file) and ``CUSTODIA_NATS_CA`` (TLS).

The server is a real nats-server of this module's own in operator (JWT) mode, over TLS with a
throw-away CA: it refuses any connection without a user JWT signed by its account (its own
"Authorization Violation"), so a command that ignores the credentials file cannot read a thing.
Its ledger holds what ``custodia init`` writes (the first coadministrator and the 33 districts)
and a signed checkpoint.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sqlite3
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nkeys
import pytest

from custody.app.custodia import bootstrap_ledger
from custody.bootstrap import Endpoints
from custody.ledger.follower import FollowerSettings, LedgerFollower, LocalCheckpointSigner
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import connect_to
from custody.runner import make_application, prepare_streams
from custody.service.callout import encode_jwt
from custody.stack.servers import BaoProcess, NatsConfig, NatsProcess, free_port, start_nats
from tests.support.cluster import make_test_pki

from .conftest import run_custodia

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _seed(prefix: int) -> str:
    return str(nkeys.encode_seed(os.urandom(32), prefix).decode())


def _public(seed: str) -> str:
    return str(nkeys.from_seed(seed.encode()).public_key.decode())


def _claims(issuer: str, subject: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "jti": "",
        "iat": int(time.time()),
        "iss": issuer,
        "sub": subject,
        "name": name,
        "nats": body,
    }
    digest = hashlib.sha512(json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims["jti"] = base64.b32encode(digest[:32]).decode().rstrip("=")
    return claims


@dataclass
class CredsServer:
    nats: NatsProcess
    url: str
    creds: Path
    ca: Path

    def env(self, home: Path, vault_addr: str) -> dict[str, str]:
        return {
            "CUSTODIA_HOME": str(home),
            "CUSTODIA_NATS_URL": self.url,
            "CUSTODIA_NATS_CREDS": str(self.creds),
            "CUSTODIA_NATS_CA": str(self.ca),
            "CUSTODIA_VAULT_ADDR": vault_addr,
        }


def start_creds_server(workdir: Path) -> CredsServer:
    """nats-server in operator mode (memory resolver) over TLS; one account with JetStream and
    one user, whose credentials file is returned."""
    operator, account = _seed(nkeys.PREFIX_BYTE_OPERATOR), _seed(nkeys.PREFIX_BYTE_ACCOUNT)
    system, user = _seed(nkeys.PREFIX_BYTE_ACCOUNT), _seed(nkeys.PREFIX_BYTE_USER)
    limits: dict[str, Any] = {"subs": -1, "data": -1, "payload": -1, "imports": -1}
    limits |= {"exports": -1, "wildcards": True, "conn": -1, "leaf": -1}
    with_js = {**limits, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    op_jwt = encode_jwt(
        _claims(
            _public(operator),
            _public(operator),
            "operador",
            {"type": "operator", "version": 2, "system_account": _public(system)},
        ),
        operator,
    )
    accounts = {
        _public(account): encode_jwt(
            _claims(
                _public(operator),
                _public(account),
                "CUSTODIA",
                {"type": "account", "version": 2, "limits": with_js},
            ),
            operator,
        ),
        _public(system): encode_jwt(
            _claims(
                _public(operator),
                _public(system),
                "SYS",
                {"type": "account", "version": 2, "limits": limits},
            ),
            operator,
        ),
    }
    user_jwt = encode_jwt(
        _claims(
            _public(account),
            _public(user),
            "verificador",
            {"type": "user", "version": 2, "pub": {}, "sub": {}, **limits},
        ),
        account,
    )
    creds = workdir / "verificador.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user}\n------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    tls = make_test_pki(workdir / "pki")
    preload = "".join(f"  {key}: {jwt}\n" for key, jwt in accounts.items())
    extra = (
        f"operator: {op_jwt}\nsystem_account: {_public(system)}\nresolver: MEMORY\n"
        f"resolver_preload: {{\n{preload}}}\n"
        f"tls {{\n  cert_file: {json.dumps(str(tls.cert))}\n"
        f"  key_file: {json.dumps(str(tls.key))}\n}}\n"
    )
    port = free_port()
    config = NatsConfig(
        store_dir=workdir / "jetstream",
        port=port,
        http_port=free_port(exclude={port}),
        extra=extra,
    )
    proc = start_nats(config, workdir / "nats.conf", workdir / "nats.log")
    return CredsServer(proc, f"tls://127.0.0.1:{port}", creds, tls.ca)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CredsServer]:
    """The server, its ledger written (init's events, a signed checkpoint) with the creds."""
    made = start_creds_server(tmp_path_factory.mktemp("nats-creds"))
    try:
        endpoints = Endpoints(
            nats_url=made.url, vault_addr="", nats_creds=made.creds, nats_ca=made.ca
        )
        app = make_application(endpoints)
        try:
            prepare_streams(app, 1)
            sealed = "vault:v1:" + base64.b64encode(b"datos sellados").decode()
            assert bootstrap_ledger(app, "ana", sealed, "pii-ana", datetime.now(UTC))
        finally:
            app.close()
        conn = connect_to(endpoints)
        try:
            follower = LedgerFollower(
                conn,
                LocalCheckpointSigner(),
                LedgerNames.for_app("custodia", ""),
                FollowerSettings(every_events=1),
            )
            assert follower.checkpoint_now() is not None
        finally:
            conn.close()
        yield made
    finally:
        made.nats.stop()


def test_the_server_refuses_a_connection_without_the_credentials_file(
    server: CredsServer,
) -> None:
    """The precondition, from the server itself: over TLS but without the user JWT, nats-server
    answers "Authorization Violation"."""

    async def connect() -> None:
        tls = ssl.create_default_context(cafile=str(server.ca))
        nc = await nats.connect(server.url, tls=tls, allow_reconnect=False, connect_timeout=5)
        await nc.close()

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(connect())


def test_bitacora_verificar_uses_the_credentials_file_and_the_ca(
    server: CredsServer, openbao: BaoProcess, tmp_path: Path
) -> None:
    """``custodia bitacora verificar --json`` with ``CUSTODIA_NATS_CREDS`` and
    ``CUSTODIA_NATS_CA`` reads and verifies the ledger (exit 0, ``ok``). Before, the command
    built its own connection from ``CUSTODIA_NATS_USER``/``…_PASSWORD`` only, and the server
    refused it."""
    result = run_custodia(
        "bitacora", "verificar", "--json", home=tmp_path, env=server.env(tmp_path, openbao.addr)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is True
    assert verdict["eventos"] >= 1


def test_reporte_reconstruir_uses_the_credentials_file_and_the_ca(
    server: CredsServer, openbao: BaoProcess, tmp_path: Path
) -> None:
    """``custodia reporte reconstruir`` with the same settings rebuilds the projections from
    that ledger: the 33 districts are in the new database. Before, it passed neither the
    credentials file nor the CA to the event store, and the server refused it."""
    result = run_custodia(
        "reporte", "reconstruir", home=tmp_path, env=server.env(tmp_path, openbao.addr)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Proyecciones reconstruidas" in result.stdout
    db = sqlite3.connect(tmp_path / "proyecciones.sqlite")
    try:
        districts = db.execute("SELECT count(*) FROM districts").fetchone()[0]
        people = db.execute("SELECT count(*) FROM people").fetchone()[0]
    finally:
        db.close()
    assert (districts, people) == (33, 1)
