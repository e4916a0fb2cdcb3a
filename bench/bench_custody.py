"""Custodia's Vault side end to end against raw hvac, on one OpenBao started here, in one run.

- rotation: ``Credentials.stage`` + ``Credentials.confirm`` (no ledger: the record callbacks are
  no-ops) against one raw ``kv.v2.create_or_update_secret`` (check-and-set);
- reveal: ``Credentials.read_current_wrapped`` + ``Credentials.unwrap`` against one raw
  ``kv.v2.read_secret_version``;
- the HTTP session with and without ``trust_env`` (proxy/netrc lookups on every call);
- hvac on a ``requests`` session against hvac on Custodia's urllib3 transport
  (:mod:`custody.vault.transport`): wall time and the client's CPU time per read.

Run: ``.venv/bin/python -m bench.bench_custody [iterations]``.
"""

from __future__ import annotations

import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import hvac
import structlog

from custody.app.access import Access
from custody.app.passwords import generate_password
from custody.stack.servers import start_bao_dev
from custody.vault.client import VaultClient, new_session
from custody.vault.credentials import Credentials
from custody.vault.layout import create_service_token, ensure_layout
from custody.vault.transport import Transport


def measure(action: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(min(20, iterations)):
        action()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def cpu_per_call(action: Callable[[], object], iterations: int) -> float:
    """This process's CPU time per call, in ms (the client's own work; the server is another
    process)."""
    for _ in range(min(20, iterations)):
        action()
    start = time.process_time()
    for _ in range(iterations):
        action()
    return (time.process_time() - start) * 1000 / iterations


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float]) -> float:
    p50 = statistics.median(samples)
    print(f"  {name:<44} p50 {p50:7.3f} ms   p99 {p(samples, 0.99):7.3f} ms")
    return p50


def main(iterations: int = 300) -> None:
    # Only warnings: the per-operation info lines would dominate the output (and the timing).
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="bench-custody-") as workdir:
        server = start_bao_dev(Path(workdir))
        try:
            run(server.addr, str(server.root_token), iterations)
        finally:
            server.stop()


def run(addr: str, root_token: str, iterations: int) -> None:
    root = VaultClient(addr, root_token)
    ensure_layout(root)
    service = root.with_token(create_service_token(root))
    access = Access(service)
    password = secrets.token_urlsafe(16)
    Access(root).ensure_person("bench-coad", password, "coadministrador")  # as init does
    access.ensure_person("bench-admin", password)
    access.set_district_holder("DD05", "bench-admin")
    anonymous = service.with_token(None)
    coad = anonymous.login_userpass("bench-coad", password)
    admin = anonymous.login_userpass("bench-admin", password)
    credentials = Credentials(service)

    current = [credentials.current_version("DD05-x")]  # what the ledger would know

    def rotation() -> None:
        event = str(uuid.uuid4())
        password = generate_password("x")
        credentials.stage(coad, "DD05-x", password, event, current[0], staged_by="bench")
        current[0] = credentials.confirm(coad, "DD05-x", event).version

    def reveal() -> None:
        wrapped = credentials.read_current_wrapped(admin, "DD05-x")
        credentials.unwrap(wrapped.token, "DD05-x")

    # The raw baseline is the service's token on a path it may read unwrapped (people's tokens
    # read no secret, and current credentials are read only wrapped: issue 16, finding 2).
    own = service.token
    raw = hvac.Client(addr, token=own, session=new_session(trust_env=False))
    raw_env = hvac.Client(addr, token=own, session=new_session(trust_env=True))
    raw_transport = hvac.Client(addr, token=own, session=Transport())
    raw_version = [0]

    def raw_write() -> None:
        raw.secrets.kv.v2.create_or_update_secret(
            "preparadas/DD05/bench",
            {"password": generate_password("x")},
            cas=raw_version[0],
            mount_point="custodia",
        )
        raw_version[0] += 1

    def raw_read(client: hvac.Client) -> Callable[[], object]:
        return lambda: client.secrets.kv.v2.read_secret_version(
            "preparadas/DD05/bench", mount_point="custodia", raise_on_deleted_version=True
        )

    def raw_wrapped() -> None:  # the floor of any response-wrapping design: wrap + unwrap
        wrapped = raw.read("custodia/data/preparadas/DD05/bench", wrap_ttl="60s")
        raw.sys.unwrap(wrapped["wrap_info"]["token"])

    rotation()  # the account has a credential before reveals are measured
    raw_write()
    print(f"OpenBao dev at {addr}, {iterations} iterations each (warm-up excluded)")
    print("rotation (stage + confirm: 8 requests) vs one raw KV write")
    rot = report("custodia rotation", measure(rotation, iterations))
    write = report("raw hvac kv.v2 write (cas)", measure(raw_write, iterations))
    print("reveal (version + wrapped read + lookup + unwrap: 4 requests) vs one raw KV read")
    rev = report("custodia wrapped reveal", measure(reveal, iterations))
    read = report("raw hvac kv.v2 read (trust_env=False)", measure(raw_read(raw), iterations))
    read_env = report(
        "raw hvac kv.v2 read (trust_env=True)", measure(raw_read(raw_env), iterations)
    )
    wrap = report("raw hvac wrapped read + unwrap", measure(raw_wrapped, iterations))
    print("hvac's HTTP: a requests session against custody.vault.transport.Transport")
    read_t = report("raw hvac kv.v2 read (Transport)", measure(raw_read(raw_transport), iterations))
    cpu_requests = cpu_per_call(raw_read(raw), iterations)
    cpu_transport = cpu_per_call(raw_read(raw_transport), iterations)
    print(
        f"  client CPU per read: requests {cpu_requests:.3f} ms, Transport {cpu_transport:.3f} ms"
    )
    print("ratios")
    per_request = rot / write / 8
    print(f"  rotation / raw write          {rot / write:5.2f}x  (per request {per_request:4.2f}x)")
    print(
        f"  reveal / raw read             {rev / read:5.2f}x  (per request {rev / read / 4:4.2f}x)"
    )
    print(f"  reveal / raw wrap + unwrap    {rev / wrap:5.2f}x")
    print(f"  trust_env=True / False (read) {read_env / read:5.2f}x  ({read_env - read:+.3f} ms)")
    print(f"  Transport / requests (read)   {read_t / read:5.2f}x  ({read_t - read:+.3f} ms)")
    print(f"  Transport / requests (CPU)    {cpu_transport / cpu_requests:5.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
