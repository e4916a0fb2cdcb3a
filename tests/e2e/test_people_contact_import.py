"""``personas contacto`` and ``personas importar`` (issue 18) through the real ``custodia``
executable against the shared running service (tests/e2e/conftest.py: ana coadministrator, luis
titular of DD05, bety administrator of DD05, sofia secretaria, mario administrator of DD07).
Other files leave people behind: every person made here has a unique user name."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from custody.errors import VaultPermissionDeniedError
from custody.vault import session as sessions
from custody.vault.client import VaultClient
from events.domain import person_id

from .conftest import SERVICE_PASSWORD, ServiceWorld

pytestmark = pytest.mark.e2e


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def ok(world: ServiceWorld, user: str, *args: str, stdin: str | None = None) -> Any:
    return world.json(user, *args, stdin=stdin)


def refused(world: ServiceWorld, user: str, code: int, *args: str, stdin: str | None = None) -> str:
    """``args`` fail with exit ``code`` and a Spanish message, and the ledger is unchanged."""
    before = world.ledger_messages()
    result = world.run(user, *args, stdin=stdin)
    assert result.returncode == code, f"{args}: rc={result.returncode} {result.stderr}"
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")
    assert world.ledger_messages() == before
    return result.stderr + result.stdout


def _wait(predicate: Any, what: str) -> Any:
    """Waits for the read side to project what was just recorded (a deadline, not a sleep)."""
    deadline = time.monotonic() + 60
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _contact_rows(world: ServiceWorld, user: str, subject: str) -> list[dict[str, Any]]:
    rows = ok(world, user, "reporte", "lecturas", "--formato", "json")
    return [r for r in rows if r.get("tipo") == "contacto" and r.get("contacto_de") == subject]


def _person(world: ServiceWorld, user: str) -> dict[str, Any] | None:
    people = ok(world, "ana", "personas", "lista")
    return next((p for p in people if p["usuario"] == user), None)


def _contact_values() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:10]
    phone = "55" + "".join(random.choice("0123456789") for _ in range(8))
    return f"Zacarías Quetzal {tag}", f"zq{tag}@iecm.mx", phone


# -- personas contacto ------------------------------------------------------------------------


def test_contact_is_shown_to_a_coadministrator_after_the_read_is_recorded_and_reviewed(
    service_world: ServiceWorld,
) -> None:
    """A coadministrator gets name, e-mail and phone; the read (who, whose, why — not the
    data) is one more event in the ledger, and the Secretaría Ejecutiva and the UTCSyD see it in
    ``reporte lecturas`` (JSON, table, HTML); a titular's view of the report does not."""
    world = service_world
    user = _unique("pc")
    name, email, phone = _contact_values()
    world.call(
        "ana",
        "personas.alta",
        {"usuario": user, "nombre": name, "correo": email, "telefono": phone, "rol": "secretaria"},
    )
    before = world.ledger_messages()
    shown = ok(world, "ana", "personas", "contacto", "--usuario", user, "--motivo", "enlace DAOD")
    assert world.ledger_messages() == before + 1
    assert shown == {"usuario": user, "nombre": name, "correo": email, "telefono": phone}
    table = world.run("ana", "personas", "contacto", "--usuario", user, "--motivo", "otra vez")
    assert table.returncode == 0, table.stderr
    assert name in table.stdout
    assert email in table.stdout

    rows = _wait(lambda: _contact_rows(world, "sofia", user), "the read is not in the report")
    assert rows[0]["persona"] == "ana"
    assert rows[0]["motivo"] == "enlace DAOD"
    assert "datos_de_contacto" in rows[0]["hallazgos"]
    assert rows[0]["cuenta"] is None
    _wait(lambda: len(_contact_rows(world, "ana", user)) == 2, "the second read is not shown")
    html = world.run("sofia", "reporte", "lecturas", "--formato", "html")
    assert html.returncode == 0, html.stderr
    assert f"contacto de {user}" in html.stdout
    tabla = world.run("sofia", "reporte", "lecturas")
    assert tabla.returncode == 0, tabla.stderr
    assert "contacto" in tabla.stdout  # the table folds its cells at 80 columns
    assert name not in html.stdout + tabla.stdout
    assert email not in html.stdout + tabla.stdout
    assert _contact_rows(world, "luis", user) == []  # a titular's report: own district only


