"""Benchmark: rebuilding the report projections from zero, against reading the same stream raw.

A ledger of ``--n`` events is made by the domain model (the random history of the projection
tests: mostly credential reads, with rotations, designations, absences, change requests and
incidents over ``--districts`` districts), saved as the event store writes it (one record per
save), but pipelined so that making it is quick. Then, alternating, each in a fresh child
process:

- **raw**: a nats-py ordered consumer with a callback reads every message of the stream (the
  fastest way to read it in Python; the floor of any projection);
- **subscribe**: the event store's own ``recorder.subscribe()`` iterated to the end, doing nothing
  with the notifications: the floor of any projection that reads through the event store;
- **rebuild**: :func:`projections.runner.rebuild` — a forked reading process
  (``projections.reading``) reads the JetStream subscription (a page at a time, unfiltered
  direct gets) and prepares nearly every event (all but rare kinds such as registrations and
  role changes: 99.7 % of this ledger) from its stored state straight into its handler's SQL
  parameters, no domain event made (``projections.fastrows``), and sends each page down a pipe;
  the rebuilding process applies each run of such events at once (consecutive reads in one
  ``executemany``), and maps any other event, or one the shortcut declines, to its domain event
  for the projection's handler; all into the SQLite view, tracked in the same transactions
  (batches of about 10,000 into a side file, secondary indexes built at the end), from the first
  event to the last; its time includes connecting, the fork, the indexes and the final
  checkpoint. For comparison, the same rebuild in one process (``reading_process=False``:
  reading and writing take turns on one interpreter lock), into another file.

Prints events/s of each, the rebuild's ratio to the raw read measured in the same run (target
≥ 80 %), the time a 1,000,000-event ledger would take to rebuild at the measured rate, each
child's CPU time per event over the same span (all its threads, and for the rebuild its reading
process's too; on a machine shared with other work it varies less than the rates), and the
children's peak memory (``VmHWM``; the rebuild's reading process: its ``ru_maxrss``, which
counts the pages it shares with the rebuilding process it was forked from). Asserts nothing.

    .venv/bin/python bench/bench_projections.py                # 100,000 events
    .venv/bin/python bench/bench_projections.py --n 1000000    # the full-size ledger
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType
from typing import Any

import nats
from eventsourcing.domain import Aggregate
from nats.js.api import DeliverPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.stack.servers import NatsConfig, free_port, start_nats
from events.domain import District
from events.jetstream import records
from projections.projection import LedgerReader

APP = "custodia"


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


def peak_rss_kib() -> int:
    """This process's peak resident memory. ``VmHWM``, not ``ru_maxrss``: on Linux the latter
    keeps the parent's peak across fork and exec, so every child reported the parent's size."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def app_env(url: str, namespace: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "events.jetstream", "NATS_URL": url, "NATS_NAMESPACE": namespace}


# -- making the ledger ---------------------------------------------------------------------------


