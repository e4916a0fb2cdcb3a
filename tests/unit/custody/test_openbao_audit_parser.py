"""The OpenBao audit follower's parsing and file handling (issue 16), on audit lines shaped as
OpenBao 2.7 writes them (captured from a real server; HMACs shortened). The ledger here is a
small in-memory stand-in for the port; the real ledger and server are in
tests/integration/custody/test_openbao_audit.py."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from custody.vault.audit_follower import (
    AccessChange,
    AuditFollower,
    AuditParser,
    SecretAccess,
    Unwrap,
    WrappedRead,
    parse_time,
)
from custody.vault.client import Mounts

T0 = datetime(2026, 12, 6, 14, 36, 13, tzinfo=UTC)
BETO = {
    "entity_id": "6ab4380b-9077-b379-1af4-da3432ab4d62",
    "display_name": "userpass-beto",
    "metadata": {"username": "beto"},
}


def line(
    path: str,
    *,
    rid: str,
    at: datetime = T0,
    auth: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    wrap: dict[str, Any] | None = None,
    cta: str = "hmac-sha256:caller",
    body: dict[str, Any] | None = None,
    kind: str = "response",
    error: str = "",
    operation: str = "read",
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
        "type": kind,
        "auth": BETO if auth is None else auth,
        "request": {
            "id": rid,
            "operation": operation,
            "path": path,
            "client_token_accessor": cta,
            "remote_address": "127.0.0.1",
            "data": body,
        },
        "response": {"data": data, "wrap_info": wrap},
    }
    if error:
        entry["error"] = error
    return entry


def kv_answer(version: int) -> dict[str, Any]:
    return {"data": {"password": "hmac-sha256:644c"}, "metadata": {"version": version}}


def wrap_info(accessor: str, at: datetime = T0, ttl: int = 60) -> dict[str, Any]:
    return {
        "ttl": ttl,
        "token": f"hmac-sha256:tok-{accessor}",
        "accessor": f"hmac-sha256:{accessor}",
        "creation_time": at.isoformat().replace("+00:00", "Z"),
        "creation_path": "custodia/data/cuentas/DD05/x",
    }


PARSER = AuditParser(Mounts())


def test_direct_reads_of_passwords_versions_staged_and_codes_are_accesses() -> None:
    """A successful unwrapped read of a current/older/staged password or a 2FA code is an
    access naming the account, kind, version (clear in the log), person and address."""
    current = PARSER.classify(line("custodia/data/cuentas/DD05/x", rid="r1", data=kv_answer(2)))
    assert isinstance(current, SecretAccess)
    assert (current.account, current.kind, current.version, current.staged) == (
        "DD05-x",
        "contrasena",
        2,
        False,
    )
    assert (current.username, current.remote_address, current.wrapped) == (
        "beto",
        "127.0.0.1",
        False,
    )
    assert current.at == datetime(2026, 12, 6, 14, 36, 13, tzinfo=UTC)
    staged = PARSER.classify(line("custodia/data/preparadas/DD05/x", rid="r2", data=kv_answer(1)))
    assert isinstance(staged, SecretAccess)
    assert staged.staged
    code = PARSER.classify(
        line("custodia-totp/code/DD05-x", rid="r3", data={"code": "hmac-sha256:9597"})
    )
    assert isinstance(code, SecretAccess)
    assert (code.kind, code.version) == ("codigo_totp", None)


def test_refusals_request_lines_metadata_and_missing_secrets_are_not_accesses() -> None:
    """What did not hand a secret over is not a read: a 403, the request half of a pair, a
    metadata read, a read of nothing, another mount's path."""
    assert (
        PARSER.classify(
            line(
                "custodia/data/cuentas/DD05/x", rid="a", error="1 error occurred: permission denied"
            )
        )
        is None
    )
    assert PARSER.classify(line("custodia/data/cuentas/DD05/x", rid="b", kind="request")) is None
    assert (
        PARSER.classify(line("custodia/metadata/cuentas/DD05/x", rid="c", data={"versions": {}}))
        is None
    )
    assert PARSER.classify(line("custodia/data/cuentas/DD05/x", rid="d", data=None)) is None
    assert PARSER.classify(line("other/data/cuentas/DD05/x", rid="e", data=kv_answer(1))) is None


