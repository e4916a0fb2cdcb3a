"""Merkle ledger throughput against raw SHA-256 over the same leaves, in the same run.

Prints leaves/s for: plain SHA-256 of each leaf (the baseline), hashing and appending to a
CompactRange (what the follower does), appending pre-hashed leaves, a MerkleTree that stores
every node, and the full verification of an N-event ledger with a signed checkpoint every 1,000
events, compared with reading the same events and SHA-256-ing them. No assertions: figures only.

    .venv/bin/python bench/bench_merkle.py --n 1000000
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from events.checkpoint import Checkpoint, Ed25519Signer, SignedCheckpoint
from events.ledger_verify import verify_ledger
from events.merkle import CompactRange, MerkleTree, leaf_hash, verify_inclusion

ORIGIN = "bench.custodia/bitacora"


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` takes, starting from a collected heap."""
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def make_events(n: int, size: int, seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    return [(i, rng.randbytes(size)) for i in range(1, n + 1)]


def raw_sha256(events: list[tuple[int, bytes]]) -> None:
    sha = hashlib.sha256
    for _, data in events:
        sha(data).digest()


def make_checkpoints(
    events: list[tuple[int, bytes]], every: int, signer: Ed25519Signer
) -> list[SignedCheckpoint]:
    compact = CompactRange()
    checkpoints = []
    now = datetime.now(UTC)
    for start in range(0, len(events) - every + 1, every):
        compact.extend_data(d for _, d in events[start : start + every])
        checkpoint = Checkpoint(ORIGIN, compact.size, compact.root(), now)
        checkpoints.append(signer.sign_checkpoint(checkpoint))
    return checkpoints


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} /s  ({seconds:6.2f} s)"


def bench_trees(events: list[tuple[int, bytes]], seed: int) -> None:
    """Raw SHA-256 against the tree appends, over the same leaves."""
    n = len(events)
    datas = [d for _, d in events]
    hashes = [leaf_hash(d) for d in datas]

    t_raw = timed(lambda: raw_sha256(events))
    print(f"raw SHA-256 of each leaf           {rate(n, t_raw)}")

    t_compact = timed(lambda: CompactRange().extend_data(datas))
    ratio = f"ratio to raw {t_raw / t_compact:.0%}"
    print(f"hash + append (CompactRange)       {rate(n, t_compact)}  {ratio}")

    t_pre = timed(lambda: CompactRange().extend(hashes))
    print(f"append pre-hashed (CompactRange)   {rate(n, t_pre)}")

    single = CompactRange()

    def one_by_one() -> None:
        append = single.append
        for h in hashes:
            append(h)

    t_single = timed(one_by_one)
    print(f"append pre-hashed, one at a time   {rate(n, t_single)}")

    tree = MerkleTree()
    t_tree = timed(lambda: tree.extend_data(datas))
    ratio = f"ratio to raw {t_raw / t_tree:.0%}"
    print(f"hash + append (MerkleTree, stored) {rate(n, t_tree)}  {ratio}")

    rng = random.Random(seed)
    samples = [rng.randrange(n) for _ in range(10_000)]
    root = tree.root()

    def proofs() -> None:
        for index in samples:
            verify_inclusion(hashes[index], index, n, tree.inclusion_proof(index), root)

    t_proofs = timed(proofs)
    print(f"inclusion proof make + verify      {rate(len(samples), t_proofs)}")


def bench_verify(events: list[tuple[int, bytes]], every: int) -> None:
    """Full ledger verification against reading the same events and SHA-256-ing them."""
    n = len(events)
    signer = Ed25519Signer("bench")
    checkpoints = make_checkpoints(events, every, signer)
    keyring = signer.public_keyring()

    def iter_events() -> Iterator[tuple[int, bytes]]:
        yield from events  # stands for reading the stream; same cost in both measurements

    def read_and_hash() -> None:
        sha = hashlib.sha256
        for _, data in iter_events():
            sha(data).digest()

    result: list[bool] = []

    def verify() -> None:
        report = verify_ledger(iter_events(), checkpoints, keyring, origin=ORIGIN, total=n)
        result.append(report.ok)

    t_read = timed(read_and_hash)
    t_verify = timed(verify)
    print(f"read + SHA-256 (baseline)          {rate(n, t_read)}")
    ratio = f"ratio to baseline {t_read / t_verify:.0%}"
    label = f"verify ledger, {len(checkpoints):,} checkpoints"
    print(f"{label:<35}{rate(n, t_verify)}  {ratio}  verdict ok={result[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of leaves/events")
    parser.add_argument("--size", type=int, default=256, help="bytes per event")
    parser.add_argument("--every", type=int, default=1000, help="events per checkpoint")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(f"preparing {args.n:,} events of {args.size} bytes...")
    events = make_events(args.n, args.size, args.seed)
    bench_trees(events, args.seed)
    bench_verify(events, args.every)


if __name__ == "__main__":
    main()
