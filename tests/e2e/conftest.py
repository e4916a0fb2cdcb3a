"""Helpers to run the real ``custodia`` executable as a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custody import bootstrap
from custody.bootstrap import Endpoints, NatsRole
from custody.config import Settings
from custody.service.client import CommandClient
from custody.stack.embedded import EmbeddedStack
from custody.vault import session as sessions
from custody.vault.client import VaultClient
from custody.vault.session import Session

CUSTODIA = str(Path(sys.executable).parent / "custodia")

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_custodia(
    *args: str,
    home: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``custodia ARGS`` with ``CUSTODIA_HOME=home`` and a clean server environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    full_env["CUSTODIA_HOME"] = str(home)
    full_env.update(env or {})
    return subprocess.run(
        [CUSTODIA, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def custodia() -> Run:
    return run_custodia


# -- a running service, driven in-process (fuzzing, revocation, load) ------------------------

SERVICE_PASSWORD = "{}-clave-segura-1"  # each person's password, from their user name


@dataclass
class ServiceWorld:
    """``custodia servicio`` (a separate process) on the embedded NATS and OpenBao of ``home``,
    and people with sessions, for tests that talk to the service directly, each person with
    their own token as NATS credential (or through the real executable with :meth:`run`)."""

    home: Path
    service: subprocess.Popen[bytes]

    @property
    def settings(self) -> Settings:
        return Settings.from_env({"CUSTODIA_HOME": str(self.home)})

    def endpoints(self, role: NatsRole = "cliente") -> Endpoints:
        return bootstrap.resolve(self.settings, role)

    def session_file(self, user: str) -> Path:
        return self.home / f"sesion-{user}.json"

    def login(self, user: str, path: Path | None = None) -> Session:
        """Log ``user`` in with their password; the session goes to ``path`` (default: theirs)."""
        return sessions.login(
            self.endpoints().vault_addr,
            user,
            SERVICE_PASSWORD.format(user),
            path or self.session_file(user),
        )

    def token(self, user: str) -> str:
        return sessions.load(self.session_file(user)).token

    def client(self, user: str | None, *, timeout: float = 15.0) -> CommandClient:
        token = self.token(user) if user else None
        return CommandClient(self.endpoints(), token, timeout=timeout, username=user)

    def call(self, user: str, command: str, args: dict[str, Any] | None = None) -> Any:
        return self.client(user).call(command, args or {})

    def add_person(self, user: str, role: str, district: str | None = None) -> None:
        """Register ``user`` (by the first coadministrator, ana) and log them in."""
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

    def run(
        self, user: str | None, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real ``custodia`` executable, as ``user`` (their session file)."""
        env = {"CUSTODIA_SESION": str(self.session_file(user))} if user else {}
        return run_custodia(*args, home=self.home, env=env, stdin=stdin)

    def json(self, user: str | None, *args: str, stdin: str | None = None) -> Any:
        """``custodia ARGS --json`` as ``user``: it succeeds, with no traceback; its answer."""
        result = self.run(user, *args, "--json", stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout)

    def root_vault(self) -> VaultClient:
        """OpenBao as root, for revoking tokens and wrapping: ``init`` revoked its root token,
        so a new one is generated with the unseal key, as an operator does."""
        if not self.session_file("ana").exists():
            self.login("ana")
        root = EmbeddedStack(self.home).generate_root_token(self.token("ana"))
        return VaultClient(self.endpoints().vault_addr, root)

    def ledger_messages(self) -> int:
        """Messages in the ledger's event stream, read as the read-only ``verificador``."""
        return asyncio.run(_stream_messages(self.endpoints("verificador"), LEDGER_STREAM))

    def log_text(self) -> str:
        return (self.home / "servicio.log").read_text(errors="replace")

    def alive(self) -> bool:
        return self.service.poll() is None


LEDGER_STREAM = "custodia-events"


async def _stream_messages(endpoints: Endpoints, stream: str) -> int:
    import nats

    nc = await nats.connect(**endpoints.nats_options(), allow_reconnect=False)  # type: ignore[arg-type]
    try:
        info = await nc.jetstream(timeout=10).stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


