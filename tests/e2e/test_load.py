"""Load on one node (issue 10): N >= 20 concurrent command-line clients for a bounded time.

Each client is one person doing what their role does, as the CLI does it (one NATS connection
per command through :class:`~custody.service.client.CommandClient`, the sealed reply opened, the
wrapping
token unwrapped in OpenBao), plus two clients that run the real ``custodia`` executable. Every
command a client saw acknowledged must have its events in the ledger exactly once; every
command it saw refused must have none; the ledger verifies. Throughput and p50/p99 latency are
printed.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from custody.app.custodia import CustodiaApplication
from custody.ledger import nats_io
from custody.service.client import CommandClient
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from events.domain import ChangeRequest, District, Incident
from events.jetstream import records
from tests.reads import delivered_reads

from .conftest import LEDGER_STREAM, ServiceWorld

pytestmark = pytest.mark.e2e

RUN_SECONDS = 20.0
READ_DISTRICTS = [f"DD{n}" for n in range(10, 16)]  # titular + designated administrator each
ROTATED = [f"DD{n}-x" for n in range(16, 22)]  # one coadministrator client each
COADMINS = ["ana", "pedro", "rosa"]
READS = ("revelar", "codigo", "cli revelar")  # commands whose purpose the ledger records


@dataclass
class Ack:
    """One command a client saw answered: what it was, its key facts, and how long it took."""

    command: str
    ok: bool
    latency: float
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Load:
    world: ServiceWorld
    stop_at: float = 0.0
    acks: list[Ack] = field(default_factory=list)
    unknown: list[Ack] = field(default_factory=list)  # no answer: outcome unknown
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, client: CommandClient, command: str, args: dict[str, Any]) -> Any:
        """Run one command; record it as acknowledged (ok or refused) or unknown."""
        from custody.service.client import ServiceUnavailableError
        from custody.service.protocol import RemoteError

        started = time.perf_counter()
        try:
            data = client.call(command, args)
        except RemoteError as exc:
            self.record(Ack(command, False, time.perf_counter() - started, args, exc.remote_type))
            return None
        except ServiceUnavailableError:
            with self.lock:
                self.unknown.append(Ack(command, False, time.perf_counter() - started, args))
            return None
        self.record(Ack(command, True, time.perf_counter() - started, {**args, "reply": data}))
        return data

    def record(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)

    def running(self) -> bool:
        return time.monotonic() < self.stop_at


def _reader(load: Load, user: str, account: str) -> None:
    """A designated administrator: reads the password and the 2FA code, and unwraps them."""
    client = load.world.client(user)
    unwrapper = Credentials(VaultClient(load.world.endpoints().vault_addr))
    n = 0
    while load.running():
        purpose = f"carga-{uuid.uuid4()}"
        if n % 2 == 0:
            data = load.timed(client, "revelar", {"cuenta": account, "motivo": purpose})
            if data is not None:
                assert unwrapper.unwrap(data["envoltorio"], account).password
        else:
            data = load.timed(client, "codigo", {"cuenta": account, "motivo": purpose})
            if data is not None:
                assert unwrapper.unwrap_totp(data["envoltorio"], account).code.isdigit()
        n += 1


def _titular(load: Load, user: str, district: str) -> None:
    """A titular: files change requests, lists the district's accounts, reports incidents."""
    client = load.world.client(user)
    account = f"{district}-x"
    n = 0
    while load.running():
        unique = f"carga-{uuid.uuid4()}"
        if n % 3 == 0:
            load.timed(
                client,
                "cambios.solicitar",
                {
                    "cuenta": account,
                    "campo": "telefono",
                    "detalle": unique,
                    "correo_oficial": f"titular.{district.lower()}@iecm.mx",
                },
            )
        elif n % 3 == 1:
            load.timed(client, "cuentas.lista", {"distrito": district})
        elif n % 6 == 2:
            load.timed(
                client,
                "incidentes.reportar",
                {"cuenta": account, "tipo": "intervencion", "descripcion": unique},
            )
        n += 1


