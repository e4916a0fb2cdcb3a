"""The ledger as ``custodia servicio`` runs it: the read side signs with its own token, anchors
every checkpoint in OpenBao and signs the tail when the service stops (issue 16); a history
rewritten behind its back is refused and becomes one incident for the Secretaría Ejecutiva."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from custody.ledger.anchor import read_anchored
from custody.ledger.names import LedgerNames
from custody.vault.client import VaultClient
from tests.integration.ledger import insider

from .conftest import (
    CUSTODIA,
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
)

BOUND = 60.0  # issue 16: an incident within 60 s of the follower's alert

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def start_quiet_service(home: Path) -> subprocess.Popen[bytes]:
    """The service with no count, timer or pause that would sign: only its stop can."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
    env |= {
        "CUSTODIA_HOME": str(home),
        "CUSTODIA_AVANCE_SECONDS": "3600",
        "CUSTODIA_CHECKPOINT_SECONDS": "3600",
        "CUSTODIA_CHECKPOINT_QUIET_SECONDS": "3600",
    }
    with (home / "servicio.log").open("ab") as log:
        service = subprocess.Popen([CUSTODIA, "servicio"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while b"lectura_lista" not in (home / "servicio.log").read_bytes():
        if service.poll() is not None or time.monotonic() > deadline:
            stop_service(service)
            raise RuntimeError((home / "servicio.log").read_text(errors="replace")[-2000:])
        time.sleep(0.1)
    return service


def test_the_service_signs_its_tail_on_stop_with_its_own_token(tmp_path: Path) -> None:
    """``init`` leaves the follower a token of its own (0600); the service's token cannot sign.
    After a command, stopping the service (SIGTERM) signs the tail: ``verificar`` by the
    coadministrator's own session then finds every entry signed, and OpenBao's anchored head
    covering all of them."""
    home = tmp_path / "home"
    home.mkdir()
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    assert init.returncode == 0, init.stderr
    signer_file = home / "secrets" / "firmante-token"
    assert signer_file.stat().st_mode & 0o777 == 0o600
    service = start_quiet_service(home)
    try:
        world = ServiceWorld(home, service)
        world.login("ana")
        account = {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"}
        world.call("ana", "cuentas.alta", account)
        before = json.loads(world.run("ana", "bitacora", "verificar", "--json").stdout)
        assert before["eventos_sin_punto_de_control"] > 0  # nothing was due yet
    finally:
        stop_service(service)
    try:
        result = world.run("ana", "bitacora", "verificar", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        doc = json.loads(result.stdout)
        assert doc["eventos_sin_punto_de_control"] == 0
        assert doc["openbao"]["tamano"] == doc["eventos"]
        service_token = (home / "secrets" / "servicio-token").read_text().strip()
        vault = VaultClient(world.endpoints().vault_addr, service_token)
        caps = vault.write(
            "sys/capabilities-self",
            {"paths": ["custodia-transit/sign/custodia-ledger"]},
            operation="test",
        )
        assert caps is not None
        assert caps["capabilities"] == ["deny"]
    finally:
        run_custodia("detener", home=home)


def _until(check: Any, what: str, bound: float = BOUND) -> Any:
    deadline = time.monotonic() + bound
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return found


def operator_nats_url(world: ServiceWorld) -> str:
    """A NATS URL with an identity that may delete and re-create streams: the administrative
    one ``init`` uses (the service's identities may not; finding 3 is an operator's attack)."""
    endpoints = world.endpoints("administrador")
    parts = urlsplit(endpoints.nats_servers[0])
    user = quote(endpoints.nats_user or "", safe="")
    password = quote(endpoints.nats_password or "", safe="")
    return f"{parts.scheme}://{user}:{password}@{parts.hostname}:{parts.port}"


def test_a_rewritten_history_becomes_one_incident_and_estado_says_so(tmp_path: Path) -> None:
    """Finding 3 against the real service: with an operator's NATS identity an entry already
    signed and anchored is rewritten (stream deleted and re-created) and the checkpoints
    stream dropped. The restarted service's follower refuses to sign; within 60 s one
    ``bitacora_alterada`` incident of the institution (``cuenta``/``distrito`` null, reported by
    the service) is in ``incidentes bitacora``, ``estado --json`` reports the ledger as not
    intact with the alert; after another restart (the follower diverges again) there is still
    exactly one such incident. It is in ``reporte incidentes``, and is notified, contained
    and closed, after which ``estado`` no longer reports an open one. Before this change: a
    log line and an alert in OpenBao only."""
    home = tmp_path / "home"
    home.mkdir()
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"))
    assert init.returncode == 0, init.stderr
    service = start_service(home)
    world = ServiceWorld(home, service)
    names = LedgerNames.for_app("custodia", "")
    try:
        try:
            world.login("ana")
            account = {"cuenta": "DD05-x", "usuario": "DD05IECM", "correo": "dd05.x@iecm.mx"}
            world.call("ana", "cuentas.alta", account)
            ana = VaultClient(world.endpoints().vault_addr, world.token("ana"))
            _until(
                lambda: read_anchored(ana, names).largest == world.ledger_messages(),
                "the ledger was never anchored in OpenBao",
            )
            assert run_custodia("estado", "--json", home=home).returncode == 0
        finally:
            stop_service(service)

        url = operator_nats_url(world)
        entries = insider.dump(url, names.events_stream)
        # The last event (not a tracking record): the account registered above, signed.
        target = max(i for i, m in enumerate(entries) if ".events." in m.subject)
        entries[target].data = insider.flip_state_byte(entries[target].data)
        insider.rewrite(url, names.events_stream, entries)
        insider.delete_stream(url, names.checkpoints_stream)

        def tampering() -> list[dict[str, Any]]:
            rows = world.call("ana", "incidentes.bitacora", {})
            return [r for r in rows if r["tipo"] == "bitacora_alterada"]

        def estado() -> dict[str, Any]:
            result = run_custodia("estado", "--json", home=home)
            assert result.returncode == 0, result.stderr
            doc: dict[str, Any] = json.loads(result.stdout)
            return doc

        service = world.service = start_service(home)
        [row] = _until(tampering, "the rewritten history opened no incident")
        assert (row["cuenta"], row["distrito"], row["estado"]) == (None, None, "reportado")

        def altered() -> dict[str, Any] | None:
            ledger: dict[str, Any] = estado()["bitacora"]
            return ledger if ledger["integra"] is False else None

        ledger = _until(altered, "estado does not report the altered ledger")
        assert ledger["alertas"] == 1
        assert ledger["ultima_alerta"]["tipo"] == "reescrita"
        assert ledger["ultima_alerta"]["incidente"] == row["incidente"]
        text = run_custodia("estado", home=home).stdout
        assert "ALTERADA" in text

        stop_service(service)
        diverged = world.log_text().count("ledger.follower.diverged")
        service = world.service = start_service(home)
        _until(
            lambda: world.log_text().count("ledger.follower.diverged") > diverged,
            "the restarted follower signed the rewritten history",
        )
        restarted = time.time()
        _until(
            lambda: (
                datetime.fromisoformat(estado()["bitacora"]["revisado"]).timestamp() > restarted
            ),
            "the restarted service did not look at the alerts again",
        )
        assert [r["incidente"] for r in tampering()] == [row["incidente"]]
        assert estado()["bitacora"]["alertas"] == 1

        # The institution's incident runs its course: the report lists it with no account,
        # UTCSyD notifies, contains (no rotation to require) and closes; estado then says so.
        report = world.call("ana", "reporte", {"tipo": "incidentes", "formato": "json"})
        [listed] = [r for r in report["filas"] if r["incidente"] == row["incidente"]]
        assert (listed["cuenta"], listed["distrito"]) == (None, None)
        assert listed["reportado_por"] == "custodia-servicio"
        incident = {"incidente": row["incidente"]}
        world.call("ana", "incidentes.notificar", incident | {"oficio": "UTCSyD/300/2026"})
        detail = {"detalle": "Historia restaurada desde los testigos; credencial revocada"}
        world.call("ana", "incidentes.contener", incident | detail)
        closed = world.call("ana", "incidentes.cerrar", incident | {"detalle": "Verificada"})
        assert closed["estado"] == "cerrado"
        _until(
            lambda: estado()["bitacora"]["integra"] is True,
            "estado still reports an open ledger-integrity incident",
        )
    finally:
        stop_service(world.service)
        run_custodia("detener", home=home)