def without_second_factor(home: Path) -> dict[str, str]:
    """The environment for an ``init`` whose OpenBao enforces no login second factor
    (``[segundo_factor] obligatorio = false``): the shared worlds log people in without codes
    (tests/e2e/test_second_factor*.py enforce it on worlds of their own)."""
    home.mkdir(parents=True, exist_ok=True)
    policy = home / "politica-sin-segundo-factor.toml"
    policy.write_text("[segundo_factor]\nobligatorio = false\n")
    return {"CUSTODIA_POLITICA": str(policy)}


def init_home(
    home: Path, user: str, password: str, *, second_factor: bool = False
) -> subprocess.CompletedProcess[str]:
    """``custodia init --usuario user`` for ``home`` (by default without the login second
    factor); if it does not even finish, the servers it may have started are stopped before
    the error goes on."""
    env = {} if second_factor else without_second_factor(home)
    try:
        return run_custodia(
            "init", "--usuario", user, "--password-stdin", "--json",
            home=home, stdin=password + "\n", timeout=180, env=env,
        )  # fmt: skip
    except BaseException:
        run_custodia("detener", home=home)
        raise


def start_service(
    home: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``custodia servicio`` for ``home`` (plus ``extra_env``), its output in
    ``home/servicio.log``; ready on return."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(home)
    env.update(extra_env or {})
    # One pass at start only: the periodic pass puts OpenBao's district groups back to the
    # ledger's holders, racing the tests that change a group behind Custodia's back.
    env["CUSTODIA_AVANCE_SECONDS"] = "3600"
    log_file = home / "servicio.log"
    # A restarted service appends to the same log: wait for a readiness line of its own.
    ready_before = log_file.read_bytes().count(b"servicio_listo") if log_file.exists() else 0
    with log_file.open("ab") as log:
        service = subprocess.Popen([CUSTODIA, "servicio"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while log_file.read_bytes().count(b"servicio_listo") <= ready_before:
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service(service)
            raise RuntimeError((home / "servicio.log").read_text(errors="replace")[-2000:])
        time.sleep(0.1)
    return service


def stop_service(service: subprocess.Popen[bytes]) -> None:
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(20)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait(10)


def make_service_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceWorld]:
    """The ``service_world`` session fixture's body (the fixture itself is in tests/conftest.py,
    so that tests/e2e and tests/security share one world instead of starting one each). A fresh
    home: ``custodia init`` (ana, coadministrator), the service, and DD05 staffed:
    luis titular, bety designated administrator, account DD05-x with a confirmed password and a
    TOTP seed; sofia secretaria; mario administrator of DD07 (not designated)."""
    home = tmp_path_factory.mktemp("custodia-servicio")
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home)
        try:
            world = ServiceWorld(home, service)
            world.login("ana")
            world.add_person("luis", "titular", "DD05")
            world.add_person("bety", "administrador", "DD05")
            world.add_person("sofia", "secretaria")
            world.add_person("mario", "administrador", "DD07")
            world.call("ana", "titular", {"distrito": "DD05", "persona": "luis"})
            world.call(
                "ana",
                "cuentas.alta",
                {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"},
            )
            world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
            world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
            world.call("ana", "totp.registrar", {"cuenta": "DD05-x", "uri": totp_uri("DD05-x")})
            world.call(
                "luis",
                "designar",
                {"distrito": "DD05", "persona": "bety", "oficio": "DD05/001/2026"},
            )
            yield world
        finally:
            stop_service(service)
    finally:
        run_custodia("detener", home=home)


@pytest.fixture(scope="session")
def fault_world_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The world whose servers the fault modules kill (tests/e2e/faults.py), one for all of
    them: each module takes it through its own ``faults`` fixture, which brings the servers
    back first (:func:`tests.e2e.faults.healed`)."""
    from .faults import fault_world

    yield from fault_world(tmp_path_factory)


def totp_uri(account: str) -> str:
    """An otpauth URI with a fixed test seed (RFC 6238's example secret, base32)."""
    return (
        f"otpauth://totp/IECM:{account}?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        "&issuer=IECM&algorithm=SHA1&digits=6&period=30"
    )
