"""``custodia servicio`` on the 3-node NATS cluster and the 3-node OpenBao raft cluster, under
load from 20 concurrent clients, with ``kill -9`` of the ``custodia-events`` stream leader, of the
active OpenBao member, of one of two service instances mid-command, and of everything at once
(every NATS node, every OpenBao member, every service instance) followed by a restart (issue 10).

Every command a client saw acknowledged has its events in the ledger exactly once; a command
refused has none (no ghost); a command whose outcome the client could not learn (no answer) has
at most one; ``bitacora verificar`` says the ledger is intact; ``reconciliar`` finds no drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from custody.app.custodia import CustodiaApplication
from custody.bootstrap import SERVICE_TOKEN_FILE, Endpoints
from custody.service.client import CommandClient, ServiceUnavailableError
from custody.service.protocol import RemoteError
from custody.stack.secret_files import write_secret
from custody.vault import session as sessions
from events.domain import District, Incident
from events.jetstream import records
from tests.e2e.conftest import (
    CUSTODIA,
    SERVICE_PASSWORD,
    run_custodia,
    stop_service,
    without_second_factor,
)
from tests.reads import delivered_reads
from tests.support.cluster import Cluster

pytestmark = pytest.mark.cluster

STREAM = "custodia-events"
RUN_SECONDS = 15.0
READ_DISTRICTS = [f"DD{n}" for n in range(10, 16)]  # titular + designated administrator
ROTATED = [f"DD{n}-x" for n in range(16, 22)]  # one rotating client each
COADMINS = ["ana", "pedro", "rosa"]
# Refusals that mean "not done": anything else (no answer, in progress) is "outcome unknown".
UNKNOWN_REMOTE = {"RequestInProgressError", "RequestAbandonedError", "OutcomeUnknownError"}


@dataclass
class World:
    home: Path
    cluster: Cluster
    env: dict[str, str]  # a person's: no NATS password (their token), no admin token
    service_env: dict[str, str]
    service: subprocess.Popen[bytes] | None = None
    # A second instance (its own home: projections database, log), in the same queue group.
    second: subprocess.Popen[bytes] | None = None

    @property
    def second_home(self) -> Path:
        return self.home.parent / "home-2"

    def start_service(self) -> None:
        """(Re)start the first instance if it is not running."""
        if self.service is None or self.service.poll() is not None:
            self.service = _start_service(self.home, self.service_env)

    def start_second(self) -> None:
        """(Re)start the second instance if it is not running: same servers, same service token
        (copied as ``init`` left it), its own ``CUSTODIA_HOME``."""
        if self.second is not None and self.second.poll() is None:
            return
        for name in (SERVICE_TOKEN_FILE, "firmante-token"):  # the follower's own token too
            token = (self.home / "secrets" / name).read_text()
            write_secret(self.second_home / "secrets" / name, token)
        self.cluster.nats.save_identities(
            self.second_home, ("servicio", "escritor", "autenticador")
        )
        env = {**self.service_env, "CUSTODIA_HOME": str(self.second_home)}
        self.second = _start_service(self.second_home, env)

    def instances(self) -> list[subprocess.Popen[bytes]]:
        return [s for s in (self.service, self.second) if s is not None and s.poll() is None]

    def endpoints(self) -> Endpoints:
        ca = Path(self.cluster.bao.ca_file or "")
        return Endpoints(
            nats_url=self.cluster.nats.url,
            vault_addr=self.env["CUSTODIA_VAULT_ADDR"],
            nats_ca=ca,
            vault_ca=ca,
            replicas=3,
        )

    def session_file(self, user: str) -> Path:
        return self.home / f"sesion-{user}.json"

    def login(self, user: str) -> None:
        sessions.login(
            self.env["CUSTODIA_VAULT_ADDR"],
            user,
            SERVICE_PASSWORD.format(user),
            self.session_file(user),
            verify=self.cluster.bao.ca_file or True,
        )

    def client(self, user: str, timeout: float = 15.0) -> CommandClient:
        token = sessions.load(self.session_file(user)).token
        return CommandClient(self.endpoints(), token, timeout=timeout, username=user)

    def call(self, user: str, command: str, args: dict[str, Any]) -> Any:
        return self.client(user).call(command, args)

    def run(
        self,
        user: str | None,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The real ``custodia`` executable as ``user`` (their session: their token is their
        NATS credential)."""
        full = {**self.env, **(env or {})}
        if user:
            full["CUSTODIA_SESION"] = str(self.session_file(user))
        return run_custodia(*args, home=self.home, env=full, stdin=stdin)

    def add_person(self, user: str, role: str, district: str | None = None) -> None:
        args = {
            "usuario": user,
            "nombre": user.title(),
            "correo": f"{user}@iecm.mx",
            "rol": role,
            "contrasena": SERVICE_PASSWORD.format(user),
        }
        if district:
            args["distrito"] = district
        self.call("ana", "personas.alta", args)
        self.login(user)


