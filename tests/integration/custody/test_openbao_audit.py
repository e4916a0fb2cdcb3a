"""Issue 16, finding 2: secret reads that bypass the ledger are detected from OpenBao's audit log.

People's own tokens can no longer read a secret (test_reads_outside_ledger.py proves the 403s);
the service reads, wrapped, for callers OpenBao authorized, and records each read. What
prevention cannot stop is detected here: a policy mistake granting a person a secret path more
narrowly than the people's deny (``mistake`` below: beto, DD05's administrator, and ana, a
coadministrator, then read directly again), an operator's root token, the service's own token
used outside the service. The real OpenBao (a dev server with a declared file audit device, as
the embedded one has) is read directly with hvac; the follower (``custody.vault.audit_follower``)
must
record each such read in the real JetStream ledger as an unrecorded read that opens an incident,
within the 60 s bound; a legitimate ``revelar`` / ``codigo`` (now the service's wrapped read,
unwrapped by the caller) must not; a restarted follower must neither miss the reads made while
it was down nor process anything twice.

This module has an OpenBao of its own (its audit log is read from its start) and a ledger
namespace of its own on the session's NATS.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hvac
import pytest
from eventsourcing.application import AggregateNotFoundError

from custody.app.access import Access
from custody.app.custodia import Actor, Custodia, CustodiaApplication
from custody.stack.servers import (
    LOOPBACK,
    BaoProcess,
    _spawn,
    _wait_until,
    bao_binary,
    free_port_pair,
)
from custody.vault.audit_follower import (
    AccessChange,
    ApplicationLedger,
    AuditFollower,
    SecretAccess,
    incident_id_for,
)
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from events.domain import Incident, OfficialChannel, person_id
from tests.integration.custody.helpers import ledger_world, register_account, service_application

pytestmark = pytest.mark.integration

ACCOUNT = "DD05-x"
LEGIT = "DD05-legit"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTPAUTH = f"otpauth://totp/X:DD05IECM?secret={SEED}&issuer=X&period=30&digits=6"
BOUND = 60.0  # the bound: recorded, with its incident, within 60 s of the read


def start_bao_with_audit(workdir: Path) -> tuple[BaoProcess, Path]:
    """``bao server -dev`` plus a config file declaring a file audit device (the API cannot
    enable one); the audit log's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    audit_log = workdir / "audit.log"
    config = workdir / "audit.hcl"
    config.write_text(
        'audit "file" "custodia-audit" {\n'
        f'  options {{\n    file_path = "{audit_log}"\n    mode = "0600"\n  }}\n'
        "}\n",
        encoding="utf-8",
    )
    port, cluster_port = free_port_pair()
    token = "dev-" + secrets.token_hex(16)
    env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token, "HOME": str(workdir)}
    for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
        env.pop(name, None)
    log = workdir / "openbao-dev.log"
    argv = [
        str(bao_binary()),
        "server",
        "-dev",
        f"-dev-listen-address={LOOPBACK}:{port}",
        "-dev-no-store-token",
        f"-config={config}",
    ]
    pid = _spawn(argv, log, workdir, env)
    proc = BaoProcess(pid, port, cluster_port, log, root_token=token)
    _wait_until(lambda: proc.health() == 200, pid, 30.0, "OpenBao", log)
    return proc, audit_log


class SpyLedger:
    """The real :class:`ApplicationLedger`, noting which reads it was asked to record."""

    def __init__(self, inner: ApplicationLedger) -> None:
        self.inner = inner
        self.asked: list[str] = []
        self.recorded: list[str] = []

    def records(self, access: SecretAccess, since: datetime) -> Iterable[tuple[str, datetime]]:
        return self.inner.records(access, since)

    def record_unrecorded(self, access: SecretAccess, detected_at: datetime) -> bool:
        self.asked.append(access.request_id)
        recorded = self.inner.record_unrecorded(access, detected_at)
        if recorded:
            self.recorded.append(access.request_id)
        return recorded

    def change_records(
        self, change: AccessChange, since: datetime
    ) -> Iterable[tuple[str, datetime]]:
        return self.inner.change_records(change, since)

    def record_unrecorded_change(self, change: AccessChange, detected_at: datetime) -> bool:
        return self.inner.record_unrecorded_change(change, detected_at)


