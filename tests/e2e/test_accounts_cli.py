"""An account from its settings to its closure, through the real ``custodia`` executable
against a running service on the embedded NATS and OpenBao (10, 11.1.a; issue 19):
``cuentas estado`` records what was found on the platform (a missing or non-institutional phone
is a violation, in ``cuentas lista`` and the compliance report), and ``cuentas baja`` destroys
the password and the 2FA seed in OpenBao after the final record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from custody.errors import VaultNotFoundError, VaultPermissionDeniedError
from custody.vault.client import Mounts, VaultClient
from custody.vault.layout import SERVICE_POLICY, AccountRef, policy_documents
from tests.support.secretscan import assert_no_secrets

from .conftest import (
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
    totp_uri,
)

pytestmark = pytest.mark.e2e

POLICY = """
[cuentas]
prefijos_telefono = ["+52 55 5483"]
"""
INSTITUTIONAL = "+52 55 5483 3800"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceWorld]:
    """A home of its own under a policy naming the institution's numbering: ana
    (coadministrator), luis titular of DD05, bety designated for DD05; accounts DD05-x (with a
    confirmed password and a 2FA seed), DD05-facebook and DD05-tiktok (each with a password)."""
    home = tmp_path_factory.mktemp("custodia-cuentas")
    (home / "politica.toml").write_text(POLICY)
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home, {"CUSTODIA_POLITICA": str(home / "politica.toml")})
        world = ServiceWorld(home, service)
        try:
            world.login("ana")
            world.add_person("luis", "titular", "DD05")
            world.add_person("bety", "administrador", "DD05")
            world.call("ana", "titular", {"distrito": "DD05", "persona": "luis"})
            for platform, handle in (("x", "DD05IECM"), ("facebook", "dd05"), ("tiktok", "dd05")):
                account = f"DD05-{platform}"
                world.call(
                    "ana",
                    "cuentas.alta",
                    {"cuenta": account, "usuario": handle, "correo": f"dd05.{platform}@iecm.mx"},
                )
                world.call("ana", "rotar.iniciar", {"cuenta": account})
                world.call("ana", "rotar.confirmar", {"cuenta": account})
            world.call("ana", "totp.registrar", {"cuenta": "DD05-x", "uri": totp_uri("DD05-x")})
            world.call(
                "luis", "designar", {"distrito": "DD05", "persona": "bety", "oficio": "DD05/1/2026"}
            )
            yield world
        finally:
            stop_service(world.service)
    finally:
        run_custodia("detener", home=home)


def ok(world: ServiceWorld, user: str, *args: str) -> Any:
    return world.json(user, *args)


def listed(world: ServiceWorld, account: str) -> dict[str, Any]:
    rows = ok(world, "ana", "cuentas", "lista", "--distrito", "DD05")
    return next(r for r in rows if r["cuenta"] == account)


def service_vault(world: ServiceWorld) -> VaultClient:
    token = (world.home / "secrets" / "servicio-token").read_text().strip()
    return VaultClient(world.endpoints().vault_addr, token)


def test_status_records_the_phone_and_its_violations(world: ServiceWorld) -> None:
    """11.1.a: with no phone registered nor given, ``cuentas estado`` records the violation
    ``telefono_faltante``; a phone outside the policy's numbering is ``telefono_no_institucional``;
    an institutional one clears it. Visibility and DMs not given keep their values; a private
    account is a violation (10.VI). ``cuentas lista`` and the compliance report show the same
    violations; a titular may not record a status (refused, nothing written)."""
    first = ok(world, "ana", "cuentas", "estado", "--cuenta", "DD05-facebook")
    assert first["violaciones"] == ["telefono_faltante"]
    assert listed(world, "DD05-facebook")["violaciones"] == ["telefono_faltante"]

    foreign = ok(
        world, "ana", "cuentas", "estado", "--cuenta", "DD05-facebook",
        "--telefono", "+52 33 1234 5678", "--privada",
    )  # fmt: skip
    assert foreign["violaciones"] == ["cuenta_privada", "telefono_no_institucional"]
    assert foreign["publica"] is False
    assert foreign["mensajes"] is True

    report = ok(world, "ana", "reporte", "cumplimiento", "--formato", "json")
    text = json.dumps(report)
    assert "telefono_no_institucional" in text
    assert "DD05-facebook" in text

    fixed = ok(world, "ana", "cuentas", "estado", "--cuenta", "DD05-facebook", "--publica")
    # The phone first recorded stays the account's: the foreign one is still judged.
    assert fixed["violaciones"] == ["telefono_no_institucional"]

    good = ok(
        world, "ana", "cuentas", "estado", "--cuenta", "DD05-tiktok", "--telefono", INSTITUTIONAL
    )
    assert good["violaciones"] == []
    assert good["telefono"] == "+525554833800"
    assert listed(world, "DD05-tiktok")["violaciones"] == []

    before = world.ledger_messages()
    refused = world.run("luis", "cuentas", "estado", "--cuenta", "DD05-tiktok", "--privada")
    assert refused.returncode != 0
    assert refused.stderr.startswith("Error: ")
    assert "Traceback" not in refused.stderr
    assert world.ledger_messages() == before


def test_closure_destroys_password_and_seed_after_the_record(world: ServiceWorld) -> None:
    """10: ``cuentas baja`` records the closure, then OpenBao destroys every version of the
    password and the 2FA seed: a direct read with the service's own token finds nothing (404
    from OpenBao), a coadministrator's token is refused by OpenBao as before. The Spanish
    platform checklist is printed (``lista_verificacion``); a closed account cannot be revealed,
    rotated nor give a code (Spanish refusal, nothing shown), and closing it again is refused."""
    ref = AccountRef.parse("DD05-x")
    mounts = Mounts()
    vault = service_vault(world)
    assert vault.read(ref.metadata_path(mounts), operation="t")["data"]["current_version"] >= 1
    assert vault.read(ref.totp_key_path(mounts), operation="t")["data"]["period"] == 30
    password = ok(world, "ana", "revelar", "--cuenta", "DD05-x", "--motivo", "baja")["contrasena"]
    seed = totp_uri("DD05-x").split("secret=")[1].split("&")[0]

    closed = ok(
        world, "ana", "cuentas", "baja", "--cuenta", "DD05-x", "--oficio", "UTCSyD/9/2026"
    )  # fmt: skip
    assert closed["cerrada"] is True
    assert closed["secretos_destruidos"] is True
    checklist = " ".join(closed["lista_verificacion"])
    for item in ("sesiones", "roles", "correo de recuperación", "teléfono de recuperación"):
        assert item in checklist
    # Never a secret in the answer nor in the service's log.
    assert_no_secrets([closed, world.log_text()], [password, seed], where="baja")

    for path in (ref.metadata_path(mounts), ref.totp_key_path(mounts)):
        with pytest.raises(VaultNotFoundError):
            vault.read(path, operation="t")
    # The service reads a credential only wrapped (its policy's min_wrapping_ttl): nothing.
    with pytest.raises(VaultNotFoundError):
        vault.read(ref.data_path(mounts), operation="t", wrap_ttl=30)
    coadmin = vault.with_token(world.token("ana"))
    with pytest.raises(VaultPermissionDeniedError):
        coadmin.read(ref.data_path(mounts), operation="t")
    assert listed(world, "DD05-x")["destruccion_pendiente"] is False

    for args in (
        ("revelar", "--cuenta", "DD05-x", "--motivo", "publicar"),
        ("codigo", "--cuenta", "DD05-x"),
        ("rotar", "iniciar", "--cuenta", "DD05-x"),
        ("cuentas", "baja", "--cuenta", "DD05-x", "--oficio", "UTCSyD/9/2026"),
    ):
        result = world.run("ana", *args)
        assert result.returncode != 0, args
        assert "está dada de baja" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_closure_human_output_lists_the_checklist_in_spanish(world: ServiceWorld) -> None:
    """Without ``--json`` the checklist is printed as numbered Spanish lines, no secret."""
    result = world.run(
        "ana", "cuentas", "baja", "--cuenta", "DD05-tiktok", "--memorandum", "UTCSyD/M/3"
    )
    assert result.returncode == 0, result.stderr
    assert "Pendiente en la plataforma" in result.stdout
    assert "1. Cerrar todas las demás sesiones" in result.stdout
    assert "otpauth" not in result.stdout
    assert "hvs." not in result.stdout


def test_a_failed_destruction_stays_pending_and_a_retry_finishes_it(
    world: ServiceWorld,
) -> None:
    """10: if OpenBao refuses the destruction after the closure was recorded (here the service's
    policy deployed without ``delete`` on credentials), the command fails with a Spanish
    message saying the destruction is pending, the ledger shows the closure and
    ``destruccion_pendiente`` (no record of a destruction), and the password is still in
    OpenBao. Once the policy is right, ``cuentas baja`` again finishes it: OpenBao then
    answers 404."""
    root = world.root_vault()
    documents = policy_documents()
    full = documents[SERVICE_POLICY]
    crippled = full.replace(
        '"create", "read", "list", "update", "delete"]', '"create", "read", "list", "update"]', 1
    )
    assert crippled != full
    ref = AccountRef.parse("DD05-facebook")
    mounts = Mounts()
    vault = service_vault(world)
    root.write(f"sys/policies/acl/{SERVICE_POLICY}", {"policy": crippled}, operation="t")
    try:
        result = world.run(
            "ana", "cuentas", "baja", "--cuenta", "DD05-facebook", "--oficio", "UTCSyD/10/2026"
        )
        assert result.returncode != 0
        assert "pendiente" in result.stderr
        assert "Traceback" not in result.stderr
        row = listed(world, "DD05-facebook")
        assert row["abierta"] is False
        assert row["destruccion_pendiente"] is True
        assert vault.read(ref.metadata_path(mounts), operation="t")["data"]["current_version"]
        refused = world.run("ana", "revelar", "--cuenta", "DD05-facebook", "--motivo", "x")
        assert refused.returncode != 0
        assert "está dada de baja" in refused.stderr
    finally:
        root.write(f"sys/policies/acl/{SERVICE_POLICY}", {"policy": full}, operation="t")

    again = ok(
        world, "ana", "cuentas", "baja", "--cuenta", "DD05-facebook", "--oficio", "UTCSyD/10/2026"
    )
    assert again["reanudada"] is True
    assert again["secretos_destruidos"] is True
    assert listed(world, "DD05-facebook")["destruccion_pendiente"] is False
    with pytest.raises(VaultNotFoundError):
        vault.read(ref.metadata_path(mounts), operation="t")


def test_an_account_opens_on_a_district_request_that_utcsyd_approves(world: ServiceWorld) -> None:
    """10.I–III: the titular asks by vía oficial (a district cannot register an account: the
    service refuses it), UTCSyD registers the account under the request (approval and account
    in one record), a second decision is refused in Spanish; another request is found not
    viable; the requests list shows both with who decided."""
    denied = world.run(
        "luis", "cuentas", "alta", "--distrito", "DD05", "--plataforma", "instagram",
        "--usuario", "dd05ig", "--correo", "dd05.ig@iecm.mx",
    )  # fmt: skip
    assert denied.returncode != 0
    assert denied.stderr.startswith("Error: ")
    filed = ok(
        world, "luis", "cuentas", "solicitar", "--distrito", "DD05", "--plataforma", "instagram",
        "--motivo", "Difusión del proceso electoral", "--correo-oficial", "dd05@iecm.mx",
    )  # fmt: skip
    assert filed["estado"] == "solicitada"
    assert filed["solicitada_por"] == "luis"
    approved = ok(
        world, "ana", "cuentas", "alta", "--distrito", "DD05", "--plataforma", "instagram",
        "--usuario", "dd05ig", "--correo", "dd05.ig@iecm.mx", "--solicitud", filed["solicitud"],
    )  # fmt: skip
    assert approved["estado"] == "aprobada"
    assert approved["cuenta"] == "DD05-instagram"
    assert listed(world, "DD05-instagram")["abierta"] is True
    again = world.run(
        "ana", "cuentas", "rechazar", "--solicitud", filed["solicitud"], "--motivo", "x"
    )
    assert again.returncode != 0
    assert "No se puede rechazar en estado «aprobada»" in again.stderr

    other = ok(
        world, "luis", "cuentas", "solicitar", "--distrito", "DD05", "--plataforma", "youtube",
        "--motivo", "Videos", "--oficio", "DD05/130/2026",
    )  # fmt: skip
    rejected = ok(
        world, "ana", "cuentas", "rechazar", "--solicitud", other["solicitud"],
        "--motivo", "Los videos se publican en la cuenta central",
    )  # fmt: skip
    assert rejected["estado"] == "rechazada"
    rows = {r["solicitud"]: r for r in ok(world, "luis", "cuentas", "solicitudes")}
    assert rows[filed["solicitud"]]["decidida_por"] == "ana"
    assert rows[other["solicitud"]]["estado"] == "rechazada"


def test_a_designated_administrator_cannot_close_nor_destroy(world: ServiceWorld) -> None:
    """10: only UTCSyD closes an account. bety, designated for DD05, is refused by the service
    (nothing written); and asking the service's own destruction directly with her token is
    refused by OpenBao itself (her capabilities on the ``destruir`` marker), the password
    still there."""
    from custody.vault.credentials import Credentials

    world.call(
        "ana",
        "cuentas.alta",
        {"cuenta": "DD05-youtube", "usuario": "dd05yt", "correo": "dd05.yt@iecm.mx"},
    )
    world.call("ana", "rotar.iniciar", {"cuenta": "DD05-youtube"})
    world.call("ana", "rotar.confirmar", {"cuenta": "DD05-youtube"})
    before = world.ledger_messages()
    result = world.run("bety", "cuentas", "baja", "--cuenta", "DD05-youtube", "--oficio", "x/1")
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ")
    assert world.ledger_messages() == before
    vault = service_vault(world)
    with pytest.raises(VaultPermissionDeniedError):
        Credentials(vault).destroy(world.token("bety"), "DD05-youtube")
    ref = AccountRef.parse("DD05-youtube")
    assert "versions" in vault.read(ref.metadata_path(Mounts()), operation="t")["data"]


def test_an_administrator_sees_only_their_own_districts_accounts(world: ServiceWorld) -> None:
    """6.IX: bety, designated for DD05, is shown DD05's accounts and none of another district's:
    her ``cuentas lista`` leaves DD07's account out and ``--distrito DD07`` is refused by the
    service in Spanish (before, any administrator passed the check for every district)."""
    from events.errors import CustodiaError

    world.call(
        "ana",
        "cuentas.alta",
        {"cuenta": "DD07-x", "usuario": "DD07IECM", "correo": "dd07.x@iecm.mx"},
    )
    assert "DD07-x" in {r["cuenta"] for r in world.call("ana", "cuentas.lista", {})}
    seen = {r["distrito"] for r in world.call("bety", "cuentas.lista", {})}
    assert seen == {"DD05"}
    with pytest.raises(CustodiaError) as raised:
        world.call("bety", "cuentas.lista", {"distrito": "DD07"})
    assert getattr(raised.value, "remote_type", None) == "ScopeError"
    result = world.run("bety", "cuentas", "lista", "--distrito", "DD07")
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ")
    assert "DD07IECM" not in result.stdout + result.stderr
