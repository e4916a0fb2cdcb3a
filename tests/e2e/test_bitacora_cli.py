"""``custodia bitacora``: Spanish verdicts, exit code 1 on tampering, offline bundles and proofs
that need no server, and the witness, driven through the same entry point as the executable."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from cli.main import run
from custody.ledger.errors import LedgerDivergedError
from custody.ledger.transit_signer import TransitSigner, fetch_public_keyring
from custody.stack.servers import BaoProcess
from custody.vault.client import VaultClient
from custody.vault.layout import (
    SECRETARIA_POLICY,
    SIGNER_POLICY,
    create_service_token,
    ensure_layout,
)
from tests.integration.ledger import insider
from tests.integration.ledger.world import LedgerWorld

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REGISTER = (
    "from cli.app import app\n"
    "from cli import bitacora_cmds\n"
    "if 'bitacora' not in {g.name for g in app.registered_groups}:\n"
    "    bitacora_cmds.register(app)\n"
)


def ensure_registered() -> None:
    """Until ``cli/app.py`` registers the sub-app, add it to the root app of this process."""
    exec(REGISTER, {})  # noqa: S102 - a fixed snippet, shared with the subprocess test


@pytest.fixture
def world(
    nats_url: str, openbao: BaoProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[LedgerWorld]:
    """A 50-entry ledger with 5 transit-signed checkpoints, anchored and witnessed in OpenBao;
    the CLI's environment points at it (no session: see ``secretaria_session``)."""
    assert openbao.root_token
    root = VaultClient(openbao.addr, openbao.root_token)
    ensure_layout(root)
    service = root.with_token(create_service_token(root))
    signer = root.with_token(create_service_token(root, policy=SIGNER_POLICY))
    made = LedgerWorld(
        nats_url,
        "e" + uuid4().hex[:10],
        TransitSigner(signer),
        lambda: fetch_public_keyring(service),
        anchor_client=signer,
    )
    made.build()
    ensure_registered()
    for key in ("CUSTODIA_NATS_USER", "CUSTODIA_NATS_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CUSTODIA_SESION", str(tmp_path / "sin-sesion.json"))  # no session
    monkeypatch.setenv("CUSTODIA_HOME", str(tmp_path / "custodia"))
    monkeypatch.setenv("CUSTODIA_NATS_URL", nats_url)
    monkeypatch.setenv("CUSTODIA_VAULT_ADDR", openbao.addr)
    # This module's ledger has streams of its own (a namespace): the product reads only the
    # service's, so the CLI's one seam for them is pointed here.
    from cli import bitacora_cmds

    monkeypatch.setattr(bitacora_cmds, "ledger_names", lambda: made.names)
    yield made
    made.close()
    insider.delete_streams(nats_url, made.namespace + "-")