@dataclass
class World:
    bao: BaoProcess
    audit_log: Path
    state_file: Path
    vault: VaultClient
    app: CustodiaApplication
    custodia: Custodia
    ana: Actor  # coadministrator
    beto: Actor  # designated administrator of DD05
    beto_password: str

    def follower(self, ledger: Any = None) -> AuditFollower:
        return AuditFollower(
            self.audit_log,
            self.state_file,
            ledger or ApplicationLedger(self.app, self.custodia.policy),
            self.vault.mounts,
            grace=3.0,
            poll_seconds=0.2,
            change_window=2.0,  # the module's earlier records cover no change made 2 s later
            entity_names=Access(self.vault).username_of_entity,  # as the service runs it
        )

    def as_beto(self) -> hvac.Client:
        """beto's own OpenBao session, used directly (not through Custodia)."""
        return hvac.Client(self.bao.addr, token=self.beto.token)

    def unrecorded(self, request_id: str) -> Incident | None:
        try:
            found: Any = self.app.repository.get(incident_id_for(request_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(found, Incident)
        return found

    def wait_unrecorded(self, request_id: str, bound: float = BOUND) -> Incident:
        """The incident recording OpenBao's request ``request_id``, waited for up to ``bound``."""
        deadline = time.monotonic() + bound
        while True:
            incident = self.unrecorded(request_id)
            if incident is not None:
                return incident
            assert time.monotonic() < deadline, f"no unrecorded read for {request_id}"
            time.sleep(0.1)

    def unrecorded_incidents(self) -> list[Incident]:
        rows = self.custodia.list_incidents(self.ana, None)
        found: list[Any] = [self.app.repository.get(uuid.UUID(r["incidente"])) for r in rows]
        return [i for i in found if i.incident_type == "lectura_no_registrada"]


def _rotate(custodia: Custodia, ana: Actor, account: str) -> None:
    custodia.start_rotation(ana, account)
    custodia.confirm_rotation(ana, account)  # the service reads the staged password for ana


@pytest.fixture(scope="module")
def world(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("openbao-audit")
    bao, audit_log = start_bao_with_audit(workdir / "bao")
    try:
        namespace = "oba" + uuid.uuid4().hex[:8]
        with ledger_world(bao, nats_url, namespace, application=service_application) as made:
            vault, app, custodia, ana = made.vault, made.app, made.custodia, made.ana
            beto_password = secrets.token_urlsafe(18)
            custodia.register_person(
                ana,
                "beto",
                name="Beto",
                email="beto@iecm.mx",
                phone=None,
                role="administrador",
                district="DD05",
                password=beto_password,
            )
            # The UTCSyD designates only as a recorded exception (issue 18): enough here.
            custodia.designate(
                ana,
                "DD05",
                "beto",
                OfficialChannel.oficio("OF-16/2026"),
                exception="prueba: sin titular en DD05",
            )
            for account in (ACCOUNT, LEGIT):
                register_account(custodia, ana, account)
                _rotate(custodia, ana, account)
                _rotate(custodia, ana, account)  # version 2 current, version 1 older
            custodia.register_totp(ana, ACCOUNT, OTPAUTH)
            custodia.register_totp(ana, LEGIT, OTPAUTH)
            beto = Actor("beto", vault.with_token(None).login_userpass("beto", beto_password))
            yield World(
                bao,
                audit_log,
                workdir / "state" / "openbao-audit.json",
                vault,
                app,
                custodia,
                ana,
                beto,
                beto_password,
            )
    finally:
        bao.stop()


def _now() -> datetime:
    return datetime.now(UTC)


MISTAKE = "politica-equivocada"


@pytest.fixture
def mistake(world: World) -> Iterator[None]:
    """An operator's policy mistake: a policy granting read on DD05-x's exact current, staged
    and 2FA code paths (narrower than the people's deny, so it wins), attached to beto's and
    ana's entities. Without it their tokens read nothing (checked first: OpenBao's 403)."""
    root = VaultClient(world.bao.addr, world.bao.root_token)
    mounts = world.vault.mounts
    paths = (
        f"{mounts.kv}/data/cuentas/DD05/x",
        f"{mounts.kv}/data/preparadas/DD05/x",
        f"{mounts.totp}/code/{ACCOUNT}",
    )
    for path in paths:
        with pytest.raises(hvac.exceptions.Forbidden):
            world.as_beto().read(path)
    root.write(
        f"sys/policies/acl/{MISTAKE}",
        {"policy": "".join(f'path "{p}" {{ capabilities = ["read"] }}\n' for p in paths)},
        operation="test",
    )
    entities = [root.lookup_self(actor.token).entity_id for actor in (world.beto, world.ana)]
    for entity in entities:
        root.write(f"identity/entity/id/{entity}", {"policies": [MISTAKE]}, operation="test")
    try:
        yield
    finally:
        for entity in entities:
            root.write(f"identity/entity/id/{entity}", {"policies": []}, operation="test")


@pytest.fixture
def running(world: World) -> Iterator[AuditFollower]:
    """The follower, running in its thread as ``custodia servicio`` runs it."""
    follower = world.follower()
    follower.start()
    try:
        yield follower
    finally:
        follower.stop()


def test_a_designated_administrator_reading_the_password_directly_opens_an_incident(
    world: World, running: AuditFollower, mistake: None
) -> None:
    """Behaviour: beto (designated for DD05) reads the current password with his own session
    token through hvac, not through Custodia. OpenBao answers (the policy mistake); within
    60 s the ledger holds an unrecorded read naming beto, the account, version 2, his address
    and OpenBao's time of the read, as an incident for the Secretaría Ejecutiva — and no secret."""
    answer = world.as_beto().secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
    )
    password = answer["data"]["data"]["password"]
    incident = world.wait_unrecorded(answer["request_id"])
    assert incident.incident_type == "lectura_no_registrada"
    assert incident.status == "reportado"
    assert (incident.district, incident.account) == ("DD05", ACCOUNT)
    assert incident.unrecorded_reader == person_id("beto")
    assert incident.reported_by is None  # opened by the service, not by a person
    events = list(world.app.events.get(incident.id))
    assert len(events) == 1
    detected: Any = events[0]
    assert isinstance(detected, Incident.UnrecordedReadDetected)
    assert (detected.kind, detected.version, detected.staged) == ("contrasena", 2, False)
    assert detected.remote_address == "127.0.0.1"
    assert detected.audit_request_id == answer["request_id"]
    assert (incident.notify_by - incident.reported_at).total_seconds() == 3600
    stored = repr(detected) + repr(incident.__dict__)
    assert password not in stored
    assert "hmac-sha256" not in stored
    assert world.beto.token not in stored


def test_a_totp_code_and_an_older_version_read_directly_are_detected(
    world: World, running: AuditFollower, mistake: None
) -> None:
    """Behaviour: a 2FA code and the older version 1, read by beto directly, each become an
    unrecorded read (kind ``codigo_totp``; version 1) with its incident, within the bound."""
    client = world.as_beto()
    code = client.read(f"{world.vault.mounts.totp}/code/{ACCOUNT}")
    assert re.fullmatch(r"\d{6}", code["data"]["code"])
    older = client.secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x",
        version=1,
        mount_point=world.vault.mounts.kv,
        raise_on_deleted_version=False,
    )
    assert older["data"]["metadata"]["version"] == 1
    totp = world.wait_unrecorded(code["request_id"])
    old = world.wait_unrecorded(older["request_id"])
    totp_event: Any = next(iter(world.app.events.get(totp.id)))
    old_event: Any = next(iter(world.app.events.get(old.id)))
    assert (totp_event.kind, totp_event.version) == ("codigo_totp", None)
    assert (old_event.kind, old_event.version) == ("contrasena", 1)
    assert code["data"]["code"] not in repr(totp_event)


def test_a_wrapped_read_unwrapped_outside_custodia_is_detected(
    world: World, running: AuditFollower, mistake: None
) -> None:
    """Behaviour: beto does what Custodia does — a wrapped read — but unwraps it himself with no
    ledger record: it is an unrecorded read too (attributed to beto, version from the unwrap)."""
    before = {i.id for i in world.unrecorded_incidents()}
    path = f"/v1/{world.vault.mounts.kv}/data/cuentas/DD05/x"
    wrapped = world.as_beto().adapter.get(path, headers={"X-Vault-Wrap-TTL": "60"})
    hvac.Client(world.bao.addr, token=wrapped["wrap_info"]["token"]).sys.unwrap()
    # A wrapped answer carries no request id: the new incident is waited for by listing.
    deadline = time.monotonic() + BOUND
    while not (new := [i for i in world.unrecorded_incidents() if i.id not in before]):
        assert time.monotonic() < deadline, "no unrecorded read for the unwrapped read"
        time.sleep(0.2)
    assert len(new) == 1
    event: Any = next(iter(world.app.events.get(new[0].id)))
    assert (event.reader, event.version, event.account) == (person_id("beto"), 2, ACCOUNT)


def test_a_rewrapped_read_unwrapped_later_is_detected(
    world: World, running: AuditFollower, mistake: None
) -> None:
    """Behaviour: beto's wrapped read moved to a new wrapping token (``sys/wrapping/rewrap``
    with the wrapping token in the body, by an operator) and then unwrapped is still found, and
    attributed to beto, who read it."""
    before = {i.id for i in world.unrecorded_incidents()}
    path = f"/v1/{world.vault.mounts.totp}/code/{ACCOUNT}"
    wrapped = world.as_beto().adapter.get(path, headers={"X-Vault-Wrap-TTL": "60"})
    # A person's token may not rewrap (403 for beto's token and for the wrapping token itself);
    # an operator's root token may.
    rewrapped = hvac.Client(world.bao.addr, token=world.bao.root_token).adapter.post(
        "/v1/sys/wrapping/rewrap", json={"token": wrapped["wrap_info"]["token"]}
    )
    token = rewrapped["wrap_info"]["token"]
    assert token != wrapped["wrap_info"]["token"]
    hvac.Client(world.bao.addr, token=token).sys.unwrap()
    deadline = time.monotonic() + BOUND
    while not (new := [i for i in world.unrecorded_incidents() if i.id not in before]):
        assert time.monotonic() < deadline, "no unrecorded read for the rewrapped read"
        time.sleep(0.2)
    event: Any = next(iter(world.app.events.get(new[0].id)))
    assert (event.reader, event.kind) == (person_id("beto"), "codigo_totp")


def test_two_instances_record_a_read_once(world: World, mistake: None) -> None:
    """Behaviour: two service instances, each following the log with a state of its own, both
    see beto's direct read; exactly one incident exists for it (its id derives from OpenBao's
    request id) and only one of them recorded it."""
    spies = [SpyLedger(ApplicationLedger(world.app, world.custodia.policy)) for _ in range(2)]
    followers = [
        AuditFollower(
            world.audit_log,
            world.state_file.with_name(f"instance-{n}.json"),
            spy,
            world.vault.mounts,
            grace=3.0,
            poll_seconds=0.2,
        )
        for n, spy in enumerate(spies)
    ]
    answer = world.as_beto().secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
    )
    for follower in followers:
        follower.start()
    try:
        world.wait_unrecorded(answer["request_id"])
        deadline = time.monotonic() + BOUND
        while not all(answer["request_id"] in spy.asked for spy in spies):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        for follower in followers:
            follower.stop()
    rid = answer["request_id"]
    assert [i for i in world.unrecorded_incidents() if i.id == incident_id_for(rid)] != []
    assert sum(spy.recorded.count(rid) for spy in spies) == 1


