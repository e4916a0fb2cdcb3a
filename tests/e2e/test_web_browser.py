"""The web view in a real headless Chromium (Debian's ``chromium``, driven by Playwright): the
Secretaría Ejecutiva and a titular log in, follow the links, see their scope, log out; a form
whose CSRF token was tampered with is refused. Screenshots of the main pages are written to
``artefactos/web/`` (or ``$CUSTODIA_ARTEFACTOS/web``) for the test artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import SERVICE_PASSWORD, ServiceWorld
from tests.e2e.web_harness import WebServer, notified_incident, serving

pytestmark = pytest.mark.e2e

T = TypeVar("T")
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
ARTIFACTS = (
    Path(os.environ.get("CUSTODIA_ARTEFACTOS", Path(__file__).parents[2] / "artefactos")) / "web"
)


@pytest.fixture(scope="module")
def web(service_world: ServiceWorld) -> Iterator[WebServer]:
    with serving(service_world) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("chromium no está instalado (scripts/test.sh lo instala en CI)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _login(page: Page, web: WebServer, user: str, start: str = "/") -> None:
    page.goto(web.url + start)
    assert page.url.startswith(web.url + "/ingresar")
    page.get_by_label("Usuario").fill(user)
    page.get_by_label("Contraseña").fill(SERVICE_PASSWORD.format(user))
    page.get_by_role("button", name="Ingresar").click()
    page.wait_for_load_state()


def _outside_playwright(work: Callable[[], T]) -> T:
    """Run ``work`` in a thread: Playwright's sync API holds an event loop in this one, and the
    command client runs its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_secretaria_logs_in_follows_links_and_logs_out(browser: Browser, web: WebServer) -> None:
    """sofia logs in from a deep link, lands where she was going, follows every link of the menu
    (each page answers, in Spanish), and logs out: the next page sends her to the login."""
    context = browser.new_context(locale="es-MX", timezone_id="America/Mexico_City")
    page = context.new_page()
    try:
        _login(page, web, "sofia", "/cumplimiento")
        assert page.url == web.url + "/cumplimiento"
        assert page.get_by_role("heading", level=1).inner_text() == "Cumplimiento"
        _shot(page, "cumplimiento-secretaria")
        for name, slug in (
            ("Resumen", ""),
            ("Incidentes", "incidentes"),
            ("Obligaciones", "obligaciones"),
            ("Exposición", "exposicion"),
            ("Cambios", "cambios"),
            ("Lecturas", "lecturas"),
            ("Bitácora", "bitacora"),
        ):
            page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()
            page.wait_for_load_state()
            assert page.url == f"{web.url}/{slug}"
            assert page.locator("h1").count() == 1
            assert "No se pudo mostrar" not in page.content()
            _shot(page, f"{slug or 'resumen'}-secretaria")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["custodia_sesion"]["httpOnly"] is True
        assert cookies["custodia_sesion"]["sameSite"] == "Strict"
        page.get_by_role("button", name="Salir").click()
        page.wait_for_load_state()
        assert page.url.startswith(web.url + "/ingresar")
        page.goto(web.url + "/incidentes")
        assert page.url.startswith(web.url + "/ingresar")
    finally:
        context.close()


def test_titular_sees_own_district_and_a_tampered_form_is_refused(
    browser: Browser, web: WebServer
) -> None:
    """luis (DD05's titular) sees DD05 in the compliance page and a Spanish refusal for DD07;
    a logout form whose CSRF token was changed in the page is refused and he stays logged in."""
    context = browser.new_context(locale="es-MX", bypass_csp=True)
    page = context.new_page()
    try:
        _login(page, web, "luis")
        page.goto(web.url + "/cumplimiento")
        report = page.get_by_role("region", name="Cumplimiento").inner_text()
        assert "DD05" in report
        assert "DD07" not in report
        _shot(page, "cumplimiento-titular")
        page.get_by_role("textbox", name="Distrito").fill("DD07")
        page.get_by_role("button", name="Filtrar").click()
        page.wait_for_load_state()
        assert "no permite ver" in page.get_by_role("alert").inner_text()
        page.goto(web.url + "/")
        page.evaluate("document.querySelector('form.salir input[name=csrf]').value = 'manipulado'")
        page.get_by_role("button", name="Salir").click()
        page.wait_for_load_state()
        assert "El formulario caducó" in page.get_by_role("alert").inner_text()
        page.goto(web.url + "/")
        assert page.url == web.url + "/"
    finally:
        context.close()


def test_login_page_is_usable_with_the_keyboard_on_a_phone(
    browser: Browser, web: WebServer
) -> None:
    """On a phone-sized screen the login form is reachable with Tab alone (labels, focus order)
    and a wrong password shows a Spanish alert."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="es-MX")
    page = context.new_page()
    try:
        page.goto(web.url + "/ingresar")
        # The user field has the focus on arrival (Chromium applies autofocus at the first
        # rendering opportunity after load, so wait for it); Tab goes on to the password.
        expect(page.locator("#usuario")).to_be_focused(timeout=5000)
        page.keyboard.type("sofia")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "contrasena"
        page.keyboard.type("equivocada")
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert "incorrectos" in page.get_by_role("alert").inner_text()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        _shot(page, "ingresar-telefono")
    finally:
        context.close()


def test_secretaria_acknowledges_an_incident_in_the_browser(
    browser: Browser, web: WebServer, service_world: ServiceWorld
) -> None:
    """From /incidentes, sofia writes the measures and presses the button of a notified
    incident: the page confirms it and the incident no longer awaits her."""
    incident = _outside_playwright(lambda: notified_incident(service_world, "suplantacion"))
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    try:
        _login(page, web, "sofia", "/incidentes")
        form = page.locator(f"form[action='/incidentes/{incident}/enterado']")
        form.get_by_label("Medidas (opcional)").fill("Dar vista a la Contraloría")
        _shot(page, "incidentes-enterado")
        form.get_by_role("button").click()
        page.wait_for_load_state()
        assert "Quedó registrado el enterado" in page.get_by_role("status").inner_text()
        assert page.locator(f"form[action='/incidentes/{incident}/enterado']").count() == 0
    finally:
        context.close()


def test_secretaria_downloads_the_ledger_bundle_and_it_verifies(
    browser: Browser, web: WebServer, service_world: ServiceWorld, tmp_path: Path
) -> None:
    """On /bitacora sofia clicks the public key's link and the bundle's: the browser saves
    both as files (attachments with their names), and ``custodia bitacora verificar`` on the
    saved bundle, with the saved key, finds the ledger intact."""
    context = browser.new_context(locale="es-MX", accept_downloads=True)
    page = context.new_page()
    try:
        _login(page, web, "sofia", "/bitacora")
        assert page.url == web.url + "/bitacora"
        _shot(page, "bitacora-secretaria")
        saved: dict[str, Path] = {}
        for name, link in (
            ("clave", "Descargar la clave pública de la bitácora"),
            ("paquete", "Descargar el paquete de la bitácora"),
        ):
            with page.expect_download() as started:
                page.get_by_role("link", name=link).click()
            download = started.value
            saved[name] = tmp_path / download.suggested_filename
            download.save_as(saved[name])
    finally:
        context.close()
    assert saved["clave"].name == "custodia-bitacora-clave.json"
    assert saved["paquete"].name == "custodia-bitacora.jsonl.gz"
    result = service_world.run(
        None, "bitacora", "verificar", "--paquete", str(saved["paquete"]),
        "--clave-publica", str(saved["clave"]),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Bitácora íntegra:")
