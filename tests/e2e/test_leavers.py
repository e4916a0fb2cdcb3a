"""Joiners, movers and leavers (issue 18), through the real ``custodia`` executable against a
running ``custodia servicio`` on the embedded NATS and OpenBao. Access is checked against
OpenBao itself, with each person's own token: a refusal is the server's 403, never a client's
opinion.

People: ana (coadministrator), luis (titular of DD05, named by ``personas alta``), bety and
carlos (administrators of DD05), pedro (a second coadministrator), rosa (titular of DD06, acting
titular of DD05 in one test).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.errors import VaultPermissionDeniedError, VaultTokenInvalidError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from events.errors import CustodiaError

from .conftest import (
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.e2e

ACCOUNT_PATH = "custodia/data/cuentas/DD05/x"


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
        """Whether OpenBao grants ``user``'s current session token the reveal of DD05-x: its
        answer on the reveal's marker, the very question the service asks before it reads on
        the person's behalf (people's tokens never read a secret themselves)."""
        try:
            Credentials(self.vault(None)).authorize(self.token(user), "DD05-x", "revelar")
        except VaultPermissionDeniedError:
            return False
        return True


def today() -> str:
    return datetime.now(ZoneInfo("America/Mexico_City")).date().isoformat()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leavers]:
    home = tmp_path_factory.mktemp("custodia-leavers")
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home)
        try:
            world = Leavers(home, service)
            world.login("ana")
            world.alta("luis", "titular", "DD05")
            world.alta("rosa", "titular", "DD06")
            for user in ("bety", "carlos"):
                world.alta(user, "administrador", "DD05")
            world.alta("pedro", "coadministrador")
            for user in ("luis", "rosa", "bety", "carlos", "pedro"):
                world.login(user)
            world.call(
                "ana",
                "cuentas.alta",
                {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"},
            )
            world.call("ana", "rotar.iniciar", {"cuenta": "DD05-x"})
            world.call("ana", "rotar.confirmar", {"cuenta": "DD05-x"})
            yield world
        finally:
            stop_service(service)
    finally:
        run_custodia("detener", home=home)


def test_a_titular_registered_with_personas_alta_designates_and_utcsyd_only_by_exception(
    world: Leavers,
) -> None:
    """``personas alta --rol titular --distrito DD05`` makes luis DD05's titular, so he can
    designate at once (before: "Solo la persona titular de DD05 puede hacer esto"). A second
    titular for DD05 is refused, naming ``custodia titular``. A coadministrator designating
    without ``--excepcion`` is refused; with it, the exception is recorded in the history."""
    _, err = world.refused(
        "ana", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "X/1/2026"
    )
    assert "excepción" in err
    assert "titular" in err
    data = world.ok(
        "luis", "designar", "--distrito", "5", "--persona", "bety", "--oficio", "DD05/001/2026"
    )
    assert data["administrador"] == "bety"
    assert world.can_read("bety")

    result = world.run(
        "ana", "personas", "alta", "--usuario", "otro", "--nombre", "Otro", "--correo",
        "otro@iecm.mx", "--rol", "titular", "--distrito", "DD05", "--password-stdin",
        stdin="otro-clave-segura-1\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert "custodia titular --distrito DD05" in result.stderr

    world.ok(
        "ana", "designar", "--distrito", "DD05", "--persona", "carlos", "--oficio",
        "UTCSyD/9/2026", "--excepcion", "Titular incomunicado; instrucción de la DAOD",
    )  # fmt: skip
    assert world.can_read("carlos")
    assert not world.can_read("bety")
    rows = world.ok("ana", "historial", "--distrito", "DD05")
    carlos = [r for r in rows if r["persona"] == "carlos" and r["rol"] == "administrador"]
    assert carlos[-1]["excepcion"] == "Titular incomunicado; instrucción de la DAOD"
    assert carlos[-1]["via_oficial"].startswith("oficio UTCSyD/9/2026")
    report = world.ok("ana", "reporte", "cumplimiento", "--distrito", "DD05", "--formato", "json")
    flagged = report[0]["excepciones_autoridad"]
    assert [(x["accion"], x["motivo"], x["por"]) for x in flagged] == [
        ("designate administrators", "Titular incomunicado; instrucción de la DAOD", "ana")
    ]
    world.ok(
        "luis", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "DD05/002/2026"
    )
    assert world.can_read("bety")
    assert not world.can_read("carlos")


def test_absence_takes_only_temporary_reasons_and_ends_from_the_cli(world: Leavers) -> None:
    """``ausencia --motivo baja`` is refused naming ``personas baja``; a vacation hands access to
    the substitute; ``ausencia terminar`` gives it back at once and takes it from the substitute
    (OpenBao refuses the substitute's next read); after an open-ended absence, designating the
    returning administrator again works."""
    _, err = world.refused(
        "luis", "ausencia", "--distrito", "DD05", "--motivo", "baja", "--desde", today(),
        "--sustituto", "carlos", "--oficio", "DD05/010/2026",
    )  # fmt: skip
    assert "personas baja" in err
    world.ok(
        "luis", "ausencia", "--distrito", "DD05", "--motivo", "vacaciones", "--desde", today(),
        "--sustituto", "carlos", "--oficio", "DD05/011/2026",
    )  # fmt: skip
    assert world.can_read("carlos")
    assert not world.can_read("bety")
    ended = world.ok("luis", "ausencia", "terminar", "--distrito", "DD05", "--oficio", "D/12")
    assert ended["administrador"] == "bety"
    assert ended["saliente"] == "carlos"
    assert ended["obligaciones_abiertas"] >= 1
    assert world.can_read("bety")
    assert not world.can_read("carlos")

    world.ok(
        "luis", "ausencia", "--distrito", "DD05", "--motivo", "salud", "--desde", today(),
        "--sustituto", "carlos", "--oficio", "DD05/013/2026",
    )  # fmt: skip
    assert not world.can_read("bety")
    again = world.ok(
        "luis", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "DD05/014"
    )
    assert again["administrador"] == "bety"
    assert again["saliente"] == "carlos"
    assert world.can_read("bety")
    assert not world.can_read("carlos")


def test_an_acting_titular_designates_only_while_the_encargo_lasts(world: Leavers) -> None:
    """``titular encargo``: rosa acts as DD05's titular (designates); after ``titular
    fin-encargo`` she is refused again, and the history lists her as titular_encargado."""
    world.refused(
        "rosa", "designar", "--distrito", "DD05", "--persona", "carlos", "--oficio", "R/1"
    )
    world.ok(
        "luis", "titular", "encargo", "--distrito", "DD05", "--persona", "rosa", "--desde",
        today(), "--oficio", "DD05/020/2026",
    )  # fmt: skip
    world.ok("rosa", "designar", "--distrito", "DD05", "--persona", "carlos", "--oficio", "R/2")
    assert world.can_read("carlos")
    assert not world.can_read("bety")
    world.ok("luis", "titular", "fin-encargo", "--distrito", "DD05", "--oficio", "DD05/021")
    world.refused("rosa", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "R/3")
    world.ok("luis", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "L/4")
    rows = world.ok("ana", "historial", "--distrito", "DD05", "--fecha", today())
    roles = {(r["rol"], r["persona"]) for r in rows}
    assert ("titular_encargado", "rosa") in roles
    assert ("titular", "luis") in roles
    assert ("sustituto", "carlos") in roles
    csv_report = world.run(
        "ana", "reporte", "designaciones", "--distrito", "DD05", "--formato", "csv"
    )
    assert csv_report.returncode == 0, csv_report.stderr
    assert csv_report.stdout.startswith("rol,persona,desde,hasta,via_oficial,excepcion")
    assert "titular_encargado,rosa," in csv_report.stdout


def test_revoking_the_administrator_role_removes_access_and_owes_rotations(
    world: Leavers,
) -> None:
    """``personas revocar --rol administrador`` of the holder: the district group is emptied
    (OpenBao refuses the next read), the district has no administrator, a rotation is owed —
    and the person's session itself stays valid (not a departure)."""
    world.ok("luis", "designar", "--distrito", "DD05", "--persona", "carlos", "--oficio", "L/5")
    assert world.can_read("carlos")
    data = world.ok("ana", "personas", "revocar", "--usuario", "carlos", "--rol", "administrador")
    assert data["obligaciones_abiertas"] == ["DD05-x"]
    assert not world.can_read("carlos")
    world.vault(world.token("carlos")).lookup_self()  # still a valid session
    rows = world.ok("ana", "historial", "--distrito", "DD05")
    last = [r for r in rows if r["rol"] == "administrador"][-1]
    assert last["persona"] == "carlos"
    assert last["hasta"] is not None


def test_a_leavers_old_token_is_refused_by_openbao_right_after_personas_baja(
    world: Leavers,
) -> None:
    """``personas baja`` of the designated administrator: the very next request with her old
    token is refused by OpenBao (lookup-self and the credential read: 403), she cannot log in
    again, the district has no administrator until the titular designates, and the rotation of
    every account she could read is owed."""
    world.ok("luis", "designar", "--distrito", "DD05", "--persona", "bety", "--oficio", "L/6")
    old_token = world.token("bety")
    assert world.can_read("bety")
    data = world.ok(
        "ana", "personas", "baja", "--usuario", "bety", "--motivo", "promocion",
        "--oficio", "DD05/030/2026",
    )  # fmt: skip
    assert data["roles_terminados"] == {"administrador": "DD05"}
    assert data["obligaciones_abiertas"] == ["DD05-x"]
    with pytest.raises(VaultTokenInvalidError):  # OpenBao's own 403 on lookup-self
        world.vault(old_token).lookup_self()
    with pytest.raises(VaultPermissionDeniedError):
        world.vault(old_token).request("GET", ACCOUNT_PATH, operation="test-read", wrap_ttl=30)
    with pytest.raises(CustodiaError):
        world.login("bety")
    # The service refuses her too (its own lookup of the token is refused by OpenBao).
    assert world.run("bety", "sesion", "quien").returncode != 0

    rows = world.ok("ana", "historial", "--distrito", "DD05")
    last = [r for r in rows if r["rol"] == "administrador"][-1]
    assert last["persona"] == "bety"
    assert last["hasta"] is not None
    people = {p["usuario"]: p for p in world.ok("ana", "personas", "lista")}
    assert people["bety"]["roles"] == {}
    accounts = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    assert accounts[0]["obligaciones_abiertas"] >= 1
    _, err = world.refused(
        "ana", "personas", "baja", "--usuario", "bety", "--motivo", "baja", "--oficio", "X/2"
    )
    assert "baja" in err


def test_a_departing_coadministrator_owes_every_account_they_generated(
    world: Leavers,
) -> None:
    """A coadministrator who generated DD05-x's current password leaves: the account owes a
    rotation, their old token is refused by OpenBao at once, and the titulares group and the
    coadministradores group no longer count them."""
    world.ok("pedro", "rotar", "iniciar", "--cuenta", "DD05-x")
    world.ok("pedro", "rotar", "confirmar", "--cuenta", "DD05-x")
    before = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")[0]["obligaciones_abiertas"]
    old_token = world.token("pedro")
    data = world.ok(
        "ana", "personas", "baja", "--usuario", "pedro", "--motivo", "cambio-adscripcion",
        "--memorandum", "UTCSyD/M/7",
    )  # fmt: skip
    assert data["roles_terminados"] == {"coadministrador": None}
    assert data["obligaciones_abiertas"] == ["DD05-x"]
    after = world.ok("ana", "cuentas", "lista", "--distrito", "DD05")[0]["obligaciones_abiertas"]
    assert after == before + 1
    with pytest.raises(VaultTokenInvalidError):  # OpenBao's own 403 on lookup-self
        world.vault(old_token).lookup_self()
    # ana cannot leave by her own hand.
    world.refused(
        "ana", "personas", "baja", "--usuario", "ana", "--motivo", "otro", "--oficio", "Y"
    )