def test_a_wrapped_read_is_pending_and_its_unwrap_carries_the_version() -> None:
    """A wrapped read answers only HMAC'd wrap_info: pending, keyed by the accessor's HMAC; the
    unwrap line names the same HMAC as its client token accessor and the version in clear."""
    wrapped = PARSER.classify(line("custodia/data/cuentas/DD05/x", rid="w", wrap=wrap_info("acc1")))
    assert isinstance(wrapped, WrappedRead)
    assert "hmac-sha256:acc1" in wrapped.keys
    assert wrapped.expires == T0 + timedelta(seconds=60)
    unwrap = PARSER.classify(
        line(
            "sys/wrapping/unwrap",
            rid="u",
            operation="update",
            cta="hmac-sha256:acc1",
            data=kv_answer(2),
        )
    )
    assert unwrap == Unwrap(("hmac-sha256:acc1",), 2, True)


def test_parse_time_accepts_nanoseconds() -> None:
    """OpenBao writes nanoseconds; Python's parser takes microseconds."""
    assert parse_time("2026-12-06T14:36:13.363514614Z") == datetime(
        2026, 12, 6, 14, 36, 13, 363514, tzinfo=UTC
    )


# -- the follower on a file ---------------------------------------------------------------------


class Ledger:
    """The ledger port in memory: ``entries`` are (key, time, request kind, account, person,
    version); ``recorded`` the request ids recorded as unrecorded reads."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, datetime, str, str, str, int | None]] = []
        self.recorded: list[str] = []
        # Records of people's commands that change access: (key, time, change, by whom).
        self.commands: list[tuple[str, datetime, str, str]] = []
        self.recorded_changes: list[str] = []
        self.named: dict[str, str] = {}  # request id → who the recorded change is named after

    def records(self, access: SecretAccess, since: datetime) -> Iterable[tuple[str, datetime]]:
        return [
            (key, at)
            for key, at, kind, account, person, version in reversed(self.entries)
            if at >= since
            and (kind, account, person) == (access.kind, access.account, access.username)
            and access.wrapped
            and version == access.version
        ]

    def record_unrecorded(self, access: SecretAccess, detected_at: datetime) -> bool:
        if access.request_id in self.recorded:
            return False
        self.recorded.append(access.request_id)
        return True

    def change_records(
        self, change: AccessChange, since: datetime
    ) -> Iterable[tuple[str, datetime]]:
        return [
            (key, at)
            for key, at, kind, by in reversed(self.commands)
            if at >= since and (kind, by) == (change.change, change.username)
        ]

    def record_unrecorded_change(self, change: AccessChange, detected_at: datetime) -> bool:
        if change.request_id in self.recorded_changes:
            return False
        self.recorded_changes.append(change.request_id)
        self.named[change.request_id] = change.username
        return True


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


def follower(tmp_path: Path, ledger: Ledger, clock: Clock) -> AuditFollower:
    return AuditFollower(
        tmp_path / "audit.log", tmp_path / "state.json", ledger, Mounts(), grace=5, clock=clock
    )


def append(path: Path, *entries: dict[str, Any], newline: bool = True) -> None:
    with path.open("ab") as handle:
        for entry in entries:
            handle.write(json.dumps(entry).encode() + (b"\n" if newline else b""))


def direct(rid: str) -> dict[str, Any]:
    return line("custodia/data/cuentas/DD05/x", rid=rid, data=kv_answer(2))


def test_unmatched_wrapped_reads_count_only_once_unwrapped(tmp_path: Path) -> None:
    """A wrapped read unwrapped with no ledger record is a read (after its grace); one revoked
    (by itself or by accessor) or expired unused is not; one with a ledger record is matched,
    and that record stands for one read only."""
    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    log = tmp_path / "audit.log"
    read = "custodia/data/cuentas/DD05/x"
    unwrap = "sys/wrapping/unwrap"
    append(
        log,
        line(read, rid="w1", wrap=wrap_info("a1")),
        line(read, rid="w2", wrap=wrap_info("a2")),
        line(read, rid="w3", wrap=wrap_info("a3")),
        line(read, rid="w4", wrap=wrap_info("a4", ttl=1)),
        line("auth/token/revoke-self", rid="x2", operation="update", cta="hmac-sha256:a2"),
        line(
            "auth/token/revoke-accessor",
            rid="x3",
            operation="update",
            body={"accessor": "hmac-sha256:a3"},
        ),
        line(unwrap, rid="u1", operation="update", cta="hmac-sha256:a1", data=kv_answer(2)),
    )
    assert f.poll() == 0  # w1 waits for its grace (its record may not be visible yet)
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded == ["w1"]
    assert f.state.pending == []  # w2, w3 revoked; w4 expired

    # A legitimate reveal: recorded in the ledger; its unwrap matches and consumes the record,
    # so a second unwrapped read of the same version next to it is still found.
    ledger.entries.append(("DD05:40", clock.now, "contrasena", "DD05-x", "beto", 2))
    append(
        log,
        line(read, rid="w5", at=clock.now, wrap=wrap_info("a5", at=clock.now)),
        line(unwrap, rid="u5", operation="update", cta="hmac-sha256:a5", data=kv_answer(2)),
        line(read, rid="w6", at=clock.now, wrap=wrap_info("a6", at=clock.now)),
        line(unwrap, rid="u6", operation="update", cta="hmac-sha256:a6", data=kv_answer(2)),
    )
    f.poll()
    clock.now += timedelta(seconds=10)
    f.poll()
    assert ledger.recorded == ["w1", "w6"]


def test_position_and_pending_reads_survive_a_restart(tmp_path: Path) -> None:
    """The state file keeps the offset and the wrapped reads still pending: a new follower
    resumes there (earlier lines are not handled again) and still finds a wrapped read made
    before the restart and unwrapped after it; a half-written line waits for its end."""
    ledger, clock = Ledger(), Clock()
    log = tmp_path / "audit.log"
    first = follower(tmp_path, ledger, clock)
    append(log, direct("d1"), line("custodia/data/cuentas/DD05/x", rid="w", wrap=wrap_info("k")))
    assert first.poll() == 1
    partial = line(
        "sys/wrapping/unwrap", rid="u", operation="update", cta="hmac-sha256:k", data=kv_answer(2)
    )
    text = json.dumps(partial).encode()
    with log.open("ab") as handle:
        handle.write(text[:20])
    first.poll()
    offset = first.state.offset
    assert offset == log.stat().st_size - 20

    second = follower(tmp_path, ledger, clock)
    assert second.state.offset == offset
    with log.open("ab") as handle:
        handle.write(text[20:] + b"\n")
    append(log, direct("d2"))
    clock.now += timedelta(seconds=10)
    second.poll()
    assert sorted(ledger.recorded) == ["d1", "d2", "w"]  # w after its grace


def test_a_rotated_log_is_drained_before_the_new_one_and_a_truncated_one_reread(
    tmp_path: Path,
) -> None:
    """Log rotation (the file renamed, a new one created): lines written to the old file after
    the last pass are read first, then the new file from its start. A log truncated in place is
    read again from its start. Nothing is missed, nothing recorded twice."""
    ledger, clock = Ledger(), Clock()
    log = tmp_path / "audit.log"
    f = follower(tmp_path, ledger, clock)
    append(log, direct("r1"))
    f.poll()
    append(log, direct("r2"))  # after the last pass, before the rotation
    log.rename(tmp_path / "audit.log.1")
    append(log, direct("r3"))
    f.poll()
    assert ledger.recorded == ["r1", "r2", "r3"]

    log.write_bytes(b"")  # truncated in place
    append(log, direct("r4"))
    f.poll()
    assert ledger.recorded == ["r1", "r2", "r3", "r4"]
    f.poll()
    assert ledger.recorded == ["r1", "r2", "r3", "r4"]


def test_a_rewrapped_read_follows_its_new_wrapping_token(tmp_path: Path) -> None:
    """``sys/wrapping/rewrap`` moves a pending wrapped read to the new token's HMACs: unwrapping
    the new token is the read; the old token's keys no longer match anything."""
    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    append(
        tmp_path / "audit.log",
        line("custodia/data/cuentas/DD05/x", rid="w", wrap=wrap_info("old")),
        line(
            "sys/wrapping/rewrap",
            rid="rw",
            operation="update",
            body={"token": "hmac-sha256:tok-old"},
            auth={"display_name": "token"},
            wrap=wrap_info("new"),
        ),
        line(
            "sys/wrapping/unwrap",
            rid="u",
            operation="update",
            cta="hmac-sha256:new",
            data=kv_answer(2),
        ),
    )
    clock.now += timedelta(seconds=10)
    f.poll()
    assert ledger.recorded == ["w"]
    assert f.state.pending == []


