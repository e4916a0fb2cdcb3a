"""The follower keeps the Merkle tree of the events stream and signs checkpoints: on count and
on time, never forking with a second instance, resuming after a restart, and refusing to sign a
stream that contradicts what it signed before."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from custody.ledger.errors import LedgerDivergedError
from events.checkpoint import CheckpointError, SignedCheckpoint
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = pytest.mark.integration


def stored(world: LedgerWorld) -> list[SignedCheckpoint]:
    return [SignedCheckpoint.from_bytes(m.data) for m in world.notes()]


def stored_valid(world: LedgerWorld) -> list[SignedCheckpoint]:
    out = []
    for message in world.notes():
        try:
            out.append(SignedCheckpoint.from_bytes(message.data))
        except CheckpointError:
            continue
    return out


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_checkpoints_fall_on_every_n_entries_and_carry_the_frontier(world: LedgerWorld) -> None:
    """Catching up 25 entries with N=10 signs sizes 10, 20 and then 25 on demand; each
    checkpoint's frontier header reproduces its signed root."""
    world.write(25)
    world.follower(every=10).checkpoint_now()
    assert [s.size for s in stored(world)] == [10, 20, 25]
    assert world.verify().ok


def test_two_followers_never_fork(world: LedgerWorld) -> None:
    """Two service instances following the same stream while it is written: the stored
    checkpoints grow strictly, each was published by exactly one of them, and all verify."""
    followers = [world.follower(every=7, every_seconds=0.05, poll_seconds=0.01) for _ in range(2)]
    for follower in followers:
        follower.start()
    try:
        for _ in range(12):
            world.write(5)
            time.sleep(0.02)
    finally:
        for follower in followers:
            follower.stop()
    followers[0].checkpoint_now()
    sizes = [s.size for s in stored(world)]
    assert sizes == sorted(set(sizes)), sizes
    assert sizes[-1] == 60
    assert all(f.status().diverged is None for f in followers)
    assert sum(f.status().published for f in followers) == len(sizes)
    verdict = world.verify()
    assert verdict.ok
    assert verdict.report.checkpoints_verified == len(sizes)
    # Check-and-set on the anchored head made them agree: one head, every witness consistent.
    anchored = world.anchored()
    assert anchored.largest == 60
    assert world.verify(anchored=anchored).ok


def test_restart_resumes_from_the_frontier(world: LedgerWorld) -> None:
    """A new follower resumes from the last checkpoint's frontier (no re-reading from entry 1)
    and its next checkpoints are consistent with the earlier ones."""
    world.build(30)
    world.write(15)
    with capture_logs() as logs:
        checkpoint = world.follower(every=10).checkpoint_now()
    assert checkpoint is not None
    assert checkpoint.size == 45
    resumed = [e for e in logs if e["event"] == "ledger.follower.resumed"]
    assert resumed
    assert resumed[0]["size"] == 30
    assert world.verify().report.checkpoints_verified == 5


def test_restart_without_frontier_recomputes_the_tree(world: LedgerWorld) -> None:
    """If the last checkpoint lost its frontier header, the follower recomputes the tree from
    entry 1, checks it against the signed root, and carries on."""
    world.build(20)
    messages = insider.dump(world.url, world.names.checkpoints_stream)
    for message in messages:
        message.headers.pop("Custodia-Frontier", None)
    insider.rewrite(world.url, world.names.checkpoints_stream, messages)
    world.write(5)
    checkpoint = world.follower().checkpoint_now()
    assert checkpoint is not None
    assert checkpoint.size == 25
    assert world.verify().ok


def test_timer_signs_only_when_the_tree_grew(world: LedgerWorld) -> None:
    """With N far away, a checkpoint still comes once writes pause, covering every entry; and
    none while nothing new arrives, however many polls pass."""
    follower = world.follower(every=1000, every_seconds=0.2, quiet_seconds=0.1, poll_seconds=0.02)
    follower.start()
    try:
        world.write(3)
        wait_for(lambda: [s.size for s in stored(world)][-1:] == [3])
        settled = stored(world)
        steps = follower.status().steps
        wait_for(lambda: follower.status().steps >= steps + 10)  # ten polls with nothing new
        assert stored(world) == settled
        world.write(2)
        wait_for(lambda: [s.size for s in stored(world)][-1] == 5)
        sizes = [s.size for s in stored(world)]
        # A pause may fall between two saves (then 1, 2 or 4 is signed too): never a size twice.
        assert sizes == sorted(set(sizes)), sizes
        assert world.verify(anchored=world.anchored()).ok
    finally:
        follower.stop()