def test_the_web_views_lecturas_page_shows_contact_reads_to_the_secretaria(
    service_world: ServiceWorld,
) -> None:
    """``/lecturas`` of the web view renders the same report: the Secretaría Ejecutiva sees the
    read of a contact (JSON with the same keys as the CLI, and the HTML page), never the data."""
    from tests.e2e.web_harness import serving

    world = service_world
    user = _unique("pw")
    name, email, phone = _contact_values()
    world.call(
        "ana",
        "personas.alta",
        {"usuario": user, "nombre": name, "correo": email, "telefono": phone, "rol": "secretaria"},
    )
    ok(world, "ana", "personas", "contacto", "--usuario", user, "--motivo", "revisión web")
    cli_rows = _wait(lambda: _contact_rows(world, "sofia", user), "the read is not projected")
    with serving(world) as web, web.logged_in("sofia") as client:
        page = client.get("/lecturas", params={"formato": "json"})
        assert page.status_code == 200, page.text
        rows = [r for r in page.json() if r.get("contacto_de") == user]
        assert [set(r) for r in rows] == [set(cli_rows[0])]
        assert rows[0]["motivo"] == "revisión web"
        html = client.get("/lecturas")
        assert html.status_code == 200
        assert f"contacto de {user}" in html.text
        assert email not in html.text
        assert name not in html.text


@pytest.mark.parametrize("reader", ["luis", "bety"])
def test_titular_and_administrator_are_refused_by_the_service(
    service_world: ServiceWorld, reader: str
) -> None:
    """A titular or an administrator asking for a contact is refused by the service (the
    refusal's class comes back over the wire: no client-side check) and nothing is recorded."""
    world = service_world
    if not world.session_file(reader).exists():
        world.login(reader)
    message = refused(
        world, reader, 3, "personas", "contacto", "--usuario", "sofia", "--motivo", "curiosidad"
    )
    assert "coadministradora" in message
    from events.errors import CustodiaError

    with pytest.raises(CustodiaError) as refusal:
        world.call(reader, "personas.contacto", {"usuario": "sofia", "motivo": "curiosidad"})
    assert "NotCoadministratorError" in getattr(refusal.value, "remote_chain", [])


