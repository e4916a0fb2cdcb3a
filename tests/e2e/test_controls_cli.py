"""The institution's controls through the real ``custodia`` executable against a running
service on the embedded NATS and OpenBao (issue 19): institutional devices (8.B), authorized
hours and the IECM's non-working days (8.A), recertification, and the maximum password age
under a policy file that requires registered devices and lets no password age.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from events.domain import Policy

from .conftest import (
    CUSTODIA,
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    stop_service,
)

pytestmark = pytest.mark.e2e

POLICY = """
[plazos]
antiguedad_maxima_dias = 0

[equipos]
exigir_registrado = true
"""


def _start(home: Path) -> subprocess.Popen[bytes]:
    """``custodia servicio`` under the test policy, with a short periodic pass; ready on return."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env["CUSTODIA_HOME"] = str(home)
    env["CUSTODIA_POLITICA"] = str(home / "politica.toml")
    env["CUSTODIA_AVANCE_SECONDS"] = "2"
    log_file = home / "servicio.log"
    ready_before = log_file.read_bytes().count(b"servicio_listo") if log_file.exists() else 0
    with log_file.open("ab") as log:
        service = subprocess.Popen([CUSTODIA, "servicio"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while log_file.read_bytes().count(b"servicio_listo") <= ready_before:
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service(service)
            raise RuntimeError(log_file.read_text(errors="replace")[-2000:])
        time.sleep(0.1)
    return service


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceWorld]:
    """A home of its own: ana (coadministrator), luis titular of DD05, bety designated for DD05,
    mario administrator of DD07, account DD05-x with a confirmed password."""
    home = tmp_path_factory.mktemp("custodia-controles")
    (home / "politica.toml").write_text(POLICY)
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = _start(home)
        world = ServiceWorld(home, service)
        try:
            world.login("ana")
            world.add_person("luis", "titular", "DD05")
            world.add_person("bety", "administrador", "DD05")
            world.add_person("mario", "administrador", "DD07")
            world.call("ana", "titular", {"distrito": "DD05", "persona": "luis"})
            world.call(
                "ana",
                "cuentas.alta",
                {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"},
            )
            world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
            world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
            world.call(
                "luis", "designar", {"distrito": "DD05", "persona": "bety", "oficio": "DD05/1/2026"}
            )
            # The periodic pass writes too (the policy, the password-age obligation): a whole
            # pass after the set-up, so that what the tests count is theirs alone.
            log = home / "servicio.log"
            passes = log.read_bytes().count(b"controles_al_dia")
            _wait(lambda: log.read_bytes().count(b"controles_al_dia") > passes + 1, "no pass")
            yield world
        finally:
            stop_service(world.service)
    finally:
        run_custodia("detener", home=home)


def ok(world: ServiceWorld, user: str, *args: str) -> Any:
    return world.json(user, *args)


def refused(world: ServiceWorld, user: str, code: int, *args: str) -> str:
    """``args`` fail with exit ``code`` and a Spanish message, and the ledger is unchanged."""
    before = world.ledger_messages()
    result = world.run(user, *args)
    assert result.returncode == code, f"{args}: rc={result.returncode} {result.stderr}"
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")
    assert world.ledger_messages() == before
    return result.stderr


def today() -> str:
    return datetime.now(ZoneInfo("America/Mexico_City")).date().isoformat()


def report(world: ServiceWorld, kind: str) -> list[dict[str, Any]]:
    rows = ok(world, "ana", "reporte", kind, "--formato", "json")
    assert isinstance(rows, list)
    return rows


def test_devices_are_registered_listed_and_required_for_a_read(world: ServiceWorld) -> None:
    """8.B: UTCSyD registers a device for DD05; a titular may not; a bad district or a
    duplicate is refused with nothing written. Under ``exigir_registrado`` a read naming no
    device or another device is refused before anything is read (no password shown, nothing
    recorded); from the registered device it is shown."""
    added = ok(
        world, "ana", "equipos", "alta", "--equipo", "PC-DD05-01", "--distrito", "5",
        "--descripcion", "PC de comunicación",
    )  # fmt: skip
    assert added == {
        "equipo": "PC-DD05-01",
        "distrito": "DD05",
        "descripcion": "PC de comunicación",
    }
    message = refused(
        world, "luis", 3, "equipos", "alta", "--equipo", "PC-X", "--distrito", "DD05",
        "--descripcion", "x",
    )  # fmt: skip
    assert "coadministradora" in message
    refused(
        world, "ana", 2, "equipos", "alta", "--equipo", "PC-X", "--distrito", "DD99",
        "--descripcion", "x",
    )  # fmt: skip
    assert "ya está registrado" in refused(
        world, "ana", 5, "equipos", "alta", "--equipo", "PC-DD05-01", "--distrito", "DD06",
        "--descripcion", "x",
    )  # fmt: skip
    assert "no está registrado" in refused(world, "ana", 4, "equipos", "baja", "--equipo", "NADA")
    listed = ok(world, "ana", "equipos", "lista")
    assert [(d["equipo"], d["distrito"]) for d in listed] == [("PC-DD05-01", "DD05")]
    refused(world, "bety", 3, "equipos", "lista")

    for device in ([], ["--dispositivo", "PC-CASA"]):
        message = refused(
            world, "bety", 3, "revelar", "--cuenta", "DD05-x", "--motivo", "publicar", *device
        )
        assert "8.B" in message
        assert "No se leyó nada" in message
    shown = ok(
        world, "bety", "revelar", "--cuenta", "DD05-x", "--motivo", "publicar",
        "--dispositivo", "PC-DD05-01",
    )  # fmt: skip
    assert shown["cuenta"] == "DD05-x"
    assert shown["contrasena"]


def test_non_working_days_and_authorized_hours_decide_the_read_flags(world: ServiceWorld) -> None:
    """8.A: with today declared an IECM non-working day a read is flagged outside working
    hours, whatever the hour; once other hours are authorized for today, the next read is
    not. Bad input (reversed period, half a time range, no vía oficial, a titular) is refused
    with nothing written."""
    ok(world, "ana", "equipos", "alta", "--equipo", "PC-DD05-02", "--distrito", "DD05",
       "--descripcion", "PC 2")  # fmt: skip
    day = ok(world, "ana", "calendario", "inhabil", "--fecha", today(), "--oficio", "IECM/SA/1")
    assert day["registrado"] is True
    ok(world, "bety", "revelar", "--cuenta", "DD05-x", "--motivo", "lectura en dia inhabil",
       "--dispositivo", "PC-DD05-02")  # fmt: skip

    yesterday = (datetime.fromisoformat(today()) - timedelta(days=1)).date().isoformat()
    for bad in (
        ["--desde", today(), "--hasta", yesterday, "--motivo", "x", "--oficio", "O/1"],
        ["--desde", today(), "--hasta", today(), "--inicio", "18:00", "--motivo", "x",
         "--oficio", "O/1"],
        ["--desde", today(), "--hasta", today(), "--motivo", "x"],
        ["--desde", "2026-13-01", "--hasta", today(), "--motivo", "x", "--oficio", "O/1"],
    ):  # fmt: skip
        refused(world, "ana", 2, "horario", "especial", *bad)
    refused(world, "luis", 3, "horario", "especial", "--desde", today(), "--hasta", today(),
            "--motivo", "x", "--oficio", "O/1")  # fmt: skip
    refused(world, "ana", 2, "calendario", "inhabil", "--fecha", "mañana", "--oficio", "O/1")

    window = ok(
        world, "ana", "horario", "especial", "--desde", yesterday, "--hasta", today(),
        "--motivo", "proceso electoral", "--oficio", "IECM/SE/100/2026",
    )  # fmt: skip
    assert window["hasta"] == today()
    assert window["inicio"] is None
    ok(world, "bety", "revelar", "--cuenta", "DD05-x", "--motivo", "lectura en horario autorizado",
       "--dispositivo", "PC-DD05-02")  # fmt: skip

    flagged = {r["motivo"]: r for r in report(world, "lecturas")}
    assert flagged["lectura en dia inhabil"]["fuera_de_horario"] is True
    assert flagged["lectura en dia inhabil"]["dispositivo_registrado"] is True
    authorized = flagged.get("lectura en horario autorizado")
    assert authorized is None or authorized["fuera_de_horario"] is False


def test_recertification_campaign_through_the_cli(world: ServiceWorld) -> None:
    """A coadministrator opens 2026-T4 (once; a bad period is refused); luis, titular of DD05,
    confirms bety and DD05-x; another person may not answer for DD05; UTCSyD attests its
    roster; the compliance report shows each district's answer (DD06 still pending)."""
    refused(world, "ana", 2, "recertificar", "iniciar", "--periodo", "2026-T5")
    refused(world, "luis", 3, "recertificar", "iniciar", "--periodo", "2026-T4")
    opened = ok(world, "ana", "recertificar", "iniciar", "--periodo", "2026-T4")
    assert opened["periodo"] == "2026-T4"
    refused(world, "ana", 5, "recertificar", "iniciar", "--periodo", "2026-T4")
    refused(world, "luis", 4, "recertificar", "confirmar", "--distrito", "DD05",
            "--periodo", "2026-T1")  # fmt: skip
    refused(world, "mario", 3, "recertificar", "confirmar", "--distrito", "DD05",
            "--periodo", "2026-T4")  # fmt: skip
    answer = ok(
        world, "luis", "recertificar", "confirmar", "--distrito", "5", "--periodo", "2026-T4"
    )
    assert answer == {
        "periodo": "2026-T4",
        "distrito": "DD05",
        "estado": "confirmada",
        "administrador": "bety",
        "cuentas": ["DD05-x"],
    }
    roster = ok(world, "ana", "recertificar", "confirmar", "--periodo", "2026-T4")
    assert roster["distrito"] == "UTCSyD"
    assert "ana" in roster["personas"]

    rows = {r["distrito"]: r for r in report(world, "cumplimiento")}
    assert rows["DD05"]["recertificacion"]["estado"] == "confirmada"
    assert rows["DD06"]["recertificacion"]["estado"] == "pendiente"
    assert rows["DD06"]["recertificacion_vencida"] is False
    for key in ("distrito", "titular", "administrador", "obligaciones_vencidas", "veredicto"):
        assert key in rows["DD05"]  # the contract's keys stay


def test_recorded_non_working_days_move_rotation_deadlines(world: ServiceWorld) -> None:
    """The IECM's non-working day recorded in the ledger counts as such for deadlines in
    business days: declaring the next business day non-working moves the deadline of the
    rotation a new designation obliges to the end of the business day after it."""
    local = ZoneInfo("America/Mexico_City")
    next_day = datetime.now(local).date() + timedelta(days=1)
    while not Policy().is_business_day(next_day):
        next_day += timedelta(days=1)
    ok(world, "ana", "calendario", "inhabil", "--fecha", next_day.isoformat(), "--oficio", "O/2")
    world.add_person("carla", "administrador", "DD05")
    ok(world, "luis", "designar", "--distrito", "DD05", "--persona", "carla", "--oficio", "O/3")
    opened = [
        r
        for r in report(world, "rotaciones")
        if r["motivo"] == "designacion" and r["estado"] == "abierta"
    ]
    latest = max(opened, key=lambda r: str(r["abierta"]))
    at = datetime.fromisoformat(str(latest["abierta"]))
    without = Policy().rotation_deadline(at)
    with_day = Policy().with_calendar({next_day}, ()).rotation_deadline(at)
    assert with_day > without
    assert datetime.fromisoformat(str(latest["vence"])) == with_day


def _age_obligations(world: ServiceWorld) -> list[dict[str, Any]]:
    return [
        r
        for r in report(world, "rotaciones")
        if r["motivo"] == "antiguedad" and r["cuenta"] == "DD05-x" and r["estado"] != "cumplida"
    ]


def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _policies(world: ServiceWorld) -> list[dict[str, Any]]:
    """The policies recorded in the ledger, as the read side projected them."""
    with sqlite3.connect(world.home / "proyecciones.sqlite") as conn:
        rows = conn.execute("SELECT settings FROM policies ORDER BY position").fetchall()
    return [json.loads(row[0]) for row in rows]


def test_an_old_password_opens_one_obligation_across_restarts(world: ServiceWorld) -> None:
    """Maximum password age 0 days: the periodic pass opens one rotation obligation (motivo
    ``antiguedad``) for DD05-x's current password; after the service restarts (under a
    changed policy file) and runs its pass again, there is still exactly one. The policy the
    service ran under is in the ledger, once per change: the restart adds exactly one."""
    _wait(lambda: len(_age_obligations(world)) >= 1, "no age obligation")
    assert len(_age_obligations(world)) == 1
    _wait(lambda: len(_policies(world)) == 1, "the first policy is not recorded")
    assert _policies(world)[0]["equipos"] == {"exigir_registrado": True}
    stop_service(world.service)
    (world.home / "politica.toml").write_text(POLICY + '\n[horario]\nfin = "19:00"\n')
    log = world.home / "servicio.log"
    before = log.read_bytes().count(b"controles_al_dia")
    world.service = _start(world.home)
    _wait(lambda: log.read_bytes().count(b"controles_al_dia") > before + 1, "no pass after restart")
    assert len(_age_obligations(world)) == 1
    _wait(lambda: len(_policies(world)) == 2, "the changed policy is not recorded")
    assert [p["horario"]["fin"] for p in _policies(world)] == ["18:00", "19:00"]