def test_an_unreadable_state_file_means_reading_the_log_again(tmp_path: Path) -> None:
    """A corrupt state file does not stop the follower: it reads the log from its start, and
    what was recorded before is not recorded again (the ledger decides, by request id)."""
    ledger, clock = Ledger(), Clock()
    append(tmp_path / "audit.log", direct("d1"))
    follower(tmp_path, ledger, clock).poll()
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    again = follower(tmp_path, ledger, clock)
    assert again.state.offset == 0
    assert again.poll() == 0
    assert ledger.recorded == ["d1"]


SERVICE = {
    "display_name": "token-custodia-servicio",
    "policies": ["custodia-servicio", "default"],
    "token_policies": ["custodia-servicio", "default"],
}


def test_the_service_tokens_reads_are_marked_and_wait_for_their_record(tmp_path: Path) -> None:
    """A read by the service's token (token policy ``custodia-servicio``, no entity) is marked
    ``by_service`` (it stands for whichever person the ledger names); the same policy on a
    person's token (an entity) or only among a person's identity policies is not. A service
    read unwrapped with no record is kept for its grace, then recorded as unrecorded."""
    read = "custodia/data/cuentas/DD05/x"
    by_service = PARSER.classify(line(read, rid="s1", auth=SERVICE, wrap=wrap_info("s1")))
    assert isinstance(by_service, WrappedRead)
    assert by_service.access.by_service
    assert by_service.access.username == ""
    person = {**BETO, "token_policies": ["custodia-servicio"]}
    not_service = PARSER.classify(line(read, rid="s2", auth=person, data=kv_answer(2)))
    assert isinstance(not_service, SecretAccess)
    assert not not_service.by_service
    assert SecretAccess.from_json({**not_service.to_json(), "by_service": True}).by_service
    legacy = not_service.to_json()
    del legacy["by_service"]  # a state file written before the field existed
    assert not SecretAccess.from_json(legacy).by_service

    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    append(
        tmp_path / "audit.log",
        line(read, rid="s1", auth=SERVICE, wrap=wrap_info("s1")),
        line(
            "sys/wrapping/unwrap",
            rid="u1",
            operation="update",
            auth={},
            cta="hmac-sha256:s1",
            data=kv_answer(2),
        ),
    )
    assert f.poll() == 0
    assert [a.request_id for a in f.state.deferred] == ["s1"]
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded == ["s1"]


