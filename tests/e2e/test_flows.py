"""The flows of CLI.md, run as users run them: the real ``custodia`` executable, one process per
command, different people with their own sessions, against a running ``custodia servicio`` on
the embedded NATS and OpenBao."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custody.stack.servers import free_port
from events.errors import CustodiaError

from .conftest import CUSTODIA, init_home, run_custodia

pytestmark = pytest.mark.e2e

TOTP_SEED = "KRUGS4ZANFZSAYJAONSWG4TFOQQHGZLFMQQGM33SEBKE6VCQ"
TOTP_URI = f"otpauth://totp/IECM:DD05IECM?secret={TOTP_SEED}&issuer=IECM&digits=6&period=30"
PASSWORDS = {
    "ana": "ana-clave-segura-1",
    "luis": "luis-clave-segura-1",
    "bety": "bety-clave-segura-1",
    "carlos": "carlos-clave-segura-1",
    "sofia": "sofia-clave-segura-1",
    "mario": "mario-clave-segura-1",
}


@dataclass
class World:
    home: Path
    service: subprocess.Popen[bytes]
    seen_secrets: list[str] = field(default_factory=list)
    # (command, stdout, stderr) of every command run: scanned for secrets at the end.
    outputs: list[tuple[str, str, str]] = field(default_factory=list)

    def run(
        self, user: str | None, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {"CUSTODIA_SESION": str(self.home / f"sesion-{user}.json")} if user else {}
        result = run_custodia(*args, home=self.home, env=env, stdin=stdin)
        self.outputs.append((" ".join(args[:2]), result.stdout, result.stderr))
        return result

    def ok(self, user: str | None, *args: str, stdin: str | None = None) -> object:
        result = self.run(user, *args, "--json", stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert "Traceback" not in result.stderr
        data = json.loads(result.stdout)
        if isinstance(data, dict):
            self.seen_secrets += [str(data[k]) for k in ("contrasena",) if k in data]
        return data

    def refused(self, user: str | None, code: int, *args: str) -> str:
        result = self.run(user, *args)
        assert result.returncode == code, f"{args}: rc={result.returncode} {result.stderr}"
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("Error: ")
        return result.stderr

    def login(self, user: str) -> None:
        result = self.run(
            user,
            "sesion",
            "iniciar",
            "--usuario",
            user,
            "--password-stdin",
            stdin=PASSWORDS[user] + "\n",
        )
        assert result.returncode == 0, result.stderr
        assert (self.home / f"sesion-{user}.json").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("custodia-e2e")
    init = init_home(home, "ana", PASSWORDS["ana"])
    if init.returncode != 0:
        run_custodia("detener", home=home)
        pytest.fail(init.stdout + init.stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(home)
    # One pass at start only (see tests/e2e/conftest.py: start_service).
    env["CUSTODIA_AVANCE_SECONDS"] = "3600"
    log = (home / "servicio.log").open("wb")
    service = subprocess.Popen([CUSTODIA, "servicio"], env=env, stdout=log, stderr=log)
    world = World(home, service)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b"servicio_listo" in (home / "servicio.log").read_bytes():
                break
            assert service.poll() is None, (home / "servicio.log").read_text()
            time.sleep(0.1)
        world.login("ana")
        for user, role, district in (
            ("luis", "titular", "DD05"),
            ("bety", "administrador", "DD05"),
            ("carlos", "administrador", "DD05"),
            ("sofia", "secretaria", None),
            ("mario", "administrador", "DD07"),
        ):
            args = [
                "personas",
                "alta",
                "--usuario",
                user,
                "--nombre",
                user.title(),
                "--correo",
                f"{user}@iecm.mx",
                "--rol",
                role,
                "--password-stdin",
            ]
            if district:
                args += ["--distrito", district]
            world.ok("ana", *args, stdin=PASSWORDS[user] + "\n")
            world.login(user)
        world.ok("ana", "titular", "--distrito", "DD05", "--persona", "luis")
        world.ok(
            "ana",
            "cuentas",
            "alta",
            "--distrito",
            "5",
            "--plataforma",
            "x",
            "--usuario",
            "DD05IECM",
            "--correo",
            "dd05.x@iecm.mx",
        )
        yield world
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(20)
        except subprocess.TimeoutExpired:
            service.kill()
        log.close()
        run_custodia("detener", home=home)


def test_roles_are_what_the_ledger_says(world: World) -> None:
    """``sesion quien`` answers from the ledger: user name and roles."""
    me = world.ok("luis", "sesion", "quien")
    assert me == {"usuario": "luis", "roles": {"titular": "DD05"}}


def test_account_policy_is_enforced_in_spanish(world: World) -> None:
    """10.VIII: an account outside iecm.mx is refused with a Spanish reason; recorded only
    when registered explicitly as existing, and then it shows its violations."""
    err = world.refused(
        "ana",
        1,
        "cuentas",
        "alta",
        "--distrito",
        "5",
        "--plataforma",
        "facebook",
        "--usuario",
        "dd05fb",
        "--correo",
        "dd05@gmail.com",
    )
    assert "incumple los lineamientos" in err
    assert "iecm.mx" in err
    world.ok(
        "ana",
        "cuentas",
        "alta",
        "--distrito",
        "5",
        "--plataforma",
        "facebook",
        "--usuario",
        "dd05fb",
        "--correo",
        "dd05@gmail.com",
        "--existente",
    )
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    assert isinstance(accounts, list)
    fb = next(a for a in accounts if a["cuenta"] == "DD05-facebook")
    assert fb["violaciones"]
    # A titular cannot register accounts (10.II).
    world.refused(
        "luis",
        3,
        "cuentas",
        "alta",
        "--distrito",
        "5",
        "--plataforma",
        "tiktok",
        "--usuario",
        "dd05tt",
        "--correo",
        "dd05.tt@iecm.mx",
    )


def test_designation_rotation_reveal_and_substitution(world: World) -> None:
    """6.X and 6.IX end to end: designate, rotate, reveal by the administrator; a vacation
    substitution hands access over at once; the former holder is refused by the server."""
    staged = world.ok("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
    assert isinstance(staged, dict)
    assert staged["cuenta"] == "DD05-x"
    assert staged["version"] == 1
    password = staged["contrasena"]
    assert len(password) >= 20
    world.ok("ana", "rotar", "confirmar", "--cuenta", "DD05-x")

    # Only the titular designates; the administrator then reads the current password.
    world.refused(
        "bety",
        3,
        "designar",
        "--distrito",
        "DD05",
        "--persona",
        "bety",
        "--oficio",
        "DD05/001/2026",
    )
    designated = world.ok(
        "luis", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "DD05/001/2026"
    )
    assert isinstance(designated, dict)
    assert designated["administrador"] == "bety"
    revealed = world.ok("bety", "revelar", "--cuenta", "DD05-x", "--motivo", "publicar")
    assert revealed == {"cuenta": "DD05-x", "version": 1, "contrasena": password}

    # Nobody else: titular, secretaria, the administrator of another district.
    for user in ("luis", "sofia", "mario"):
        err = world.refused(user, 3, "revelar", "--cuenta", "DD05-x", "--motivo", "curiosidad")
        assert "6.IX" in err
        assert password not in err

    # Vacation: carlos substitutes from today; bety is refused at once.
    today = datetime.now(ZoneInfo("America/Mexico_City")).date().isoformat()
    world.ok(
        "luis",
        "ausencia",
        "--distrito",
        "DD05",
        "--motivo",
        "vacaciones",
        "--desde",
        today,
        "--sustituto",
        "carlos",
        "--memorandum",
        "DD05/002/2026",
    )
    world.refused("bety", 3, "revelar", "--cuenta", "DD05-x", "--motivo", "sigo aquí")
    seen = world.ok("carlos", "revelar", "--cuenta", "DD05-x", "--motivo", "cubrir vacaciones")
    assert isinstance(seen, dict)
    assert seen["contrasena"] == password
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    assert isinstance(accounts, list)
    x = next(a for a in accounts if a["cuenta"] == "DD05-x")
    assert x["obligaciones_abiertas"] >= 1

    # The obligation closes with a confirmed rotation.
    world.ok("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
    world.ok("ana", "rotar", "confirmar", "--cuenta", "DD05-x")
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    assert isinstance(accounts, list)
    x = next(a for a in accounts if a["cuenta"] == "DD05-x")
    assert x["obligaciones_abiertas"] == 0
    assert x["version"] == 2


def test_change_request_and_incident(world: World) -> None:
    """6.XI: a request needs a vía oficial in iecm.mx, is approved by UTCSyD and applied.
    8.C: an incident is reported, notified to the Secretaría Ejecutiva, contained after a
    rotation, closed; the secretaria reads the incident ledger."""
    err = world.refused(
        "luis",
        2,
        "cambios",
        "solicitar",
        "--cuenta",
        "DD05-x",
        "--campo",
        "telefono",
        "--detalle",
        "conmutador",
        "--correo-oficial",
        "x@gmail.com",
    )
    assert "iecm.mx" in err
    filed = world.ok(
        "luis",
        "cambios",
        "solicitar",
        "--cuenta",
        "DD05-x",
        "--campo",
        "telefono",
        "--detalle",
        "5555555555",
        "--correo-oficial",
        "titular.dd05@iecm.mx",
    )
    assert isinstance(filed, dict)
    request = filed["solicitud"]
    world.refused("ana", 1, "cambios", "aplicar", "--solicitud", request)
    world.refused("luis", 3, "cambios", "aprobar", "--solicitud", request)
    world.ok("ana", "cambios", "aprobar", "--solicitud", request)
    applied = world.ok("ana", "cambios", "aplicar", "--solicitud", request, "--valor", "5555555555")
    assert isinstance(applied, dict)
    assert applied["estado"] == "aplicada"
    listed = world.ok("luis", "cambios", "lista")
    assert isinstance(listed, list)
    assert {"solicitud", "cuenta", "campo", "via_oficial", "estado"} <= set(listed[0])

    reported = world.ok(
        "carlos",
        "incidentes",
        "reportar",
        "--cuenta",
        "DD05-x",
        "--tipo",
        "intervencion",
        "--descripcion",
        "publicaciones ajenas",
    )
    assert isinstance(reported, dict)
    incident = reported["incidente"]
    world.ok(
        "ana", "incidentes", "notificar", "--incidente", incident, "--oficio", "UTCSyD/300/2026"
    )
    world.refused(
        "ana", 1, "incidentes", "contener", "--incidente", incident, "--detalle", "sin rotar"
    )
    world.ok("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
    world.ok("ana", "rotar", "confirmar", "--cuenta", "DD05-x")
    world.ok("ana", "incidentes", "contener", "--incidente", incident, "--detalle", "rotada")
    world.ok("ana", "incidentes", "cerrar", "--incidente", incident, "--detalle", "resuelto")
    ledger = world.ok("sofia", "incidentes", "bitacora")
    assert isinstance(ledger, list)
    row = next(r for r in ledger if r["incidente"] == incident)
    assert row["notificado_a_tiempo"] is True
    assert row["cerrado"] is not None
    world.refused("luis", 3, "incidentes", "bitacora")


def test_concurrent_rotations_exactly_one_wins(world: World) -> None:
    """Two coadministrator commands rotating the same account at once: exactly one stages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env.update(CUSTODIA_HOME=str(world.home), CUSTODIA_SESION=str(world.home / "sesion-ana.json"))
    procs = [
        subprocess.Popen(
            [CUSTODIA, "rotar", "iniciar", "--cuenta", "DD05-x", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 5], results
    loser = next(err for code, err in results if code == 5)
    assert "al mismo tiempo" in loser or "rotación en curso" in loser
    world.ok("ana", "rotar", "abandonar", "--cuenta", "DD05-x")
    # An abandoned rotation does not block the next one; the reveal names the new version.
    staged = world.ok("ana", "rotar", "iniciar", "--cuenta", "DD05-x")
    world.ok("ana", "rotar", "confirmar", "--cuenta", "DD05-x")
    assert isinstance(staged, dict)
    seen = world.ok("carlos", "revelar", "--cuenta", "DD05-x", "--motivo", "tras abandonar")
    assert isinstance(seen, dict)
    assert seen["version"] == staged["version"]
    assert seen["contrasena"] == staged["contrasena"]


def test_errors_without_session_or_service(world: World, tmp_path: Path) -> None:
    """No session: a Spanish pointer to ``sesion iniciar``; no service: a clear message."""
    result = run_custodia(
        "revelar",
        "--cuenta",
        "DD05-x",
        "--motivo",
        "x",
        home=world.home,
        env={"CUSTODIA_SESION": str(tmp_path / "none.json")},
    )
    assert result.returncode == 3
    assert "sesion iniciar" in result.stderr
    empty = run_custodia(
        "sesion",
        "quien",
        home=tmp_path / "other",
        env={"CUSTODIA_SESION": str(world.home / "sesion-ana.json")},
    )
    assert empty.returncode in (6, 7)
    assert "Traceback" not in empty.stderr
    # NATS configured but unreachable: the Spanish "service does not answer", at once (the
    # client once retried forever), and no traceback of the attempts.
    unreachable = run_custodia(
        "sesion",
        "quien",
        home=world.home,
        env={
            "CUSTODIA_SESION": str(world.home / "sesion-ana.json"),
            "CUSTODIA_NATS_URL": f"nats://127.0.0.1:{free_port()},nats://127.0.0.1:{free_port()}",
        },
        timeout=60,  # a hang fails the test
    )
    assert unreachable.returncode == 6, unreachable.stderr
    assert "El servicio de Custodia no responde" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    assert "nats: " not in unreachable.stderr


def test_a_retried_request_is_answered_without_running_twice(world: World) -> None:
    """A request whose reply was lost is retried with the same request id: the service answers
    with the recorded reply instead of running the command again (one rotation, not two)."""
    import asyncio
    import uuid

    import nats

    from custody.bootstrap import resolve
    from custody.config import Settings
    from custody.service import protocol
    from custody.service.callout import inbox_prefix

    session = json.loads((world.home / "sesion-ana.json").read_text())
    endpoints = resolve(Settings.from_env({"CUSTODIA_HOME": str(world.home)}), "cliente")
    key = protocol.ReplyKey.generate()
    headers = {
        protocol.TOKEN_HEADER: session["token"],
        protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
        protocol.REPLY_KEY_HEADER: key.public_b64(),
    }

    async def twice() -> list[bytes]:
        # ana's token is her NATS credential; her replies come to her own inbox prefix.
        nc = await nats.connect(
            **endpoints.nats_options(),  # type: ignore[arg-type]
            token=session["token"],
            inbox_prefix=inbox_prefix("ana"),
        )
        try:
            replies = []
            for _ in range(2):
                msg = await nc.request(
                    "custodia.cmd.rotar.iniciar",
                    b'{"cuenta": "DD05-facebook"}',
                    timeout=15,
                    headers=headers,
                )
                replies.append(msg.data)
            return replies
        finally:
            await nc.close()

    first, second = asyncio.run(twice())
    assert first == second
    data = protocol.decode_reply(first)
    assert key.open(data["contrasena"])  # the sealed password opens with the request's key
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    assert isinstance(accounts, list)
    facebook = next(a for a in accounts if a["cuenta"] == "DD05-facebook")
    assert facebook["version_preparada"] == data["version"]
    world.ok("ana", "rotar", "abandonar", "--cuenta", "DD05-facebook")


def test_reconciliation_finds_and_repairs_drift(world: World) -> None:
    """Someone adds a member to a district's group behind Custodia's back: ``reconciliar``
    reports the drift; ``--reparar`` removes it; the next run is clean."""
    from custody.stack.embedded import EmbeddedStack
    from custody.vault.client import VaultClient

    stack = EmbeddedStack(world.home)
    info = stack.info()
    assert info is not None
    coadmin = json.loads((world.home / "sesion-ana.json").read_text())["token"]
    root = VaultClient(info.vault_addr, stack.generate_root_token(coadmin))
    from custody.app.access import Access

    access = Access(root)
    holders = access.district_holders("DD07")
    access.set_district_holder("DD07", "mario")  # mario was never designated for DD07
    report = world.ok("ana", "reconciliar")
    assert isinstance(report, dict)
    assert any(d["objeto"] == "dd07-administracion" for d in report["diferencias"])
    world.refused("luis", 3, "reconciliar")
    repaired = world.ok("ana", "reconciliar", "--reparar")
    assert isinstance(repaired, dict)
    assert repaired["reparadas"] >= 1
    assert access.district_holders("DD07") == holders
    again = world.ok("ana", "reconciliar")
    assert isinstance(again, dict)
    assert not [d for d in again["diferencias"] if d["objeto"] == "dd07-administracion"]


def test_erasing_personal_data_keeps_the_ledger_verifiable(world: World) -> None:
    """9.IV/9.XX: after revoking roles, erasing a person destroys their personal-data key: the
    sealed data in the ledger can no longer be opened, and the ledger still verifies."""
    from custody.stack.embedded import EmbeddedStack
    from custody.vault.client import VaultClient
    from custody.vault.personal_data import PersonalDataVault
    from events.domain import person_id

    world.ok(
        "ana",
        "personas",
        "alta",
        "--usuario",
        "zoe",
        "--nombre",
        "Zoe Luna",
        "--correo",
        "zoe@iecm.mx",
        "--rol",
        "administrador",
        "--password-stdin",
        stdin="zoe-clave-segura-1\n",
    )
    world.refused("ana", 1, "personas", "borrar-datos", "--usuario", "zoe")
    world.ok("ana", "personas", "revocar", "--usuario", "zoe", "--rol", "administrador")
    world.ok("ana", "personas", "borrar-datos", "--usuario", "zoe")
    people = world.ok("sofia", "personas", "lista")
    assert isinstance(people, list)
    assert next(p for p in people if p["usuario"] == "zoe")["borrado"] is True
    stack = EmbeddedStack(world.home)
    info = stack.info()
    assert info is not None
    coadmin = json.loads((world.home / "sesion-ana.json").read_text())["token"]
    root = VaultClient(info.vault_addr, stack.generate_root_token(coadmin))
    pid = str(person_id("zoe"))
    keys = root.list(f"{root.mounts.transit}/keys", operation="test")
    assert f"pii-{pid}" not in keys  # the only key that opened zoe's sealed data is gone
    assert f"pii-{person_id('luis')}" in keys
    with pytest.raises(CustodiaError):
        PersonalDataVault(root).open(pid, "vault:v1:AAAA")
    verdict = world.run("sofia", "bitacora", "verificar", "--json")
    assert verdict.returncode == 0, verdict.stderr
    assert json.loads(verdict.stdout)["ok"] is True
    assert "Zoe Luna" not in verdict.stdout


def test_nothing_in_the_home_is_open_to_other_local_users(world: World) -> None:
    """Attack: another local account reads the projections (incident details, who read which
    account when), the notices or the logs straight from the disk, with no record anywhere.
    Every folder and file that ``custodia`` and its servers made in the home (after init, the
    service, commands and reports) has no permission for group or others."""
    # This module's own files (the service's output, the test policy of conftest.init_home).
    made_by_tests = {world.home / "servicio.log", world.home / "politica-sin-segundo-factor.toml"}
    opened = [
        f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p.relative_to(world.home)}"
        for p in [world.home, *world.home.rglob("*")]
        if p not in made_by_tests and not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert opened == []


def test_an_output_file_that_cannot_be_written_is_told_in_spanish(world: World) -> None:
    """``--salida`` into a folder that does not exist, or onto a place nothing can be written:
    a Spanish message naming the file and why, exit 2, no traceback, nothing left behind."""
    missing = world.home / "no-existe" / "cumplimiento.csv"
    for args in (
        ("reporte", "cumplimiento", "--formato", "csv", "--salida", str(missing)),
        ("bitacora", "exportar", "--salida", str(missing.with_name("bitacora.jsonl.gz"))),
        ("bitacora", "exportar", "--salida", "/proc/custodia.jsonl.gz"),
    ):
        result = world.run("sofia", *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("Error: No se pudo usar «")
        assert args[-1] in result.stderr
    assert not missing.parent.exists()


def test_one_service_per_home_and_none_before_init(world: World, tmp_path: Path) -> None:
    """A second ``custodia servicio`` for a home whose service runs is refused at once, exit 5,
    and the first one is still the one on record (before: the second ran, and stopping it made
    the home forget the first, which ``custodia detener`` then left running). On a home never
    initialized, ``servicio`` says so in Spanish, exit 7, and starts no server."""
    second = world.run(None, "servicio")
    assert second.returncode == 5, second.stderr
    assert "Ya hay un servicio de Custodia en ejecución" in second.stderr
    assert f"pid {world.service.pid}" in second.stderr
    status = world.ok(None, "estado")
    assert isinstance(status, dict)
    assert status["servicio"]["activo"] is True
    assert status["inicializado"] is True
    assert world.ok("sofia", "sesion", "quien")

    empty = tmp_path / "sin-init"
    fresh = run_custodia("servicio", home=empty)
    assert fresh.returncode == 7, fresh.stderr
    assert "ejecute primero «custodia init»" in fresh.stderr
    assert "Traceback" not in fresh.stderr
    assert "en ejecución" not in fresh.stderr
    assert not (empty / "run" / "stack.json").exists()


def test_a_code_for_an_account_without_2fa_is_told_plainly(world: World) -> None:
    """``codigo`` for an account with no registered seed: a coadministrator is told so in
    Spanish with what to do (before: OpenBao's English "unknown key" and an internal path);
    someone who may not read the account is told only that (whether it has 2FA is not theirs
    to learn)."""
    refused = world.refused("ana", 1, "codigo", "--cuenta", "DD05-x", "--motivo", "publicar")
    assert "no tiene segundo factor (2FA) registrado" in refused
    assert "custodia totp registrar" in refused
    assert "unknown key" not in refused
    outsider = world.refused("luis", 3, "codigo", "--cuenta", "DD05-x", "--motivo", "publicar")
    assert "2FA" not in outsider


def test_a_refused_login_is_told_as_a_login(world: World) -> None:
    """A wrong password (or an unknown user): said as a refused login, with OpenBao's lockout
    after repeated failures; not as a permission of the session (6.IX)."""
    result = world.run(
        None, "sesion", "iniciar", "--usuario", "nadie", "--password-stdin", stdin="mala\n"
    )
    assert result.returncode == 3, result.stderr
    assert "OpenBao no aceptó el usuario «nadie» con esa contraseña" in result.stderr
    assert "6.IX" not in result.stderr
    # A person the command names who does not exist: not found (4), not a refusal (3).
    err = world.refused(
        "luis", 4, "designar", "--distrito", "DD05", "--persona", "nadie", "--oficio", "X/1/2026"
    )
    assert "La persona nadie no está registrada en Custodia." in err


def test_free_text_in_reports_is_shown_as_written(world: World) -> None:
    """Attack: a titular writes rich markup and a spreadsheet formula into a change request
    (its detail and oficio), texts the ledger keeps for good. The reviewer's table shows them as
    written (read as markup, an unbalanced tag would make rich raise and ``reporte cambios``
    fail for everyone, and a link tag would plant a link); in CSV the formula cannot run."""
    detalle = '=HYPERLINK("https://evil.example","ver") [bold red]NO CUMPLE[/] [/i]'
    filed = world.ok(
        "luis",
        "cambios",
        "solicitar",
        "--cuenta",
        "DD05-x",
        "--campo",
        "otro",
        "--detalle",
        detalle,
        "--oficio",
        "[/b][i]x",
    )
    assert isinstance(filed, dict)
    for user, args in (("ana", ("cambios", "lista")), ("sofia", ("reporte", "cambios"))):
        shown = world.run(user, *args)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
        assert "[/b][i]x" in shown.stdout
    csv_out = world.run("sofia", "reporte", "cambios", "--formato", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert "'" + detalle in {r["detalle"] for r in rows}


def test_reports_come_from_the_projections_in_the_callers_scope(world: World) -> None:
    """Reports are built from the ledger by the service's projections: the CLI.md JSON keys are
    there; a titular sees only their district; the HTML report is one self-contained file."""
    compliance = world.ok("sofia", "reporte", "cumplimiento", "--formato", "json")
    assert isinstance(compliance, list)
    dd05 = next(r for r in compliance if r["distrito"] == "DD05")
    for key in (
        "titular",
        "administrador",
        "cuentas",
        "obligaciones_abiertas",
        "obligaciones_vencidas",
        "incidentes_abiertos",
        "cambios_abiertos",
        "veredicto",
    ):
        assert key in dd05
    assert dd05["titular"] == "luis"
    rotations = world.ok("luis", "reporte", "rotaciones", "--formato", "json")
    assert isinstance(rotations, list)
    assert rotations
    assert {r["distrito"] for r in rotations} == {"DD05"}
    assert {"cuenta", "distrito", "motivo", "abierta", "vence", "cerrada", "estado"} <= set(
        rotations[0]
    )
    world.refused("luis", 3, "reporte", "rotaciones", "--distrito", "DD07")
    exposure = world.ok("ana", "reporte", "exposicion", "--distrito", "DD05", "--formato", "json")
    assert isinstance(exposure, list)
    x = next(r for r in exposure if r["cuenta"] == "DD05-x")
    assert isinstance(x["personas"], list)
    html = world.home / "cumplimiento.html"
    result = world.run(
        "sofia", "reporte", "cumplimiento", "--formato", "html", "--salida", str(html)
    )
    assert result.returncode == 0, result.stderr
    text = html.read_text()
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "<svg" in text
    assert "http://" not in text.replace("http://www.w3.org", "")


def test_no_secret_anywhere_in_the_stream_logs_or_audit(world: World) -> None:
    """R7 / 8.D: every password staged or revealed in this module, every login password, every
    session token, wrapping token, TOTP seed and code, the root token, the unseal key and the
    NATS passwords appear in no message of any stream (events, checkpoints, snapshots,
    idempotency records), in the service's log, in the projections' SQLite files, in OpenBao's
    audit log (which did record them, hashed), nor in the ledger export; the CLI printed none
    but the passwords and codes it exists to show, and never in an error."""
    import asyncio

    import nats
    from nats.js.errors import BadRequestError, NotFoundError

    from custody import bootstrap
    from custody.config import Settings
    from custody.service.client import CommandClient
    from custody.stack.embedded import EmbeddedStack
    from custody.vault.client import VaultClient
    from custody.vault.credentials import Credentials
    from tests.support.secretscan import scan

    stack = EmbeddedStack(world.home)
    keys = stack.vault_keys()
    users = stack.nats_users()
    # A 2FA seed registered and a code read through the CLI; a reveal and a code read in-process
    # too, for their wrapping tokens (the CLI unwraps them and never shows them).
    world.ok("ana", "totp", "registrar", "--cuenta", "DD05-x", stdin=TOTP_URI + "\n")
    shown_code = world.ok("ana", "codigo", "--cuenta", "DD05-x", "--motivo", "entrar")
    assert isinstance(shown_code, dict)
    settings = Settings.from_env({"CUSTODIA_HOME": str(world.home)})
    ana_token = json.loads((world.home / "sesion-ana.json").read_text())["token"]
    client = CommandClient(bootstrap.resolve(settings, "cliente"), ana_token)
    revealed = client.call("revelar", {"cuenta": "DD05-x", "motivo": "prueba de fugas"})
    code = client.call("codigo", {"cuenta": "DD05-x", "motivo": "prueba de fugas"})
    vault = Credentials(VaultClient(bootstrap.resolve(settings, "cliente").vault_addr))
    revealed_password = vault.unwrap(revealed["envoltorio"], "DD05-x").password
    unwrapped_code = vault.unwrap_totp(code["envoltorio"], "DD05-x").code
    # Shown on purpose by ``revelar``, ``rotar iniciar`` and ``codigo``: never anywhere else.
    shown = [
        *world.seen_secrets,
        revealed_password,
        str(shown_code["codigo"]),
        unwrapped_code,
    ]
    never_shown = [
        *PASSWORDS.values(),
        revealed["envoltorio"],
        code["envoltorio"],
        TOTP_SEED,
        *([keys.root_token] if keys.root_token else []),  # revoked by init
        keys.unseal_key,
        *(u.password for u in users.values()),
        *(json.loads(p.read_text())["token"] for p in world.home.glob("sesion-*.json")),
        (world.home / "secrets" / "servicio-token").read_text().strip(),
    ]
    secrets = [*shown, *never_shown]
    assert len(world.seen_secrets) >= 4
    info = stack.info()
    assert info is not None

    async def every_message() -> list[bytes]:
        nc = await nats.connect(
            info.nats_url, user="administrador", password=users["administrador"].password
        )
        js = nc.jetstream()
        found: list[bytes] = []
        try:
            names = [str(s.config.name) for s in await js.streams_info()]
            assert "custodia-events" in names
            for name in names:
                state = (await js.stream_info(name)).state
                for seq in range(state.first_seq, state.last_seq + 1):
                    try:
                        msg = await js.get_msg(name, seq)
                    except (NotFoundError, BadRequestError):  # superseded KV records
                        continue
                    found.append(str(msg.subject).encode() + b" " + (msg.data or b""))
                    found.append(repr(msg.headers).encode())
        finally:
            await nc.close()
        return found

    messages = asyncio.run(every_message())
    assert len(messages) > 50
    assert scan(messages, secrets, where="stream") == []
    assert scan((world.home / "servicio.log").read_bytes(), secrets, where="log") == []
    projections = sorted(world.home.rglob("*.sqlite*"))
    assert projections, "no projection database found"
    for path in projections:
        assert scan(path.read_bytes(), secrets, where=path.name) == []
    # OpenBao's audit device hashes every value it logs: the scan below fails only if it were
    # set to log raw (``log_raw``). The control: the log does hold ana's login password, as
    # the HMAC OpenBao itself computes for it — the entries that carried secrets were scanned.
    audit = (world.home / "openbao" / "audit.log").read_bytes()
    # ``init`` revoked the root token: an operator regenerates one (unseal key + ana's token).
    root = VaultClient(
        bootstrap.resolve(settings, "cliente").vault_addr, stack.generate_root_token(ana_token)
    )
    hashed = root.write(
        "sys/audit-hash/custodia-audit", {"input": PASSWORDS["ana"]}, operation="audit-hash"
    )
    assert hashed is not None
    assert str(hashed.get("hash") or hashed["data"]["hash"]).encode() in audit
    assert scan(audit, secrets, where="audit") == []
    # The CLI: errors never carry a secret; output carries only what the command shows.
    for command, stdout, stderr in world.outputs:
        assert scan(stderr, secrets, where=f"stderr of {command}") == []
        assert scan(stdout, never_shown, where=f"stdout of {command}") == []
    export = world.home / "export.jsonl.gz"
    result = world.run("sofia", "bitacora", "exportar", "--salida", str(export))
    assert result.returncode == 0, result.stderr
    import gzip

    assert scan(gzip.decompress(export.read_bytes()), secrets, where="export") == []
