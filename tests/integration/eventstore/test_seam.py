"""The sync/async seam against a real NATS server: who runs the connection's loop, and when.

A caller runs the loop itself during its call; between calls the keeper thread must run it,
or the server's pings go unanswered and subscriptions stall (``events.jetstream.driver``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import InterfaceError, PersistenceError, StoredEvent

from custody.stack.servers import NatsProcess
from events.jetstream import Factory
from tests.conftest import start_test_nats
from tests.integration.eventstore.conftest import make_factory, unique_namespace


def event(version: int = 1) -> StoredEvent:
    return StoredEvent(uuid4(), version, "tests:Event", b"{}")


def test_an_idle_connection_still_answers_the_servers_pings(tmp_path: Path) -> None:
    """Nobody calls for 15 ping intervals: the keeper answers, the server keeps the connection.

    With no one running the loop between calls, the server would close it as stale after
    ``ping_max`` unanswered pings, and the next save would find it reconnecting.
    """
    server: NatsProcess = start_test_nats(tmp_path, 'ping_interval: "100ms"\nping_max: 2\n')
    factory = make_factory(server.url, unique_namespace())
    try:
        recorder = factory.application_recorder()
        recorder.insert_events([event()])
        time.sleep(1.5)
        assert recorder.insert_events([event()]) == [2]
        assert factory.connection.client.stats["reconnects"] == 0
    finally:
        factory.close()
        server.stop()
    assert "Stale" not in (tmp_path / "nats.log").read_text()


def test_a_subscriber_is_fed_while_the_writer_thread_is_busy_elsewhere(factory: Factory) -> None:
    """Events saved by one thread reach a subscriber in another, whoever runs the loop."""
    recorder = factory.application_recorder()
    seen: list[int] = []
    got_all = threading.Event()

    def follow() -> None:
        with recorder.subscribe(gt=0) as subscription:
            for notification in subscription:
                seen.append(notification.id)
                if notification.id == 20:
                    got_all.set()
                    return

    follower = threading.Thread(target=follow)
    follower.start()
    for i in range(20):
        recorder.insert_events([event()])
        if i % 5 == 0:
            time.sleep(0.05)  # the writer thread leaves the loop to the keeper now and then
    assert got_all.wait(10)
    follower.join(10)
    assert seen == list(range(1, 21))


def test_saves_from_inside_another_running_event_loop(factory: Factory) -> None:
    """Synchronous code called from a coroutine (its thread runs another loop) still saves."""
    recorder = factory.application_recorder()

    async def handler() -> list[int]:
        ids: list[int] = []
        for _ in range(3):
            ids.extend(recorder.insert_events([event()]) or [])
        return ids

    assert asyncio.run(handler()) == [1, 2, 3]
    assert recorder.max_notification_id() == 3


def test_closing_while_other_threads_save_ends_them_cleanly(factory: Factory) -> None:
    """Writers racing a close either save or are told the store is closed; none hangs."""
    recorder = factory.application_recorder()
    outcomes: list[str] = []
    lock = threading.Lock()

    def write() -> None:
        for _ in range(200):
            try:
                recorder.insert_events([event()])
                result = "saved"
            except InterfaceError:
                result = "closed"
            except PersistenceError as e:  # caught mid-save by the close: never a hang
                result = type(e).__name__
            with lock:
                outcomes.append(result)
            if result != "saved":
                return

    writers = [threading.Thread(target=write) for _ in range(4)]
    for w in writers:
        w.start()
    time.sleep(0.1)
    driver = factory.connection._driver
    factory.close()
    for w in writers:
        w.join(20)
        assert not w.is_alive()
    assert outcomes.count("saved") > 0
    assert outcomes.count("closed") >= 3, outcomes[-8:]  # at most one caught mid-save
    assert set(outcomes) <= {"saved", "closed", "OutcomeUnknownError"}, set(outcomes)
    assert not driver._keeper.is_alive()


def test_a_close_from_a_finalizer_inside_the_drivers_bookkeeping_is_deferred(
    nats_url: str, namespace: str
) -> None:
    """eventsourcing's ``Application.__del__`` closes the factory wherever a collection starts,
    perhaps while this thread holds the driver's lock: the close must not wait for itself."""
    factory = make_factory(nats_url, namespace)
    recorder = factory.application_recorder()
    recorder.insert_events([event()])
    conn = factory.connection
    driver = conn._driver
    returned = threading.Event()

    def finalizer_inside_bookkeeping() -> None:
        with driver._lock:  # where the collection started
            conn.close()
        returned.set()

    threading.Thread(target=finalizer_inside_bookkeeping, daemon=True).start()
    assert returned.wait(5)
    driver._keeper.join(10)
    assert not driver._keeper.is_alive()
    assert driver.loop.is_closed()
    with pytest.raises(InterfaceError):
        recorder.insert_events([event()])


def test_a_close_interrupted_while_draining_still_closes(nats_url: str, namespace: str) -> None:
    """Ctrl-C during close's drain: the connection still ends closed, not half-closed (a later
    close() would have returned at once, leaving the loop running for good)."""
    factory = make_factory(nats_url, namespace)
    factory.application_recorder().insert_events([event()])
    conn = factory.connection
    driver = conn._driver

    async def interrupted_drain() -> None:
        raise KeyboardInterrupt

    conn._drain = interrupted_drain  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        conn.close()
    assert conn.closed
    driver._keeper.join(10)
    assert driver.loop.is_closed()