def test_a_root_token_read_is_detected(world: World, running: AuditFollower) -> None:
    """Behaviour: an operator with a (regenerated) root token reads a password: recorded as an
    unrecorded read of no person (OpenBao's name for the token), with its incident."""
    root = hvac.Client(world.bao.addr, token=world.bao.root_token)
    answer = root.secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
    )
    incident = world.wait_unrecorded(answer["request_id"])
    event: Any = next(iter(world.app.events.get(incident.id)))
    assert event.reader is None
    assert event.identity == "token"  # OpenBao's display name of a root token


def test_the_service_token_used_outside_the_service_is_detected(
    world: World, running: AuditFollower
) -> None:
    """Behaviour: someone with the service's token (a compromised service host) makes the
    service's own kind of read — wrapped, as its policy requires — and unwraps it, with no
    ledger record: an unrecorded read of no person, named as OpenBao names the token."""
    before = {i.id for i in world.unrecorded_incidents()}
    path = f"/v1/{world.vault.mounts.kv}/data/cuentas/DD05/x"
    service = hvac.Client(world.bao.addr, token=world.vault.token)
    wrapped = service.adapter.get(path, headers={"X-Vault-Wrap-TTL": "60"})
    hvac.Client(world.bao.addr, token=wrapped["wrap_info"]["token"]).sys.unwrap()
    deadline = time.monotonic() + BOUND
    while not (new := [i for i in world.unrecorded_incidents() if i.id not in before]):
        assert time.monotonic() < deadline, "no unrecorded read for the service token's read"
        time.sleep(0.2)
    assert len(new) == 1
    event: Any = next(iter(world.app.events.get(new[0].id)))
    assert (event.reader, event.version, event.account) == (None, 2, ACCOUNT)
    assert event.identity == "token-custodia-servicio"


