"""``custodia estado`` shows the ledger's integrity as the service last saw it (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import run
from custody.app.ledger_status import status_path, write_status


def estado(home: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    for name in ("CUSTODIA_NATS_URL", "CUSTODIA_VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUSTODIA_HOME", str(home))
    return run(["estado", *args])


def test_estado_says_unchecked_before_the_service_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With nothing from the service yet, ``bitacora.integra`` is null and the row says so."""
    assert estado(tmp_path, monkeypatch, "--json") == 0
    ledger = json.loads(capsys.readouterr().out)["bitacora"]
    assert (ledger["integra"], ledger["alertas"]) == (None, None)
    assert estado(tmp_path, monkeypatch) == 0
    assert "sin revisar" in capsys.readouterr().out


def test_estado_shows_the_followers_last_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An alert with its incident open: ``integra`` false, the count, and in Spanish what the
    follower found and the incident's id."""
    write_status(
        status_path(tmp_path),
        {
            "integra": False,
            "alertas": 1,
            "incidentes_abiertos": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427"],
            "ultima_alerta": {
                "alerta": "00000000000000000030-0123456789abcdef",
                "fecha": "2026-12-06T14:00:00+00:00",
                "tipo": "reescrita",
                "entrada": 21,
                "tamano_anclado": 30,
                "tamano_observado": 30,
                "incidente": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            },
            "revisado": "2026-12-06T14:00:05+00:00",
        },
    )
    assert estado(tmp_path, monkeypatch, "--json") == 0
    ledger = json.loads(capsys.readouterr().out)["bitacora"]
    assert (ledger["integra"], ledger["alertas"]) == (False, 1)
    assert estado(tmp_path, monkeypatch) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "ALTERADA" in out
    assert "entradas reescritas desde la entrada 21" in out
    assert "1b4e28ba-2fa1-11d2-883f-0016d3cca427" in out
