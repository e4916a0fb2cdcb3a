"""A command through ``custodia servicio`` against the sum of its raw parts, in one run (issue 6).

Starts its own world in a temporary ``CUSTODIA_HOME`` (``custodia init``, ``custodia servicio``
as a subprocess, embedded NATS and OpenBao), then measures, warm:

- ``revelar`` and ``rotar iniciar`` through the service: on one NATS connection (the service's
  own latency) and with :class:`~custody.service.client.CommandClient` (one connection per command,
  as
  the CLI does it);
- their raw parts on the same servers: a NATS request round trip to a trivial responder (same
  users, headers and reply size), for CommandClient also a NATS connect/close and the request
  token it makes and revokes (custody.vault.session), the OpenBao operations the command needs done
  with raw hvac and the caller's token, as the service does them, once with stock hvac (a
  requests session) and once with hvac on the service's own transport
  (:mod:`custody.vault.transport`) (reveal: metadata read + wrapped read; rotation start: metadata
  read + transit HMAC + check-and-set write + metadata write), one JetStream publish with
  ``Nats-Expected-Last-Subject-Sequence`` on a stream configured like the ledger's;
- for context, the idempotency record the service keeps per command (a KV create + put);
- ``custodia --help`` against ``python -c pass`` (``bench_cli.py``).

Goal: p50 through the service <= 1.25 x the sum of the parts' p50s on one connection (issue 21),
<= 1.5 x with CommandClient (a connection and a request token per command). Stops everything it
started.

Run: ``.venv/bin/python bench/bench_service.py [--runs 150] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import hvac
import nats
import structlog
from nats.js.api import StreamConfig

from custody.bootstrap import Endpoints, resolve, service_token
from custody.config import Settings
from custody.service import protocol
from custody.service.client import CommandClient
from custody.vault import session
from custody.vault.client import VaultClient, new_session
from custody.vault.layout import AccountRef

CUSTODIA = str(Path(sys.executable).parent / "custodia")
PASSWORD = "ana-clave-segura-bench-1"
ACCOUNT = "DD05-x"
KV_DATA = "custodia/data/cuentas/DD05/x"
KV_METADATA = "custodia/metadata/cuentas/DD05/x"
SCRATCH = "custodia/data/preparadas/DD33/bench"  # the raw rotation's own path
SCRATCH_METADATA = "custodia/metadata/preparadas/DD33/bench"
BENCH_STREAM = "custodia-bench"
# The service user may publish JetStream messages only to its own subjects and inboxes; a
# stream on a private inbox prefix stands in for the ledger without touching it.
BENCH_SUBJECT = "_INBOX.custodia-bench.events"
ECHO_SUBJECT = f"{protocol.SUBJECT_PREFIX}.bench-eco"  # no service endpoint answers it


# -- figures -------------------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99 = statistics.median(samples), pct(samples, 0.99)
    print(f"  {name:<52} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return p50, p99


def measure_sync(action: Callable[[], object], runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def measure_async(
    action: Callable[[], Awaitable[object]],
    runs: int,
    warmup: int = 10,
    after: Callable[[], Awaitable[object]] | None = None,
) -> list[float]:
    """``action`` timed ``runs`` times after ``warmup``; ``after`` (untimed) follows each."""
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        await action()
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
        if after is not None:
            await after()
    return samples


# -- the world -----------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(home)
    return env


def _without_second_factor(home: Path) -> Path:
    policy = home / "politica-sin-segundo-factor.toml"
    policy.write_text("[segundo_factor]\nobligatorio = false\n")
    return policy


@contextlib.contextmanager
def world() -> Iterator[Path]:
    """A fresh home with ``custodia servicio`` running; everything stopped and removed after."""
    home = Path(tempfile.mkdtemp(prefix="bench-servicio-"))
    service: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [CUSTODIA, "init", "--usuario", "ana", "--password-stdin"],
            input=(PASSWORD + "\n").encode(),
            # Benchmarks log people in with a password alone: no login second factor.
            env={**_env(home), "CUSTODIA_POLITICA": str(_without_second_factor(home))},
            check=True,
            capture_output=True,
            timeout=180,
        )
        log = home / "servicio.log"
        with log.open("wb") as out:
            service = subprocess.Popen(
                [CUSTODIA, "servicio"], env=_env(home), stdout=out, stderr=out
            )
        deadline = time.monotonic() + 60
        while b"servicio_listo" not in log.read_bytes():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("custodia servicio did not start: " + log.read_text()[-1000:])
            time.sleep(0.1)
        yield home
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(10)
        subprocess.run([CUSTODIA, "detener"], env=_env(home), capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


class Caller:
    """The command protocol on one persistent NATS connection (what CommandClient sends, minus
    the connection per command)."""

    def __init__(self, nc: Any, token: str) -> None:
        self.nc = nc
        self._token = token

    async def call(self, command: str, args: dict[str, Any]) -> Any:
        key = protocol.ReplyKey.generate()
        headers = {
            protocol.TOKEN_HEADER: self._token,
            protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
            protocol.REPLY_KEY_HEADER: key.public_b64(),
        }
        msg = await self.nc.request(
            protocol.subject_for(command), protocol.encode(args), timeout=15, headers=headers
        )
        data = protocol.decode_reply(msg.data)
        return {
            k: key.open(v) if isinstance(v, dict) and "sealed" in v else v for k, v in data.items()
        }


# -- the run -------------------------------------------------------------------------------


def prepare(home: Path) -> tuple[str, CommandClient]:
    """ana's session token and a command client; DD05-x registered with a current password."""
    settings = Settings.from_env({"CUSTODIA_HOME": str(home)})
    client_ep = resolve(settings, "cliente")
    token = session.login(client_ep.vault_addr, "ana", PASSWORD, home / "sesion-ana.json").token
    setup = CommandClient(client_ep, token, username="ana")
    account = {"cuenta": ACCOUNT, "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"}
    setup.call("cuentas.alta", account)
    setup.call("rotar.iniciar", {"cuenta": ACCOUNT})
    setup.call("rotar.confirmar", {"cuenta": ACCOUNT})
    return token, setup


