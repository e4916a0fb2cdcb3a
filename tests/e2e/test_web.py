"""The web view over real servers: ``custodia servicio`` on the embedded NATS and OpenBao, the
application served by uvicorn, people logging in with their OpenBao passwords. HTTP first
(every page and role, cookies, CSRF, scope, logout); the browser tests are in
``test_web_browser.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.web.app import PAGES, REPORT_PAGES
from cli.web.sessions import LoginThrottle
from custody.vault.client import VaultClient
from events.errors import CustodiaError
from tests.e2e.conftest import SERVICE_PASSWORD, ServiceWorld
from tests.e2e.test_second_factor import enforce_second_factor, totp_code
from tests.e2e.web_harness import WebServer, csrf_of, login, notified_incident, serving
from tests.support.cluster import make_test_pki

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def web(service_world: ServiceWorld) -> Iterator[WebServer]:
    with serving(service_world) as server:
        yield server


def _report(world: ServiceWorld, user: str, kind: str, **args: Any) -> Any:
    data = world.call(user, "reporte", {"tipo": kind, "formato": "json", **args})
    return json.loads(str(data["contenido"]))


IDENTITY = ("distrito", "cuenta", "incidente", "solicitud", "version", "persona", "fecha")


def _shape(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row's keys and its identifying values: what must be the same on the web and on the
    command line (values derived from the clock, such as hours overdue, may move between the
    two requests)."""
    return [
        (tuple(sorted(row)), tuple(row.get(key) for key in IDENTITY if key in row)) for row in rows
    ]


def test_pages_need_a_login(web: WebServer) -> None:
    """Without a session every page sends the browser to /ingresar (keeping where it was going),
    and the JSON form of a page answers 401 with a Spanish message."""
    with web.client() as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/ingresar?siguiente=")
        response = client.get("/incidentes?formato=json")
        assert response.status_code == 401
        assert response.json() == {"error": "Inicie sesión."}


def test_a_wrong_password_gets_a_spanish_message_and_no_session(web: WebServer) -> None:
    """A wrong password: 401, a clear Spanish message, no session cookie, and the pages still
    send the browser to the login."""
    with web.client() as client:
        response = login(client, "sofia", "no-es-la-clave")
        assert response.status_code == 401
        assert "Usuario, contraseña o código incorrectos." in response.text
        assert "custodia_sesion" not in response.cookies
        assert client.get("/").status_code == 303


def test_login_form_without_its_csrf_token_is_refused(web: WebServer) -> None:
    """A login posted from elsewhere (no token of the form's own, or someone else's) is refused
    before OpenBao is even asked."""
    with web.client() as client:
        client.get("/ingresar")
        response = client.post(
            "/ingresar",
            data={"usuario": "sofia", "contrasena": SERVICE_PASSWORD.format("sofia"), "csrf": "x"},
        )
        assert response.status_code == 403
        assert "El formulario caducó" in response.text
        assert "custodia_sesion" not in response.cookies


