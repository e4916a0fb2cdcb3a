"""Session fixtures that start real servers (NATS with JetStream, OpenBao) on free loopback ports.

They use the same code as the embedded stack (:mod:`custody.servers`) and stop the servers even
when tests fail. No mocks of NATS or Vault anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from custody.servers import (
    BaoProcess,
    NatsConfig,
    NatsProcess,
    free_port,
    start_bao_dev,
    start_nats,
)


def start_test_nats(workdir: Path) -> NatsProcess:
    """A fresh single-node JetStream server on file storage under ``workdir``."""
    port = free_port()
    http_port = free_port(exclude={port})
    config = NatsConfig(store_dir=workdir / "jetstream", port=port, http_port=http_port)
    return start_nats(config, workdir / "nats.conf", workdir / "nats.log")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    """One JetStream server for the whole test session (tests isolate by stream/app name)."""
    proc = start_test_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsProcess) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoProcess]:
    """One OpenBao dev server (in memory) for the session; ``root_token`` is its root token."""
    proc = start_bao_dev(tmp_path_factory.mktemp("openbao"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Commands run in-process configure structlog; every test starts from the defaults."""
    yield
    structlog.reset_defaults()