def test_nobody_decrypts_contact_data_in_openbao_around_the_record(
    service_world: ServiceWorld,
) -> None:
    """Only the service's token may decrypt personal data: a coadministrator, a titular, an
    administrator or the Secretaría asking OpenBao directly with their own session token (which
    would skip the ledger record) get OpenBao's own 403."""
    world = service_world
    for user in ("ana", "luis", "bety", "sofia"):
        if not world.session_file(user).exists():
            world.login(user)
        vault = VaultClient(world.endpoints().vault_addr, world.token(user))
        with pytest.raises(VaultPermissionDeniedError):
            vault.write(
                f"{vault.mounts.transit}/decrypt/pii-{person_id('sofia')}",
                {"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                operation="test-decrypt",
            )


def test_an_erased_person_stays_unreadable_and_the_attempt_records_nothing(
    service_world: ServiceWorld,
) -> None:
    """After ``personas borrar-datos`` a contact read fails with a Spanish message and a
    non-zero exit, shows nothing, and writes nothing to the ledger (nothing was read)."""
    world = service_world
    user = _unique("pe")
    name, email, phone = _contact_values()
    world.call(
        "ana",
        "personas.alta",
        {"usuario": user, "nombre": name, "correo": email, "telefono": phone, "rol": "secretaria"},
    )
    ok(world, "ana", "personas", "baja", "--usuario", user, "--motivo", "baja", "--oficio", "X/1")
    ok(world, "ana", "personas", "borrar-datos", "--usuario", user)
    message = refused(
        world, "ana", 1, "personas", "contacto", "--usuario", user, "--motivo", "localizar"
    )
    assert "borrados" in message
    assert name not in message
    assert email not in message


def test_contact_values_never_reach_events_logs_projections_or_errors(
    service_world: ServiceWorld,
) -> None:
    """R7: after reads (granted and refused) of a person's contact, no part of the name, e-mail
    or phone is in any message of any NATS stream (ledger, idempotency bucket with the replies),
    the service's log, the projection databases, or a refusal's output."""
    import nats

    from custody.stack.embedded import EmbeddedStack
    from tests.support.secretscan import scan

    world = service_world
    user = _unique("ps")
    name, email, phone = _contact_values()
    world.call(
        "ana",
        "personas.alta",
        {"usuario": user, "nombre": name, "correo": email, "telefono": phone, "rol": "secretaria"},
    )
    shown = ok(world, "ana", "personas", "contacto", "--usuario", user, "--motivo", "llamar")
    assert shown["telefono"].endswith(phone)  # the control: the values exist and were read
    outputs = [
        refused(world, "luis", 3, "personas", "contacto", "--usuario", user, "--motivo", "x"),
        refused(world, "ana", 2, "personas", "contacto", "--usuario", user, "--motivo", ""),
    ]
    _wait(lambda: _contact_rows(world, "sofia", user), "the read is not projected")
    secrets = [name, email.split("@")[0], phone]
    users = EmbeddedStack(world.home).nats_users()
    info = EmbeddedStack(world.home).info()
    assert info is not None

    async def every_message() -> list[bytes]:
        from nats.js.errors import BadRequestError, NotFoundError

        nc = await nats.connect(
            info.nats_url, user="administrador", password=users["administrador"].password
        )
        found: list[bytes] = []
        try:
            js = nc.jetstream()
            for stream in [str(s.config.name) for s in await js.streams_info()]:
                state = (await js.stream_info(stream)).state
                for seq in range(state.first_seq, state.last_seq + 1):
                    try:
                        msg = await js.get_msg(stream, seq)
                    except (NotFoundError, BadRequestError):
                        continue
                    found.append(str(msg.subject).encode() + b" " + (msg.data or b""))
        finally:
            await nc.close()
        return found

    messages = asyncio.run(every_message())
    assert len(messages) > 50
    assert scan(messages, secrets, where="stream") == []
    assert scan(world.log_text(), secrets, where="log") == []
    databases = sorted(world.home.rglob("*.sqlite*"))
    assert databases
    for path in databases:
        assert scan(path.read_bytes(), secrets, where=path.name) == []
    assert scan(outputs, secrets, where="refusals") == []


# -- personas importar ------------------------------------------------------------------------


def _csv(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    header = "movimiento,usuario,nombre,correo,telefono,rol,distrito,motivo,oficio,fecha"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_import_previews_applies_once_and_a_second_run_changes_nothing(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """The dry run shows each movement and writes nothing; ``--aplicar`` makes the hire (who
    then logs in with the password given on stdin, never shown), the departure and the transfer
    through the service; the same file again changes nothing and says so."""
    world = service_world
    hire, leaver, mover = _unique("ih"), _unique("il"), _unique("im")
    world.add_person(leaver, "administrador", "DD12")
    world.add_person(mover, "administrador", "DD10")
    path = _csv(
        tmp_path,
        "movimientos.csv",
        [
            f"alta,{hire},Nueva Persona,{hire}@iecm.mx,5512345678,administrador,DD09,,,",
            f"baja,{leaver},,,,,,promocion,RH/001/2026,2026-03-01",
            f"cambio,{mover},,,,administrador,DD11,readscripción,RH/002/2026,",
        ],
    )
    password = SERVICE_PASSWORD.format(hire)
    before = world.ledger_messages()
    preview = ok(world, "ana", "personas", "importar", "--archivo", str(path))
    assert world.ledger_messages() == before
    assert preview["aplicado"] is False
    assert preview["cambios"] == 3
    assert [r["accion"] for r in preview["filas"]] == ["alta", "baja", "cambio"]
    assert [r["linea"] for r in preview["filas"]] == [2, 3, 4]
    assert _person(world, hire) is None

    args = ("personas", "importar", "--archivo", str(path), "--aplicar", "--contrasenas-stdin")
    applied = world.run("ana", *args, "--json", stdin=f"{hire} {password}\n")
    assert applied.returncode == 0, applied.stderr
    assert password not in applied.stdout + applied.stderr
    result = json.loads(applied.stdout)
    assert [r["resultado"] for r in result["filas"]] == ["aplicado"] * 3
    assert _person(world, hire)["roles"] == {"administrador": "DD09"}  # type: ignore[index]
    assert _person(world, leaver)["baja"] is not None  # type: ignore[index]
    assert _person(world, leaver)["roles"] == {}  # type: ignore[index]
    assert _person(world, mover)["roles"] == {"administrador": "DD11"}  # type: ignore[index]
    opened = sessions.login(world.endpoints().vault_addr, hire, password, world.session_file(hire))
    assert opened.username == hire

    before = world.ledger_messages()
    again = world.run("ana", *args, stdin="")
    assert again.returncode == 0, again.stderr
    assert "Nada que cambiar" in again.stdout
    assert world.ledger_messages() == before
    preview = ok(world, "ana", "personas", "importar", "--archivo", str(path))
    assert {r["accion"] for r in preview["filas"]} == {"sin_cambios"}


def test_an_invalid_file_is_refused_whole_with_line_numbers(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """Every row is checked before any is applied: one bad row among good ones, and nothing is
    written; the Spanish errors name each bad line. A hire without its initial password is
    refused the same way, before anything is applied."""
    world = service_world
    good, departed = _unique("ig"), _unique("ix")
    path = _csv(
        tmp_path,
        "malo.csv",
        [
            f"alta,{good},Buena,{good}@iecm.mx,,administrador,DD09,,,",
            f"alta,{_unique('ib')},Mala,no-es-correo,,administrador,DD40,,,",
            f"baja,{departed},,,,,,jubilacion,,",
            f"baja,{_unique('iu')},,,,,,baja,RH/9,",
        ],
    )
    message = refused(world, "ana", 2, "personas", "importar", "--archivo", str(path), "--aplicar")
    lines = message.splitlines()
    third = " ".join(line for line in lines if "línea 3" in line)
    fourth = " ".join(line for line in lines if "línea 4" in line)
    assert "«correo»" in third
    assert "«distrito»" in third
    assert "«motivo»" in fourth
    assert "«oficio»" in fourth
    assert not any("línea 2" in line for line in lines)
    assert _person(world, good) is None
    # Rows valid on their own but not against the ledger: the person is unknown.
    path = _csv(tmp_path, "desconocida.csv", [f"baja,{_unique('iu')},,,,,,baja,RH/9,"])
    message = refused(world, "ana", 2, "personas", "importar", "--archivo", str(path))
    assert "línea 2: " in message
    assert "no está registrada" in message
    # A hire without its initial password: refused before anything is applied.
    path = _csv(tmp_path, "claves.csv", [f"alta,{good},Buena,{good}@iecm.mx,,secretaria,,,,"])
    args = ("personas", "importar", "--archivo", str(path), "--aplicar")
    assert "--contrasenas-stdin" in refused(world, "ana", 2, *args, stdin="")
    missing = refused(world, "ana", 2, *args, "--contrasenas-stdin", stdin="otra clave-1\n")
    assert f"falta la contraseña inicial de {good}" in missing
    assert _person(world, good) is None


def test_a_row_the_service_refuses_is_reported_and_the_rest_applies(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """A hire whose user name is already an OpenBao login with another password (made outside
    Custodia: nothing the preview can see) is refused by the service; the other row is applied;
    the exit is non-zero and the re-run applies nothing twice. Only a coadministrator may
    import: a titular is refused by the service before anything is written. (A second titular
    for a district is caught by the preview: test_movimientos.)"""
    world = service_world
    hire = _unique("it")
    other = _unique("io")
    world.root_vault().write(
        f"auth/userpass/users/{hire}", {"password": "otra-clave-ajena-1"}, operation="test"
    )
    path = _csv(
        tmp_path,
        "parcial.csv",
        [
            f"alta,{hire},Otra Persona,{hire}@iecm.mx,,secretaria,,,,",
            f"alta,{other},Otra Persona,{other}@iecm.mx,,secretaria,,,,",
        ],
    )
    stdin = f"{hire}\t{SERVICE_PASSWORD.format(hire)}\n{other} {SERVICE_PASSWORD.format(other)}\n"
    args = ("personas", "importar", "--archivo", str(path), "--aplicar", "--contrasenas-stdin")
    first = world.run("ana", *args, "--json", stdin=stdin)
    assert first.returncode == 1, first.stderr
    rows = json.loads(first.stdout)["filas"]
    assert [r["resultado"] for r in rows] == ["rechazado", "aplicado"]
    assert f"Ya existe en OpenBao un acceso con el usuario {hire}" in rows[0]["mensaje"]
    assert SERVICE_PASSWORD.format(hire) not in first.stdout + first.stderr
    second = world.run("ana", *args, "--json", stdin=stdin)
    assert second.returncode == 1
    rows = json.loads(second.stdout)["filas"]
    assert [r["resultado"] for r in rows] == ["rechazado", "sin_cambios"]
    refused(world, "luis", 3, "personas", "importar", "--archivo", str(path), "--aplicar",
            "--contrasenas-stdin", stdin=stdin)  # fmt: skip
    titular = _csv(tmp_path, "titular.csv", [f"alta,{_unique('tt')},T,t@iecm.mx,,titular,DD05,,,"])
    preview = world.run("ana", "personas", "importar", "--archivo", str(titular))
    assert preview.returncode != 0
    assert "DD05 ya tiene persona titular" in preview.stderr  # said before --aplicar
