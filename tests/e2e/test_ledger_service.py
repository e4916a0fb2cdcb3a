"""The ledger as ``custodia servicio`` runs it: the read side signs with its own token, anchors
every checkpoint in OpenBao and signs the tail when the service stops (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from custody.vault import VaultClient

from .conftest import (
    CUSTODIA,
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    stop_service,
)

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