def make_records(n: int, districts: int, seed: int) -> tuple[list[tuple[str, bytes]], int]:
    """The records of a random history of at least ``n`` events: ``(subject tail, body)``."""
    from tests.integration.projections.history import RandomHistory

    reader = LedgerReader(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    mapper = reader.mapper
    out: list[tuple[str, bytes]] = []
    next_id = 1

    def save(aggregates: Sequence[Aggregate]) -> None:
        nonlocal next_id
        for aggregate in aggregates:
            events = aggregate.collect_events()
            if not events:
                continue
            stored = [mapper.to_stored_event(e) for e in events]
            body = records.encode_events_body(aggregate.id, stored)
            out.append(
                (
                    records.subject_token(aggregate.id),
                    records.head(records.KIND_EVENTS, next_id) + body,
                )
            )
            next_id += len(stored)

    # The domain's all-or-nothing decorator deep-copies a district before each command, which
    # grows with its history; a bench does not need the rollback, so it calls the commands bare.
    for name, attribute in list(vars(District).items()):
        if isinstance(attribute, FunctionType) and hasattr(attribute, "__wrapped__"):
            setattr(District, name, attribute.__wrapped__)
    codes = [f"DD{i:02d}" for i in range(1, districts + 1)]
    history = RandomHistory(save, seed=seed, districts=codes, reads_weight=120)
    while next_id <= n:
        history.run(1000)
    reader.close()
    return out, next_id - 1


def publish(url: str, namespace: str, recs: list[tuple[str, bytes]]) -> None:
    """Appends the records as the recorder would (expected last sequence), pipelined."""
    prefix = f"{namespace}.{APP}.events."

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            window = 512
            for start in range(0, len(recs), window):
                requests = [
                    nc.request(
                        prefix + token,
                        data,
                        timeout=30,
                        headers={"Nats-Expected-Last-Sequence": str(i)},
                    )
                    for i, (token, data) in enumerate(recs[start : start + window], start)
                ]
                for reply in await asyncio.gather(*requests):
                    if b"error" in reply.data:
                        raise RuntimeError(reply.data.decode())
        finally:
            await nc.close()

    asyncio.run(run())


# -- the two measurements (each in a child process) ----------------------------------------------


def child_raw(url: str, namespace: str, messages: int) -> dict[str, Any]:
    cpu = 0.0

    async def read() -> float:
        nonlocal cpu
        nc = await nats.connect(url)
        js = nc.jetstream()
        done = asyncio.Event()
        received = 0

        async def on_message(_: Any) -> None:
            nonlocal received
            received += 1
            if received >= messages:
                done.set()

        started, cpu_started = time.perf_counter(), time.process_time()
        sub = await js.subscribe(
            f"{namespace}.{APP}.events.>",
            stream=f"{namespace}-{APP}-events",
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        await done.wait()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await sub.unsubscribe()
        await nc.close()
        return seconds

    seconds = asyncio.run(read())
    return {"seconds": seconds, "cpu": cpu, "maxrss_kib": peak_rss_kib()}


def child_subscribe(url: str, namespace: str, events: int) -> dict[str, Any]:
    reader = LedgerReader(env=app_env(url, namespace))
    started, cpu_started = time.perf_counter(), time.process_time()
    with reader.recorder.subscribe(gt=0) as subscription:
        for notification in subscription:
            if notification.id >= events:
                break
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    reader.close()
    return {"seconds": seconds, "cpu": cpu, "maxrss_kib": peak_rss_kib()}


def child_rebuild(url: str, namespace: str, db: str, *, one_process: bool) -> dict[str, Any]:
    from projections.runner import rebuild

    cpu_started = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = rebuild(Path(db), app_env(url, namespace), reading_process=not one_process)
    reader = resource.getrusage(resource.RUSAGE_CHILDREN)  # the reading process, reaped
    reader_cpu = (reader.ru_utime - children.ru_utime) + (reader.ru_stime - children.ru_stime)
    return {
        "seconds": result.seconds,
        "cpu": time.process_time() - cpu_started + reader_cpu,
        "events": result.events,
        "errors": result.errors,
        "maxrss_kib": peak_rss_kib(),
        "reader_maxrss_kib": reader.ru_maxrss,
    }


def in_child(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="events in the ledger")
    parser.add_argument("--districts", type=int, default=33)
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--url", help="an existing NATS server (default: start one)")
    parser.add_argument(
        "--child", choices=["raw", "subscribe", "rebuild", "one"], help=argparse.SUPPRESS
    )
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "raw":
        print(json.dumps(child_raw(args.url, args.namespace, args.messages)))
        return
    if args.child == "subscribe":
        print(json.dumps(child_subscribe(args.url, args.namespace, args.events)))
        return
    if args.child in ("rebuild", "one"):
        built = child_rebuild(args.url, args.namespace, args.db, one_process=args.child == "one")
        print(json.dumps(built))
        return

    with nats_server(args.url) as url, tempfile.TemporaryDirectory(prefix="bench-proj-") as tmp:
        namespace = f"bench{int(time.time())}"
        started = time.perf_counter()
        recs, events = make_records(args.n, args.districts, args.seed)
        made = time.perf_counter() - started
        LedgerReader(env=app_env(url, namespace)).close()  # creates the stream as configured
        started = time.perf_counter()
        publish(url, namespace, recs)
        written = time.perf_counter() - started
        print(
            f"ledger: {events:,} events in {len(recs):,} records "
            f"({events / len(recs):.2f} events/record), {args.districts} districts; "
            f"made in {made:.1f} s, written in {written:.1f} s"
        )
        raw_s: list[float] = []
        subscribe_s: list[float] = []
        rebuild_s: list[float] = []
        one_s: list[float] = []
        rss: dict[str, int] = {"raw": 0, "rebuild": 0, "reader": 0}
        cpu: dict[str, list[float]] = {"raw": [], "subscribe": [], "rebuild": []}
        for round_ in range(args.rounds):
            raw = in_child(
                "--child", "raw", "--url", url, "--namespace", namespace,
                "--messages", str(len(recs)),
            )  # fmt: skip
            subscribed = in_child(
                "--child", "subscribe", "--url", url, "--namespace", namespace,
                "--events", str(events),
            )  # fmt: skip
            subscribe_s.append(subscribed["seconds"])
            db = str(Path(tmp) / f"r{round_}.sqlite")
            built = in_child(
                "--child", "rebuild", "--url", url, "--namespace", namespace, "--db", db
            )
            alone = in_child(
                "--child", "one", "--url", url, "--namespace", namespace, "--db", db + ".1"
            )
            raw_s.append(raw["seconds"])
            rebuild_s.append(built["seconds"])
            one_s.append(alone["seconds"])
            for name, child in (("raw", raw), ("subscribe", subscribed), ("rebuild", built)):
                cpu[name].append(child["cpu"])
            rss["raw"] = max(rss["raw"], raw["maxrss_kib"])
            rss["rebuild"] = max(rss["rebuild"], built["maxrss_kib"])
            rss["reader"] = max(rss["reader"], built["reader_maxrss_kib"])
            print(
                f"  round {round_ + 1}: raw {events / raw['seconds']:9,.0f} events/s "
                f"({len(recs) / raw['seconds']:,.0f} msgs/s)   "
                f"subscribe() {events / subscribed['seconds']:9,.0f} events/s   "
                f"rebuild {events / built['seconds']:9,.0f} events/s   "
                f"(one process {events / alone['seconds']:9,.0f})   "
                f"errors {built['errors']}, {alone['errors']}"
            )
        raw_rate = events * len(raw_s) / sum(raw_s)
        subscribe_rate = events * len(subscribe_s) / sum(subscribe_s)
        rebuild_rate = events * len(rebuild_s) / sum(rebuild_s)
        print(f"raw ordered consumer    {raw_rate:10,.0f} events/s")
        print(
            f"event store subscribe() {subscribe_rate:10,.0f} events/s  "
            f"({subscribe_rate / raw_rate:.0%} of raw: the floor of a projection)"
        )
        print(
            f"projection rebuild      {rebuild_rate:10,.0f} events/s  "
            f"({rebuild_rate / raw_rate:.0%} of raw, target ≥ 80 %; "
            f"{rebuild_rate / subscribe_rate:.0%} of subscribe())"
        )
        one_rate = events * len(one_s) / sum(one_s)
        print(
            f"  the same in one process {one_rate:10,.0f} events/s  "
            f"({one_rate / raw_rate:.0%} of raw: reading and writing take turns on one "
            f"interpreter lock)"
        )
        print(
            f"rebuild of {events:,} events: {min(rebuild_s):.1f} s; "
            f"1,000,000 events at this rate: {1_000_000 / rebuild_rate:.0f} s "
            f"({1_000_000 / rebuild_rate / 60:.1f} min)"
        )
        per_event = {name: min(spent) / events * 1e6 for name, spent in cpu.items()}
        print(
            f"CPU time per event (all threads of each child, least of the rounds: steadier than "
            f"the rates on a busy machine): raw {per_event['raw']:.1f} µs, subscribe() "
            f"{per_event['subscribe']:.1f} µs, rebuild {per_event['rebuild']:.1f} µs"
        )
        print(
            f"peak memory (max RSS): rebuild {rss['rebuild'] / 1024:.0f} MiB "
            f"(its reading process {rss['reader'] / 1024:.0f} MiB, shared pages included), "
            f"raw read {rss['raw'] / 1024:.0f} MiB"
        )
        size = sum(p.stat().st_size for p in Path(tmp).glob("r*.sqlite")) / max(1, len(rebuild_s))
        print(f"view database: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
