"""Latency and throughput on the 3-node loopback clusters (TLS), the numbers behind TOPOLOGY.md.

Starts both clusters with :mod:`tests.support.cluster`, then measures: event saves through an
``eventsourcing`` application on the 3-replica stream (one writer: p50/p99; four writers:
throughput), and OpenBao KV v2 check-and-set writes and reads through the active member and
through a standby (which forwards). Prints; asserts nothing; stops everything on exit.

    .venv/bin/python bench/bench_cluster.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custody.vault.client import VaultClient
from tests.cluster.helpers import closing_app, new_entry, vault_client
from tests.support.cluster import Cluster


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(ordered) * 1000:.2f} ms"


def timed(operation: Callable[[int], object], seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        operation(n)
        samples.append(time.perf_counter() - started)
        n += 1
    return samples


def bench_events(cluster: Cluster, seconds: float) -> None:
    with closing_app({**cluster.nats.env(), "NATS_TIMEOUT": "20"}) as app:
        app.save(new_entry(0, 0))
        one = timed(lambda n: app.save(new_entry(0, 3 * n)), seconds)  # one event per save
        print(f"events, 1 writer (R3, TLS):  {len(one) / seconds:7.0f} saves/s  {percentiles(one)}")
        counts = [0] * 4
        stop = threading.Event()

        def write(k: int) -> None:
            while not stop.is_set():
                app.save(new_entry(k, 3 * counts[k]))
                counts[k] += 1

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        print(f"events, 4 writers (R3, TLS): {sum(counts) / seconds:7.0f} saves/s")


def bench_kv(cluster: Cluster, seconds: float) -> None:
    bao = cluster.bao
    active = bao.active()
    assert active is not None
    standby = next(i for i in range(len(bao.nodes)) if i != active)
    admin = vault_client(bao.addrs[active], bao.root_token, bao.ca_file)
    admin.write("sys/mounts/bench", {"type": "kv", "options": {"version": "2"}}, operation="b")
    for label, index in (("active", active), ("standby (forwarded)", standby)):
        client: VaultClient = vault_client(bao.addrs[index], bao.root_token, bao.ca_file)
        prefix = uuid.uuid4().hex[:8]

        def write(n: int, client: VaultClient = client, prefix: str = prefix) -> None:
            body = {"data": {"v": str(n)}, "options": {"cas": 0}}
            client.write(f"bench/data/{prefix}/{n}", body, operation="b")

        writes = timed(write, seconds)
        written = len(writes)

        def read(
            n: int, client: VaultClient = client, prefix: str = prefix, written: int = written
        ) -> None:
            client.read(f"bench/data/{prefix}/{n % written}", operation="b")

        reads = timed(read, seconds)
        print(f"KV write via {label:20s} {len(writes) / seconds:6.0f}/s  {percentiles(writes)}")
        print(f"KV read  via {label:20s} {len(reads) / seconds:6.0f}/s  {percentiles(reads)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        started = time.monotonic()
        with Cluster(Path(tmp)) as cluster:
            print(f"clusters up in {time.monotonic() - started:.1f} s (3 NATS + 3 OpenBao, TLS)")
            bench_events(cluster, args.seconds)
            bench_kv(cluster, args.seconds)


if __name__ == "__main__":
    main()