def _rotator(load: Load, user: str, account: str) -> None:
    """A coadministrator rotating one account: start, then confirm."""
    client = load.world.client(user)
    while load.running():
        staged = load.timed(client, "rotar.iniciar", {"cuenta": account})
        if staged is not None:
            assert len(staged["contrasena"]) >= 16
            load.timed(client, "rotar.confirmar", {"cuenta": account})


def _lister(load: Load, user: str) -> None:
    """The secretaria: account listings of every district."""
    client = load.world.client(user)
    while load.running():
        load.timed(client, "cuentas.lista", {})


def _coadmin_reader(load: Load, user: str) -> None:
    """A coadministrator reading the staffed districts' passwords (6.IX)."""
    client = load.world.client(user)
    unwrapper = Credentials(VaultClient(load.world.endpoints().vault_addr))
    n = 0
    while load.running():
        account = f"{READ_DISTRICTS[n % len(READ_DISTRICTS)]}-x"
        data = load.timed(client, "revelar", {"cuenta": account, "motivo": f"carga-{uuid.uuid4()}"})
        if data is not None:
            assert unwrapper.unwrap(data["envoltorio"], account).password
        n += 1


def _cli(load: Load, user: str, args: list[str]) -> None:
    """The real executable, one process per command (its reads are checked like the others)."""
    while load.running():
        purpose = f"carga-{uuid.uuid4()}"
        argv = [a.replace("{motivo}", purpose) for a in args]
        started = time.perf_counter()
        result = load.world.run(user, *argv, "--json")
        latency = time.perf_counter() - started
        command = "cli " + " ".join(args[:2] if args[0] == "cuentas" else args[:1])
        if result.returncode == 0:
            reply = json.loads(result.stdout)
            load.record(Ack(command, True, latency, {"motivo": purpose, "reply": reply}))
        else:
            assert "Traceback" not in result.stderr
            assert "Falla interna" not in result.stderr
            load.record(
                Ack(command, False, latency, {"motivo": purpose}, f"exit {result.returncode}")
            )


@pytest.fixture(scope="module")
def staffed(service_world: ServiceWorld) -> ServiceWorld:
    """Six districts with a titular, a designated administrator and an account with a password
    and a 2FA seed; six more accounts for rotation; two more coadministrators."""
    world = service_world
    for user in COADMINS[1:]:
        world.add_person(user, "coadministrador")

    def staff(district: str) -> None:
        n = district[2:]
        world.add_person(f"tit{n}", "titular", district)
        world.add_person(f"adm{n}", "administrador", district)
        world.call("ana", "titular", {"distrito": district, "persona": f"tit{n}"})
        account = f"{district}-x"
        world.call(
            "ana",
            "cuentas.alta",
            {"cuenta": account, "usuario": f"DD{n}IECM", "correo": f"dd{n}.x@iecm.mx"},
        )
        world.call("ana", "rotar.iniciar", {"cuenta": account})
        world.call("ana", "rotar.confirmar", {"cuenta": account})
        world.call(
            "ana",
            "totp.registrar",
            {"cuenta": account, "uri": f"otpauth://totp/IECM:{account}?secret=JBSWY3DPEHPK3PXP"},
        )
        world.call(
            f"tit{n}",
            "designar",
            {"distrito": district, "persona": f"adm{n}", "oficio": f"{district}/001/2026"},
        )

    def account(name: str) -> None:
        n = name[2:4]
        world.call(
            "ana",
            "cuentas.alta",
            {"cuenta": name, "usuario": f"DD{n}IECM", "correo": f"dd{n}.x@iecm.mx"},
        )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(staff, READ_DISTRICTS))
        list(pool.map(account, ROTATED))
    return world