def test_the_state_is_rewritten_only_when_it_changed(tmp_path: Path) -> None:
    """The follower writes its state file (and fsyncs it) only when the state changed: a pass
    over no new line leaves the very same file; a new line replaces it with the new position,
    and a restarted follower resumes from there with the pending wrapped read intact."""
    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    log = tmp_path / "audit.log"
    read = "custodia/data/cuentas/DD05/x"
    append(log, line(read, rid="w1", auth=BETO, wrap=wrap_info("w1")))
    f.poll()
    state = tmp_path / "state.json"
    first = state.stat().st_ino
    for _ in range(2):
        f.poll()
        # Not replaced (a replacement is a new file, made while this one still exists).
        assert state.stat().st_ino == first
    append(log, line("custodia/metadata/cuentas/DD05/x", rid="m1", auth=BETO))
    f.poll()
    assert state.stat().st_ino != first
    resumed = follower(tmp_path, ledger, clock)
    assert resumed.state.offset == log.stat().st_size
    assert resumed.state.last_request_id == "m1"
    assert resumed.state.pending == f.state.pending
    assert [p.access.request_id for p in resumed.state.pending] == ["w1"]


def test_the_state_file_holds_every_pending_read_as_it_stands(tmp_path: Path) -> None:
    """The state file is written with each pending wrapped read encoded once and kept (issue
    21: a burst of reveals leaves hundreds waiting for their unwrap); it still says exactly
    what the state holds: after reads arrive, one is unwrapped and one rewrapped, the file
    decodes to the state's own JSON, and a restarted follower has the same pending reads, in
    order, with their new keys."""
    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    log = tmp_path / "audit.log"
    read = "custodia/data/cuentas/DD05/x"
    for n in range(1, 6):
        append(log, line(read, rid=f"w{n}", auth=BETO, wrap=wrap_info(f"w{n}")))
    f.poll()
    state = tmp_path / "state.json"
    assert json.loads(state.read_text()) == f.state.to_json()
    assert [p.access.request_id for p in f.state.pending] == ["w1", "w2", "w3", "w4", "w5"]
    append(
        log,
        line(
            "sys/wrapping/unwrap",
            rid="u2",
            operation="update",
            data=kv_answer(3),
            cta="hmac-sha256:w2",
        ),
    )
    append(
        log,
        line(
            "sys/wrapping/rewrap",
            rid="r4",
            operation="update",
            cta="hmac-sha256:w4",
            wrap=wrap_info("w4-new"),
        ),
    )
    f.poll()
    assert json.loads(state.read_text()) == f.state.to_json()
    resumed = follower(tmp_path, ledger, clock)
    assert resumed.state == f.state
    assert [p.access.request_id for p in resumed.state.pending] == ["w1", "w3", "w5", "w4"]
    assert "hmac-sha256:w4-new" in resumed.state.pending[-1].keys


