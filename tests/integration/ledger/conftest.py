"""Fixtures for the ledger: the session's NATS and OpenBao, a fresh namespace per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest

from custody.ledger.transit_signer import TransitSigner, fetch_public_keyring
from custody.stack.servers import BaoProcess
from custody.vault.client import VaultClient
from custody.vault.layout import (
    SECRETARIA_POLICY,
    SIGNER_POLICY,
    create_service_token,
    ensure_layout,
)
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld


@pytest.fixture(scope="session")
def vault_root(openbao: BaoProcess) -> VaultClient:
    """An administrator (root token) on a server with Custodia's layout."""
    assert openbao.root_token
    client = VaultClient(openbao.addr, openbao.root_token)
    ensure_layout(client)
    return client


@pytest.fixture(scope="session")
def vault_service(vault_root: VaultClient) -> VaultClient:
    """The service's own token: policy ``custodia-servicio`` only."""
    return vault_root.with_token(create_service_token(vault_root))


@pytest.fixture(scope="session")
def vault_signer(vault_root: VaultClient) -> VaultClient:
    """The ledger follower's own token: policy ``custodia-firmante`` only."""
    token = create_service_token(vault_root, policy=SIGNER_POLICY, display_name="firmante")
    return vault_root.with_token(token)


@pytest.fixture(scope="session")
def vault_reader(vault_root: VaultClient) -> VaultClient:
    """A token with the Secretaría Ejecutiva's policy, as a person's session would carry."""
    body = vault_root.write(
        "auth/token/create", {"policies": [SECRETARIA_POLICY], "ttl": "2h"}, operation="test"
    )
    assert body is not None
    return vault_root.with_token(body["auth"]["client_token"])


@pytest.fixture(scope="session")
def transit_signer(vault_signer: VaultClient) -> TransitSigner:
    return TransitSigner(vault_signer)


@pytest.fixture
def make_world(
    nats_url: str,
    transit_signer: TransitSigner,
    vault_service: VaultClient,
    vault_signer: VaultClient,
    vault_reader: VaultClient,
) -> Iterator[Callable[[], LedgerWorld]]:
    """``make_world()``: a ledger in a namespace of its own, signed by OpenBao transit with the
    follower's own token, its head anchored and its checkpoints witnessed in OpenBao KV; the
    auditor's keyring is read from transit (an independent copy, not the ledger's) and the
    anchored records with the Secretaría Ejecutiva's policy."""
    worlds: list[LedgerWorld] = []

    def make() -> LedgerWorld:
        world = LedgerWorld(
            nats_url,
            "t" + uuid4().hex[:10],
            transit_signer,
            lambda: fetch_public_keyring(vault_service),
            anchor_client=vault_signer,
            reader_client=vault_reader,
        )
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()
        insider.delete_streams(nats_url, world.namespace + "-")


@pytest.fixture
def world(make_world: Callable[[], LedgerWorld]) -> LedgerWorld:
    return make_world()
