"""Faults: a server that is down, crashes, restarts or freezes; writers in other processes.

Each test that harms its server starts one of its own (same ports and store on restart).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Notification, OperationalError, StoredEvent
from eventsourcing.utils import Environment

from custody.stack.servers import NatsConfig, NatsProcess, free_port, start_nats
from events.jetstream import (
    EventStoreUnavailableError,
    Factory,
    JetStreamApplicationRecorder,
    OutcomeUnknownError,
)
from tests.conftest import start_test_nats
from tests.integration.eventstore.test_semantics import verify_log
from tests.integration.eventstore.workers import Counter, race

pytestmark = pytest.mark.integration

TOPIC = "tests:Happened"


def event(originator_id: UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id, version, TOPIC, b"{}")


def crash(server: NatsProcess) -> None:
    """SIGKILL: no shutdown, no flushing; acknowledged writes were fsynced already."""
    os.kill(server.pid, signal.SIGKILL)
    os.waitpid(server.pid, 0)


def freeze(server: NatsProcess) -> None:
    """SIGSTOP, and wait until every thread of the server is stopped: ``kill`` returns before
    the signal has stopped threads running on another core, which could still read a write
    sent right after (seen on a loaded 2-core machine: the "lost" write landed)."""
    os.kill(server.pid, signal.SIGSTOP)
    tasks = Path(f"/proc/{server.pid}/task")
    for _ in range(2000):  # 20 s at most
        states = []
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):
                # The state follows the parenthesised command name: "pid (comm) S ...".
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise AssertionError(f"nats-server {server.pid} did not stop: {states}")


def restart(server: NatsProcess) -> NatsProcess:
    """The same server again: same ports, same store."""
    config = NatsConfig(store_dir=server.store_dir, port=server.port, http_port=server.http_port)
    return start_nats(config, server.config_file, server.log_file)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[list[NatsProcess]]:
    """A server of this test only, as a one-item list (a restart replaces the item)."""
    servers = [start_test_nats(tmp_path)]
    yield servers
    servers[0].stop()


def factory_for(server: NatsProcess, **env: str) -> Factory:
    return Factory(Environment("App", {"NATS_URL": server.url, **env}))


def all_notifications(recorder: JetStreamApplicationRecorder) -> list[Notification]:
    out: list[Notification] = []
    while page := recorder.select_notifications(len(out), 1000, inclusive_of_start=False):
        out.extend(page)
    return out


def wait_for(condition: Callable[[], bool], what: str, guard: float = 120) -> None:
    """Until ``condition()`` holds; ``guard`` only stops a wait that would never end."""
    deadline = time.monotonic() + guard
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def wait_until_answering(recorder: JetStreamApplicationRecorder) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            recorder.max_notification_id()
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_server_down_at_start_is_a_clear_error() -> None:
    """No server: creating a recorder fails (it does not retry forever: the test's timeout
    guards that), naming the URL but not its credentials."""
    url = f"nats://alice:s3cret@127.0.0.1:{free_port()}"
    factory = Factory(Environment("App", {"NATS_URL": url, "NATS_CONNECT_TIMEOUT": "1"}))
    with pytest.raises(EventStoreUnavailableError) as caught:
        factory.application_recorder()
    assert isinstance(caught.value, OperationalError)
    message = str(caught.value)
    assert "cannot connect to NATS at nats://127.0.0.1:" in message
    assert "s3cret" not in message
    assert "alice" not in message


def test_credentials_are_used_and_their_absence_is_explained(tmp_path: Path) -> None:
    """Against a server that wants a token: without it a clear error, with NATS_TOKEN it works."""
    port = free_port()
    config = NatsConfig(
        store_dir=tmp_path / "js",
        port=port,
        http_port=free_port(exclude={port}),
        extra="authorization { token: t0ps3cret }\n",
    )
    server = start_nats(config, tmp_path / "nats.conf", tmp_path / "nats.log")
    try:
        anonymous = factory_for(server, NATS_CONNECT_TIMEOUT="1")
        with pytest.raises(EventStoreUnavailableError, match=r"[Aa]uthorization"):
            anonymous.application_recorder()
        trusted = factory_for(server, NATS_TOKEN="t0ps3cret")
        assert trusted.application_recorder().insert_events([event(uuid4())]) == [1]
        trusted.close()
    finally:
        server.stop()


def test_restart_mid_run_loses_and_duplicates_nothing(own_server: list[NatsProcess]) -> None:
    """A crash and restart while writing and subscribing: every acknowledged event is there
    exactly once, ids stay contiguous, and the subscription carries on."""
    factory = factory_for(own_server[0], NATS_TIMEOUT="20")
    recorder = factory.application_recorder()
    acknowledged: dict[UUID, int] = {}
    unknown: list[tuple[UUID, OutcomeUnknownError]] = []
    received: list[int] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            originator_id = uuid4()
            try:
                ids = recorder.insert_events([event(originator_id)])
            except OutcomeUnknownError as e:
                unknown.append((originator_id, e))
            else:
                assert ids is not None
                acknowledged[originator_id] = ids[0]

    subscription = recorder.subscribe(gt=0)

    def subscribe() -> None:
        with subscription:
            received.extend(n.id for n in subscription)

    threads = [threading.Thread(target=write), threading.Thread(target=subscribe)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 5, "no writes before the crash")
    crash(own_server[0])
    before = len(acknowledged)
    own_server[0] = restart(own_server[0])
    wait_for(lambda: len(acknowledged) >= before + 5, "writes did not resume after the restart")
    stop.set()
    threads[0].join(30)
    assert 0 < before < len(acknowledged), "writes before the crash and after the restart"
    settled = {oid for oid, error in unknown if recorder.settle(error) is not None}
    never = {oid for oid, _ in unknown} - settled
    notifications = all_notifications(recorder)
    assert [n.id for n in notifications] == list(range(1, len(notifications) + 1))
    stored = [n.originator_id for n in notifications]
    assert len(stored) == len(set(stored))  # nothing duplicated
    assert set(stored) == set(acknowledged) | settled  # nothing acknowledged lost, no ghosts
    assert not never & set(stored)
    by_id = {n.originator_id: n.id for n in notifications}
    assert all(by_id[oid] == acknowledged[oid] for oid in acknowledged)
    assert verify_log(recorder) == [n.id for n in notifications]
    wait_for(lambda: len(received) >= len(notifications), "subscription stopped early")
    assert received == [n.id for n in notifications]
    subscription.stop()
    threads[1].join(5)
    factory.close()


def test_a_write_refused_during_an_outage_never_lands(own_server: list[NatsProcess]) -> None:
    """While the server is down a write fails as not stored (every write tried during the
    outage, until the client has noticed it, fails), and none of them appears later."""
    factory = factory_for(own_server[0], NATS_TIMEOUT="1")
    recorder = factory.application_recorder()
    first, later = uuid4(), uuid4()
    recorder.insert_events([event(first)])
    crash(own_server[0])
    tried: list[UUID] = []
    while True:  # until the client has noticed the outage: then "nothing was stored"
        tried.append(uuid4())
        try:
            recorder.insert_events([event(tried[-1])])
        except EventStoreUnavailableError as error:
            if "nothing was stored" in str(error):
                break
        except OutcomeUnknownError:
            pass  # not noticed yet; the server is dead, so this one cannot land either
        assert len(tried) < 200, "the client never noticed the outage"
    own_server[0] = restart(own_server[0])
    wait_until_answering(recorder)
    # A publish buffered during the outage would go out before this one, on the same connection.
    assert recorder.insert_events([event(later)]) == [2]
    assert all(recorder.select_events(refused) == [] for refused in tried)
    assert [n.originator_id for n in all_notifications(recorder)] == [first, later]
    factory.close()


def test_an_unanswered_write_that_landed_is_found(own_server: list[NatsProcess]) -> None:
    """A frozen server: the write's outcome is unknown; once it answers, settle() finds it."""
    factory = factory_for(own_server[0], NATS_TIMEOUT="1")
    recorder = factory.application_recorder()
    recorder.insert_events([event(uuid4())])
    frozen = uuid4()
    freeze(own_server[0])
    try:
        with pytest.raises(OutcomeUnknownError) as caught:
            recorder.insert_events([event(frozen)])
    finally:
        os.kill(own_server[0].pid, signal.SIGCONT)
    assert isinstance(caught.value, OperationalError)
    assert caught.value.fence.expected == 1  # it can only be the message after sequence 1
    assert recorder.settle(caught.value) == 2
    assert recorder.settle(caught.value) == 2  # settling again changes nothing
    assert [n.originator_id for n in all_notifications(recorder)][1:] == [frozen]
    assert verify_log(recorder) == [1, 2]
    factory.close()


