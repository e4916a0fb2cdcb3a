"""Fixtures: the ledger application ``custodia`` on JetStream, in a namespace of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from eventsourcing.application import Application

from tests.integration.eventstore.conftest import delete_streams, unique_namespace


class Ledger(Application[UUID]):
    """The ledger as the service writes it (application ``custodia``)."""

    name = "custodia"


@pytest.fixture
def app_env(nats_url: str) -> Iterator[dict[str, str]]:
    """The application environment of a fresh namespace, whose streams go after the test."""
    namespace = unique_namespace()
    yield {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": namespace,
    }
    delete_streams(nats_url, namespace)


@pytest.fixture
def ledger(app_env: dict[str, str]) -> Iterator[Ledger]:
    app = Ledger(env=app_env)
    yield app
    app.close()