def test_legitimate_reveals_and_codes_record_no_unrecorded_read(
    world: World, running: AuditFollower
) -> None:
    """Behaviour: ``revelar`` and ``codigo`` through Custodia (the service's wrapped read for
    beto, ledger record, beto's unwrap), and the rotations of the set-up (``rotar confirmar``
    has the service read the staged password), leave no unrecorded read. Shown event-driven:
    a later direct read is detected (so the follower has processed past the legitimate ones),
    and still none names the legitimate ones."""
    credentials = Credentials(world.vault)
    for _ in range(2):
        revealed = world.custodia.reveal(world.beto, LEGIT, "publicación", None)
        assert credentials.unwrap(revealed["envoltorio"], LEGIT).version == 2
        code = world.custodia.totp_code(world.beto, LEGIT, "inicio de sesión", None)
        assert re.fullmatch(r"\d{6}", credentials.unwrap_totp(code["envoltorio"], LEGIT).code)
    sentinel = hvac.Client(world.bao.addr, token=world.bao.root_token).read(
        f"{world.vault.mounts.totp}/code/{ACCOUNT}"
    )
    world.wait_unrecorded(sentinel["request_id"])
    deadline = time.monotonic() + BOUND
    while running.state.deferred:  # a read still in its grace is not decided yet
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [i for i in world.unrecorded_incidents() if i.account == LEGIT] == []
    # Matched, not overlooked: each reveal and code consumed its own ledger record (plus the
    # set-up's confirmations), one record per read.
    assert len(running.state.consumed) >= 4 + 4


