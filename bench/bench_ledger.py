"""Ledger verification speed on a real JetStream stream, against reading it raw + SHA-256.

Starts a private nats-server, fills ``custodia-events`` with ``--n`` valid-looking records
(published raw, the way the event store lays them out: one aggregate's event per message,
notification ids chained), lets a :class:`~custody.ledger.follower.LedgerFollower` sign a
checkpoint every ``--every`` entries (in-memory Ed25519 key: no OpenBao needed), then measures
in the same run:

- raw read: every message with the same batched direct-get reader, plus SHA-256 of each body;
- online verification (``custodia bitacora verificar``): read, leaf bytes, record checks,
  Merkle tree, every checkpoint's signature and root;
- these two alternated ``--rounds`` times (default 3), their mean times compared;
- export to a bundle, and offline verification of that bundle.

Prints figures only (no assertions)::

    .venv/bin/python bench/bench_ledger.py --n 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import logging
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import nats
import structlog
from eventsourcing.persistence import StoredEvent
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from custody.ledger import audit
from custody.ledger.follower import FollowerSettings, LedgerFollower, LocalCheckpointSigner
from custody.ledger.names import LedgerNames
from custody.ledger.nats_io import connect, read_entries
from custody.stack.servers import NatsConfig, free_port, start_nats
from events.jetstream import records

T = TypeVar("T")
TOPIC = "custodia:cuenta.Rotada"


def timed(action: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} entries/s  ({seconds:7.2f} s)"


async def fill(url: str, names: LedgerNames, n: int, state_size: int) -> None:
    """Publish ``n`` events records: 1 event each, over ``n // 10`` aggregates."""
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(
            name=names.events_stream,
            subjects=[f"{names.events_prefix}.events.>", f"{names.events_prefix}.tracking.>"],
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.NEW,
            storage=StorageType.FILE,
            allow_direct=True,
            deny_delete=True,
            deny_purge=True,
        )
    )
    rng = random.Random(7)
    aggregates = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(max(1, n // 10))]
    versions = dict.fromkeys(aggregates, 0)
    state = b'{"motivo":"' + b"x" * max(0, state_size - 14) + b'"}'
    prefix = f"{names.events_prefix}.events."
    for i in range(n):
        aggregate = aggregates[rng.randrange(len(aggregates))]
        versions[aggregate] += 1
        event = StoredEvent(aggregate, versions[aggregate], TOPIC, state)
        body = records.encode_events_body(aggregate, [event])
        await nc.publish(prefix + str(aggregate), records.head(records.KIND_EVENTS, i + 1) + body)
        if i % 20_000 == 19_999:
            await nc.flush()
    await nc.flush()
    while (await js.stream_info(names.events_stream)).state.messages < n:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await nc.close()


def raw_read(url: str, names: LedgerNames) -> int:
    conn = connect(url)
    try:
        sha = hashlib.sha256
        count = 0
        for batch in read_entries(conn, names.events_stream):
            for _, _, data in batch:
                sha(data).digest()
            count += len(batch)
        return count
    finally:
        conn.close()


def main() -> None:
    # The follower logs one line per checkpoint; a bench prints figures only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="entries (default 200,000)")
    parser.add_argument("--every", type=int, default=1000, help="entries per checkpoint")
    parser.add_argument("--size", type=int, default=300, help="bytes of event state")
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw reads and verifications, alternated"
    )
    args = parser.parse_args()
    names = LedgerNames.for_app()
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        work = Path(tmp)
        port = free_port()
        config = NatsConfig(
            store_dir=work / "js",
            port=port,
            http_port=free_port(exclude={port}),
            sync_always=False,  # a bench of reads: writes need not be fsynced one by one
            max_payload=8 * 1024 * 1024,
        )
        server = start_nats(config, work / "nats.conf", work / "nats.log")
        try:
            run(server.url, names, args, work)
        finally:
            server.stop()


def run(url: str, names: LedgerNames, args: argparse.Namespace, work: Path) -> None:
    n = args.n
    print(f"ledger of {n:,} entries, {args.size}-byte event state, checkpoint every {args.every}")
    seconds, _ = timed(lambda: asyncio.run(fill(url, names, n, args.size)))
    print(f"fill (raw publish)            {rate(n, seconds)}")

    signer = LocalCheckpointSigner()
    conn = connect(url)
    try:
        follower = LedgerFollower(conn, signer, names, FollowerSettings(every_events=args.every))
        seconds, _ = timed(follower.checkpoint_now)
        status = follower.status()
        print(f"follower catch-up + signing   {rate(status.size, seconds)}", end="")
        print(f"  [{status.published:,} checkpoints]")

        # Alternated, totals compared: the load of a shared machine drifts between two runs.
        keyring = signer.public_keyring()
        raw_s = verify_s = raw_cpu = verify_cpu = raw_main = verify_main = 0.0
        for _ in range(args.rounds):
            cpu, main = time.process_time(), time.thread_time()
            seconds, count = timed(lambda: raw_read(url, names))
            raw_s += seconds
            raw_cpu += time.process_time() - cpu
            raw_main += time.thread_time() - main
            cpu, main = time.process_time(), time.thread_time()
            seconds, verdict = timed(lambda: audit.verify_online(conn, names, keyring))
            verify_s += seconds
            verify_cpu += time.process_time() - cpu
            verify_main += time.thread_time() - main
        raw_s, verify_s = raw_s / args.rounds, verify_s / args.rounds
        print(f"raw read + SHA-256 (baseline) {rate(count, raw_s)}")
        assert_ok = "ok" if verdict.ok else f"NOT OK: {verdict.report.problems[:1]}"
        print(f"verify online                 {rate(verdict.entries, verify_s)}  [{assert_ok}]")

        bundle = work / "bitacora.jsonl.gz"
        export_s, exported = timed(lambda: audit.export_bundle(conn, names, bundle, keyring))
        print(f"export bundle                 {rate(exported.entries, export_s)}", end="")
        print(f"  [{bundle.stat().st_size / 1e6:,.1f} MB]")
        offline_s, offline = timed(lambda: audit.verify_bundle_file(bundle, keyring))
        print(f"verify bundle offline         {rate(offline.entries, offline_s)}")
    finally:
        conn.close()

    ratio = raw_s / verify_s
    print()
    print(f"online verification = {ratio:.0%} of raw read + SHA-256 (goal >= 75 %)")
    print(
        f"  (this process's CPU time: {raw_cpu / verify_cpu:.0%} of raw read + SHA-256's;"
        " steadier than wall time on a loaded machine)"
    )
    per_entry = 1e6 / (n * args.rounds)
    print(
        f"  (CPU time of the calling thread per entry: {verify_main * per_entry:.2f} us verifying,"
        f" {raw_main * per_entry:.2f} us for raw read + SHA-256;"
        " both read on the event-loop thread alike)"
    )
    scaled = "" if n == 1_000_000 else f" (scaled from {n:,})"
    print(f"time to verify 1,000,000 entries online: {verify_s / n * 1e6:.1f} s{scaled}")
    print(f"time to verify 1,000,000 entries offline: {offline_s / n * 1e6:.1f} s{scaled}")


if __name__ == "__main__":
    main()