class PassLedger(Ledger):
    """:class:`Ledger` that, like the real one, keeps what it read during a pass: records are
    looked up in the entries as they were at the pass's first lookup, until ``begin_pass``.
    ``landing`` is added to the entries just after that first lookup (a record written then)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[tuple[str, datetime, str, str, str, int | None]] | None = None
        self.landing: list[tuple[str, datetime, str, str, str, int | None]] = []

    def begin_pass(self) -> None:
        self.kept = None

    def records(self, access: SecretAccess, since: datetime) -> Iterable[tuple[str, datetime]]:
        if self.kept is None:
            self.kept = list(self.entries)
            self.entries.extend(self.landing)
            self.landing = []
        now, self.entries = self.entries, self.kept
        try:
            return super().records(access, since)
        finally:
            self.entries = now


def test_a_read_is_called_unrecorded_only_against_the_ledger_as_it_is_then(
    tmp_path: Path,
) -> None:
    """A ledger that keeps what it read during a pass (the real one reads each district's
    window once per pass) is read anew before a deferred read past its grace is called
    unrecorded: a record that landed after the pass's first lookup still matches it, and no
    incident is opened."""
    ledger, clock = PassLedger(), Clock()
    f = follower(tmp_path, ledger, clock)
    log = tmp_path / "audit.log"
    read = "custodia/data/cuentas/DD05/x"
    append(log, line(read, rid="w1", auth=BETO, wrap=wrap_info("w1")))
    append(
        log,
        line(
            "sys/wrapping/unwrap",
            rid="u1",
            operation="update",
            data=kv_answer(2),
            cta="hmac-sha256:w1",
        ),
    )
    assert f.poll() == 0
    assert [a.request_id for a in f.state.deferred] == ["w1"]
    clock.now += timedelta(seconds=10)  # past the grace
    ledger.landing = [("DD05:7", T0, "contrasena", "DD05-x", "beto", 2)]
    assert f.poll() == 0
    assert ledger.recorded == []
    assert f.state.deferred == []


# -- changes of who must use the second factor -------------------------------------------------

MFA = "identity/group/name/custodia-segundo-factor"
DESTROY = "identity/mfa/method/totp/admin-destroy"
ANA_ENTITY = "0f5e2c1a-1111-2222-3333-444455556666"
ANA = {
    "entity_id": ANA_ENTITY,
    "display_name": "userpass-ana",
    "metadata": {"username": "ana"},
}


def members_changed(rid: str, at: datetime = T0, auth: dict[str, Any] | None = None) -> Any:
    return line(
        MFA,
        rid=rid,
        at=at,
        auth=ANA if auth is None else auth,
        operation="update",
        body={"member_entity_ids": ["hmac-sha256:e1"]},
    )


def test_changes_of_the_second_factor_group_and_destroyed_factors_are_access_changes() -> None:
    """A write of the group's members (or its deletion) and a destroyed factor, with who made
    them; the layout's own write of the group (metadata, no members), a refused write, another
    group and a read are not."""
    change = PARSER.classify(members_changed("g1"))
    assert change == AccessChange(
        "g1",
        T0,
        "grupo_segundo_factor",
        ANA_ENTITY,
        "ana",
        "userpass-ana",
        "127.0.0.1",
    )
    deleted = PARSER.classify(line(MFA, rid="g2", auth=ANA, operation="delete"))
    assert isinstance(deleted, AccessChange)
    assert deleted.change == "grupo_segundo_factor"
    destroyed = PARSER.classify(
        line(DESTROY, rid="g3", auth=ANA, operation="update", body={"entity_id": "hmac-sha256:x"})
    )
    assert isinstance(destroyed, AccessChange)
    assert destroyed.change == "factor_destruido"
    root = {"display_name": "root", "metadata": None}
    by_root = PARSER.classify(members_changed("g4", auth=root))
    assert isinstance(by_root, AccessChange)
    assert (by_root.entity_id, by_root.username, by_root.display_name) == ("", "", "root")
    layout = line(MFA, rid="n1", auth=root, operation="update", body={"metadata": {"a": "b"}})
    assert PARSER.classify(layout) is None
    refused = members_changed("n2")
    refused["error"] = "1 error occurred: permission denied"
    assert PARSER.classify(refused) is None
    other = line("identity/group/name/otro", rid="n3", auth=ANA, operation="update")
    assert PARSER.classify(other) is None
    assert PARSER.classify(line(MFA, rid="n4", auth=ANA, data={"id": "x"})) is None


def test_a_change_with_no_command_of_its_maker_is_recorded_once(tmp_path: Path) -> None:
    """A change of the group made by ana with no recorded command of hers: recorded once its
    grace is over (a command records after it writes); one matched by her command's record
    (even one recorded after the change, within the grace) is not; a record stands for one
    change only; a change by someone else is not covered by ana's record."""
    ledger, clock = Ledger(), Clock()
    f = follower(tmp_path, ledger, clock)
    log = tmp_path / "audit.log"
    append(log, members_changed("c1"))
    assert f.poll() == 0  # within its grace
    assert [c.request_id for c in f.state.deferred_changes] == ["c1"]
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded_changes == ["c1"]

    at = clock.now
    append(log, members_changed("c2", at=at), members_changed("c3", at=at))
    f.poll()
    ledger.commands.append(("alta:1", at, "grupo_segundo_factor", "ana"))  # recorded after
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded_changes == ["c1", "c3"]  # c2 had ana's command; c3 none left

    at = clock.now
    ledger.commands.append(("alta:2", at, "grupo_segundo_factor", "ana"))
    beto = {**ANA, "entity_id": "e-beto", "metadata": {"username": "beto"}}
    append(log, members_changed("c4", at=at, auth=beto))
    f.poll()
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded_changes == ["c1", "c3", "c4"]


