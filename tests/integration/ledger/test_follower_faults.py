"""The ledger follower while OpenBao's transit cannot sign: sealed, or the follower's own token
refused the signing key. It publishes no checkpoint without a valid signature, keeps its
position in the stream, retries, and once transit answers again signs the same history; every
stored checkpoint verifies and the anchored head agrees.

OpenBao here is a persistent single node of this module's own (raft, initialized with one
unseal key), so it can be sealed and unsealed like the embedded one; NATS is the session's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from structlog.testing import capture_logs

from custody.ledger.follower import LedgerFollower
from custody.ledger.transit_signer import TransitSigner, fetch_public_keyring
from custody.stack.servers import (
    BaoProcess,
    free_port,
    http_put_json,
    render_bao_config,
    start_bao,
)
from custody.vault.client import VaultClient
from custody.vault.layout import (
    SECRETARIA_POLICY,
    SIGNER_POLICY,
    create_service_token,
    ensure_layout,
)
from events.checkpoint import SignedCheckpoint
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration

BOUND = 60.0  # seconds: a generous bound for every wait (a poll is 0.05 s, a sign ~2 ms)


@dataclass
class Bao:
    process: BaoProcess
    unseal_key: str
    root: VaultClient

    def seal(self) -> None:
        self.root.write("sys/seal", operation="test")

    def unseal(self) -> None:
        status, body = http_put_json(self.process.port, "/v1/sys/unseal", {"key": self.unseal_key})
        assert status == 200, body
        wait_for(lambda: self.process.health() == 200, "OpenBao active again")


def wait_for(condition: Callable[[], object], what: str, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"not within {bound:.0f} s: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """A raft OpenBao, initialized (one key share) and unsealed, with Custodia's layout."""
    workdir: Path = tmp_path_factory.mktemp("bao-sellable")
    port = free_port()
    cluster_port = free_port({port})
    (workdir / "data").mkdir()
    config = workdir / "openbao.hcl"
    config.write_text(
        render_bao_config(workdir / "data", workdir / "audit.log", port, cluster_port)
    )
    process = start_bao(config, workdir / "openbao.log", port, cluster_port)
    try:
        status, body = http_put_json(
            port, "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=60
        )
        assert status == 200, body
        root = VaultClient(process.addr, body["root_token"])
        server = Bao(process, body["keys_base64"][0], root)
        server.unseal()
        ensure_layout(root)
        yield server
    finally:
        process.stop()


@pytest.fixture
def world(nats_url: str, bao: Bao) -> Iterator[LedgerWorld]:
    """A ledger of its own, its follower signing and anchoring with its own token."""
    signer = bao.root.with_token(
        create_service_token(bao.root, policy=SIGNER_POLICY, display_name="firmante")
    )
    service = bao.root.with_token(create_service_token(bao.root))
    reader = bao.root.write(
        "auth/token/create", {"policies": [SECRETARIA_POLICY], "ttl": "2h"}, operation="test"
    )
    assert reader is not None
    made = LedgerWorld(
        nats_url,
        "f" + uuid4().hex[:10],
        TransitSigner(signer),
        lambda: fetch_public_keyring(service),
        anchor_client=signer,
        reader_client=bao.root.with_token(reader["auth"]["client_token"]),
    )
    try:
        yield made
    finally:
        made.close()
        insider.delete_streams(nats_url, made.namespace + "-")


def stored(world: LedgerWorld) -> list[SignedCheckpoint]:
    return [SignedCheckpoint.from_bytes(m.data) for m in world.notes()]


class Retries:
    """The follower's ``ledger.follower.retry`` log lines, counted as they happen."""

    def __init__(self, logs: list[MutableMapping[str, Any]]) -> None:
        self.logs = logs

    def errors(self) -> list[str]:
        return [str(e.get("error")) for e in self.logs if e["event"] == "ledger.follower.retry"]


def follower_for(world: LedgerWorld) -> LedgerFollower:
    return world.follower(every=5, every_seconds=0.2, quiet_seconds=0.1, poll_seconds=0.05)