def test_only_small_forms_are_read_and_nothing_is_spooled(web: WebServer) -> None:
    """Attack: without a session, POST a large multipart upload to the login page (Starlette
    spools a multipart file to disk before any CSRF check: an outsider could fill /tmp) or a
    huge form, with or without its length. Refused before the body is read: 415 for anything
    but a URL-encoded form, 413 past 64 KiB; the login form itself still works."""
    with web.client() as client:
        client.get("/ingresar")
        upload = client.post(
            "/ingresar",
            files={"archivo": ("a.bin", b"x" * (2 * 1024 * 1024))},
            data={"usuario": "sofia"},
        )
        assert upload.status_code == 415  # before: read and spooled, then 403 (no CSRF token)
        assert "Content-Security-Policy" in upload.headers
        big = client.post("/ingresar", data={"usuario": "x" * (100 * 1024)})
        assert big.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known as read
            yield b"usuario="
            for _ in range(100):
                yield b"x" * 1024

        streamed = client.post(
            "/ingresar",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert streamed.status_code == 413
        wrong = login(client, "sofia", "mal")  # a real form still reaches the login
        assert wrong.status_code == 401


def test_the_session_cookie_is_httponly_and_strict(web: WebServer) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, path /; not Secure over plain HTTP (it
    is over TLS, see the unit tests); every page carries the security headers."""
    with web.client() as client:
        response = login(client, "sofia", SERVICE_PASSWORD.format("sofia"))
        assert response.status_code == 303
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and "sesion" in v
        )
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Secure" not in cookie
        page = client.get("/")
        assert page.status_code == 200
        assert "script-src" not in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"


def test_every_page_for_the_secretaria_in_html_and_json(
    web: WebServer, service_world: ServiceWorld
) -> None:
    """The Secretaría Ejecutiva sees every page; each report page's JSON is exactly what the
    command line's ``reporte … --formato json`` gives her (same keys, same rows)."""
    with web.logged_in("sofia") as client:
        for path in PAGES:
            page = client.get(path if path != "/historial" else "/historial?distrito=DD05")
            assert page.status_code == 200, (path, page.text[:500])
            assert '<html lang="es-MX">' in page.text
        for path, (kind, _) in REPORT_PAGES.items():
            got = client.get(f"{path}?formato=json")
            assert got.status_code == 200
            assert _shape(got.json()) == _shape(_report(service_world, "sofia", kind)), path
        summary = client.get("/?formato=json").json()
        assert set(summary) == {
            "incidentes_abiertos",
            "obligaciones_vencidas",
            "distritos_no_cumplen",
            "bitacora",
        }


def test_a_titular_sees_only_their_district(web: WebServer, service_world: ServiceWorld) -> None:
    """luis, DD05's titular: compliance JSON has DD05 only (as on the command line); asking
    for DD07 is refused with the service's Spanish message (403)."""
    with web.logged_in("luis") as client:
        rows = client.get("/cumplimiento?formato=json").json()
        assert rows == _report(service_world, "luis", "cumplimiento")
        assert {row["distrito"] for row in rows} == {"DD05"}
        refused = client.get("/cumplimiento?distrito=DD07")
        assert refused.status_code == 403
        assert "DD07" in refused.text
        assert client.get("/obligaciones?distrito=DD07&formato=json").status_code == 403


def test_bad_filters_get_a_spanish_400(web: WebServer) -> None:
    """A district or a date that is not one: 400, a Spanish message, nothing asked of the
    service."""
    with web.logged_in("sofia") as client:
        bad = client.get("/cumplimiento?distrito=DD99")
        assert bad.status_code == 400
        assert "no es un distrito" in bad.text
        assert client.get("/cambios?desde=2026-13-01&formato=json").json() == {
            "error": "La fecha de «desde» debe ser AAAA-MM-DD."
        }


def test_the_ledger_page_offers_the_public_key(web: WebServer) -> None:
    """/bitacora shows the integrity the service last saw and offers the ledger's public
    keyring, the same document as ``custodia bitacora clave-publica``."""
    with web.logged_in("luis") as client:
        page = client.get("/bitacora")
        assert page.status_code == 200
        key = client.get("/bitacora/clave-publica.json")
        assert key.status_code == 200
        assert "attachment" in key.headers["content-disposition"]
        keyring = key.json()
        from events.checkpoint import PublicKeyring

        assert PublicKeyring.from_json(keyring).versions


def _verify_bundle(world: ServiceWorld, bundle: Path, key: Path) -> tuple[int, dict[str, Any]]:
    """``custodia bitacora verificar --paquete … --clave-publica … --json`` (offline: it
    connects to nothing): its exit code and verdict."""
    result = world.run(
        None, "bitacora", "verificar", "--paquete", str(bundle), "--clave-publica", str(key),
        "--json",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_the_ledger_page_offers_the_export_bundle_that_verifies(
    web: WebServer, service_world: ServiceWorld, tmp_path: Path
) -> None:
    """The Secretaría Ejecutiva's /bitacora links the public key and the export bundle; both
    come as attachments; the bundle (every ledger entry up to the moment it was asked for, and
    the signed checkpoints) verifies with ``custodia bitacora verificar`` against the key
    downloaded on its own; one altered byte in an event makes the same verification fail."""
    before = service_world.ledger_messages()
    with web.logged_in("sofia") as client:
        page = client.get("/bitacora")
        assert page.status_code == 200
        assert 'href="/bitacora/paquete.jsonl.gz"' in page.text
        assert 'href="/bitacora/clave-publica.json"' in page.text
        key = client.get("/bitacora/clave-publica.json")
        # An entry written the moment before: the bundle waits for the checkpoint that signs
        # it, as the command line's export does (else it ends unsigned: exit 8).
        read = service_world.run(
            "ana", "personas", "contacto", "--usuario", "sofia", "--motivo", "paquete web"
        )
        assert read.returncode == 0, read.stderr
        bundle = client.get("/bitacora/paquete.jsonl.gz")
    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["content-disposition"] == (
        'attachment; filename="custodia-bitacora.jsonl.gz"'
    )
    assert bundle.headers["content-type"] == "application/gzip"
    (tmp_path / "clave.json").write_bytes(key.content)
    (tmp_path / "paquete.jsonl.gz").write_bytes(bundle.content)
    code, verdict = _verify_bundle(
        service_world, tmp_path / "paquete.jsonl.gz", tmp_path / "clave.json"
    )
    assert code == 0, verdict
    assert verdict["ok"] is True
    assert verdict["clave_independiente"] is True
    assert verdict["eventos"] > before
    assert verdict["firmada_hasta"] == verdict["eventos"]
    assert verdict["puntos_de_control_verificados"] >= 1

    import base64
    import gzip

    lines = [json.loads(line) for line in gzip.decompress(bundle.content).splitlines()]
    event = next(i for i, line in enumerate(lines) if line["type"] == "event")
    data = bytearray(base64.b64decode(lines[event]["data"]))
    data[-2] ^= 0x01
    lines[event]["data"] = base64.b64encode(bytes(data)).decode()
    altered = tmp_path / "alterado.jsonl.gz"
    altered.write_bytes(gzip.compress(b"\n".join(json.dumps(x).encode() for x in lines) + b"\n"))
    code, verdict = _verify_bundle(service_world, altered, tmp_path / "clave.json")
    assert code == 1
    assert verdict["ok"] is False


def test_the_export_bundle_is_only_for_roles_that_may_see_the_ledger(
    web: WebServer, service_world: ServiceWorld
) -> None:
    """A titular and a designated administrator see no bundle link on /bitacora, and asking
    for it anyway gets the service's Spanish refusal (403); the service itself refuses them
    the command (not only the web's hiding of the link). The public key, public by nature,
    stays available to them."""
    for user in ("luis", "bety"):
        with web.logged_in(user) as client:
            page = client.get("/bitacora")
            assert page.status_code == 200
            assert "/bitacora/paquete.jsonl.gz" not in page.text
            assert 'href="/bitacora/clave-publica.json"' in page.text
            refused = client.get("/bitacora/paquete.jsonl.gz")
            assert refused.status_code == 403
            assert "Su función no da acceso a esta información" in refused.text
            assert "attachment" not in refused.headers.get("content-disposition", "")
        with pytest.raises(CustodiaError) as raised:
            service_world.call(user, "bitacora.exportar")
        assert getattr(raised.value, "remote_type", None) == "ScopeError"


def test_the_export_comes_in_pages_that_describe_one_ledger(service_world: ServiceWorld) -> None:
    """``bitacora.exportar`` resumed at any entry or checkpoint gives the same material as one
    answer: the first page fixes the extent (``hasta``, ``puntos``), so entries recorded after
    it never leak into a bundle already begun."""
    first = service_world.call("sofia", "bitacora.exportar")
    fixed = {"hasta": first["hasta"], "puntos": first["puntos"]}
    assert first["hasta"] >= 3
    assert first["puntos"] >= 1
    # A ledger larger than one answer has no ``whole``: the web's loop reads it page by page.
    one_page = first["siguiente_punto"] is None and first["siguiente_evento"] is None
    whole = first if one_page else None
    service_world.call(
        "bety",
        "incidentes.reportar",
        {"cuenta": "DD05-x", "tipo": "intervencion", "descripcion": "Prueba de exportación"},
    )  # the ledger grows after the first page
    tail = service_world.call(
        "ana", "bitacora.exportar", {**fixed, "punto": fixed["puntos"], "evento": 3}
    )
    assert tail["puntos_de_control"] == []
    assert [e[0] for e in tail["eventos"]][:1] == [3]
    assert all(seq <= fixed["hasta"] for seq, _ in tail["eventos"])
    if whole is not None:
        assert tail["eventos"] == whole["eventos"][2:]
        assert tail["siguiente_evento"] is None
        notes = service_world.call("ana", "bitacora.exportar", {**fixed, "punto": 1})
        assert notes["puntos_de_control"] == whole["puntos_de_control"][1:]
    with pytest.raises(CustodiaError):
        service_world.call("sofia", "bitacora.exportar", {"evento": 0})


def test_logout_revokes_the_token_in_openbao(web: WebServer, service_world: ServiceWorld) -> None:
    """/salir (POST with the session's CSRF token) ends the session and revokes the person's
    OpenBao token: OpenBao itself refuses it afterwards; the old cookie opens nothing. A logout
    posted without the token is refused and the session goes on."""
    with web.logged_in("sofia") as client:
        page = client.get("/")
        sid = client.cookies["custodia_sesion"]
        session = web.store.get(sid)
        assert session is not None
        token = session.identity.token
        VaultClient(service_world.endpoints().vault_addr, token).lookup_self()
        forged = client.post("/salir", data={"csrf": "otro"})
        assert forged.status_code == 403
        assert client.get("/").status_code == 200
        out = client.post("/salir", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        with pytest.raises(CustodiaError):
            VaultClient(service_world.endpoints().vault_addr, token).lookup_self()
        with httpx.Client(base_url=web.url, cookies={"custodia_sesion": sid}) as stale:
            assert stale.get("/", follow_redirects=False).status_code == 303


def test_logging_in_again_and_again_ends_only_ones_own_oldest_sessions(
    web: WebServer, service_world: ServiceWorld
) -> None:
    """Attack: one person logs in over and over (before: past 10,000 sessions the oldest of
    anyone's were dropped, everyone logged out, their tokens left alive in OpenBao). A person
    keeps at most five sessions: the sixth login ends their own oldest, whose token OpenBao
    then refuses; another person's session is untouched."""
    vault = service_world.endpoints().vault_addr
    with web.logged_in("sofia") as other:
        assert other.get("/").status_code == 200
        clients = [web.client() for _ in range(6)]
        try:
            for client in clients:
                assert login(client, "luis", SERVICE_PASSWORD.format("luis")).status_code == 303
                if client is clients[0]:
                    first = web.store.get(client.cookies["custodia_sesion"])
                    assert first is not None
                    token = first.identity.token
                    VaultClient(vault, token).lookup_self()
            assert clients[0].get("/").status_code == 303  # its session ended
            assert all(c.get("/").status_code == 200 for c in clients[1:])
            with pytest.raises(CustodiaError):
                VaultClient(vault, token).lookup_self()  # revoked in OpenBao
            assert other.get("/").status_code == 200
        finally:
            for client in clients:
                client.close()


def test_redirect_after_login_stays_on_this_site(web: WebServer) -> None:
    """``siguiente`` is honoured only as a local path: //elsewhere or a scheme lands on /."""
    with web.client() as client:
        form = client.get("/ingresar?siguiente=//malo.example/x")
        response = client.post(
            "/ingresar",
            data={
                "usuario": "sofia",
                "contrasena": SERVICE_PASSWORD.format("sofia"),
                "csrf": csrf_of(form.text),
                "siguiente": "https://malo.example/",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_no_token_or_password_in_any_page(web: WebServer) -> None:
    """Nothing the web view sends back contains the person's OpenBao token or a password: every
    page, HTML and JSON, headers included."""
    with web.logged_in("sofia") as client:
        sid = client.cookies["custodia_sesion"]
        session = web.store.get(sid)
        assert session is not None
        secrets = [session.identity.token, SERVICE_PASSWORD.format("sofia")]
        for path in PAGES:
            for suffix in ("", "?formato=json"):
                target = (path if path != "/historial" else "/historial?distrito=DD05") + (
                    suffix if path != "/historial" else suffix.replace("?", "&")
                )
                response = client.get(target)
                text = response.text + str(response.headers)
                for secret in secrets:
                    assert secret not in text, target


def test_repeated_failures_slow_the_next_attempt_down(service_world: ServiceWorld) -> None:
    """After ``free`` failed logins for a user name, the throttle asks each next attempt to wait,
    more each time; a success clears it."""
    throttle = LoginThrottle(free=2, base=0.01, cap=0.05, limit=4)
    with serving(service_world, throttle) as server, server.client() as client:
        for _ in range(2):
            assert login(client, "mario", "mal").status_code == 401
        assert throttle.delay("mario", "otra-direccion") == pytest.approx(0.01)
        assert login(client, "mario", "mal").status_code == 401
        assert throttle.delay("mario", "otra-direccion") == pytest.approx(0.02)
        assert login(client, "mario", SERVICE_PASSWORD.format("mario")).status_code == 303
        assert throttle.delay("mario", "otra-direccion") == 0.0


def test_a_burst_of_bad_logins_cannot_lock_the_user_out_of_openbao(
    service_world: ServiceWorld,
) -> None:
    """Attack: anyone who reaches the login page sends 12 wrong passwords for a user name at
    once. OpenBao locks a login out for 15 minutes after 5 failures, on every path (the
    command line too), and nobody in operation may unlock it. The web asks OpenBao at most
    three times for that name (attempts for one name go one at a time, each seeing the count
    the previous left) and answers the rest 429 itself; OpenBao still takes the right
    password, and the web tells the user to use the command line for a while."""
    import asyncio

    service_world.add_person("rafa", "secretaria")

    async def burst(url: str) -> list[int]:
        async def attempt() -> int:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                form = await client.get("/ingresar")
                answer = await client.post(
                    "/ingresar",
                    data={"usuario": "rafa", "contrasena": "mal", "csrf": csrf_of(form.text)},
                )
                return answer.status_code

        return list(await asyncio.gather(*(attempt() for _ in range(12))))

    with serving(service_world) as server:
        statuses = asyncio.run(burst(server.url))
        assert sorted(statuses) == [401] * 3 + [429] * 9
        status, body = _openbao_login(service_world, "rafa", SERVICE_PASSWORD.format("rafa"))
        assert status == 200, body  # not locked out
        with server.client() as client:
            refused = login(client, "rafa", SERVICE_PASSWORD.format("rafa"))
            assert refused.status_code == 429
            assert "línea de órdenes" in refused.text


def _openbao_login(world: ServiceWorld, user: str, password: str) -> tuple[int, Any]:
    answer = httpx.post(
        f"{world.endpoints().vault_addr}/v1/auth/userpass/login/{user}",
        json={"password": password},
        timeout=30,
    )
    return answer.status_code, answer.json()


def test_over_tls_the_cookie_is_secure_and_hsts_is_sent(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """Served over TLS (``--certificado``/``--clave``), the session cookie and the login form's
    cookie are Secure, and every answer carries Strict-Transport-Security."""
    tls = make_test_pki(tmp_path, ips=("127.0.0.1",))
    with serving(service_world, tls=tls) as server, server.client() as client:
        form = client.get("/ingresar")
        assert "Secure" in form.headers["set-cookie"]
        assert form.headers["strict-transport-security"].startswith("max-age=")
        response = login(client, "sofia", SERVICE_PASSWORD.format("sofia"))
        assert response.status_code == 303
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and "sesion" in v
        )
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert client.get("/").status_code == 200


def test_the_secretaria_acknowledges_an_incident(
    web: WebServer, service_world: ServiceWorld
) -> None:
    """The Secretaría Ejecutiva records her acknowledgement and measures from /incidentes (a
    POST with the session's CSRF token): the incident ledger shows ``enterado``; without the
    token the POST is refused and nothing is recorded; a titular gets no form and the service
    refuses his POST."""
    incident = notified_incident(service_world, "intervencion")
    with web.logged_in("luis") as titular:
        page = titular.get("/incidentes")
        assert f"/incidentes/{incident}/enterado" not in page.text
        refused = titular.post(
            f"/incidentes/{incident}/enterado", data={"csrf": csrf_of(page.text)}
        )
        assert refused.status_code in (403, 422)
    with web.logged_in("sofia") as client:
        page = client.get("/incidentes")
        assert f"/incidentes/{incident}/enterado" in page.text
        forged = client.post(f"/incidentes/{incident}/enterado", data={"medidas": "x"})
        assert forged.status_code == 403
        rows = {r["incidente"]: r for r in client.get("/incidentes?formato=json").json()}
        assert rows[incident]["enterado"] is None
        done = client.post(
            f"/incidentes/{incident}/enterado",
            data={"csrf": csrf_of(page.text), "medidas": "Dar vista al Órgano Interno"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/incidentes?aviso=enterado"
        rows = {r["incidente"]: r for r in client.get("/incidentes?formato=json").json()}
        assert rows[incident]["enterado"] is not None
        cli_rows = _report(service_world, "sofia", "incidentes")
        assert {r["incidente"]: r for r in cli_rows}[incident]["enterado"] is not None


def test_a_person_with_a_second_factor_logs_in_with_the_code(
    web: WebServer, service_world: ServiceWorld
) -> None:
    """With OpenBao's login MFA enforced on a person: the form without ``codigo`` is refused
    with a Spanish message naming the second factor (OpenBao gave no token); with the current
    code she is in; the same code again is refused by OpenBao, and said so."""
    world = service_world
    world.add_person("factorweb", "secretaria")
    root = str(world.root_vault()._token)
    enforcement, secret = enforce_second_factor(world, root, "factorweb", "prueba-factor-web")
    password = SERVICE_PASSWORD.format("factorweb")
    try:
        with web.client() as client:
            refused = login(client, "factorweb", password)
            assert refused.status_code == 401
            assert "OpenBao exige su segundo factor" in refused.text
            assert client.get("/").status_code == 303
            code = totp_code(secret)
            assert login(client, "factorweb", password, code).status_code == 303
            assert client.get("/").status_code == 200
        with web.client() as again:
            reused = login(again, "factorweb", password, code)
            assert reused.status_code == 401
            assert "rechazó el código" in reused.text
    finally:
        httpx.delete(
            f"{world.endpoints().vault_addr}/v1/identity/mfa/login-enforcement/{enforcement}",
            headers={"X-Vault-Token": root},
            timeout=30,
        )


@pytest.mark.parametrize("user", ["ana", "bety", "mario"])
def test_every_page_answers_each_role_in_its_scope(
    web: WebServer, service_world: ServiceWorld, user: str
) -> None:
    """A coadministrator, a designated administrator and one not designated: every page answers
    200, or 403 with the service's Spanish refusal where the role may not see it (as on the
    command line) — never a failure; and each report page agrees with ``reporte`` for them."""
    with web.logged_in(user) as client:
        for path in PAGES:
            target = path if path != "/historial" else "/historial?distrito=DD05"
            page = client.get(target)
            assert page.status_code in (200, 403), (user, path, page.status_code)
            if page.status_code == 403:
                assert "No se pudo mostrar" in page.text
            assert path != "/" or page.status_code == 200  # the summary: the role's sections
        for path, (kind, _) in REPORT_PAGES.items():
            got = client.get(f"{path}?formato=json")
            try:
                expected = _report(service_world, user, kind)
            except CustodiaError:
                assert got.status_code == 403, (user, path)
                continue
            assert got.status_code == 200, (user, path)
            assert _shape(got.json()) == _shape(expected)


def test_a_reviewer_changes_her_own_password_on_the_web(service_world: ServiceWorld) -> None:
    """The Secretaría may use only the web view: it changes her initial password too. The page
    asks for the current one (an open session alone is not enough); a wrong current password is
    refused by OpenBao (401, in Spanish), a confirmation that differs and a short password are
    refused before OpenBao (400); a form from elsewhere (no CSRF token) is refused (403). After
    the change OpenBao refuses the initial password and takes the new one; the session stays."""
    service_world.add_person("wanda", "secretaria")
    initial = SERVICE_PASSWORD.format("wanda")
    new = "nueva-de-wanda-" + "x" * 8
    with serving(service_world) as server, server.logged_in("wanda") as client:
        page = client.get("/")
        assert 'href="/contrasena"' in page.text
        form = client.get("/contrasena")
        assert form.status_code == 200
        token = csrf_of(form.text)

        def change(**fields: str) -> httpx.Response:
            return client.post("/contrasena", data={"csrf": token, **fields})

        wrong = change(actual="no-es-la-actual", nueva=new, confirmacion=new)
        assert wrong.status_code == 401, wrong.text
        assert "La contraseña actual o el código no son correctos." in wrong.text
        differs = change(actual=initial, nueva=new, confirmacion=new + "y")
        assert differs.status_code == 400
        assert "no coinciden" in differs.text
        short = change(actual=initial, nueva="corta", confirmacion="corta")
        assert short.status_code == 400
        assert "al menos 12 caracteres" in short.text
        forged = client.post("/contrasena", data={"actual": initial, "nueva": new})
        assert forged.status_code == 403
        assert _openbao_login(service_world, "wanda", initial)[0] == 200  # nothing changed yet

        done = change(actual=initial, nueva=new, confirmacion=new)
        assert done.status_code == 200, done.text
        assert "Contraseña cambiada" in done.text
        assert new not in done.text
        assert initial not in done.text
        assert client.get("/").status_code == 200  # the session stays
    assert _openbao_login(service_world, "wanda", initial)[0] in (400, 403)
    assert _openbao_login(service_world, "wanda", new)[0] == 200
