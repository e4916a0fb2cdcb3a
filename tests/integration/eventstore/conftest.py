"""Fixtures for the JetStream event store: a unique namespace per test, streams deleted after."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from uuid import uuid4

import nats
import pytest
from eventsourcing.utils import Environment

from events.jetstream import Factory


def unique_namespace() -> str:
    return "t" + uuid4().hex[:12]


def delete_streams(url: str, namespace: str) -> None:
    """Delete every stream whose name starts with ``namespace-`` (best effort)."""

    async def delete() -> None:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name
                if name and name.startswith(namespace + "-"):
                    await js.delete_stream(name)
        finally:
            await nc.close()

    with contextlib.suppress(Exception):  # cleanup only: the server may be gone
        asyncio.run(delete())


def make_factory(url: str, namespace: str, app: str = "App", **env: str) -> Factory:
    """A factory for application ``app`` in ``namespace`` on the server at ``url``."""
    values = {"NATS_URL": url, "NATS_NAMESPACE": namespace, **env}
    return Factory(Environment(app, values))


@pytest.fixture
def namespace(nats_url: str) -> Iterator[str]:
    """A namespace (stream name prefix) of this test only; its streams are deleted after it."""
    ns = unique_namespace()
    yield ns
    delete_streams(nats_url, ns)


@pytest.fixture
def factory(nats_url: str, namespace: str) -> Iterator[Factory]:
    """A factory for application ``App`` in the test's namespace, closed after the test."""
    f = make_factory(nats_url, namespace)
    yield f
    f.close()


@pytest.fixture
def new_factory(nats_url: str, namespace: str) -> Iterator[Callable[..., Factory]]:
    """Makes factories in the test's namespace (``new_factory(app="App", **env)``), closed after."""
    made: list[Factory] = []

    def new(app: str = "App", **env: str) -> Factory:
        factory = make_factory(nats_url, namespace, app, **env)
        made.append(factory)
        return factory

    yield new
    for factory in made:
        factory.close()


@pytest.fixture
def es_env(monkeypatch: pytest.MonkeyPatch, nats_url: str, namespace: str) -> dict[str, str]:
    """``os.environ`` selecting this persistence module, for code that reads it directly."""
    values = {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": namespace,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