def test_changes_waiting_for_their_grace_survive_a_restart(tmp_path: Path) -> None:
    ledger, clock = Ledger(), Clock()
    append(tmp_path / "audit.log", members_changed("r1"))
    assert follower(tmp_path, ledger, clock).poll() == 0
    clock.now += timedelta(seconds=10)
    assert follower(tmp_path, ledger, clock).poll() == 1
    assert ledger.recorded_changes == ["r1"]


def test_a_persons_token_is_named_by_its_entity_not_by_the_metadata_its_maker_chose(
    tmp_path: Path,
) -> None:
    """Attack: ana makes a token whose metadata names dalia and changes the group with it. The
    follower names the token's person by its entity (``entity_names``), so dalia's record does
    not cover it and the change is recorded as ana's, not dalia's."""
    ledger, clock = Ledger(), Clock()
    log = tmp_path / "audit.log"
    f = AuditFollower(
        log,
        tmp_path / "state.json",
        ledger,
        Mounts(),
        grace=5,
        clock=clock,
        entity_names={ANA_ENTITY: "ana"}.get,
    )
    ledger.commands.append(("dalia:2", T0, "grupo_segundo_factor", "dalia"))
    forged = {**ANA, "metadata": {"username": "dalia"}, "display_name": "token"}
    append(log, members_changed("f1", auth=forged))
    f.poll()
    clock.now += timedelta(seconds=10)
    assert f.poll() == 1
    assert ledger.recorded_changes == ["f1"]
    assert ledger.named == {"f1": "ana"}
