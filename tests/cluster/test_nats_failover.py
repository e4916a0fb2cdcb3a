"""``kill -9`` of the JetStream stream leader while an application writes events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.cluster.helpers import (
    STREAM,
    EventWriters,
    check_log,
    closing_app,
    new_entry,
    recorder_for,
)
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

# Long enough to ride out an election (4-9 s in nats-server's raft) plus reconnection: the
# failover is invisible to these callers.
PATIENT = "20"
# Shorter than the failover: these callers see errors (not stored / outcome unknown), so the
# no-ghost promise is put to the test, not only the no-loss one. They write only around the kill:
# two connections appending to one stream contend for its tail (see the report of issue 10).
HASTY = "2"


def test_stream_leader_killed_during_writes_loses_nothing(
    cluster: Cluster, figures: dict[str, Any]
) -> None:
    """Writers save aggregates through an eventsourcing application connected to all three
    servers that waits out a failover; around the kill, a second application that gives up after
    2 s writes too. The stream leader gets SIGKILL; a new leader takes over and writes resume.
    Once the dead member is back and the replicas agree: every acknowledged save is in the log
    exactly once, at the notification ids it was given; every save that raised is absent, or
    stored once if ``settle`` says so; the patient callers saw no error at all."""
    nats = cluster.nats
    patient_env = {**nats.env(), "NATS_TIMEOUT": PATIENT}
    with (
        closing_app(patient_env) as patient,
        closing_app({**nats.env(), "NATS_TIMEOUT": HASTY}) as hasty,
    ):
        patient.save(new_entry(0, 0))  # the stream exists before the clock starts
        leader = nats.wait_stream_leader(STREAM)
        meta_leader = nats.meta_leader()
        calm = EventWriters(patient, threads=3)
        rushed = EventWriters(hasty, threads=2)
        calm.start()
        try:
            time.sleep(1.5)
            rushed.start()
            time.sleep(0.2)
            killed_at = time.monotonic()
            nats.kill(leader)
            new_leader = nats.wait_stream_leader(STREAM, other_than=leader)
            elected_at = time.monotonic()
            rushed.stop()
            deadline = elected_at + 90  # a hang guard only
            while calm.acks_between(elected_at, float("inf")) < 20:  # writes resumed
                assert time.monotonic() < deadline, "writes did not resume"
                assert not calm.other_errors, calm.other_errors
                time.sleep(0.05)
            time.sleep(1.0)
        finally:
            rushed.stop()
            calm.stop()
        stopped_at = time.monotonic()
    nats.restart(leader)
    state = nats.wait_replicas_current(STREAM)
    factory, recorder = recorder_for(patient_env)
    try:
        found = check_log(recorder, calm, rushed)
    finally:
        factory.close()
    assert not calm.unknown, "a failover shorter than NATS_TIMEOUT is invisible"
    assert not calm.refused
    assert rushed.unknown or rushed.refused, "callers with a short timeout saw the outage"
    acknowledged = len(calm.acknowledged) + len(rushed.acknowledged)
    assert found.notifications >= acknowledged
    assert state["last_seq"] >= acknowledged
    # Acknowledgements between the kill and the (polled) election are a figure, not a check:
    # on a loaded machine an ack of a save replicated before the kill may arrive late, and the
    # polled election time is only an upper bound of the real one.
    gap = calm.longest_gap()[1]
    started = calm.acknowledged[0].started
    figures.update(
        leader_was_meta_leader=leader == meta_leader,
        election_s=elected_at - killed_at,
        write_pause_s=gap,
        saves_per_s_before_kill=calm.acks_between(started, killed_at) / (killed_at - started),
        saves_per_s_whole_run=len(calm.acknowledged) / (stopped_at - started),
        acknowledged=acknowledged,
        acks_between_kill_and_polled_election=calm.acks_between(killed_at, elected_at),
        raised_unknown=len(rushed.unknown),
        settled_stored=found.settled,
        raised_not_stored=found.refused,
        new_leader=nats.nodes[new_leader].name,
    )