def _ledger_events(world: ServiceWorld) -> tuple[int, list[DomainEventProtocol[UUID]]]:
    """The ledger stream's message count and every event in it, read as ``verificador`` and
    decoded with the application's own transcodings."""
    transcoder = JSONTranscoder()
    app: CustodiaApplication = object.__new__(CustodiaApplication)  # no infrastructure
    app.register_transcodings(transcoder)
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    endpoints = world.endpoints("verificador")
    conn = nats_io.connect(endpoints.nats_url, endpoints.nats_user, endpoints.nats_password)
    try:
        stored: list[StoredEvent] = []
        messages = 0
        for batch in nats_io.read_entries(conn, LEDGER_STREAM):
            messages += len(batch)
            for _, _, body in batch:
                record = records.decode(body)
                if isinstance(record, records.EventsRecord):
                    stored.extend(record.events)
    finally:
        conn.close()
    return messages, [mapper.to_domain_event(s) for s in stored]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def test_concurrent_clients_every_acknowledged_command_exactly_once(staffed: ServiceWorld) -> None:
    """24 clients for 20 s (6 administrators reading passwords and 2FA codes, 6 titulares
    filing change requests, listing and reporting incidents, 6 coadministrators each rotating
    their own account, 3 listing as the secretaria, 1 coadministrator reading, 2 real ``custodia``
    processes): no client hangs or sees an internal error; every acknowledged read, rotation,
    change request and incident is in the ledger exactly once and every refused one not at all,
    and nothing is in it that no client asked for;
    ``bitacora verificar`` as the secretaria says the ledger is intact. A command left without
    an answer (a loaded machine) is in the ledger at most once. Throughput and latency are
    printed as figures, not asserted."""
    world = staffed
    load = Load(world)
    clients: list[Callable[[], None]] = []
    for district in READ_DISTRICTS:
        n = district[2:]
        clients.append(partial(_reader, load, f"adm{n}", f"{district}-x"))
        clients.append(partial(_titular, load, f"tit{n}", district))
    for i, account in enumerate(ROTATED):
        clients.append(partial(_rotator, load, COADMINS[i % len(COADMINS)], account))
    clients += [partial(_lister, load, "sofia") for _ in range(3)]
    clients.append(partial(_coadmin_reader, load, "pedro"))
    revelar = ["revelar", "--cuenta", "DD10-x", "--motivo", "{motivo}"]
    clients.append(partial(_cli, load, "adm10", revelar))
    clients.append(partial(_cli, load, "sofia", ["cuentas", "lista"]))
    assert len(clients) >= 20

    load.stop_at = time.monotonic() + RUN_SECONDS
    started = time.monotonic()
    with ThreadPoolExecutor(len(clients)) as pool:
        for future in [pool.submit(c) for c in clients]:
            future.result(timeout=RUN_SECONDS + 60)
    elapsed = time.monotonic() - started

    acks = load.acks
    unknown = load.unknown  # no answer in time (a loaded machine): either outcome is allowed
    refused = Counter(a.error for a in acks if not a.ok)
    assert "InternalError" not in refused
    ok = [a for a in acks if a.ok]
    assert ok, refused  # something was acknowledged, so the checks below are not vacuous

    messages, events = _ledger_events(world)
    reads = delivered_reads(events)  # a read voided afterwards was not delivered
    started_rotations = Counter(
        (e.account, e.version) for e in events if isinstance(e, District.RotationStarted)
    )
    confirmed = Counter(
        (e.account, e.version) for e in events if isinstance(e, District.RotationConfirmed)
    )
    filed = Counter(e.originator_id for e in events if isinstance(e, ChangeRequest.Filed))
    filed_details = Counter(e.detail for e in events if isinstance(e, ChangeRequest.Filed))
    reported = Counter(e.originator_id for e in events if isinstance(e, Incident.Reported))
    described = Counter(e.description for e in events if isinstance(e, Incident.Reported))

    load_reads = {p for p in reads if p.startswith("carga-")}
    acked_reads = {a.facts["motivo"] for a in acks if a.command in READS and a.ok}
    refused_reads = {a.facts["motivo"] for a in acks if a.command in READS and not a.ok}
    unknown_reads = {a.facts["motivo"] for a in unknown if a.command in READS}
    assert acked_reads <= load_reads  # nothing lost: every acknowledged read is recorded
    assert load_reads <= acked_reads | unknown_reads  # no ghost: none that nobody asked for
    assert all(reads[p] == 1 for p in load_reads)  # and each exactly once
    assert not refused_reads & load_reads
    for ack in acks:
        if not ack.ok:
            continue
        reply = ack.facts["reply"]
        if ack.command == "rotar.iniciar":
            assert started_rotations[(reply["cuenta"], reply["version"])] == 1
        elif ack.command == "rotar.confirmar":
            assert confirmed[(reply["cuenta"], reply["version"])] == 1
        elif ack.command == "cambios.solicitar":
            assert filed[UUID(reply["solicitud"])] == 1
            assert filed_details[ack.facts["detalle"]] == 1
        elif ack.command == "incidentes.reportar":
            assert reported[UUID(reply["incidente"])] == 1
            assert described[ack.facts["descripcion"]] == 1
    for ack in acks:
        if ack.ok:
            continue
        if ack.command == "cambios.solicitar":
            assert filed_details[ack.facts["detalle"]] == 0
        elif ack.command == "incidentes.reportar":
            assert described[ack.facts["descripcion"]] == 0
    for ack in unknown:  # applied once or not at all, never twice
        if ack.command == "cambios.solicitar":
            assert filed_details[ack.facts["detalle"]] <= 1
        elif ack.command == "incidentes.reportar":
            assert described[ack.facts["descripcion"]] <= 1
    # No ghost: every change request and incident of the load was asked for by a client.
    asked = {a.facts.get("detalle") for a in [*acks, *unknown]} | {
        a.facts.get("descripcion") for a in [*acks, *unknown]
    }
    assert {d for d in filed_details if str(d).startswith("carga-")} <= asked
    assert {d for d in described if str(d).startswith("carga-")} <= asked

    def between(command: str, recorded: int) -> bool:
        acked = sum(1 for a in acks if a.command == command and a.ok)
        return acked <= recorded <= acked + sum(1 for a in unknown if a.command == command)

    assert between(
        "rotar.iniciar", sum(n for (a, _v), n in started_rotations.items() if a in ROTATED)
    )
    assert between("rotar.confirmar", sum(n for (a, _v), n in confirmed.items() if a in ROTATED))
    assert all(n == 1 for n in started_rotations.values())
    assert all(n == 1 for n in confirmed.values())

    verified = world.run("sofia", "bitacora", "verificar", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["ok"] is True
    assert verdict["eventos"] == messages  # every entry read above was verified

    latencies = [a.latency for a in acks]
    p50, p99 = _percentile(latencies, 50) * 1000, _percentile(latencies, 99) * 1000
    print(
        f"\nload: {len(clients)} clients, {elapsed:.1f} s, {len(acks)} commands answered "
        f"({len(ok)} ok, {sum(refused.values())} refused: {dict(refused)}), "
        f"{len(unknown)} unanswered, "
        f"{len(acks) / elapsed:.1f} commands/s; latency p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    for command, count in sorted(Counter(a.command for a in acks).items()):
        own = [a.latency * 1000 for a in acks if a.command == command]
        p99 = _percentile(own, 99) if len(own) > 1 else own[0]
        print(f"  {command:22} {count:5}  p50 {statistics.median(own):6.0f} ms  p99 {p99:6.0f} ms")
    checkpoints = verdict["puntos_de_control_verificados"]
    print(
        f"  ledger: {messages} entries ({len(events)} events), intact, "
        f"{checkpoints} checkpoints verified"
    )
