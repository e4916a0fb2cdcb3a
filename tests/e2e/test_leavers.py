"""Joiners, movers and leavers (issue 18), through the real ``custodia`` executable against the
shared running ``custodia servicio`` on the embedded NATS and OpenBao. Access is checked against
OpenBao itself, with each person's own token: a refusal is the server's 403, never a client's
opinion.

People: ana (coadministrator), lucio (titular of DD22, named by ``personas alta``), berta and
carmelo (administrators of DD22), pablo (a second coadministrator), rocio (titular of DD23, acting
titular of DD22 in one test).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.errors import VaultPermissionDeniedError, VaultTokenInvalidError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from events.errors import CustodiaError

from .conftest import SERVICE_PASSWORD, ServiceWorld

pytestmark = pytest.mark.e2e

ACCOUNT_PATH = "custodia/data/cuentas/DD22/x"


class Leavers(ServiceWorld):
    def ok(self, user: str, *args: str, stdin: str | None = None) -> Any:
        result = self.run(user, *args, "--json", stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return json.loads(result.stdout)

    def refused(self, user: str, *args: str) -> tuple[int, str]:
        result = self.run(user, *args)
        assert result.returncode != 0, f"{args} was accepted: {result.stdout}"
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("Error: ")
        return result.returncode, result.stderr

    def alta(self, user: str, role: str, district: str | None = None) -> Any:
        args = ["personas", "alta", "--usuario", user, "--nombre", user.title()]
        args += ["--correo", f"{user}@iecm.mx", "--rol", role, "--password-stdin"]
        if district:
            args += ["--distrito", district]
        return self.ok("ana", *args, stdin=SERVICE_PASSWORD.format(user) + "\n")

    def vault(self, token: str | None) -> VaultClient:
        return VaultClient(self.endpoints().vault_addr, token)

    def can_read(self, user: str) -> bool:
        """Whether OpenBao grants ``user``'s current session token the reveal of DD22-x: its
        answer on the reveal's marker, the very question the service asks before it reads on
        the person's behalf (people's tokens never read a secret themselves)."""
        try:
            Credentials(self.vault(None)).authorize(self.token(user), "DD22-x", "revelar")
        except VaultPermissionDeniedError:
            return False
        return True


def today() -> str:
    return datetime.now(ZoneInfo("America/Mexico_City")).date().isoformat()


@pytest.fixture(scope="module")
def world(service_world: ServiceWorld) -> Leavers:
    """The shared service world (tests/e2e/conftest.py), with people and a district of this
    module's own (DD22, and DD23 for a second titular): nobody else acts on them there."""
    world = Leavers(service_world.home, service_world.service)
    world.alta("lucio", "titular", "DD22")  # through the CLI: the first test is about it
    world.login("lucio")
    # The others through the same command sent in-process (no executable to start per person).
    world.add_person("rocio", "titular", "DD23")
    for user in ("berta", "carmelo"):
        world.add_person(user, "administrador", "DD22")
    world.add_person("pablo", "coadministrador")
    world.call(
        "ana",
        "cuentas.alta",
        {"cuenta": "DD22-x", "usuario": "DD22IECM", "correo": "dd22.x@iecm.mx"},
    )
    world.call("ana", "rotar.iniciar", {"cuenta": "DD22-x"})
    world.call("ana", "rotar.confirmar", {"cuenta": "DD22-x"})
    return world