def test_a_hole_stops_the_follower(world: LedgerWorld) -> None:
    """An entry deleted after the last checkpoint makes the follower refuse to sign, naming the
    missing entry; nothing is published."""
    world.build(20)
    world.write(5)
    insider.delete(world.url, world.names.events_stream, 23)
    follower = world.follower()
    with pytest.raises(LedgerDivergedError) as caught:
        follower.checkpoint_now()
    assert caught.value.sequence == 23
    assert follower.status().diverged
    assert [s.size for s in stored(world)] == [10, 20]


def test_an_entry_gone_from_the_signed_range_is_caught_on_restart(world: LedgerWorld) -> None:
    """Attack: with the service stopped, an entry inside the signed range disappears (deleted
    by an administrator of the stream, or dropped by the server after its file was edited).
    A follower resuming from the last checkpoint's frontier never read it again and went on
    signing; now it sees the stream lacks an entry, reads the tree again from entry 1, and
    refuses to sign, naming the entry."""
    world.build(20)
    insider.delete(world.url, world.names.events_stream, 15)
    world.write(5)
    follower = world.follower()
    with pytest.raises(LedgerDivergedError) as caught:
        follower.checkpoint_now()
    assert caught.value.sequence == 15
    assert follower.status().diverged
    assert [s.size for s in stored(world)] == [10, 20]


def test_a_rewritten_tail_is_caught_on_restart(world: LedgerWorld) -> None:
    """Entry 24 rewritten under the last checkpoint (size 24): a restarted follower re-reads the
    frontier's last subtree (entries 17..24), sees the difference and refuses to sign."""
    world.build(24, every=8)
    entries = world.entries()
    entries[23].data = insider.flip_state_byte(entries[23].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    world_after = world
    with pytest.raises(LedgerDivergedError) as caught:
        world_after.follower(every=8).checkpoint_now()
    assert caught.value.sequence == 17


def test_stop_is_prompt(world: LedgerWorld, tmp_path: Path) -> None:
    """``stop()`` returns promptly from an idle follower thread."""
    follower = world.follower(every_seconds=60, poll_seconds=0.05)
    follower.start()
    assert follower.status().running
    started = time.monotonic()
    follower.stop()
    assert time.monotonic() - started < 2
    assert not follower.status().running
    assert not any(t.name == "custodia-ledger" and t.is_alive() for t in threading.enumerate())


def test_a_garbage_last_checkpoint_is_skipped_on_restart(world: LedgerWorld) -> None:
    """The latest checkpoint replaced by garbage: a restarted follower resumes from the last one
    that verifies and keeps signing after it; verification blames only the garbage."""
    world.build(40)
    messages = insider.dump(world.url, world.names.checkpoints_stream)
    messages[-1].data = b"no es un punto de control"
    insider.rewrite(world.url, world.names.checkpoints_stream, messages)
    world.write(15)
    checkpoint = world.follower().checkpoint_now()
    assert checkpoint is not None
    assert checkpoint.size == 55
    verdict = world.verify()
    assert [(p.kind.value, p.checkpoint_index) for p in verdict.report.problems] == [
        ("malformed_checkpoint", 3)
    ]
    # 40 is not signed again: the head anchored in OpenBao holds it, and the stream matches it.
    assert [s.size for s in stored_valid(world)] == [10, 20, 30, 50, 55]


def test_an_entry_gone_from_the_signed_range_is_caught_while_running(world: LedgerWorld) -> None:
    """Attack: while the service runs, an administrator of the stream deletes an entry the
    follower already signed (it never reads it again). Within its integrity period the running
    follower sees the stream lacks an entry, reads the tree again and refuses to sign, naming
    the entry; entries written meanwhile are not signed."""
    world.build(20)
    follower = world.follower(poll_seconds=0.05, integrity_seconds=0.2)
    follower.start()
    try:
        world.write(3)
        wait_for(lambda: follower.status().size == 23)
        assert not follower.status().diverged
        insider.delete(world.url, world.names.events_stream, 15)
        world.write(2)
        wait_for(lambda: follower.status().diverged)
    finally:
        follower.stop()
    assert "15" in str(follower.status().diverged)
    assert max(s.size for s in stored(world)) <= 23
