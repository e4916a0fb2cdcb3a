"""Issue 16: each alert of the ledger follower becomes exactly one incident in the real ledger,
whatever the number of service instances reading it and however often they restart.

The follower refuses to sign a rewritten history and leaves its alert in OpenBao; two service
instances (two applications on the same JetStream ledger, each with the service's own OpenBao
token) read it at the same moment, then again, then a third one (a restart) reads it too.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from custody.app.access import Access
from custody.app.custodia import Custodia, CustodiaApplication, ledger_incident_id
from custody.ledger.alerts import AlertWatcher, recorder
from custody.ledger.errors import LedgerDivergedError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.personal_data import PersonalDataVault
from events.domain import Incident, Policy
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


@pytest.fixture
def instances(nats_url: str, vault_service: VaultClient) -> Iterator[list[Custodia]]:
    """Three service instances on one ledger (its own namespace), with the service's token."""
    namespace = "lai" + uuid.uuid4().hex[:8]
    apps = [
        CustodiaApplication(
            env={
                "PERSISTENCE_MODULE": "events.jetstream",
                "NATS_URL": nats_url,
                "NATS_NAMESPACE": namespace,
                "AGGREGATE_CACHE_MAXSIZE": "1000",
            }
        )
        for _ in range(3)
    ]
    try:
        yield [
            Custodia(
                app,
                Access(vault_service),
                Credentials(vault_service),
                PersonalDataVault(vault_service),
                Policy(),
            )
            for app in apps
        ]
    finally:
        for app in apps:
            app.close()
        insider.delete_streams(nats_url, namespace + "-")


def tampering_events(custodia: Custodia) -> list[Any]:
    notifications = custodia.app.recorder.select_notifications(start=1, limit=10_000)
    return [n for n in notifications if n.topic.endswith("Incident.LedgerTamperingDetected")]


def test_one_alert_one_incident_across_instances_and_restarts(
    world: LedgerWorld, vault_service: VaultClient, instances: list[Custodia]
) -> None:
    """Two instances read the alert at once, then again; a restarted one reads it as well:
    the ledger holds one ``LedgerTamperingDetected``, with the id derived from the alert, of no
    district, and exactly one of the readers recorded it."""
    world.build(20)
    entries = world.entries()
    entries[2].data = insider.flip_state_byte(entries[2].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    insider.delete_stream(world.url, world.names.checkpoints_stream)
    with pytest.raises(LedgerDivergedError):
        world.follower().checkpoint_now()
    [alert] = world.anchored().alerts

    first, second, restarted = (
        AlertWatcher(vault_service, world.names, recorder(custodia)) for custodia in instances
    )
    opened: list[int] = []
    start = threading.Barrier(2)

    def run(watcher: AlertWatcher) -> None:
        start.wait()
        opened.append(watcher.poll())

    threads = [threading.Thread(target=run, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(opened) == [0, 1]
    assert first.poll() + second.poll() + restarted.poll() == 0

    [event] = tampering_events(instances[0])
    assert event.originator_id == ledger_incident_id(alert.id)
    incident: Any = instances[2].app.repository.get(ledger_incident_id(alert.id))
    assert isinstance(incident, Incident)
    assert (incident.district, incident.incident_type) == (None, "bitacora_alterada")
    assert incident.ledger_alert == alert.id