def _outage(
    world: LedgerWorld, take_down: Callable[[], None], bring_back: Callable[[], None]
) -> tuple[list[str], list[int]]:
    """Run a follower; with 10 entries signed, take transit down, write 7 more, wait until it
    read them and failed to sign them (two failed attempts at least), check nothing was
    published meanwhile, bring transit back and wait for the tree of 17 to be signed. The
    retry errors and the stored sizes."""
    world.write(10)
    follower = follower_for(world)
    with capture_logs() as logs:
        follower.start()
        try:
            wait_for(lambda: follower.status().anchored == 10, "10 entries signed")
            take_down()
            try:
                world.write(7)
                retries = Retries(logs)
                wait_for(lambda: follower.status().size == 17, "the 7 entries read")
                failed = len(retries.errors())
                wait_for(lambda: len(retries.errors()) >= max(failed + 1, 2), "attempts failed")
                status = follower.status()
                assert status.size == 17  # it kept reading: its position is not lost
                assert status.checkpoint is not None
                assert status.checkpoint.size == 10
                assert status.anchored == 10
                assert max(s.size for s in stored(world)) == 10  # nothing published
            finally:
                bring_back()
            wait_for(lambda: follower.status().anchored == 17, "the same history signed")
        finally:
            follower.stop()
    assert follower.status().diverged is None
    assert not [e for e in logs if e["event"] == "ledger.follower.failed"]
    return Retries(logs).errors(), [s.size for s in stored(world)]


def _history_intact(world: LedgerWorld, sizes: list[int]) -> None:
    assert sizes == sorted(set(sizes)), sizes  # each size signed once, never a size twice
    assert sizes[-1] == 17
    verdict = world.verify()
    assert verdict.ok, verdict
    assert verdict.report.checkpoints_verified == len(sizes)
    anchored = world.anchored()
    assert anchored.head is not None
    head = SignedCheckpoint.from_bytes(anchored.head)
    assert head.size == 17
    assert head.root == stored(world)[-1].root


def test_while_openbao_is_sealed_nothing_is_signed_and_the_same_history_is_signed_after(
    world: LedgerWorld, bao: Bao
) -> None:
    """OpenBao sealed under a running follower: every attempt to sign fails (sealed), no
    checkpoint reaches the stream or the anchor, the follower keeps its place; unsealed with
    its key, the follower signs the 17 entries it had read, and the ledger verifies."""
    errors, sizes = _outage(world, bao.seal, bao.unseal)
    assert set(errors[:2]) == {"VaultSealedError"}, errors
    _history_intact(world, sizes)


def test_while_its_token_may_not_sign_nothing_is_signed_and_it_signs_when_allowed_again(
    world: LedgerWorld, bao: Bao
) -> None:
    """The follower's own token is refused the signing key (its policy loses transit sign for
    a while, as when an operator revokes it): OpenBao answers 403, nothing is published, and
    when the policy is back the follower signs the same history; the ledger verifies."""
    path = f"sys/policies/acl/{SIGNER_POLICY}"
    original = bao.root.read(path, operation="test")["data"]["policy"]
    denied, blocks = re.subn(
        r'(path "[^"]*/sign/custodia-ledger(?:/\*)?" \{\s*capabilities = )\["update"\]',
        r'\1["deny"]',
        original,
    )
    assert blocks == 2, original

    def deny() -> None:
        bao.root.write(path, {"policy": denied}, operation="test")

    def allow() -> None:
        bao.root.write(path, {"policy": original}, operation="test")

    try:
        errors, sizes = _outage(world, deny, allow)
    finally:
        allow()
    assert set(errors[:2]) == {"VaultPermissionDeniedError"}, errors
    _history_intact(world, sizes)


def test_stopped_while_sealed_it_says_the_tail_is_unsigned_and_the_next_start_signs_it(
    world: LedgerWorld, bao: Bao
) -> None:
    """The service stops while OpenBao is sealed: the follower's last attempt to sign the tail
    fails, it says so (``ledger.follower.tail_unsigned``) and the stop completes; nothing is
    published. Started again once OpenBao is unsealed, a follower resumes from the last valid
    checkpoint and signs the whole tail; the ledger verifies."""
    world.write(10)
    assert follower_for(world).checkpoint_now() is not None
    bao.seal()
    try:
        world.write(5)
        follower = follower_for(world)
        with capture_logs() as logs:
            follower.start()
            retries = Retries(logs)
            wait_for(lambda: len(retries.errors()) >= 1, "a failed attempt to sign")
            follower.stop()
        events = [e["event"] for e in logs]
        assert "ledger.follower.tail_unsigned" in events, events
        assert max(s.size for s in stored(world)) == 10
    finally:
        bao.unseal()
    restarted = follower_for(world)
    signed = restarted.checkpoint_now()
    assert signed is not None
    assert signed.size == 15
    sizes = [s.size for s in stored(world)]
    assert sizes == sorted(set(sizes)), sizes
    verdict = world.verify()
    assert verdict.ok, verdict
    assert verdict.report.checkpoints_verified == len(sizes)
