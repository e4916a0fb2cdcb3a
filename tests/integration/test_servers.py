"""The server fixtures start real servers that answer."""

from __future__ import annotations

import pytest

from custody.stack.servers import BaoProcess, NatsProcess, http_get_json

pytestmark = pytest.mark.integration


def test_nats_fixture_has_jetstream(nats_server: NatsProcess) -> None:
    """The NATS fixture runs JetStream on file storage with sync_interval always."""
    status, info = http_get_json(nats_server.http_port, "/jsz")
    assert status == 200
    assert info["config"]["store_dir"].startswith(str(nats_server.store_dir))
    assert info["config"]["sync_always"] is True


def test_openbao_fixture_is_unsealed(openbao: BaoProcess) -> None:
    """The OpenBao dev fixture is initialized, unsealed and active."""
    status, info = http_get_json(openbao.port, "/v1/sys/health")
    assert status == 200
    assert info["sealed"] is False
    assert info["initialized"] is True