def test_a_titular_registered_with_personas_alta_designates_and_utcsyd_only_by_exception(
    world: Leavers,
) -> None:
    """``personas alta --rol titular --distrito DD22`` makes lucio DD22's titular, so he can
    designate at once (before: "Solo la persona titular de DD22 puede hacer esto"). A second
    titular for DD22 is refused, naming ``custodia titular``. A coadministrator designating
    without ``--excepcion`` is refused; with it, the exception is recorded in the history."""
    _, err = world.refused(
        "ana", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "X/1/2026"
    )
    assert "excepción" in err
    assert "titular" in err
    data = world.ok(
        "lucio", "designar", "--distrito", "22", "--persona", "berta", "--oficio", "DD22/001/2026"
    )
    assert data["administrador"] == "berta"
    assert world.can_read("berta")

    result = world.run(
        "ana", "personas", "alta", "--usuario", "otro", "--nombre", "Otro", "--correo",
        "otro@iecm.mx", "--rol", "titular", "--distrito", "DD22", "--password-stdin",
        stdin="otro-clave-segura-1\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert "custodia titular --distrito DD22" in result.stderr

    world.ok(
        "ana", "designar", "--distrito", "DD22", "--persona", "carmelo", "--oficio",
        "UTCSyD/9/2026", "--excepcion", "Titular incomunicado; instrucción de la DAOD",
    )  # fmt: skip
    assert world.can_read("carmelo")
    assert not world.can_read("berta")
    rows = world.ok("ana", "historial", "--distrito", "DD22")
    carmelo = [r for r in rows if r["persona"] == "carmelo" and r["rol"] == "administrador"]
    assert carmelo[-1]["excepcion"] == "Titular incomunicado; instrucción de la DAOD"
    assert carmelo[-1]["via_oficial"].startswith("oficio UTCSyD/9/2026")
    report = world.ok("ana", "reporte", "cumplimiento", "--distrito", "DD22", "--formato", "json")
    flagged = report[0]["excepciones_autoridad"]
    assert [(x["accion"], x["motivo"], x["por"]) for x in flagged] == [
        ("designate administrators", "Titular incomunicado; instrucción de la DAOD", "ana")
    ]
    world.ok(
        "lucio", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "DD22/002/2026"
    )
    assert world.can_read("berta")
    assert not world.can_read("carmelo")


def test_absence_takes_only_temporary_reasons_and_ends_from_the_cli(world: Leavers) -> None:
    """``ausencia --motivo baja`` is refused naming ``personas baja``; a vacation hands access to
    the substitute; ``ausencia terminar`` gives it back at once and takes it from the substitute
    (OpenBao refuses the substitute's next read); after an open-ended absence, designating the
    returning administrator again works."""
    _, err = world.refused(
        "lucio", "ausencia", "--distrito", "DD22", "--motivo", "baja", "--desde", today(),
        "--sustituto", "carmelo", "--oficio", "DD22/010/2026",
    )  # fmt: skip
    assert "personas baja" in err
    world.ok(
        "lucio", "ausencia", "--distrito", "DD22", "--motivo", "vacaciones", "--desde", today(),
        "--sustituto", "carmelo", "--oficio", "DD22/011/2026",
    )  # fmt: skip
    assert world.can_read("carmelo")
    assert not world.can_read("berta")
    ended = world.ok("lucio", "ausencia", "terminar", "--distrito", "DD22", "--oficio", "D/12")
    assert ended["administrador"] == "berta"
    assert ended["saliente"] == "carmelo"
    assert ended["obligaciones_abiertas"] >= 1
    assert world.can_read("berta")
    assert not world.can_read("carmelo")

    world.ok(
        "lucio", "ausencia", "--distrito", "DD22", "--motivo", "salud", "--desde", today(),
        "--sustituto", "carmelo", "--oficio", "DD22/013/2026",
    )  # fmt: skip
    assert not world.can_read("berta")
    again = world.ok(
        "lucio", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "DD22/014"
    )
    assert again["administrador"] == "berta"
    assert again["saliente"] == "carmelo"
    assert world.can_read("berta")
    assert not world.can_read("carmelo")


def test_an_acting_titular_designates_only_while_the_encargo_lasts(world: Leavers) -> None:
    """``titular encargo``: rocio acts as DD22's titular (designates); after ``titular
    fin-encargo`` she is refused again, and the history lists her as titular_encargado."""
    world.refused(
        "rocio", "designar", "--distrito", "DD22", "--persona", "carmelo", "--oficio", "R/1"
    )
    world.ok(
        "lucio", "titular", "encargo", "--distrito", "DD22", "--persona", "rocio", "--desde",
        today(), "--oficio", "DD22/020/2026",
    )  # fmt: skip
    world.ok("rocio", "designar", "--distrito", "DD22", "--persona", "carmelo", "--oficio", "R/2")
    assert world.can_read("carmelo")
    assert not world.can_read("berta")
    world.ok("lucio", "titular", "fin-encargo", "--distrito", "DD22", "--oficio", "DD22/021")
    world.refused(
        "rocio", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "R/3"
    )
    world.ok("lucio", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "L/4")
    rows = world.ok("ana", "historial", "--distrito", "DD22", "--fecha", today())
    roles = {(r["rol"], r["persona"]) for r in rows}
    assert ("titular_encargado", "rocio") in roles
    assert ("titular", "lucio") in roles
    assert ("sustituto", "carmelo") in roles
    csv_report = world.run(
        "ana", "reporte", "designaciones", "--distrito", "DD22", "--formato", "csv"
    )
    assert csv_report.returncode == 0, csv_report.stderr
    assert csv_report.stdout.startswith("rol,persona,desde,hasta,via_oficial,excepcion")
    assert "titular_encargado,rocio," in csv_report.stdout


def test_revoking_the_administrator_role_removes_access_and_owes_rotations(
    world: Leavers,
) -> None:
    """``personas revocar --rol administrador`` of the holder: the district group is emptied
    (OpenBao refuses the next read), the district has no administrator, a rotation is owed —
    and the person's session itself stays valid (not a departure)."""
    world.ok("lucio", "designar", "--distrito", "DD22", "--persona", "carmelo", "--oficio", "L/5")
    assert world.can_read("carmelo")
    data = world.ok("ana", "personas", "revocar", "--usuario", "carmelo", "--rol", "administrador")
    assert data["obligaciones_abiertas"] == ["DD22-x"]
    assert not world.can_read("carmelo")
    world.vault(world.token("carmelo")).lookup_self()  # still a valid session
    rows = world.ok("ana", "historial", "--distrito", "DD22")
    last = [r for r in rows if r["rol"] == "administrador"][-1]
    assert last["persona"] == "carmelo"
    assert last["hasta"] is not None


def test_a_leavers_old_token_is_refused_by_openbao_right_after_personas_baja(
    world: Leavers,
) -> None:
    """``personas baja`` of the designated administrator: the very next request with her old
    token is refused by OpenBao (lookup-self and the credential read: 403), she cannot log in
    again, the district has no administrator until the titular designates, and the rotation of
    every account she could read is owed."""
    world.ok("lucio", "designar", "--distrito", "DD22", "--persona", "berta", "--oficio", "L/6")
    old_token = world.token("berta")
    assert world.can_read("berta")
    data = world.ok(
        "ana", "personas", "baja", "--usuario", "berta", "--motivo", "promocion",
        "--oficio", "DD22/030/2026",
    )  # fmt: skip
    assert data["roles_terminados"] == {"administrador": "DD22"}
    assert data["obligaciones_abiertas"] == ["DD22-x"]
    with pytest.raises(VaultTokenInvalidError):  # OpenBao's own 403 on lookup-self
        world.vault(old_token).lookup_self()
    with pytest.raises(VaultPermissionDeniedError):
        world.vault(old_token).request("GET", ACCOUNT_PATH, operation="test-read", wrap_ttl=30)
    with pytest.raises(CustodiaError):
        world.login("berta")
    # The service refuses her too (its own lookup of the token is refused by OpenBao).
    assert world.run("berta", "sesion", "quien").returncode != 0

    rows = world.ok("ana", "historial", "--distrito", "DD22")
    last = [r for r in rows if r["rol"] == "administrador"][-1]
    assert last["persona"] == "berta"
    assert last["hasta"] is not None
    people = {p["usuario"]: p for p in world.ok("ana", "personas", "lista")}
    assert people["berta"]["roles"] == {}
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD22")
    assert accounts[0]["obligaciones_abiertas"] >= 1
    _, err = world.refused(
        "ana", "personas", "baja", "--usuario", "berta", "--motivo", "baja", "--oficio", "X/2"
    )
    assert "baja" in err


def test_a_departing_coadministrator_owes_every_account_they_generated(
    world: Leavers,
) -> None:
    """A coadministrator who generated DD22-x's current password leaves: the account owes a
    rotation, their old token is refused by OpenBao at once, and the titulares group and the
    coadministradores group no longer count them."""
    world.ok("pablo", "rotar", "iniciar", "--cuenta", "DD22-x")
    world.ok("pablo", "rotar", "confirmar", "--cuenta", "DD22-x")
    before = world.ok("ana", "cuentas", "lista", "--distrito", "DD22")[0]["obligaciones_abiertas"]
    old_token = world.token("pablo")
    data = world.ok(
        "ana", "personas", "baja", "--usuario", "pablo", "--motivo", "cambio-adscripcion",
        "--memorandum", "UTCSyD/M/7",
    )  # fmt: skip
    assert data["roles_terminados"] == {"coadministrador": None}
    assert data["obligaciones_abiertas"] == ["DD22-x"]
    after = world.ok("ana", "cuentas", "lista", "--distrito", "DD22")[0]["obligaciones_abiertas"]
    assert after == before + 1
    with pytest.raises(VaultTokenInvalidError):  # OpenBao's own 403 on lookup-self
        world.vault(old_token).lookup_self()
    # ana cannot leave by her own hand.
    world.refused(
        "ana", "personas", "baja", "--usuario", "ana", "--motivo", "otro", "--oficio", "Y"
    )
