"""Single-node durability: the embedded ``nats-server`` killed with SIGKILL during writes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from custody.stack.embedded import EmbeddedStack
from custody.stack.record import StackInfo, pid_alive
from tests.cluster.helpers import EventWriters, check_log, closing_app, new_entry, recorder_for

pytestmark = pytest.mark.integration


def event_store_env(stack: EmbeddedStack, info: StackInfo, timeout: str) -> dict[str, str]:
    """The embedded server with the identity that may create streams (``administrador``)."""
    servicio = stack.nats_user("administrador")
    return {
        "PERSISTENCE_MODULE": "events.jetstream",
        "NATS_URL": info.nats_url,
        "NATS_USER": servicio.user,
        "NATS_PASSWORD": servicio.password,
        "NATS_TIMEOUT": timeout,
    }


def sigkill(pid: int) -> None:
    """SIGKILL, no shutdown; reaped (the supervisor started it from this process)."""
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_embedded_nats_killed_during_writes_loses_no_acknowledged_event(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    """Writers save aggregates through an application on the embedded server (its real
    configuration: ``sync_interval: always``, the accounts of custody/service/permissions.py); the
    server
    gets SIGKILL and the supervisor starts it again on the same store. After a cold restart of the
    whole stack, every acknowledged save is there exactly once, and a save that raised is absent
    or settled. Short-timeout writers around the kill make sure some saves did raise."""
    stack = EmbeddedStack(tmp_path / "home", env={})
    try:
        info = stack.start()
        assert "sync_interval: always" in (stack.nats_dir / "nats.conf").read_text()
        env = event_store_env(stack, info, "15")
        with (
            closing_app(env) as patient,
            closing_app(event_store_env(stack, info, "0.3")) as hasty,
        ):
            patient.save(new_entry(0, 0))
            calm = EventWriters(patient, threads=3)
            rushed = EventWriters(hasty, threads=1)
            calm.start()
            try:
                deadline = time.monotonic() + 120  # hang guards only, here and below
                while len(calm.acknowledged) < 20:  # writes are under way
                    assert time.monotonic() < deadline, "no writes before the kill"
                    time.sleep(0.02)
                rushed.start()
                time.sleep(0.1)
                killed_at = time.monotonic()
                sigkill(info.nats.pid)
                time.sleep(0.5)  # writes are in flight or refused now
                rushed.stop()
                restarting_at = time.monotonic()
                info = stack.start()  # the supervisor: same port, same store
                restarted_at = time.monotonic()
                deadline = restarted_at + 120
                while calm.acks_between(restarted_at, float("inf")) < 20:
                    assert time.monotonic() < deadline, "writes did not resume"
                    assert not calm.other_errors, calm.other_errors
                    time.sleep(0.05)
            finally:
                rushed.stop()
                calm.stop()
        assert calm.acks_between(0, killed_at) > 0, "writes were under way at the kill"
        assert rushed.unknown or rushed.refused, "the short-timeout writers saw the outage"
        stack.stop()
        info = stack.start()  # cold: the store is read back from disk
        factory, recorder = recorder_for(event_store_env(stack, info, "15"))
        try:
            found = check_log(recorder, calm, rushed)
        finally:
            factory.close()
        assert not calm.unknown, "an outage shorter than NATS_TIMEOUT is invisible"
        started = calm.acknowledged[0].started
        figures.update(
            saves_per_s_sync_always=calm.acks_between(started, killed_at) / (killed_at - started),
            restart_s=restarted_at - restarting_at,
            write_pause_s=calm.longest_gap()[1],
            acknowledged=len(calm.acknowledged) + len(rushed.acknowledged),
            raised_unknown=len(rushed.unknown),
            settled_stored=found.settled,
            raised_not_stored=found.refused,
        )
    finally:
        stack.stop()