def test_a_coadministrator_reading_a_staged_password_directly_is_detected(
    world: World, running: AuditFollower, mistake: None
) -> None:
    """Behaviour: while a rotation is staged, the coadministrator reads the staged password with
    her own token (the policy mistake; no ``rotar confirmar`` follows): after the grace it is an
    unrecorded read of the staged password."""
    world.custodia.start_rotation(world.ana, ACCOUNT)
    try:
        answer = hvac.Client(
            world.bao.addr, token=world.ana.token
        ).secrets.kv.v2.read_secret_version(
            "preparadas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
        )
        event: Any = next(
            iter(world.app.events.get(world.wait_unrecorded(answer["request_id"]).id))
        )
    finally:
        world.custodia.abandon_rotation(world.ana, ACCOUNT)
    assert (event.reader, event.staged, event.kind) == (person_id("ana"), True, "contrasena")


def test_a_restarted_follower_misses_nothing_and_records_nothing_twice(
    world: World, mistake: None
) -> None:
    """Behaviour: the follower is stopped; beto reads directly while it is down; a new follower
    (a restart: state from the state file) records exactly that read — it resumes at the saved
    position (no earlier line is handled again), and a read recorded before is never asked to
    be recorded again. A follower that lost its state file re-reads the log from its start and
    records nothing new (the incident's id derives from OpenBao's request id)."""
    first = world.follower()
    first.start()
    before = world.as_beto().secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
    )
    world.wait_unrecorded(before["request_id"])
    first.stop()
    saved = first.state.offset

    while_down = world.as_beto().secrets.kv.v2.read_secret_version(
        "cuentas/DD05/x", mount_point=world.vault.mounts.kv, raise_on_deleted_version=False
    )
    assert world.unrecorded(while_down["request_id"]) is None
    spy = SpyLedger(ApplicationLedger(world.app, world.custodia.policy))
    restarted = world.follower(spy)
    assert restarted.state.offset == saved  # resumed, not from the start
    restarted.start()
    try:
        world.wait_unrecorded(while_down["request_id"])
    finally:
        restarted.stop()
    assert before["request_id"] not in spy.asked
    assert spy.asked.count(while_down["request_id"]) == 1
    count = len(world.unrecorded_incidents())

    world.state_file.unlink()
    fresh_spy = SpyLedger(ApplicationLedger(world.app, world.custodia.policy))
    fresh = world.follower(fresh_spy)
    recorded = _drain(fresh)
    assert fresh_spy.asked  # it did see the earlier reads again …
    assert recorded == 0  # … and recorded none of them a second time
    assert len(world.unrecorded_incidents()) == count


def _drain(follower: AuditFollower) -> int:
    """Poll until the follower has the whole log and nothing waits for its grace."""
    total = follower.poll()
    deadline = time.monotonic() + BOUND
    while follower.state.deferred or follower.state.offset < follower.audit_log.stat().st_size:
        assert time.monotonic() < deadline
        time.sleep(0.2)
        total += follower.poll()
    return total


