"""With the NATS users of ``custody.service.permissions`` and the ledger's two streams in their
lists, the
service follows and signs, and the read-only ``verificador`` verifies, exports, proves and
witnesses, but cannot publish a checkpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from custody.ledger import audit
from custody.ledger.follower import FollowerSettings, LedgerFollower, LocalCheckpointSigner
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import connect
from custody.runner import prepare_streams
from custody.service.callout import issuer_public_key, new_issuer_seed
from custody.service.permissions import generate_users, render_accounts
from custody.stack.servers import NatsConfig, NatsProcess, free_port, start_nats
from tests.integration.ledger.world import Cuenta, CustodiaApp

pytestmark = pytest.mark.integration

NAMES = LedgerNames.for_app()
LEDGER_STREAMS = [NAMES.events_stream, NAMES.checkpoints_stream]
LEDGER_SUBJECTS = ["custodia.events.>", "custodia.tracking.>", "custodia.checkpoints.>"]


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NatsProcess, dict[str, str]]]:
    workdir: Path = tmp_path_factory.mktemp("nats-ledger-auth")
    users = generate_users()
    port = free_port()
    config = NatsConfig(
        store_dir=workdir / "js",
        port=port,
        http_port=free_port(exclude={port}),
        extra=render_accounts(
            users, LEDGER_STREAMS, LEDGER_SUBJECTS, issuer_public_key(new_issuer_seed())
        ),
    )
    proc = start_nats(config, workdir / "nats.conf", workdir / "nats.log")
    try:
        yield proc, {name: user.password for name, user in users.items()}
    finally:
        proc.stop()


def test_service_signs_and_verifier_only_reads(
    secured: tuple[NatsProcess, dict[str, str]], tmp_path: Path
) -> None:
    """The ledger's streams are made by ``administrador``; the service's writer (``escritor``)
    writes events and signs checkpoints; ``verificador`` verifies, exports, proves and
    witnesses with its read-only rights, and its forged checkpoint is refused."""
    proc, passwords = secured

    def env(user: str) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": proc.url,
            "NATS_USER": user,
            "NATS_PASSWORD": passwords[user],
        }

    admin = CustodiaApp(env=env("administrador"))
    admin.save(Cuenta("DD05-x"))
    prepare_streams(admin, 1)
    admin.close()
    app = CustodiaApp(env=env("escritor"))
    for _ in range(11):
        app.save(Cuenta("DD05-x"))
    app.close()
    signer = LocalCheckpointSigner()
    service = connect(proc.url, "escritor", passwords["escritor"])
    try:
        LedgerFollower(service, signer, NAMES, FollowerSettings(every_events=5)).checkpoint_now()
    finally:
        service.close()

    verifier = connect(proc.url, "verificador", passwords["verificador"])
    try:
        keyring = signer.public_keyring()
        assert audit.verify_online(verifier, NAMES, keyring).ok
        assert audit.export_bundle(verifier, NAMES, tmp_path / "b.jsonl.gz").entries == 12
        proof = audit.prove_entry(verifier, NAMES, keyring, sequence=3)
        audit.check_proof(proof.to_json(), keyring)
        assert audit.observe_online(verifier, tmp_path / "t.json", NAMES, keyring).added
    finally:
        verifier.close()

    async def forge() -> None:
        nc = await nats.connect(proc.url, user="verificador", password=passwords["verificador"])
        try:
            with pytest.raises((NatsError, JetStreamError, asyncio.TimeoutError)):
                await nc.jetstream(timeout=1).publish(NAMES.notes_subject, b"forged", timeout=1)
        finally:
            await nc.close()

    asyncio.run(forge())
