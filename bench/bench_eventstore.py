"""Benchmark of the JetStream event store against baselines measured in the same run.

Baselines, on the same server: raw nats-py ``js.publish`` awaiting each ack with the
expected-subject-sequence header (timed inside its event loop); a raw ordered consumer reading
with a callback; and the ``eventsourcing`` SQLite module on a file database. Every write makes
the server fsync (``sync_interval: always``), whose latency drifts a lot on a shared machine, so
measurements alternate in small blocks and ratios compare the totals. Prints; asserts nothing.

    .venv/bin/python bench/bench_eventstore.py            # starts its own nats-server
    .venv/bin/python bench/bench_eventstore.py --url nats://127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import nats
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment
from nats.js.api import DeliverPolicy, DiscardPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.stack.servers import NatsConfig, free_port, start_nats
from events.jetstream import Factory, records
from events.jetstream.streams import Item

T = TypeVar("T")
TOPIC = "bench.domain:Event"
STATE = b'{"timestamp":"2025-01-01T00:00:00+00:00","amount":"10.00","reference":"abc"}'
ISOLATION = 0.02  # seconds of idleness before each "isolated" save (four times the keeper's grace)


@contextmanager
def nats_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp:
        port = free_port()
        config = NatsConfig(
            store_dir=Path(tmp) / "js", port=port, http_port=free_port(exclude={port})
        )
        proc = start_nats(config, Path(tmp) / "nats.conf", Path(tmp) / "nats.log")
        try:
            yield proc.url
        finally:
            proc.stop()


class Timer:
    """Accumulated seconds and operations per named measurement."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, count: int, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.count[name] = self.count.get(name, 0) + count

    def time(self, name: str, count: int, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        run()
        self.add(name, count, time.perf_counter() - started)

    def rate(self, name: str) -> float:
        return self.count[name] / self.seconds[name]

    def ratio(self, name: str, baseline: str) -> float:
        return self.rate(name) / self.rate(baseline)


class RawClient:
    """Plain nats-py in its own event loop; operations are timed inside the loop."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.nc = self.run(nats.connect(url, pending_size=0))
        self.js = self.nc.jetstream()
        self.stream = "raw-" + uuid4().hex[:8]
        # Configured like the event store's own streams.
        self.run(
            self.js.add_stream(
                name=self.stream,
                subjects=[f"{self.stream}.>"],
                allow_direct=True,
                allow_atomic=True,
                discard=DiscardPolicy.NEW,
                deny_delete=True,
                deny_purge=True,
            )
        )
        self.last = 0
        self.isolated = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def publish(self, count: int, existing: bool) -> float:
        async def publish() -> float:
            started = time.perf_counter()
            for _ in range(count):
                subject = f"{self.stream}.events.{'agg' if existing else uuid4()}"
                expected = str(self.last) if existing else "0"
                ack = await self.js.publish(
                    subject, STATE, headers={"Nats-Expected-Last-Subject-Sequence": expected}
                )
                if existing:
                    self.last = ack.seq
            return time.perf_counter() - started

        return self.run(publish())

    def publish_isolated(self, count: int, pause: float) -> float:
        """Seconds of ``count`` publishes to one subject, each after ``pause`` s of idleness."""

        async def publish() -> float:
            total = 0.0
            for _ in range(count):
                await asyncio.sleep(pause)
                started = time.perf_counter()
                ack = await self.js.publish(
                    f"{self.stream}.events.isolated",
                    STATE,
                    headers={"Nats-Expected-Last-Subject-Sequence": str(self.isolated)},
                )
                total += time.perf_counter() - started
                self.isolated = ack.seq
            return total

        return self.run(publish())

    def ordered_read(self, stream: str, subject: str, count: int) -> float:
        async def read() -> float:
            done = asyncio.Event()
            received = 0

            async def on_message(_: Any) -> None:
                nonlocal received
                received += 1
                if received >= count:
                    done.set()

            started = time.perf_counter()
            sub = await self.js.subscribe(
                subject,
                stream=stream,
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
            )
            await done.wait()
            seconds = time.perf_counter() - started
            await sub.unsubscribe()
            return seconds

        return self.run(read())

    def fill_log(self, prefix: str, count: int) -> None:
        """Write ``count`` single-event records exactly as the recorder would, but pipelined."""

        async def fill() -> None:
            window = 256
            for start in range(0, count, window):
                requests = []
                for i in range(start, min(start + window, count)):
                    originator_id = uuid4()
                    body = records.encode_events_body(
                        originator_id, [StoredEvent(originator_id, 1, TOPIC, STATE)]
                    )
                    headers = {
                        "Nats-Expected-Last-Sequence": str(i),
                        "Nats-Expected-Last-Subject-Sequence": "0",
                    }
                    requests.append(
                        self.nc.request(
                            f"{prefix}.events.{originator_id}",
                            records.head(records.KIND_EVENTS, i + 1) + body,
                            timeout=10,
                            headers=headers,
                        )
                    )
                for reply in await asyncio.gather(*requests):
                    assert b"error" not in reply.data, reply.data

        self.run(fill())

    def close(self) -> None:
        self.run(self.js.delete_stream(self.stream))
        self.run(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def saves(recorder: ApplicationRecorder, count: int, size: int, aggregates: int = 1) -> None:
    for _ in range(count):
        ids = [uuid4() for _ in range(aggregates)]
        recorder.insert_events(
            [StoredEvent(i, v, TOPIC, STATE) for i in ids for v in range(1, size + 1)]
        )


def existing_saves(
    recorder: ApplicationRecorder, originator_id: UUID, versions: Iterator[int], count: int
) -> None:
    """Saves of one more event of the same aggregate."""
    for _ in range(count):
        recorder.insert_events([StoredEvent(originator_id, next(versions), TOPIC, STATE)])


def isolated_saves(
    recorder: ApplicationRecorder, originator_id: UUID, versions: Iterator[int], count: int
) -> float:
    """Seconds of ``count`` saves of one aggregate, each after ``ISOLATION`` s of idleness (the
    connection's keeper runs the loop by then: each save takes it over)."""
    total = 0.0
    for _ in range(count):
        time.sleep(ISOLATION)
        event = StoredEvent(originator_id, next(versions), TOPIC, STATE)
        started = time.perf_counter()
        recorder.insert_events([event])
        total += time.perf_counter() - started
    return total


def select_all(recorder: ApplicationRecorder, count: int, page: int) -> None:
    start, seen = 0, 0
    while True:
        notifications = recorder.select_notifications(start, page, inclusive_of_start=False)
        if not notifications:
            break
        seen += len(notifications)
        start = notifications[-1].id
    assert seen == count, (seen, count)


def subscribe_all(recorder: ApplicationRecorder, count: int) -> None:
    seen = 0
    with recorder.subscribe(gt=0) as subscription:
        for _ in subscription:
            seen += 1
            if seen == count:
                break


class Thing(Aggregate):
    def __init__(self) -> None:
        self.n = 0

    class Happened(Aggregate.Event):
        amount: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Thing)
            aggregate.n += 1

    def happen(self) -> None:
        self.trigger_event(self.Happened, amount="10.00")


def repository_get_ms(env: dict[str, str], events: int, repeats: int, one_save: bool) -> float:
    app: Application[UUID] = Application(env=env)
    try:
        thing = Thing()
        if one_save:
            for _ in range(events - 1):
                thing.happen()
            app.save(thing)
        else:
            app.save(thing)
            for _ in range(events - 1):
                thing.happen()
                app.save(thing)
        app.repository.get(thing.id)  # warm up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            got: Thing = app.repository.get(thing.id)
            times.append(time.perf_counter() - started)
            assert got.version == events
        return 1000 * statistics.median(times)
    finally:
        app.close()


def in_loop_appends(factory: Factory, count: int) -> float:
    """Seconds for ``count`` single-event appends timed inside the connection's loop.

    A diagnostic: the difference from a recorder save is the cost of the sync/async seam.
    """
    stream = factory.stream()

    async def append() -> float:
        started = time.perf_counter()
        for _ in range(count):
            originator_id = uuid4()
            event = StoredEvent(originator_id, 1, TOPIC, STATE)
            item = Item(
                subject=stream.event_subject(originator_id),
                kind=records.KIND_EVENTS,
                body=records.encode_events_body(originator_id, [event]),
                key=originator_id,
                first_version=1,
                last_version=1,
                count=1,
            )
            await stream.append([item], stream.deadline())
        return time.perf_counter() - started

    return factory.connection.run(append())


def jetstream_factory(url: str, namespace: str, app: str) -> Factory:
    return Factory(Environment(app, {"NATS_URL": url, "NATS_NAMESPACE": namespace}))


def sqlite_recorder(path: Path) -> ApplicationRecorder:
    env = Environment(
        "Bench", {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    return InfrastructureFactory.construct(env).application_recorder()


def bench_writes(args: argparse.Namespace, url: str, namespace: str, tmp: Path) -> None:
    factory = jetstream_factory(url, namespace, "Writes")
    recorder = factory.application_recorder()
    sqlite = sqlite_recorder(tmp / "writes.db")
    raw = RawClient(url)
    existing, sql_existing = uuid4(), uuid4()
    versions, sql_versions = itertools.count(1), itertools.count(1)
    t, n = Timer(), args.block
    for _ in range(args.blocks):
        t.add("raw new", n, raw.publish(n, existing=False))
        t.time("new", n, lambda: saves(recorder, n, 1))
        t.add("in loop", n, in_loop_appends(factory, n))
        t.add("raw existing", n, raw.publish(n, existing=True))
        t.time("existing", n, lambda: existing_saves(recorder, existing, versions, n))
        t.time("multi", n, lambda: saves(recorder, n, args.multi))
        t.time("sqlite", n, lambda: saves(sqlite, n, 1))
        t.time("sqlite existing", n, lambda: existing_saves(sqlite, sql_existing, sql_versions, n))
        t.time("sqlite multi", n, lambda: saves(sqlite, n, args.multi))
    t.time("batch", 100, lambda: saves(recorder, 100, 1, aggregates=2))
    lone, lone_versions = uuid4(), itertools.count(1)
    for _ in range(3):
        t.add("raw isolated", 30, raw.publish_isolated(30, ISOLATION))
        t.add("isolated", 30, isolated_saves(recorder, lone, lone_versions, 30))
    raw.close()
    factory.close()
    total = args.blocks * n
    print(f"Writes: {total} saves each, in blocks of {n} alternating (saves/s)")
    print(f"  raw js.publish + ack, new subject        {t.rate('raw new'):9.0f}")
    print(f"  raw js.publish + ack, existing subject   {t.rate('raw existing'):9.0f}")
    print(
        f"  single-event save, new aggregate         {t.rate('new'):9.0f}   "
        f"{t.ratio('new', 'raw new'):5.0%} of raw (goal >= 80 %)"
    )
    print(
        f"    (the same, timed inside the loop)      {t.rate('in loop'):9.0f}   "
        f"{t.ratio('in loop', 'raw new'):5.0%} of raw: the rest is the sync/async seam"
    )
    print(
        f"  single-event save, existing aggregate    {t.rate('existing'):9.0f}   "
        f"{t.ratio('existing', 'raw existing'):5.0%} of raw (goal >= 80 %)"
    )
    print(
        f"  {args.multi}-event save, one aggregate           {t.rate('multi'):9.0f}   "
        f"{t.ratio('multi', 'new'):5.0%} of single-event "
        f"({t.rate('multi') * args.multi:.0f} events/s)"
    )
    print(f"  2-aggregate save (atomic batch)          {t.rate('batch'):9.0f}")
    raw_ms, save_ms = 1e3 / t.rate("raw isolated"), 1e3 / t.rate("isolated")
    print(
        f"  (context) each after {ISOLATION * 1000:.0f} ms idle: raw {raw_ms:.2f} ms, save"
        f" {save_ms:.2f} ms: {t.ratio('isolated', 'raw isolated'):4.0%} of raw (the save takes"
        " the loop over from the keeper)"
    )
    print(
        f"  SQLite single-event save, new/existing   {t.rate('sqlite'):9.0f} /"
        f" {t.rate('sqlite existing'):.0f}   JetStream/SQLite {t.ratio('new', 'sqlite'):.2f}"
    )
    print(f"  SQLite {args.multi}-event save                    {t.rate('sqlite multi'):9.0f}")


def bench_reads(args: argparse.Namespace, url: str, namespace: str, tmp: Path) -> None:
    m = args.log
    factory = jetstream_factory(url, namespace, "Reads")
    recorder = factory.application_recorder()
    stream = factory.stream()
    raw = RawClient(url)
    raw.fill_log(stream.prefix, m)
    sqlite = sqlite_recorder(tmp / "reads.db")
    for i in range(0, m, 1000):
        sqlite.insert_events(
            [StoredEvent(uuid4(), 1, TOPIC, STATE) for _ in range(min(1000, m - i))]
        )
    t = Timer()
    fresh = jetstream_factory(url, namespace, "Reads")
    t.time("cold", m, lambda: select_all(fresh.application_recorder(), m, args.page))
    fresh.close()
    for _ in range(args.rounds):
        t.add("raw", m, raw.ordered_read(stream.name, stream.events_filter, m))
        t.time("select", m, lambda: select_all(recorder, m, args.page))
        t.time("subscribe", m, lambda: subscribe_all(recorder, m))
        t.time("sqlite", m, lambda: select_all(sqlite, m, args.page))
    raw.close()
    factory.close()
    print(f"\nReading a log of {m} events, one per message, {args.rounds} rounds (events/s)")
    print(f"  raw ordered consumer, callback           {t.rate('raw'):9.0f}")
    print(
        f"  select_notifications, pages of {args.page:<5}     {t.rate('select'):9.0f}   "
        f"{t.ratio('select', 'raw'):5.0%} of raw"
    )
    print(f"    (first pass of a fresh recorder)       {t.rate('cold'):9.0f}")
    print(
        f"  subscribe() catch-up from 0              {t.rate('subscribe'):9.0f}   "
        f"{t.ratio('subscribe', 'raw'):5.0%} of raw"
    )
    print(f"  SQLite select_notifications              {t.rate('sqlite'):9.0f}")


def bench_get(args: argparse.Namespace, url: str, namespace: str, tmp: Path) -> None:
    k = args.aggregate
    js = {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": url, "NATS_NAMESPACE": namespace}
    sql = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp / "get.db")}
    many = repository_get_ms(js, k, 20, one_save=False)
    one = repository_get_ms(js, k, 20, one_save=True)
    sql_many = repository_get_ms(sql, k, 20, one_save=False)
    print(f"\nrepository.get of an aggregate with {k} events (median ms)")
    print(f"  JetStream, saved one event at a time     {many:9.2f}   SQLite x{many / sql_many:.2f}")
    print(f"  JetStream, saved in one save             {one:9.2f}   SQLite x{one / sql_many:.2f}")
    print(f"  SQLite, saved one event at a time        {sql_many:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="an existing NATS server (default: start one)")
    parser.add_argument("--blocks", type=int, default=10, help="alternating write blocks")
    parser.add_argument("--block", type=int, default=100, help="saves per block")
    parser.add_argument("--multi", type=int, default=10, help="events per multi-event save")
    parser.add_argument("--log", type=int, default=30000, help="events in the log read back")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of reading the log")
    parser.add_argument("--page", type=int, default=1000, help="select_notifications page size")
    parser.add_argument("--aggregate", type=int, default=1000, help="events of the aggregate got")
    parser.add_argument(
        "--only", choices=["writes", "reads", "get"], action="append", help="run only these parts"
    )
    args = parser.parse_args()
    parts = args.only or ["writes", "reads", "get"]
    with nats_server(args.url) as url, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        namespace = "bench" + uuid4().hex[:6]
        print(f"NATS at {url}; machine with 2 cores\n")
        if "writes" in parts:
            bench_writes(args, url, namespace, Path(tmp))
        if "reads" in parts:
            bench_reads(args, url, namespace, Path(tmp))
        if "get" in parts:
            bench_get(args, url, namespace, Path(tmp))


if __name__ == "__main__":
    main()