def test_a_record_far_below_the_districts_newest_events_is_still_found(world: World) -> None:
    """The ledger side reads a district's last record, then only the records stored in the
    window, never the district's whole history (issue 21). beto's reveal of DD05-legit,
    followed by 40 reads of DD05-x by ana (so it is not the last record), is still found as
    the record of his read, exactly once, with the key of its own event; nothing older than
    ``since`` is offered."""
    credentials = Credentials(world.vault)
    started = _now()
    revealed = world.custodia.reveal(world.beto, LEGIT, "publicación", None)
    credentials.revoke_wrapped(revealed["envoltorio"])
    district: Any = world.app.repository.get(world.custodia.district("DD05").id)
    beto_read = f"{district.id}:{district.version}"
    for _ in range(40):
        other = world.custodia.reveal(world.ana, ACCOUNT, "revisión", None)
        credentials.revoke_wrapped(other["envoltorio"])
    access = SecretAccess(
        request_id="prueba",
        at=_now(),
        district="DD05",
        account=LEGIT,
        kind="contrasena",
        staged=False,
        version=revealed["version"],
        wrapped=True,
        entity_id="",
        username="beto",
        display_name="userpass-beto",
        remote_address="127.0.0.1",
    )
    ledger = ApplicationLedger(world.app, world.custodia.policy)
    found = list(ledger.records(access, started))
    assert [key for key, _ in found] == [beto_read]
    assert all(stamp >= started for _, stamp in found)
    assert list(ledger.records(access, _now())) == []


def _access_changes(world: World) -> list[Any]:
    """The creation events of the incidents opened for unrecorded changes of access."""
    rows = world.custodia.list_incidents(world.ana, None)
    found: list[Any] = [world.app.repository.get(uuid.UUID(r["incidente"])) for r in rows]
    return [
        next(iter(world.app.events.get(i.id)))
        for i in found
        if i.incident_type == "cambio_de_acceso_no_registrado"
    ]


def test_a_coadministrator_changing_the_second_factor_group_directly_opens_an_incident(
    world: World, running: AuditFollower
) -> None:
    """Behaviour: ana, a coadministrator, uses her own token outside Custodia to put beto in
    the group of people who must use the second factor and take him out again (her policy
    allows it: that is how Custodia writes it, for her). Each write is recorded as a change of
    access with no command, naming ana, with the institution's incident — even right after a
    transfer of hers, whose record writes no group and covers none. A legitimate change
    through Custodia (a titular's opt-in, ``personas segundo-factor``: recorded) opens none."""
    from custody.app import people, second_factor
    from custody.vault.layout import MFA_GROUP, ensure_second_factor

    root = VaultClient(world.bao.addr, world.bao.root_token)
    ensure_second_factor(root, enforce=True)  # the opt-in needs it; nobody here logs in after
    before = len(_access_changes(world))
    world.custodia.register_person(
        world.ana,
        "tina",
        name="Tina",
        email="tina@iecm.mx",
        phone=None,
        role="titular",
        district="DD07",
        password=secrets.token_urlsafe(18),
    )
    second_factor.require(world.custodia, world.ana, "tina")  # through Custodia: recorded
    time.sleep(2.5)  # past the change window of every record above (the module's start too)
    # A transfer of hers just before (tina is under the factor now, so it writes no group):
    # its record covers none of the direct changes below.
    people.change_assignment(
        world.custodia,
        world.ana,
        "tina",
        "coadministrador",
        None,
        OfficialChannel.oficio("UTCSyD/099/2026"),
    )

    ana = VaultClient(world.bao.addr, world.ana.token)
    group = f"identity/group/name/{MFA_GROUP}"
    members = list(ana.read(group, operation="t")["data"].get("member_entity_ids") or [])
    beto = root.lookup_self(world.beto.token).entity_id
    assert beto not in members
    ana.write(group, {"member_entity_ids": [*members, beto]}, operation="t")
    ana.write(group, {"member_entity_ids": members}, operation="t")

    deadline = time.monotonic() + BOUND
    while len(_access_changes(world)) < before + 2:
        assert time.monotonic() < deadline, "the direct changes were not recorded"
        time.sleep(0.2)
    time.sleep(4.0)  # past the grace: the legitimate change would have been recorded by now
    found = _access_changes(world)[before:]
    assert len(found) == 2
    for event in found:
        assert event.change == "grupo_segundo_factor"
        assert event.actor == person_id("ana")
        assert event.district is None
        assert event.account is None
        assert "Cambio de acceso sin registro" in event.description