def test_an_unanswered_write_that_was_lost_is_settled(own_server: list[NatsProcess]) -> None:
    """A write lost in a crash: settle() either completes it or says it never will be."""
    factory = factory_for(own_server[0], NATS_TIMEOUT="1")
    recorder = factory.application_recorder()
    recorder.insert_events([event(uuid4())])
    lost, other = uuid4(), uuid4()
    freeze(own_server[0])
    with pytest.raises(OutcomeUnknownError) as caught:
        recorder.insert_events([event(lost)])
    crash(own_server[0])  # the frozen server dies with the write unread
    own_server[0] = restart(own_server[0])
    # Another writer takes the position first: the lost write can never land now.
    another = factory_for(own_server[0])
    assert another.application_recorder().insert_events([event(other)]) == [2]
    wait_until_answering(recorder)
    assert recorder.settle(caught.value) is None
    assert recorder.select_events(lost) == []
    # The application, told so, simply saves again.
    assert recorder.insert_events([event(lost)]) == [3]
    assert verify_log(recorder) == [1, 2, 3]
    another.close()
    factory.close()


def test_concurrent_writers_in_processes(nats_url: str, namespace: str) -> None:
    """Processes racing on one aggregate: exactly one wins each version, and nothing is lost."""
    env = {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": namespace,
    }
    app: Application[UUID] = Application(env=env)
    counter = Counter()
    app.save(counter)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(3) as pool:
        # They race once all three have started up and connected (however long that takes on
        # a loaded machine): a barrier, not a clock. A worker waiting at it takes no other task,
        # so the three tasks run in three processes.
        start = manager.Barrier(3, timeout=300)
        results = pool.starmap(race, [(env, str(counter.id), 12, start)] * 3)
    wins = sorted(v for won, _ in results for v in won)
    final: Counter = app.repository.get(counter.id)
    assert wins == list(range(2, final.version + 1))
    assert final.count == len(wins) > 0
    assert sum(lost for _, lost in results) > 0, "the processes did race"
    recorder = app.recorder
    assert isinstance(recorder, JetStreamApplicationRecorder)
    assert verify_log(recorder) == list(range(1, final.version + 1))
    app.close()