@pytest.fixture
def secretaria_session(
    world: LedgerWorld, openbao: BaoProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A session of the Secretaría Ejecutiva (a token with its policy), as «sesion iniciar»
    leaves it: ``bitacora verificar`` then reads the head and witnesses kept in OpenBao."""
    from custody.vault.session import Session

    assert openbao.root_token
    root = VaultClient(openbao.addr, openbao.root_token)
    body = root.write(
        "auth/token/create", {"policies": [SECRETARIA_POLICY], "ttl": "1h"}, operation="test"
    )
    assert body is not None
    path = tmp_path / "sesion.json"
    path.write_text(
        Session("secretaria", body["auth"]["client_token"], openbao.addr, None).to_json()
    )
    path.chmod(0o600)
    monkeypatch.setenv("CUSTODIA_SESION", str(path))
    return path


def custodia(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def heavy_modules_after_help(*args: str) -> tuple[set[str], str]:
    """Heavy libraries loaded by ``custodia ARGS --help`` in a fresh process, and the help."""
    code = (
        REGISTER + "import contextlib, io, sys\n"
        "from cli.main import run\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer):\n"
        f"    run({[*args, '--help']!r})\n"
        "heavy = ('hvac', 'nats', 'eventsourcing', 'cryptography', 'structlog')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "print(buffer.getvalue())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded, _, help_text = result.stdout.partition("\n")
    return set(filter(None, loaded.split(","))), help_text


def test_help_is_spanish_and_imports_nothing_heavy() -> None:
    """``custodia bitacora verificar --help`` is Spanish and loads no heavy library beyond what
    any sub-command's help loads (``estado --help``): the commands import them lazily."""
    loaded, help_text = heavy_modules_after_help("bitacora", "verificar")
    baseline, _ = heavy_modules_after_help("estado")
    assert loaded <= baseline
    assert not loaded & {"hvac", "nats", "eventsourcing", "cryptography"}
    assert "Uso: " in help_text
    assert "--paquete" in help_text
    assert "--clave-publica" in help_text


def test_verify_export_and_tamper(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An intact ledger gets a Spanish verdict (exit 0) and the documented JSON; after an entry
    is deleted the verdict names entry 23 and checkpoint #3 (exit 1); a bundle exported before
    still verifies offline, and a bundle edited by hand does not."""
    key = tmp_path / "clave.json"
    bundle = tmp_path / "bitacora.jsonl.gz"
    assert custodia(capsys, "bitacora", "clave-publica", "--salida", str(key))[0] == 0
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--clave-publica", str(key))
    assert code == 0
    assert out.startswith("Bitácora íntegra: 50 eventos, 5 puntos de control verificados.")
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["eventos"], doc["puntos_de_control"], doc["problemas"]) == (
        0,
        True,
        50,
        5,
        [],
    )
    assert doc["clave_independiente"] is False
    assert custodia(capsys, "bitacora", "exportar", "--salida", str(bundle))[0] == 0

    insider.delete(world.url, world.names.events_stream, 23)
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--clave-publica", str(key))
    assert code == 1
    assert out.startswith("ALTERADA: evento #23, punto de control #3")
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False
    assert (doc["primer_evento"], doc["primer_punto_de_control"]) == (23, 3)
    assert all(
        {"tipo", "evento", "punto_de_control", "detalle"} <= p.keys() for p in doc["problemas"]
    )

    args = ["bitacora", "verificar", "--paquete", str(bundle), "--clave-publica", str(key)]
    assert custodia(capsys, *args)[0] == 0
    edit_bundle_event(bundle, 23)
    code, out, _ = custodia(capsys, *args, "--json")
    doc = json.loads(out)
    assert (code, doc["ok"]) == (1, False)
    assert [(p["tipo"], p["desde"], p["hasta"]) for p in doc["problemas"]] == [
        ("raiz_distinta", 21, 30)
    ]
    code, out, _ = custodia(capsys, *args)
    assert code == 1
    assert out.startswith("ALTERADA: entre los eventos #21 y #30, punto de control #3")


def edit_bundle_event(path: Path, entry: int) -> None:
    """Change one byte of an event inside a bundle, keeping the file well formed."""
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("type") == "event" and record["id"] == entry:
            data = bytearray(base64.b64decode(record["data"]))
            data[-2] ^= 1
            record["data"] = base64.b64encode(bytes(data)).decode()
            lines[i] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    path.write_bytes(gzip.compress(b"".join(lines)))


def test_a_bundle_whose_end_is_not_signed_proves_nothing(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack on a bundle handed to an auditor: drop the checkpoints that cover its end, then
    rewrite an event there (the counts fixed, the file well formed). Before, the verdict was
    «Bitácora íntegra» and exit 0 («quedarán firmados en el próximo», for a closed file). Now:
    how far it is signed, that the rest proves nothing, exit 8; an honest export is signed to
    its end (the export waits for the checkpoint), exit 0."""
    key = tmp_path / "clave.json"
    bundle = tmp_path / "bitacora.jsonl.gz"
    custodia(capsys, "bitacora", "clave-publica", "--salida", str(key))
    code, out, _ = custodia(capsys, "bitacora", "exportar", "--salida", str(bundle), "--json")
    assert code == 0
    exported = json.loads(out)
    assert exported["firmado_hasta"] == exported["ultimo_evento"] == 50
    lines = gzip.decompress(bundle.read_bytes()).splitlines(keepends=True)
    kept: list[bytes] = []
    checkpoints = 0
    for line in lines:
        record = json.loads(line)
        if record.get("type") == "checkpoint":
            checkpoints += 1
            if checkpoints > 3:  # sizes 10, 20, 30 stay; 40 and 50 go
                continue
        if record.get("type") == "end":
            record["checkpoints"] = 3
            line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        kept.append(line)
    bundle.write_bytes(gzip.compress(b"".join(kept)))
    edit_bundle_event(bundle, 45)
    args = ["bitacora", "verificar", "--paquete", str(bundle), "--clave-publica", str(key)]
    code, out, _ = custodia(capsys, *args)
    assert code == 8
    assert out.startswith("SIN FIRMA AL FINAL: el paquete está íntegro hasta el evento 30")
    assert "20 últimos eventos" in out
    assert "Bitácora íntegra" not in out
    code, out, _ = custodia(capsys, *args, "--json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["eventos_sin_punto_de_control"], doc["firmada_hasta"]) == (
        8,
        True,  # nothing found altered: the end is not proven, which exit 8 says
        20,
        30,
    )


def test_offline_verification_never_connects(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real executable verifies a bundle with the NATS address pointing nowhere."""
    key = tmp_path / "clave.json"
    bundle = tmp_path / "bitacora.jsonl.gz"
    custodia(capsys, "bitacora", "clave-publica", "--salida", str(key))
    custodia(capsys, "bitacora", "exportar", "--salida", str(bundle))
    code = REGISTER + "from cli.main import main\nmain()\n"
    argv = ["bitacora", "verificar", "--paquete", str(bundle), "--clave-publica", str(key)]
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CUSTODIA_NATS_URL": "nats://127.0.0.1:1"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Bitácora íntegra: 50 eventos, 5 puntos de control")


def test_inclusion_proof_round_trip(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proof saved by ``prueba --evento`` verifies offline; an edited one is refused (exit 1),
    with ``{"ok": false}`` under ``--json``."""
    key = tmp_path / "clave.json"
    proof = tmp_path / "prueba.json"
    custodia(capsys, "bitacora", "clave-publica", "--salida", str(key))
    code, out, _ = custodia(capsys, "bitacora", "prueba", "--evento", "7", "--salida", str(proof))
    assert code == 0
    assert out.startswith("Prueba de inclusión del evento #7")
    check = ["bitacora", "prueba", "--verificar", str(proof), "--clave-publica", str(key)]
    code, out, _ = custodia(capsys, *check)
    assert code == 0
    assert out.startswith("Prueba válida: el evento #7")
    doc = json.loads(proof.read_text())
    doc["notification_id"] = 8
    proof.write_text(json.dumps(doc))
    code, _, err = custodia(capsys, *check)
    assert code == 1
    assert "La prueba de inclusión NO es válida" in err
    code, out, _ = custodia(capsys, *check, "--json")
    assert (code, json.loads(out)["ok"]) == (1, False)


def test_witness_catches_a_resigned_rewrite(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``testigo`` records the ledger; after entry 23 is rewritten and everything re-signed,
    ``testigo`` refuses (exit 1) and ``verificar --testigo`` names entry 23."""
    key = tmp_path / "clave.json"
    witness = tmp_path / "testigo.json"
    custodia(capsys, "bitacora", "clave-publica", "--salida", str(key))
    args = ["bitacora", "testigo", "--archivo", str(witness), "--clave-publica", str(key)]
    code, out, _ = custodia(capsys, *args)
    assert code == 0
    assert out.startswith("Testigo al día: punto de control de 50 eventos")

    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    insider.rewrite(
        world.url,
        world.names.checkpoints_stream,
        [
            m
            for m in insider.dump(world.url, world.names.checkpoints_stream)
            if m.subject != world.names.notes_subject
        ],
    )
    world.follower(anchored=False).checkpoint_now()  # as before issue 16: re-signed

    code, _, err = custodia(capsys, *args)
    assert code == 1
    assert err.startswith("Error: ALTERADA: el punto de control de 50 eventos contradice")
    code, out, _ = custodia(
        capsys, "bitacora", "verificar", "--testigo", str(witness), "--clave-publica", str(key)
    )
    assert code == 1
    assert out.startswith("ALTERADA: evento #23")


def test_errors_are_spanish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing bundle, a bad key file and no NATS address each get a Spanish message and
    their exit code."""
    ensure_registered()
    missing = tmp_path / "no-existe.jsonl.gz"
    code, _, err = custodia(capsys, "bitacora", "verificar", "--paquete", str(missing))
    assert (code, f"El paquete {missing} no se puede verificar: no existe." in err) == (1, True)
    bad_key = tmp_path / "clave.json"
    bad_key.write_text("{}")
    code, _, err = custodia(
        capsys, "bitacora", "prueba", "--verificar", str(bad_key), "--clave-publica", str(bad_key)
    )
    assert (code, "no es un archivo de clave pública" in err) == (2, True)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CUSTODIA_NATS_URL", raising=False)
        env.setenv("CUSTODIA_HOME", str(tmp_path / "sin-servidores"))
        code, _, err = custodia(capsys, "bitacora", "exportar", "--salida", str(tmp_path / "x"))
    assert (code, "no están en ejecución" in err) == (6, True), err


def test_verify_against_openbao_catches_a_resigned_rewrite(
    world: LedgerWorld, secretaria_session: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3 through the command line: entry 23 rewritten, the checkpoints stream dropped,
    even re-signed by a follower without the anchor. ``verificar`` with the Secretaría
    Ejecutiva's own session compares with OpenBao and says ALTERADA (exit 1), in Spanish;
    an intact ledger first says so and how far OpenBao vouches for it. The follower's refusal
    to sign shows as an alert."""
    code, out, _ = custodia(capsys, "bitacora", "verificar")
    assert code == 0
    assert "Comparada con OpenBao: 6 punto(s) de control anclados; el mayor firma 50" in out
    entries = world.entries()
    entries[22].data = insider.flip_state_byte(entries[22].data)
    insider.rewrite(world.url, world.names.events_stream, entries)
    insider.delete_stream(world.url, world.names.checkpoints_stream)
    world.follower(anchored=False).checkpoint_now()  # the old follower's forgery
    with pytest.raises(LedgerDivergedError):
        world.follower().checkpoint_now()  # today's refuses, and says so in OpenBao

    code, out, _ = custodia(capsys, "bitacora", "verificar")
    assert code == 1
    assert out.startswith("ALTERADA: entre los eventos #21 y #30")
    assert "guardado en OpenBao" in out
    assert "el servicio se negó a firmar la bitácora (50 eventos leídos)" in out
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--json")
    doc = json.loads(out)
    assert (code, doc["ok"], doc["openbao"]["tamano"]) == (1, False, 50)
    assert "openbao" in {p["fuente"] for p in doc["problemas"]}


def test_verify_flags_a_ledger_shorter_than_the_reference(
    world: LedgerWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 8: a reference bundle of 50 entries, then entries 46..50 cut with checkpoint #5:
    ``verificar --referencia`` (no session, NATS only) says the ledger lost entries from #46
    (exit 1); without the reference it cannot tell."""
    bundle = tmp_path / "antes.jsonl.gz"
    assert custodia(capsys, "bitacora", "exportar", "--salida", str(bundle))[0] == 0
    insider.rewrite(world.url, world.names.events_stream, world.entries()[:45])
    notes = insider.dump(world.url, world.names.checkpoints_stream)
    insider.rewrite(world.url, world.names.checkpoints_stream, notes[:-1])
    assert custodia(capsys, "bitacora", "verificar")[0] == 0
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--referencia", str(bundle))
    assert code == 1
    assert "La copia de referencia tiene 50 eventos, pero la bitácora solo 45" in out
    code, out, _ = custodia(capsys, "bitacora", "verificar", "--referencia", str(bundle), "--json")
    items = json.loads(out)["problemas"]
    assert ("mas_corta_que_la_referencia", 46) in {(i["tipo"], i["evento"]) for i in items}
