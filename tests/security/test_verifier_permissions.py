"""The verifier's NATS identity reads the ledger and can destroy nothing in it — refused by its
NATS permissions, not only by the stream's own ``deny_delete`` / ``deny_purge`` (two layers: a
grant that slips into the verifier's permissions must not go unnoticed behind the second)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import pytest

from custody.service.permissions import LEDGER_STREAMS
from tests.e2e.conftest import ServiceWorld

pytestmark = pytest.mark.e2e

DESTRUCTIVE = [
    f"$JS.API.{action}.{stream}"
    for stream in LEDGER_STREAMS
    for action in ("STREAM.MSG.DELETE", "STREAM.PURGE", "STREAM.DELETE", "STREAM.UPDATE")
]


def test_the_verifier_may_not_delete_or_purge(service_world: ServiceWorld) -> None:
    """Each destructive JetStream API request of the verifier is refused by NATS with a publish
    permissions violation naming that exact subject; the ledger keeps every message."""
    before = service_world.ledger_messages()

    async def scenario() -> set[str]:
        errors: list[str] = []
        refused = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())
            if len(errors) >= len(DESTRUCTIVE):
                refused.set()

        options: dict[str, Any] = service_world.endpoints("verificador").nats_options()
        nc = await nats.connect(**options, allow_reconnect=False, error_cb=on_error)
        try:
            # The read itself is allowed (a control: the identity is the real verifier).
            info = await nc.request(f"$JS.API.STREAM.INFO.{LEDGER_STREAMS[0]}", b"", timeout=30)
            assert json.loads(info.data)["state"]["messages"] == before
            for subject in DESTRUCTIVE:
                await nc.publish(subject, json.dumps({"seq": 1}).encode(), reply="_INBOX.x.y")
            await nc.flush()
            await asyncio.wait_for(refused.wait(), 60)
        finally:
            await nc.close()
        return set(errors)

    errors = asyncio.run(scenario())
    for subject in DESTRUCTIVE:
        assert f'nats: permissions violation for publish to "{subject.lower()}"' in errors
    assert service_world.ledger_messages() == before