def _start_service(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``custodia servicio``, ready on return (its log appended to ``home/servicio.log``)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    full.update(env)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "servicio.log"
    with log_path.open("ab") as log:
        offset = log.tell()  # a restarted instance: only its own lines count
        service = subprocess.Popen([CUSTODIA, "servicio"], env=full, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while b"servicio_listo" not in log_path.read_bytes()[offset:]:
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service(service)
            raise RuntimeError(log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.1)
    return service


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Both clusters, ``custodia init``, the service, and six staffed districts + six accounts
    to rotate; the first district is set up through the real executable."""
    base = tmp_path_factory.mktemp("service-on-cluster")
    with Cluster(base / "cluster", tls=True) as cluster:
        nats, bao = cluster.nats, cluster.bao
        assert cluster.pki is not None
        common = {
            "CUSTODIA_NATS_URL": nats.url,
            "CUSTODIA_NATS_CA": str(cluster.pki.ca),
            "CUSTODIA_NATS_REPLICAS": "3",
            # Every member: the clients and the service move on when the one in use is gone.
            "CUSTODIA_VAULT_ADDR": ",".join(node.addr for node in bao.nodes),
            "CUSTODIA_VAULT_CACERT": bao.ca_file or "",
            "CUSTODIA_CHECKPOINT_SECONDS": "3",
        }
        service_env = {
            **common,
            "CUSTODIA_HOME": str(base / "home"),
            "CUSTODIA_NATS_USER": "servicio",
            "CUSTODIA_NATS_PASSWORD": nats.users["servicio"].password,
            "CUSTODIA_VAULT_TOKEN": bao.root_token,
        }
        env = {
            **common,
        }
        home = base / "home"
        home.mkdir()
        # The service's responder and writer, and init's administrative identity: one file each.
        nats.save_identities(home)
        w = World(home, cluster, env, service_env)
        init = run_custodia(
            "init", "--usuario", "ana", "--password-stdin", "--json",
            home=home, env={**service_env, **without_second_factor(home)},
            stdin=SERVICE_PASSWORD.format("ana") + "\n", timeout=180,
        )  # fmt: skip
        assert init.returncode == 0, init.stdout + init.stderr
        w.service = _start_service(home, service_env)
        try:
            _staff(w)
            yield w
        finally:
            for instance in (w.service, w.second):
                if instance is not None and instance.poll() is None:
                    stop_service(instance)


def _staff(w: World) -> None:
    opened = w.run(
        None, "sesion", "iniciar", "--usuario", "ana", "--password-stdin",
        stdin=SERVICE_PASSWORD.format("ana") + "\n",
        env={"CUSTODIA_SESION": str(w.session_file("ana"))},
    )  # fmt: skip
    assert opened.returncode == 0, opened.stdout + opened.stderr
    # District DD10 through the real CLI: people, titular, account, rotation, designation.
    for user, role in (("tit10", "titular"), ("adm10", "administrador")):
        done = w.run(
            "ana", "personas", "alta", "--usuario", user, "--nombre", user.title(),
            "--correo", f"{user}@iecm.mx", "--rol", role, "--distrito", "DD10",
            "--password-stdin", "--json", stdin=SERVICE_PASSWORD.format(user) + "\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        w.login(user)
    for user, argv in (
        ("ana", ["titular", "--distrito", "DD10", "--persona", "tit10"]),
        ("ana", ["cuentas", "alta", "--distrito", "DD10", "--plataforma", "x",
                 "--usuario", "DD10IECM", "--correo", "dd10.x@iecm.mx"]),
        ("ana", ["rotar", "iniciar", "--cuenta", "DD10-x"]),
        ("ana", ["rotar", "confirmar", "--cuenta", "DD10-x"]),
        ("tit10", ["designar", "--distrito", "DD10", "--persona", "adm10",
                   "--oficio", "DD10/001/2026"]),
        ("adm10", ["revelar", "--cuenta", "DD10-x", "--motivo", "prueba-cli"]),
    ):  # fmt: skip
        done = w.run(user, *argv, "--json")
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    assert json.loads(done.stdout)["contrasena"]  # unwrapped through OpenBao with its CA
    for user in COADMINS[1:]:
        w.add_person(user, "coadministrador")

    def staff(district: str) -> None:
        n = district[2:]
        w.add_person(f"tit{n}", "titular", district)
        w.add_person(f"adm{n}", "administrador", district)
        w.call("ana", "titular", {"distrito": district, "persona": f"tit{n}"})
        account = f"{district}-x"
        w.call(
            "ana",
            "cuentas.alta",
            {"cuenta": account, "usuario": f"DD{n}IECM", "correo": f"dd{n}.x@iecm.mx"},
        )
        w.call("ana", "rotar.iniciar", {"cuenta": account})
        w.call("ana", "rotar.confirmar", {"cuenta": account})
        w.call(
            f"tit{n}",
            "designar",
            {"distrito": district, "persona": f"adm{n}", "oficio": f"{district}/001/2026"},
        )

    def account(name: str) -> None:
        n = name[2:4]
        w.call(
            "ana",
            "cuentas.alta",
            {"cuenta": name, "usuario": f"DD{n}IECM", "correo": f"dd{n}.x@iecm.mx"},
        )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(staff, READ_DISTRICTS[1:]))
        list(pool.map(account, ROTATED))


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    status: str  # ok, refused, unknown
    started: float
    ended: float
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Load:
    world: World
    stop_at: float = 0.0
    timeout: float = 15.0  # each client's reply timeout (it then retries, same request id)
    outcomes: list[Outcome] = field(default_factory=list)
    clients: list[CommandClient] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rotations already in the ledger when this load began, per (account, command): each test
    # reads its own starting point, so no state passes from one test to the next.
    baseline: Counter[tuple[str, str]] = field(default_factory=Counter)

    def client(self, user: str) -> CommandClient:
        client = self.world.client(user, timeout=self.timeout)
        with self.lock:
            self.clients.append(client)
        return client

    @property
    def retries(self) -> int:
        """Requests the clients sent again with the same request id (no answer the first time)."""
        return sum(c.retries for c in self.clients)

    def timed(self, client: CommandClient, command: str, args: dict[str, Any]) -> Any:
        started = time.monotonic()
        status, data, error = "ok", None, None
        try:
            data = client.call(command, args)
        except RemoteError as exc:
            error = exc.remote_type
            status = "unknown" if error in UNKNOWN_REMOTE else "refused"
        except ServiceUnavailableError as exc:
            status, error = "unknown", exc.reason
        facts = {**args, "reply": data}
        with self.lock:
            self.outcomes.append(Outcome(command, status, started, time.monotonic(), facts, error))
        if status == "unknown" and error != "timeout":
            time.sleep(0.25)  # nothing answers at all (servers down): do not spin
        return data

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    def of(self, command: str, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.command == command and o.status == status]


def _reader(load: Load, user: str, account: str) -> None:
    client = load.client(user)
    while load.running():
        load.timed(client, "revelar", {"cuenta": account, "motivo": f"carga-{uuid.uuid4()}"})


def _reporter(load: Load, user: str, district: str) -> None:
    client = load.client(user)
    while load.running():
        args = {
            "cuenta": f"{district}-x",
            "tipo": "intervencion",
            "descripcion": f"carga-{uuid.uuid4()}",
        }
        load.timed(client, "incidentes.reportar", args)


def _rotator(load: Load, user: str, account: str) -> None:
    client = load.client(user)
    while load.running():
        load.timed(client, "rotar.iniciar", {"cuenta": account})
        # Confirmed even when the start was not acknowledged (it may have landed).
        load.timed(client, "rotar.confirmar", {"cuenta": account})


def _coadmin_reader(load: Load, user: str) -> None:
    client = load.client(user)
    n = 0
    while load.running():
        account = f"{READ_DISTRICTS[n % len(READ_DISTRICTS)]}-x"
        load.timed(client, "revelar", {"cuenta": account, "motivo": f"carga-{uuid.uuid4()}"})
        n += 1


def _drive(
    w: World, fault: Callable[[], dict[str, float]], load: Load | None = None
) -> tuple[Load, dict[str, float]]:
    """20 clients for RUN_SECONDS (``fault`` may extend ``load.stop_at``); ``fault`` runs in
    this thread 4 s in."""
    load = load or Load(w)
    clients: list[Callable[[], None]] = []
    for district in READ_DISTRICTS:
        n = district[2:]
        clients.append(partial(_reader, load, f"adm{n}", f"{district}-x"))
        clients.append(partial(_reporter, load, f"tit{n}", district))
    for i, account in enumerate(ROTATED):
        clients.append(partial(_rotator, load, COADMINS[i % len(COADMINS)], account))
    clients += [partial(_coadmin_reader, load, user) for user in COADMINS[1:]]
    assert len(clients) >= 20
    load.baseline = _rotations_in_ledger(w)
    started = time.monotonic()
    load.stop_at = started + RUN_SECONDS
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(c) for c in clients]
        time.sleep(4.0)
        try:
            times = fault()
        except BaseException:
            load.stop_at = 0.0  # the clients stop, the failure shows (no wait on a stuck pool)
            raise
        for future in futures:
            future.result(timeout=max(load.stop_at - time.monotonic(), 0) + 90)
    times["elapsed"] = time.monotonic() - started
    return load, times


def _ledger_events(w: World) -> list[DomainEventProtocol[UUID]]:
    """Every event of the ledger stream, read as ``verificador`` over TLS."""
    transcoder = JSONTranscoder()
    app: CustodiaApplication = object.__new__(CustodiaApplication)
    app.register_transcodings(transcoder)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    stored: list[StoredEvent] = []
    for body in asyncio.run(_stream_bodies(w)):
        record = records.decode(body)
        if isinstance(record, records.EventsRecord):
            stored.extend(record.events)
    return [mapper.to_domain_event(s) for s in stored]


async def _stream_bodies(w: World) -> list[bytes]:
    import ssl

    import nats

    nats_cluster = w.cluster.nats
    assert w.cluster.pki is not None
    nc = await nats.connect(
        servers=nats_cluster.urls,
        user="verificador",
        password=nats_cluster.users["verificador"].password,
        tls=ssl.create_default_context(cafile=str(w.cluster.pki.ca)),
        allow_reconnect=False,
    )
    try:
        js = nc.jetstream(timeout=10)
        last = (await js.stream_info(STREAM)).state.last_seq
        bodies = []
        for seq in range(1, last + 1):
            msg = await js.get_msg(STREAM, seq, direct=True)
            bodies.append(bytes(msg.data or b""))
        return bodies
    finally:
        await nc.close()


def _rotations_in_ledger(w: World) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = Counter()
    for e in _ledger_events(w):
        if isinstance(e, District.RotationStarted):
            counted[(e.account, "rotar.iniciar")] += 1
        elif isinstance(e, District.RotationConfirmed):
            counted[(e.account, "rotar.confirmar")] += 1
    return counted


def _check(w: World, load: Load) -> dict[str, Any]:
    """The promises; returns the figures."""
    outcomes = load.outcomes
    statuses = Counter(o.status for o in outcomes)
    errors = Counter(o.error for o in outcomes if o.error)
    assert "InternalError" not in errors, errors
    assert statuses["ok"], (statuses, errors)  # something acknowledged: checks not vacuous
    events = _ledger_events(w)
    reads = delivered_reads(events)  # a read voided afterwards was not delivered
    described = Counter(e.description for e in events if isinstance(e, Incident.Reported))
    started_rot = Counter(
        (e.account, e.version) for e in events if isinstance(e, District.RotationStarted)
    )
    confirmed = Counter(
        (e.account, e.version) for e in events if isinstance(e, District.RotationConfirmed)
    )
    assert max(started_rot.values()) == 1
    assert max(confirmed.values()) == 1
    landed_unknown = 0
    for o in outcomes:
        if o.command == "revelar":
            stored = reads[o.facts["motivo"]]
        elif o.command == "incidentes.reportar":
            stored = described[o.facts["descripcion"]]
        else:
            continue
        if o.status == "ok":
            assert stored == 1, o  # acknowledged: exactly once
        elif o.status == "refused":
            assert stored == 0, o  # told it failed: no ghost
        else:
            assert stored <= 1, o
            landed_unknown += stored
    for o in load.of("rotar.iniciar", "ok"):
        assert started_rot[(o.facts["reply"]["cuenta"], o.facts["reply"]["version"])] == 1
    for o in load.of("rotar.confirmar", "ok"):
        assert confirmed[(o.facts["reply"]["cuenta"], o.facts["reply"]["version"])] == 1
    # Per account: rotations this load added to the ledger = acknowledged + (some of the)
    # unknown, never refused ones.
    for account in ROTATED:
        for kind, counter in (("rotar.iniciar", started_rot), ("rotar.confirmar", confirmed)):
            mine = [o for o in outcomes if o.command == kind and o.facts["cuenta"] == account]
            added = sum(n for (a, _), n in counter.items() if a == account)
            added -= load.baseline[(account, kind)]
            acked = sum(1 for o in mine if o.status == "ok")
            unknown = sum(1 for o in mine if o.status == "unknown")
            assert acked <= added <= acked + unknown, (account, kind)
    verified = w.run(
        None,
        "bitacora",
        "verificar",
        "--json",
        env={
            "CUSTODIA_NATS_USER": "verificador",
            "CUSTODIA_NATS_PASSWORD": w.cluster.nats.users["verificador"].password,
        },
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["ok"] is True
    latencies = sorted(o.ended - o.started for o in outcomes if o.status != "unknown")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "commands": len(outcomes),
        "ok": statuses["ok"],
        "refused": statuses["refused"],
        "unknown": statuses["unknown"],
        "unknown_landed": landed_unknown,
        "errors": dict(errors),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "ledger_entries": verdict["eventos"],
    }


def _reconcile(w: World, load: Load, figures: dict[str, Any]) -> None:
    """OpenBao and the ledger agree, but for two known cases: a confirmation whose ledger write
    failed (the caller was told so, or got no answer) leaves OpenBao's new current version
    unrecorded, by design (the platform already uses it); and a rotation that failed or was cut
    short may leave a staged credential. ``reconciliar --reparar`` records the first and deletes
    the second. Afterwards: no drift."""
    found = w.run("ana", "reconciliar", "--json")
    assert found.returncode == 0, found.stdout + found.stderr
    drift = json.loads(found.stdout)["diferencias"]
    failed_confirms = {
        o.facts["cuenta"]
        for o in load.outcomes
        if o.command == "rotar.confirmar" and o.status != "ok"
    }
    for item in drift:
        if item["tipo"] in ("orphan_staged", "staged_untagged"):
            # a leftover of a failed rotation (of this load or, past its 60 s grace period,
            # of an earlier one); or the open rotation's tag, deleted by a losing rotation's
            # cleanup racing it (tagged again from the ledger): only on the rotated accounts
            assert item["objeto"] in ROTATED, item
            continue
        assert item["tipo"] == "confirmed_unrecorded", item
        assert item["objeto"] in failed_confirms, item
    figures["drift_before_repair"] = len(drift)
    if drift:
        repaired = w.run("ana", "reconciliar", "--reparar", "--json")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    clean = w.run("ana", "reconciliar", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["diferencias"] == []


def _first_ok_after(load: Load, moment: float) -> float:
    return min((o.ended for o in load.outcomes if o.status == "ok" and o.started >= moment),
               default=float("nan"))  # fmt: skip


def _report(name: str, load: Load, times: dict[str, float], figures: dict[str, Any]) -> None:
    ok = sum(1 for o in load.outcomes if o.status == "ok")
    figures["clients"] = 20
    figures["throughput_ok_per_s"] = ok / times["elapsed"]
    figures.update(times)
    shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))


def test_stream_leader_killed_under_load(world: World, figures: dict[str, Any]) -> None:
    """kill -9 of the custodia-events stream leader 4 s into 15 s of load from 20 clients."""
    nats = world.cluster.nats
    leader = nats.wait_stream_leader(STREAM)

    def fault() -> dict[str, float]:
        killed_at = time.monotonic()
        nats.kill(leader)
        nats.wait_stream_leader(STREAM, other_than=leader)
        elected_at = time.monotonic()
        nats.restart(leader)
        return {"killed_at": killed_at, "election_s": elected_at - killed_at}

    load, times = _drive(world, fault)
    assert world.service is not None
    assert world.service.poll() is None
    nats.wait_replicas_current(STREAM)
    recovered = _first_ok_after(load, times["killed_at"] + 0.5) - times.pop("killed_at")
    figures.update(_check(world, load))
    figures["first_ok_after_kill_s"] = recovered
    _reconcile(world, load, figures)
    _report("nats stream leader kill", load, times, figures)


def test_openbao_active_killed_under_load(world: World, figures: dict[str, Any]) -> None:
    """kill -9 of the active OpenBao member 4 s into 15 s of load; then no drift. The active
    member is made the first listed, the one the service talks to (no OpenBao failover before
    this test): the service must move to another member by itself."""
    bao = world.cluster.bao
    active = _active_first(world)
    log = world.home / "servicio.log"
    logged_before = log.read_bytes().count(b"vault.member.unreachable")

    def fault() -> dict[str, float]:
        killed_at = time.monotonic()
        bao.kill(active)
        bao.wait_active(other_than=active)
        elected_at = time.monotonic()
        return {"killed_at": killed_at, "failover_s": elected_at - killed_at}

    try:
        load, times = _drive(world, fault)
    finally:
        bao.restart(active)
    assert world.service is not None
    assert world.service.poll() is None
    recovered = _first_ok_after(load, times["killed_at"] + 0.5) - times.pop("killed_at")
    figures.update(_check(world, load))
    figures["first_ok_after_kill_s"] = recovered
    # Requests the service sent on to the next member (the dead one refused the connection, or a
    # standby redirected to it while the election ran).
    figures["service_member_switches"] = (
        log.read_bytes().count(b"vault.member.unreachable") - logged_before
    )
    # It moved on by itself: commands succeeded after its first member died (how many requests
    # it sent on is a figure, not a floor: an idle moment at the kill needs no switch).
    assert not math.isnan(recovered), "no command succeeded after the kill"
    _reconcile(world, load, figures)
    _report("openbao active kill", load, times, figures)


def _active_first(w: World) -> int:
    """The active OpenBao member, made to be the first listed in ``CUSTODIA_VAULT_ADDR``: the
    active member steps down until it is."""
    bao = w.cluster.bao
    first = w.env["CUSTODIA_VAULT_ADDR"].split(",")[0]
    active = bao.wait_active()
    for _ in range(20):
        if bao.nodes[active].addr == first:
            break
        status, _ = bao.call(active, "PUT", "/v1/sys/step-down", token=bao.root_token)
        assert status == 204, status
        active = bao.wait_active(other_than=active)
    assert bao.nodes[active].addr == first
    bao.wait_unsealed_standbys()
    return active


def test_service_instance_killed_mid_command(world: World, figures: dict[str, Any]) -> None:
    """Two service instances share the load (one queue group); 4 s in, one is frozen for 0.5 s
    (``SIGSTOP``) and gets ``kill -9`` with commands in flight. Clients get no reply for those
    and send them again with the same request id (after 5 s); the other instance answers a
    retry whose id the dead one had claimed with ``RequestAbandonedError`` (outcome unknown, at
    once: the owner does not answer a PING), and does the others. Then the same promises as
    above, and no drift."""
    world.start_service()
    world.start_second()
    victim = world.service
    assert victim is not None

    def fault() -> dict[str, float]:
        # Frozen first for half a second, so the commands NATS hands it meanwhile are surely
        # in flight when it dies (killed outright, it was idle at that instant once: no retry).
        victim.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        return {"killed_at": killed_at}

    load, times = _drive(world, fault, Load(world, timeout=5.0))
    assert world.second is not None
    assert world.second.poll() is None  # the survivor served throughout
    restarting = time.monotonic()
    world.start_service()  # the killed instance back, for the tests that follow
    figures["restart_of_killed_instance_s"] = time.monotonic() - restarting
    killed_at = times.pop("killed_at")
    late = [o for o in load.outcomes if o.started < killed_at < o.ended]
    figures.update(_check(world, load))
    figures["first_ok_after_kill_s"] = _first_ok_after(load, killed_at) - killed_at
    figures["retried_requests"] = load.retries
    figures["abandoned"] = sum(1 for o in load.outcomes if o.error == "RequestAbandonedError")
    figures["in_flight_at_kill"] = len(late)
    # Every command in flight at the kill got a final answer (each is an outcome above, and
    # _check held them to the ledger); how long that took is a figure.
    figures["in_flight_settled_s"] = max((o.ended for o in late), default=killed_at) - killed_at
    _reconcile(world, load, figures)
    _report("service instance kill", load, times, figures)


def test_everything_killed_and_restarted_with_the_service(
    world: World, figures: dict[str, Any]
) -> None:
    """4 s into the load every NATS node, every OpenBao member and both service instances get
    ``kill -9`` at once; all are started again on the same data (OpenBao unsealed) while the
    clients keep trying, and the load goes on until a few seconds after the service is back.
    Every acknowledged event is in the ledger exactly once, refused ones not at all, the ledger
    verifies, OpenBao and the ledger reconcile, and every client succeeds again."""
    nats, bao = world.cluster.nats, world.cluster.bao
    world.start_service()
    world.start_second()
    load = Load(world)

    def fault() -> dict[str, float]:
        # The clients keep trying however long the restart takes (it may outlast RUN_SECONDS:
        # clients that stopped before the service was back once failed the last check below).
        load.stop_at = math.inf
        killed_at = time.monotonic()
        processes = world.instances()
        processes += [n.process for n in nats.nodes if n.process is not None]
        processes += [n.process for n in bao.nodes if n.process is not None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        for process in processes:
            process.wait(10)
        restarted_at = time.monotonic()
        nats.start()
        nats.wait_stream_leader(STREAM)
        nats_ready_at = time.monotonic()
        bao.start()  # unseals all three: a quorum is needed before any becomes active
        bao_ready_at = time.monotonic()
        world.start_service()
        service_ready_at = time.monotonic()
        world.start_second()
        load.stop_at = time.monotonic() + 4.0
        return {
            "killed_at": killed_at,
            "restarted_at": restarted_at,
            "service_ready_at": service_ready_at,
            "nats_ready_s": nats_ready_at - restarted_at,
            "bao_active_s": bao_ready_at - nats_ready_at,
            "service_ready_s": service_ready_at - bao_ready_at,
        }

    load, times = _drive(world, fault, load)
    killed_at = times.pop("killed_at")
    restarted_at = times.pop("restarted_at")
    service_ready_at = times.pop("service_ready_at")
    assert len(world.instances()) == 2
    nats.wait_replicas_current(STREAM)
    figures.update(_check(world, load))
    first_ok = _first_ok_after(load, restarted_at)
    figures["restart_to_first_ok_s"] = first_ok - restarted_at
    figures["kill_to_first_ok_s"] = first_ok - killed_at
    figures["retried_requests"] = load.retries
    # Every client that is not rotating succeeds again once the service is back (a rotation
    # cut short by the kill may leave its account blocked until reconciliation).
    again = Counter(
        o.command for o in load.outcomes if o.status == "ok" and o.started >= service_ready_at
    )
    assert again["revelar"], again
    # Reporters whose calls straddle the restart may still be in their retries when the load
    # stops (seen on a loaded 2-core CI): how many got through is a figure; that reporting works
    # after the restart is asserted below, deterministically.
    figures["reports_ok_after_restart"] = again["incidentes.reportar"]
    _reconcile(world, load, figures)
    # And afterwards, through the real executable.
    done = world.run("adm10", "revelar", "--cuenta", "DD10-x", "--motivo", "reinicio", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    reported = world.run(
        "adm10",
        "incidentes",
        "reportar",
        "--cuenta",
        "DD10-x",
        "--tipo",
        "intervencion",
        "--descripcion",
        "tras el reinicio de todo",
        "--json",
    )
    assert reported.returncode == 0, reported.stdout + reported.stderr
    _report("everything killed and restarted", load, times, figures)
