"""What the JetStream event store guarantees beyond the library's test cases."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID, uuid4

import nats
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.tests.application import BankAccounts
from eventsourcing.tests.domain import BankAccount
from eventsourcing.utils import Environment
from nats.aio.msg import Msg

from events.errors import ConfigurationError
from events.jetstream import (
    AggregateVersionConflictError,
    Factory,
    JetStreamApplicationRecorder,
    StreamConfigError,
    records,
)
from events.jetstream.connection import Connection, NatsSettings, NoRespondersError
from tests.integration.eventstore.workers import Counter

pytestmark = pytest.mark.integration

TOPIC = "tests:Happened"
NewFactory = Callable[..., Factory]


def event(originator_id: UUID | str, version: int, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(originator_id, version, TOPIC, state)


def verify_log(recorder: JetStreamApplicationRecorder) -> list[int]:
    """Check the stream message by message, as a verifier would; return the notification ids.

    Sequences are contiguous from 1; each record's first id continues its predecessor's.
    """
    ids: list[int] = []
    expected_seq, next_id = 1, 1
    while True:
        messages = recorder.read_messages(expected_seq, 1000)
        if not messages:
            return ids
        for seq, _, data in messages:
            assert seq == expected_seq
            record = records.decode(data)
            assert record.first_id == next_id
            if isinstance(record, records.EventsRecord):
                ids.extend(range(record.first_id, record.next_id))
            next_id = record.next_id
            expected_seq += 1


def publish_raw(url: str, subject: str, payload: bytes) -> int:
    """Publish a message to a stream as any other NATS client could; returns its sequence."""

    async def publish() -> int:
        nc = await nats.connect(url)
        try:
            ack = await nc.jetstream().publish(subject, payload)
            return ack.seq
        finally:
            await nc.close()

    return asyncio.run(publish())


def stream_config(url: str, name: str) -> dict[str, object]:
    async def info() -> dict[str, object]:
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(name)).config.as_dict()
        finally:
            await nc.close()

    return asyncio.run(info())


def test_persistence_module_resolves_to_the_factory(es_env: dict[str, str]) -> None:
    """PERSISTENCE_MODULE=events.jetstream constructs this module's one factory class."""
    factory = InfrastructureFactory.construct(Environment("App", es_env))
    assert type(factory) is Factory
    factory.close()


def test_missing_url_names_the_variable() -> None:
    """A factory without NATS_URL fails at once, naming the variable (and its app prefix)."""
    with pytest.raises(ConfigurationError, match="NATS_URL") as caught:
        Factory(Environment("Payroll", {}))
    assert "PAYROLL_NATS_URL" in str(caught.value)


def test_streams_are_configured_for_durability(
    factory: Factory, nats_url: str, namespace: str
) -> None:
    """The log is file-backed, append-only through the API, and never discards old events."""
    factory.application_recorder()
    factory.aggregate_recorder("snapshots")
    events = stream_config(nats_url, f"{namespace}-App-events")
    assert events["storage"] == "file"
    assert events["num_replicas"] == 1
    assert events["discard"] == "new"
    assert events["deny_delete"] is True
    assert events["deny_purge"] is True
    assert events["allow_atomic"] is True
    assert events["allow_direct"] is True
    assert events["subjects"] == [f"{namespace}.App.events.>", f"{namespace}.App.tracking.>"]
    snapshots = stream_config(nats_url, f"{namespace}-App-snapshots")
    assert snapshots["subjects"] == [f"{namespace}.App.snapshots.>"]
    assert snapshots["deny_purge"] is False


def test_replicas_beyond_the_cluster_are_a_clear_error(new_factory: NewFactory) -> None:
    """Three replicas on a single server: the stream cannot be created, and the error says why."""
    factory = new_factory(NATS_REPLICAS="3")
    with pytest.raises(StreamConfigError, match="cannot create stream"):
        factory.application_recorder()


def test_applications_have_their_own_notification_ids(new_factory: NewFactory) -> None:
    """Two applications number their events independently, each from 1."""
    first = new_factory("First").application_recorder()
    second = new_factory("Second").application_recorder()
    assert first.insert_events([event(uuid4(), 1), event(uuid4(), 1)]) == [1, 2]
    assert second.insert_events([event(uuid4(), 1)]) == [1]
    assert first.stream_name != second.stream_name


def test_snapshots_use_no_notification_ids(es_env: dict[str, str]) -> None:
    """Taking snapshots leaves the application's notification log as it was."""
    app = BankAccounts(env={"IS_SNAPSHOTTING_ENABLED": "y"})
    account = app.get_account(app.open_account("Alice", "alice@example.com"))
    account.append_transaction(Decimal("10.00"))
    app.save(account)
    before = app.recorder.max_notification_id()
    app.take_snapshot(account.id)
    app.take_snapshot(account.id, version=1)
    assert app.recorder.max_notification_id() == before == 2
    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(account.id)] == [1, 2]
    restored: BankAccount = app.repository.get(account.id)
    assert restored.balance == Decimal("10.00")
    app.close()


