"""Issue 16, finding 2, end to end: ``custodia servicio`` follows the embedded OpenBao's audit log.

bety, designated administrator of DD05, takes the OpenBao token of her own ``custodia`` session
and reads DD05-x's password straight from OpenBao with hvac. It used to work, and nothing but
OpenBao's audit log knew. Now OpenBao refuses it (people's policies grant no secret path: only
the service reads, for callers OpenBao authorized). An operator's policy mistake that grants
her the exact path makes the read work again; the running service then records it: an
incident of type ``lectura_no_registrada`` appears in ``incidentes bitacora`` within 60 s, and
the read is in the ``lecturas`` and ``exposicion`` reports.
"""

from __future__ import annotations

import time
from typing import Any

import hvac
import pytest

from custody.vault.audit_follower import incident_id_for

from .conftest import ServiceWorld

pytestmark = pytest.mark.e2e

BOUND = 60.0


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + BOUND
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return found


def test_a_direct_read_with_a_session_token_becomes_an_incident_and_a_reported_read(
    service_world: ServiceWorld,
) -> None:
    """Behaviour: bety's direct read (her session token, hvac, not Custodia) is refused by
    OpenBao (403). With a policy mistake granting her DD05-x's exact path, her direct read is
    recorded by the running service as an unrecorded read with an incident for the Secretaría
    Ejecutiva (listed by ``incidentes bitacora``) within 60 s; the ``lecturas`` report lists it
    with the finding ``lectura_no_registrada``, and ``exposicion`` counts bety as exposed to
    that version."""
    world = service_world
    client = hvac.Client(world.endpoints().vault_addr, token=world.token("bety"))
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version(
            "cuentas/DD05/x", mount_point="custodia", raise_on_deleted_version=False
        )
    root = world.root_vault()
    entity = root.lookup_self(world.token("bety")).entity_id
    root.write(
        "sys/policies/acl/politica-equivocada",
        {"policy": 'path "custodia/data/cuentas/DD05/x" { capabilities = ["read"] }'},
        operation="test",
    )
    root.write(f"identity/entity/id/{entity}", {"policies": ["politica-equivocada"]}, operation="t")
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            "cuentas/DD05/x", mount_point="custodia", raise_on_deleted_version=False
        )
    finally:
        root.write(f"identity/entity/id/{entity}", {"policies": []}, operation="test")
    version = answer["data"]["metadata"]["version"]
    expected = str(incident_id_for(answer["request_id"]))

    def listed() -> list[dict[str, Any]]:
        rows = world.call("sofia", "incidentes.bitacora", {})
        return [r for r in rows if r["incidente"] == expected]

    row = _until(listed, "the unrecorded read opened no incident")[0]
    assert (row["tipo"], row["estado"], row["cuenta"]) == (
        "lectura_no_registrada",
        "reportado",
        "DD05-x",
    )

    def reads() -> list[dict[str, Any]]:
        report = world.call("ana", "reporte", {"tipo": "lecturas", "formato": "json"})
        return [r for r in report["filas"] if "lectura_no_registrada" in r["hallazgos"]]

    read = _until(reads, "the unrecorded read is not in the reads report")[0]
    assert (read["cuenta"], read["version"], read["tipo"]) == ("DD05-x", version, "contrasena")
    assert read["calidad"] == "no_registrada"
    assert "bety" in str(read["persona"])
    exposure = world.call("ana", "reporte", {"tipo": "exposicion", "formato": "json"})
    current = [r for r in exposure["filas"] if (r["cuenta"], r["version"]) == ("DD05-x", version)]
    assert any("bety" in str(d["persona"]) for d in current[0]["detalle"]), current