async def run(
    home: Path, token: str, setup: CommandClient, runs: int, rounds: int
) -> dict[str, float]:
    """Every measurement in ``rounds`` interleaved rounds (``runs / rounds`` samples each per
    round), so a noisy neighbour on a shared machine weighs on the service and on its raw
    parts alike."""
    settings = Settings.from_env({"CUSTODIA_HOME": str(home)})
    # ana connects with her token (the auth callout); the raw parts are measured as the
    # administrative identity (JetStream) and the responder (the echo), as the service has them.
    client_ep, service_ep = resolve(settings, "cliente"), resolve(settings, "administrador")
    responder_ep = resolve(settings, "servicio")
    client_options: dict[str, Any] = {
        **client_ep.nats_options(),
        "token": token,
        "inbox_prefix": "_INBOX.ana",
    }
    # The caller's token asks OpenBao for the caller's capability on the operation's marker;
    # the service's token makes the operation (issue 16, finding 2: people's tokens read no
    # secret). ``init`` revoked the root token; none is needed here.
    caller_vault = VaultClient(client_ep.vault_addr, token)
    own_vault = VaultClient(client_ep.vault_addr, service_token(settings))
    client_nc = await nats.connect(**client_options, name="bench-cliente")
    service_nc = await nats.connect(**_options(service_ep), name="bench-servicio")
    responder_nc = await nats.connect(**_options(responder_ep), name="bench-respondedor")
    caller = Caller(client_nc, token)
    # As the service makes these calls: the caller's capabilities on the marker with the
    # caller's token, then the operation with the service's token (the root token would skip
    # the policy work). In sequence here (the service sends the authorization alongside its own
    # reads, so the sum is lenient). Twice: with stock hvac (a requests session: the issue's
    # "hvac KV operation") and with hvac on the service's own transport (custody.vault.transport:
    # less client work per call, so a smaller sum).
    stock_session = new_session()
    stock_session.verify = client_ep.vault_verify
    hv = (
        hvac.Client(url=client_ep.vault_addr, token=token, session=stock_session),
        hvac.Client(url=client_ep.vault_addr, token=own_vault.token, session=stock_session),
    )
    hv_t = (caller_vault.hvac, own_vault.hvac)
    reveal_args = {"cuenta": ACCOUNT, "motivo": "medición de latencia"}
    per = max(10, runs // rounds)
    samples: dict[str, list[float]] = {}

    def add(name: str, values: list[float]) -> None:
        samples.setdefault(name, []).extend(values)

    try:
        for _ in range(rounds):
            add("revelar", await measure_async(lambda: caller.call("revelar", reveal_args), per))
            add(
                "revelar_cc",
                await asyncio.to_thread(
                    measure_sync, lambda: setup.call("revelar", reveal_args), max(10, per // 2)
                ),
            )
            add(
                "rotar",
                await measure_async(
                    lambda: caller.call("rotar.iniciar", {"cuenta": ACCOUNT}),
                    per,
                    after=lambda: caller.call("rotar.confirmar", {"cuenta": ACCOUNT}),
                ),
            )
            add("rtt", await _echo(client_nc, responder_nc, per))
            add("connect", await _connect_cost(client_options, per))
            add(
                "request_token",
                await asyncio.to_thread(
                    measure_sync, lambda: _request_token_cost(client_ep.vault_addr, token), per
                ),
            )
            add("kv_reveal", await asyncio.to_thread(measure_sync, lambda: _raw_reveal(hv), per))
            add("kv_rotate", await asyncio.to_thread(_raw_rotation, hv, per))
            add(
                "kv_reveal_t", await asyncio.to_thread(measure_sync, lambda: _raw_reveal(hv_t), per)
            )
            add("kv_rotate_t", await asyncio.to_thread(_raw_rotation, hv_t, per))
            add("publish", await _publish(service_nc, per))
            add("idempotency", await _kv(service_nc, per))
        version, loads = await asyncio.to_thread(_aggregate_loads, service_ep, runs)
    finally:
        await client_nc.close()
        await service_nc.close()
        await responder_nc.close()
    figures: dict[str, float] = {}
    print(f"\nThrough the service ({len(samples['revelar'])} runs each, {rounds} rounds, warm):")
    figures["revelar"], figures["revelar_p99"] = report(
        "revelar (one connection)", samples["revelar"]
    )
    figures["revelar_cc"], _ = report(
        "revelar (CommandClient: connection per command)", samples["revelar_cc"]
    )
    figures["rotar"], figures["rotar_p99"] = report(
        "rotar iniciar (one connection)", samples["rotar"]
    )
    print("\nRaw parts on the same servers, same rounds:")
    for key, label in (
        ("rtt", "NATS request round trip, trivial responder"),
        ("connect", "  + NATS connect/close (CommandClient's extra)"),
        ("request_token", "  + request token: create + revoke (CommandClient's extra)"),
        ("kv_reveal", "hvac: capabilities + metadata read + wrapped read (revelar)"),
        ("kv_rotate", "hvac: capabilities + metadata + HMAC + CAS write + metadata (rotar)"),
        ("kv_reveal_t", "  the same on the service's transport (revelar)"),
        ("kv_rotate_t", "  the same on the service's transport (rotar)"),
        ("publish", "JetStream publish, expected last subject sequence"),
        ("idempotency", "(context) idempotency record: KV create + put"),
    ):
        figures[key], _ = report(label, samples[key])
    report(f"(context) ledger reads, no cache: person + DD05 (v{version})", loads)
    return figures


def _options(endpoints: Endpoints) -> Any:
    return endpoints.nats_options()


async def _echo(client_nc: Any, service_nc: Any, runs: int) -> list[float]:
    reply = b"x" * 600  # about a sealed reveal reply

    async def respond(msg: Any) -> None:
        await msg.respond(reply)

    sub = await service_nc.subscribe(ECHO_SUBJECT, cb=respond, queue=protocol.QUEUE_GROUP)
    await service_nc.flush()
    headers = {
        protocol.TOKEN_HEADER: "x" * 95,
        protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
        protocol.REPLY_KEY_HEADER: protocol.ReplyKey.generate().public_b64(),
    }
    body = json.dumps({"cuenta": ACCOUNT, "motivo": "medición de latencia"}).encode()
    try:
        # The subscription reaches the client's account through the service import a moment
        # after the flush: wait until it answers.
        for _ in range(100):
            try:
                await client_nc.request(ECHO_SUBJECT, body, timeout=5, headers=headers)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.02)
        return await measure_async(
            lambda: client_nc.request(ECHO_SUBJECT, body, timeout=5, headers=headers), runs
        )
    finally:
        await sub.unsubscribe()


async def _connect_cost(options: dict[str, Any], runs: int) -> list[float]:
    """A person's connection, as each command makes it (through the auth callout)."""

    async def once() -> None:
        nc = await nats.connect(**options, allow_reconnect=False)
        await nc.close()

    return await measure_async(once, max(20, runs // 2))


def _request_token_cost(vault_addr: str, token: str) -> None:
    """The request token each command of a person's command line makes and revokes
    (custody.vault.session), as two raw OpenBao calls."""
    child = session.request_token(vault_addr, token, uses=4, ttl=60)
    session.forget_request_token(vault_addr, child)


def _authorize(caller: Any, operation: str) -> None:
    """The caller's capability on the operation's marker (custody.vault.credentials)."""
    marker = AccountRef.parse(ACCOUNT).access_path(operation)
    answer = caller.adapter.request("POST", "/v1/sys/capabilities-self", json={"paths": [marker]})
    assert "read" in answer["data"][marker]


def _raw_reveal(clients: tuple[Any, Any]) -> None:
    caller, hv = clients
    _authorize(caller, "revelar")
    meta = hv.adapter.request("GET", f"/v1/{KV_METADATA}")
    version = meta["data"]["current_version"]
    wrapped = hv.adapter.request(
        "GET", f"/v1/{KV_DATA}", params={"version": version}, wrap_ttl="60s"
    )
    assert wrapped["wrap_info"]["token"]


def _raw_rotation(clients: tuple[Any, Any], runs: int) -> list[float]:
    caller, hv = clients

    def once() -> None:
        _authorize(caller, "preparar")
        hv.adapter.request("GET", f"/v1/{KV_METADATA}")
        hv.adapter.request(
            "POST",
            "/v1/custodia-transit/hmac/custodia-fingerprint/sha2-256",
            json={"input": "YmVuY2g="},
        )
        hv.adapter.request(
            "POST", f"/v1/{SCRATCH}", json={"data": {"password": "x" * 24}, "options": {"cas": 0}}
        )
        hv.adapter.request(
            "POST", f"/v1/{SCRATCH_METADATA}", json={"custom_metadata": {"version": "1"}}
        )

    def cleanup() -> None:
        hv.adapter.request("DELETE", f"/v1/{SCRATCH_METADATA}")

    samples = []
    for i in range(10 + runs):
        start = time.perf_counter()
        once()
        if i >= 10:
            samples.append((time.perf_counter() - start) * 1000)
        cleanup()
    return samples


async def _publish(service_nc: Any, runs: int) -> list[float]:
    js = service_nc.jetstream()
    ledger = (await js.stream_info("custodia-events")).config
    config = StreamConfig(
        name=BENCH_STREAM,
        subjects=[f"{BENCH_SUBJECT}.>"],
        storage=ledger.storage,
        retention=ledger.retention,
        discard=ledger.discard,
        num_replicas=ledger.num_replicas,
        allow_direct=ledger.allow_direct,
    )
    await js.add_stream(config)
    payload = b"\x00" * 420  # about one recorded read
    last = [0]

    async def once() -> None:
        ack = await js.publish(
            f"{BENCH_SUBJECT}.agregado",
            payload,
            headers={"Nats-Expected-Last-Subject-Sequence": str(last[0])},
        )
        last[0] = ack.seq

    try:
        return await measure_async(once, runs)
    finally:
        await js.delete_stream(BENCH_STREAM)


async def _kv(service_nc: Any, runs: int) -> list[float]:
    kv = await service_nc.jetstream().key_value("custodia-solicitudes")

    async def once() -> None:
        key = uuid.uuid4().hex
        await kv.create(key, b"\x00pending")
        await kv.put(key, b"x" * 600)

    return await measure_async(once, runs)


def _aggregate_loads(endpoints: Endpoints, runs: int) -> tuple[int, list[float]]:
    """What every command on DD05 reads first: the caller and the district, from the ledger
    (replayed from the last snapshot, every 200 events)."""
    from custody.app.custodia import CustodiaApplication
    from events.domain import District, person_id

    app = CustodiaApplication(env=endpoints.nats_env())
    try:
        district = District.create_id("DD05")

        def load() -> None:
            app.repository.get(person_id("ana"))
            app.repository.get(district)

        samples = measure_sync(load, runs)
        return int(app.repository.get(district).version), samples
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with world() as home:
        token, setup = prepare(home)
        f = asyncio.run(run(home, token, setup, args.runs, args.rounds))
    for title, suffix in (
        ("raw parts with stock hvac (requests)", ""),
        ("raw parts with hvac on the service's transport (stricter)", "_t"),
    ):
        reveal_parts = f["rtt"] + f["kv_reveal" + suffix] + f["publish"]
        rotate_parts = f["rtt"] + f["kv_rotate" + suffix] + f["publish"]
        print(
            f"\nRatios, {title}; p50 through the service / sum of the parts' p50s "
            "(goal: <= 1.25 on one connection, <= 1.5 with CommandClient):"
        )
        for name, total, parts, goal in (
            ("revelar", f["revelar"], reveal_parts, 1.25),
            ("rotar iniciar", f["rotar"], rotate_parts, 1.25),
            (
                "revelar, CommandClient",
                f["revelar_cc"],
                reveal_parts + f["connect"] + f["request_token"],
                1.5,
            ),
        ):
            verdict = "ok" if total <= goal * parts else "OVER"
            print(f"  {name:<24} {total:7.2f} / {parts:7.2f} ms = {total / parts:4.2f}x  {verdict}")
    print("\ncustodia --help against python -c pass:")
    sys.stdout.flush()
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("bench_cli.py")), "--runs", "10"], check=True
    )


if __name__ == "__main__":
    main()