def test_snapshot_versions_need_only_be_unique(factory: Factory, new_factory: NewFactory) -> None:
    """A snapshot below the latest is stored (two processes may snapshot out of order)."""
    snapshots = factory.aggregate_recorder("snapshots")
    a = uuid4()
    snapshots.insert_events([event(a, 3, b"v3")])
    snapshots.insert_events([event(a, 1, b"v1")])
    with pytest.raises(IntegrityError):
        snapshots.insert_events([event(a, 1, b"again")])
    with pytest.raises(IntegrityError):
        snapshots.insert_events([event(a, 3, b"again")])
    snapshots.insert_events([event(a, 2, b"v2")])
    snapshots.insert_events([event(a, 5, b"v5")])
    assert [e.state for e in snapshots.select_events(a)] == [b"v1", b"v2", b"v3", b"v5"]
    assert [e.state for e in snapshots.select_events(a, desc=True, limit=1)] == [b"v5"]
    assert [e.state for e in snapshots.select_events(a, desc=True, limit=1, lte=4)] == [b"v3"]
    # Another connection sees the same (its cache is empty: the late records are found).
    other = new_factory().aggregate_recorder("snapshots")
    with pytest.raises(IntegrityError):
        other.insert_events([event(a, 2, b"again")])
    other.insert_events([event(a, 4, b"v4")])
    assert [e.originator_version for e in other.select_events(a)] == [1, 2, 3, 4, 5]


def test_save_of_one_aggregate_is_one_message(factory: Factory) -> None:
    """Several events of one aggregate are one message, yet each gets its own notification id."""
    recorder = factory.application_recorder()
    a = uuid4()
    assert recorder.insert_events([event(a, v) for v in range(1, 6)]) == [1, 2, 3, 4, 5]
    assert recorder.insert_events([event(uuid4(), 1)]) == [6]
    assert [seq for seq, _, _ in recorder.read_messages()] == [1, 2]
    assert verify_log(recorder) == [1, 2, 3, 4, 5, 6]


def test_save_of_several_aggregates_is_all_or_nothing(factory: Factory) -> None:
    """A save touching a stale aggregate stores nothing, not even the other aggregates' events."""
    recorder = factory.application_recorder()
    stale, fresh = uuid4(), uuid4()
    recorder.insert_events([event(stale, 1), event(stale, 2)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(fresh, 1), event(stale, 2), event(stale, 3)])
    assert recorder.select_events(fresh) == []
    assert [e.originator_version for e in recorder.select_events(stale)] == [1, 2]
    assert recorder.max_notification_id() == 2
    ids = recorder.insert_events([event(fresh, 1), event(stale, 3)])
    assert ids == [3, 4]
    assert verify_log(recorder) == [1, 2, 3, 4]


def test_stale_writer_elsewhere_is_refused_by_the_server(new_factory: NewFactory) -> None:
    """Two connections (two processes, as far as caches go): the second writer of v2 loses."""
    one = new_factory().application_recorder()
    other = new_factory().application_recorder()
    a = uuid4()
    one.insert_events([event(a, 1)])
    other.select_events(a)  # the other writer has seen v1
    one.insert_events([event(a, 2, b'{"by":"one"}')])
    with pytest.raises(AggregateVersionConflictError) as caught:
        other.insert_events([event(a, 2, b'{"by":"other"}'), event(a, 3)])
    assert caught.value.recorded == 2
    assert [e.state for e in one.select_events(a)] == [b"{}", b'{"by":"one"}']
    # The other writer learned where the stream is, and numbers its next write correctly.
    assert other.insert_events([event(uuid4(), 1)]) == [3]


def test_versions_may_skip_but_never_repeat(factory: Factory) -> None:
    """Like a unique (id, version) key: gaps are allowed, going back is not."""
    recorder = factory.application_recorder()
    a = uuid4()
    recorder.insert_events([event(a, 1), event(a, 5)])
    recorder.insert_events([event(a, 9)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(a, 7)])
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 5, 9]
    assert [e.originator_version for e in recorder.select_events(a, gt=1, lte=5)] == [5]
    assert [e.originator_version for e in recorder.select_events(a, desc=True, limit=2)] == [9, 5]


def test_tracking_records_keep_notification_ids_contiguous(factory: Factory) -> None:
    """Tracking records are stream messages, but take no notification ids: no gaps."""
    recorder = factory.process_recorder()
    assert recorder.insert_events([event(uuid4(), 1)], tracking=Tracking("Up", 1)) == [1]
    recorder.insert_events([], tracking=Tracking("Up", 2))
    assert recorder.insert_events([event(uuid4(), 1)], tracking=Tracking("Up", 3)) == [2]
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2]
    assert recorder.max_tracking_id("Up") == 3
    assert len(recorder.read_messages()) == 5  # 2 events + 3 tracking records
    assert verify_log(recorder) == [1, 2]


def test_a_save_too_big_for_one_message_is_split_atomically(factory: Factory) -> None:
    """Events beyond the server's max payload go in several messages of one atomic batch."""
    recorder = factory.application_recorder()
    a = uuid4()
    big = b"x" * 400_000
    ids = recorder.insert_events([event(a, v, big) for v in range(1, 6)])
    assert ids == [1, 2, 3, 4, 5]
    assert len(recorder.read_messages()) >= 2
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2, 3, 4, 5]
    assert verify_log(recorder) == [1, 2, 3, 4, 5]


def test_paging_finds_any_position(new_factory: NewFactory) -> None:
    """A fresh reader locates any notification id without reading the log from the start."""
    writer = new_factory().application_recorder()
    for i in range(300):
        writer.insert_events([event(uuid4(), v) for v in range(1, 1 + i % 3 + 1)])
    last = writer.max_notification_id()
    assert last is not None
    reader = new_factory().application_recorder()
    for start in (1, 2, 250, 251, 252, last - 1, last):
        page = reader.select_notifications(start, 3)
        assert [n.id for n in page] == list(range(start, min(start + 3, last + 1)))
    assert reader.select_notifications(last + 1, 3) == []
    assert [n.id for n in reader.select_notifications(10, 100, stop=12)] == [10, 11, 12]


def test_invalid_messages_are_skipped_and_reported(factory: Factory, nats_url: str) -> None:
    """Foreign or forged messages do not crash readers; they are skipped and listed."""
    recorder = factory.application_recorder()
    stream = factory.stream()
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    junk_seq = publish_raw(nats_url, stream.event_subject(a), b"not a record")
    # A valid-looking record about aggregate b, but on aggregate a's subject.
    forged = records.head(records.KIND_EVENTS, 2) + records.encode_events_body(b, [event(b, 1)])
    forged_seq = publish_raw(nats_url, stream.event_subject(a), forged)
    # Writing continues past the foreign messages, with the next id.
    assert recorder.insert_events([event(a, 2)]) == [2]
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2]
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2]
    with recorder.subscribe(gt=0) as subscription:
        assert [next(subscription).id, next(subscription).id] == [1, 2]
    reported = {m.seq: m.reason for m in recorder.invalid_messages}
    assert junk_seq in reported
    assert forged_seq in reported


def test_subscription_blocks_then_stops_from_another_thread(factory: Factory) -> None:
    """An idle subscription blocks; stop() from another thread ends the iteration (the wait
    for it only guards against a hang)."""
    recorder = factory.application_recorder()
    recorder.insert_events([event(uuid4(), 1)])
    received: list[int] = []
    subscription = recorder.subscribe(gt=None)
    ended = threading.Event()

    def consume() -> None:
        with subscription:
            received.extend(n.id for n in subscription)
        ended.set()

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 60
    while not received:  # the subscription has delivered what there is, and now waits
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not ended.is_set()
    subscription.stop()
    assert ended.wait(60)
    assert received == [1]
    thread.join()


def test_subscription_sees_writes_of_another_connection(new_factory: NewFactory) -> None:
    """New records written by another connection after the subscription started reach it, in
    order (the subscription's promptness is a figure for bench/, not asserted here)."""
    reader = new_factory().application_recorder()
    writer = new_factory().application_recorder()
    with reader.subscribe(gt=0, topics=[TOPIC]) as subscription:
        writer.insert_events([event(uuid4(), 1), event(uuid4(), 1)])
        ids = [next(subscription).id, next(subscription).id]
    assert ids == [1, 2]


def test_recorders_work_from_within_a_subscription(factory: Factory) -> None:
    """Calling the recorder while iterating its subscription does not deadlock."""
    recorder = factory.process_recorder()
    recorder.insert_events([event(uuid4(), 1)])
    with recorder.subscribe(gt=0) as subscription:
        for notification in subscription:
            ids = recorder.insert_events(
                [event(uuid4(), 1)], tracking=Tracking("Self", notification.id)
            )
            assert recorder.select_events(notification.originator_id)
            if notification.id >= 5:
                break
    assert ids == [6]


def test_calling_from_the_loop_thread_is_refused(factory: Factory) -> None:
    """A recorder called from its own event-loop thread raises instead of deadlocking."""
    recorder = factory.application_recorder()

    async def call_back_in() -> None:
        recorder.max_notification_id()

    with pytest.raises(ProgrammingError):
        factory.connection.run(call_back_in())


def test_closed_factory_refuses_operations(new_factory: NewFactory) -> None:
    """After close(), recorders raise an InterfaceError instead of hanging."""
    from eventsourcing.persistence import InterfaceError

    factory = new_factory()
    recorder = factory.application_recorder()
    factory.close()
    with pytest.raises(InterfaceError):
        recorder.max_notification_id()


def test_concurrent_writers_in_threads(es_env: dict[str, str]) -> None:
    """Threads racing on one aggregate: exactly one wins each version, and nothing is lost."""
    apps = [Application[UUID]() for _ in range(2)]  # two connections, three threads each
    counter = Counter()
    apps[0].save(counter)
    wins: list[int] = []
    lock = threading.Lock()

    def race(app: Application[UUID]) -> None:
        for _ in range(15):
            c: Counter = app.repository.get(counter.id)
            c.increment()
            try:
                app.save(c)
            except IntegrityError:
                continue
            with lock:
                wins.append(c.version)

    threads = [threading.Thread(target=race, args=(apps[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final: Counter = apps[0].repository.get(counter.id)
    assert sorted(wins) == list(range(2, final.version + 1))
    assert final.count == len(wins)
    recorder = apps[0].recorder
    assert isinstance(recorder, JetStreamApplicationRecorder)
    assert verify_log(recorder) == list(range(1, final.version + 1))
    for app in apps:
        app.close()


def test_a_request_nobody_serves_is_refused_by_the_server(nats_url: str) -> None:
    """A request written straight to the socket (the write path of every save) to a subject
    no stream or service listens on gets the server's own "no responders" status on the
    private inbox, not a timeout; the connection keeps working afterwards."""
    conn = Connection(NatsSettings(servers=(nats_url,)))
    try:
        with pytest.raises(NoRespondersError):
            conn.run(conn.request(f"nobody.{uuid4().hex}", b"x", {"X-Try": "1"}, 30))
        info = conn.run(conn.request("$JS.API.INFO", b"", {}, 30))
        assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
    finally:
        conn.close()


def test_a_header_value_cannot_smuggle_a_protocol_line(nats_url: str) -> None:
    """A header value with a line break is not written raw (it would end the header and
    start a forged protocol line): it goes through nats-py, which turns the break into a
    space; the message a listener receives carries one header and the intended body."""
    conn = Connection(NatsSettings(servers=(nats_url,)))
    received: list[tuple[dict[str, str] | None, bytes]] = []

    async def listen_and_request() -> dict[str, object]:
        subject = f"listener.{uuid4().hex}"

        async def answer(msg: Msg) -> None:
            received.append((msg.headers, msg.data))
            await msg.respond(b'{"ok": true}')

        sub = await conn.client.subscribe(subject, cb=answer)
        try:
            headers = {"X-Note": "a\r\nPUB forged 1\r\nx"}
            return await conn.request(subject, b"body", headers, 30)
        finally:
            await sub.unsubscribe()

    try:
        assert conn.run(listen_and_request()) == {"ok": True}
    finally:
        conn.close()
    assert received == [({"X-Note": "a  PUB forged 1  x"}, b"body")]


def test_an_aggregates_recent_records_are_read_without_its_history(factory: Factory) -> None:
    """``select_last_record_events`` gives the events of the aggregate's last save (all of
    them, in order); ``select_events_since`` gives the events of the saves stored at or after
    a time, in order, and none before it; an aggregate with no record gives nothing."""
    from datetime import UTC, datetime

    recorder = factory.application_recorder()
    assert isinstance(recorder, JetStreamApplicationRecorder)
    aggregate, other = uuid4(), uuid4()
    for version in range(1, 4):
        recorder.insert_events([event(aggregate, version)])
        recorder.insert_events([event(other, version)])
    time.sleep(0.05)
    start = datetime.now(UTC)
    time.sleep(0.05)
    recorder.insert_events([event(aggregate, 4), event(aggregate, 5)])
    recorder.insert_events([event(other, 4)])
    recorder.insert_events([event(aggregate, 6)])

    assert [e.originator_version for e in recorder.select_last_record_events(aggregate)] == [6]
    recent = recorder.select_events_since(aggregate, start)
    assert [e.originator_version for e in recent] == [4, 5, 6]
    assert {e.originator_id for e in recent} == {aggregate}
    everything = recorder.select_events_since(aggregate, datetime(2020, 1, 1, tzinfo=UTC))
    assert [e.originator_version for e in everything] == [1, 2, 3, 4, 5, 6]
    assert recorder.select_events_since(aggregate, datetime.now(UTC)) == []
    nobody = uuid4()
    assert recorder.select_last_record_events(nobody) == []
    assert recorder.select_events_since(nobody, start) == []
