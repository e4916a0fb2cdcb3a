"""Issue 18, "a second factor", set up by ``custodia init`` (``[segundo_factor] obligatorio``
true, the default): OpenBao enforces TOTP on every coadministrator and administrator; each
enrols at the first login through a first-login user that can enrol exactly that person, once;
a coadministrator resets a lost factor, recorded.

A world of its own (the shared one runs without the factor). Every refusal below is OpenBao's
own answer to a raw request. A TOTP code is single-use: no person here logs in twice with the
same secret in one 30 s window (each of them logs in with a code once per secret). The tests
run in this order (each builds on the one before).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from custody.vault.layout import MFA_GROUP, first_login_policy_name

from .conftest import (
    SERVICE_PASSWORD,
    ServiceWorld,
    init_home,
    run_custodia,
    start_service,
    stop_service,
)

pytestmark = pytest.mark.e2e

FIRST = "userpass-primer-ingreso"


def secret_of(uri: str) -> str:
    return parse_qs(urlparse(uri).query)["secret"][0]


def code_of(uri: str) -> str:
    secret = secret_of(uri)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303  # RFC 6238
    return totp.generate(int(time.time())).decode()


class World:
    def __init__(self, home: Path, service: Any) -> None:
        self.home = home
        self.service = service
        self.inner = ServiceWorld(home, service)
        self.addr = self.inner.endpoints().vault_addr

    def bao(self, method: str, path: str, token: str | None = None, **body: Any) -> Any:
        """One raw request to OpenBao: ``(status, body)`` as the server answered."""
        headers = {"X-Vault-Token": token} if token else {}
        answer = requests.request(
            method, f"{self.addr}/v1/{path}", headers=headers, json=body or None, timeout=30
        )
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, {}

    def login(self, user: str, *extra: str, password: str | None = None) -> Any:
        """``custodia sesion iniciar --json`` as ``user``, through the real executable."""
        return run_custodia(
            "sesion", "iniciar", "--usuario", user, "--password-stdin", "--json", *extra,
            home=self.home,
            env={"CUSTODIA_SESION": str(self.inner.session_file(user))},
            stdin=(password or SERVICE_PASSWORD.format(user)) + "\n",
        )  # fmt: skip

    def run(self, user: str, *args: str) -> Any:
        return self.inner.run(user, *args)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("custodia-segundo-factor")
    init = init_home(home, "ana", SERVICE_PASSWORD.format("ana"), second_factor=True)
    try:
        assert init.returncode == 0, init.stderr
        service = start_service(home)
        try:
            yield World(home, service)
        finally:
            stop_service(service)
    finally:
        run_custodia("detener", home=home)


def _password_only(world: World, user: str, mount: str = "userpass") -> tuple[int, Any]:
    return world.bao(  # type: ignore[no-any-return]
        "POST", f"auth/{mount}/login/{user}", password=SERVICE_PASSWORD.format(user)
    )


def test_first_coadministrator_enrols_at_first_login_and_then_needs_a_code(world: World) -> None:
    """After ``custodia init`` OpenBao answers ana's password with an MFA requirement and no
    token. Her first ``sesion iniciar`` shows the otpauth URI once (``--json`` key
    ``otpauth``, issuer IECM Custodia); asked again, OpenBao enrols nothing more (no URI, the
    CLI says a code is needed). With a code from that URI she logs in; the service then
    deletes her first login (OpenBao refuses its password from now on) and records the
    enrolment (``personas lista``: ``segundo_factor`` = ``inscrito``)."""
    status, body = _password_only(world, "ana")
    assert status == 200
    assert body["auth"]["client_token"] == ""
    assert body["auth"]["mfa_requirement"]["mfa_request_id"]

    first = world.login("ana")
    assert first.returncode == 0, first.stderr
    shown = json.loads(first.stdout)
    assert shown["sesion_iniciada"] is False
    uri = shown["otpauth"]
    assert uri.startswith("otpauth://totp/")
    assert "issuer=IECM" in uri.replace("%20", " ")
    assert not world.inner.session_file("ana").exists()

    again = world.login("ana")
    assert again.returncode == 3, again.stdout + again.stderr
    assert "otpauth" not in again.stdout
    assert secret_of(uri) not in again.stdout + again.stderr
    assert again.stderr.startswith("Error: OpenBao exige el segundo factor de ana")

    code = code_of(uri)
    accepted = world.login("ana", "--codigo", code)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout) == {"usuario": "ana", "sesion_iniciada": True}
    assert code not in accepted.stdout + accepted.stderr

    status, _ = _password_only(world, "ana", FIRST)
    assert status in (400, 403)  # the first login is gone
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["ana"]["segundo_factor"] == "inscrito"


def test_an_administrators_first_login_can_enrol_only_their_own_factor_once(
    world: World,
) -> None:
    """``personas alta --rol administrador`` puts bety under the factor: OpenBao refuses her
    password alone on the main login. Her first-login token (the same initial password on
    ``userpass-primer-ingreso``) belongs to another entity; OpenBao refuses it admin-generate
    for ana, any marker, any secret, the service's commands (no identity); it enrols bety once
    (a second admin-generate answers nothing). After her confirmed login the first-login user
    and its policy are gone: knowing the initial password yields nothing."""
    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "bety",
            "nombre": "Bety",
            "correo": "bety@iecm.mx",
            "rol": "administrador",
            "distrito": "DD05",
            "contrasena": SERVICE_PASSWORD.format("bety"),
        },
    )
    status, body = _password_only(world, "bety")
    assert status == 200
    assert body["auth"]["client_token"] == ""

    status, body = _password_only(world, "bety", FIRST)
    assert status == 200, body
    first_token = body["auth"]["client_token"]
    throwaway = body["auth"]["entity_id"]
    _, entity = world.bao("GET", f"identity/entity/id/{throwaway}", first_token)
    real, method = entity["data"]["metadata"]["persona"], entity["data"]["metadata"]["metodo"]
    assert real != throwaway
    assert entity["data"]["group_ids"] == []
    ana_entity = world.inner.call("ana", "sesion.quien")  # ana exists; her entity below
    assert ana_entity["usuario"] == "ana"
    ana_token = json.loads(world.inner.session_file("ana").read_text())["token"]
    _, ana_self = world.bao("GET", "auth/token/lookup-self", ana_token)

    status, _ = world.bao(
        "POST",
        "identity/mfa/method/totp/admin-generate",
        first_token,
        method_id=method,
        entity_id=ana_self["data"]["entity_id"],
    )
    assert status == 403
    status, _ = world.bao("POST", "identity/mfa/method/totp/admin-destroy", first_token,
                          method_id=method, entity_id=real)  # fmt: skip
    assert status == 403
    for path in ("custodia-acceso/DD05/revelar/x", "custodia/data/cuentas/DD05/x"):
        status, _ = world.bao("GET", path, first_token)
        assert status == 403, path
    status, caps = world.bao(
        "POST", "sys/capabilities-self", first_token, paths=["custodia-acceso/DD05/revelar/x"]
    )
    assert caps["capabilities"] == ["deny"]
    status, _ = world.bao(
        "POST", f"identity/group/name/{MFA_GROUP}", first_token, member_entity_ids=[]
    )
    assert status == 403
    # The service takes no command from a first login: it names nobody.
    from custody.service.client import CommandClient
    from custody.service.protocol import RemoteError

    with pytest.raises(RemoteError, match="NotAuthenticatedError"):
        CommandClient(world.inner.endpoints(), first_token, timeout=5).call("sesion.quien", {})

    status, body = world.bao(
        "POST", "identity/mfa/method/totp/admin-generate", first_token,
        method_id=method, entity_id=real,
    )  # fmt: skip
    assert status == 200
    uri = body["data"]["url"]
    status, body = world.bao(
        "POST", "identity/mfa/method/totp/admin-generate", first_token,
        method_id=method, entity_id=real,
    )  # fmt: skip
    assert status == 200
    assert body["data"] is None

    accepted = world.login("bety", "--codigo", code_of(uri))
    assert accepted.returncode == 0, accepted.stderr
    # The throwaway token still exists, but its only policy is gone: it can do nothing more.
    status, _ = world.bao(
        "POST", "identity/mfa/method/totp/admin-generate", first_token,
        method_id=method, entity_id=real,
    )  # fmt: skip
    assert status == 403
    status, _ = _password_only(world, "bety", FIRST)
    assert status in (400, 403)
    root = world.inner.root_vault()
    status, _ = world.bao(
        "GET", f"sys/policies/acl/{first_login_policy_name('bety')}", str(root._token)
    )
    assert status == 404
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["bety"]["segundo_factor"] == "inscrito"


def test_a_lost_factor_is_reset_only_by_another_coadministrator_and_recorded(
    world: World,
) -> None:
    """bety cannot reset a factor (not a coadministrator), nor ana her own. ana resets bety's
    on an oficio: OpenBao destroyed the secret (a new enrolment yields a NEW URI), the new
    first-login password is shown once to ana (sealed on the wire), the ledger records it
    (``personas lista``: ``restablecido``). bety enrols again with that password and logs in
    with her usual password and a code of the new secret."""
    bety_path = world.inner.session_file("bety")
    refused = world.run(
        "bety", "personas", "restablecer-factor", "--usuario", "ana", "--motivo", "x",
        "--oficio", "UTCSyD/1/2026",
    )  # fmt: skip
    assert refused.returncode == 3, refused.stdout + refused.stderr
    own = world.run(
        "ana", "personas", "restablecer-factor", "--usuario", "ana", "--motivo", "perdí",
        "--oficio", "UTCSyD/2/2026",
    )  # fmt: skip
    assert own.returncode == 3, own.stdout + own.stderr
    assert "propio segundo factor" in own.stderr

    reset = world.run(
        "ana", "personas", "restablecer-factor", "--usuario", "bety",
        "--motivo", "extravío del teléfono", "--oficio", "UTCSyD/077/2026", "--json",
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    data = json.loads(reset.stdout)
    new_password = data["contrasena"]
    assert data["usuario"] == "bety"
    assert len(new_password) >= 20
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["bety"]["segundo_factor"] == "restablecido"
    log_text = world.inner.log_text()
    assert new_password not in log_text

    # Her usual password is no first login; the new one is, and enrols a NEW secret.
    assert world.login("bety").returncode == 3
    bety_path.unlink(missing_ok=True)
    first = world.login("bety", password=new_password)
    assert first.returncode == 0, first.stderr
    uri = json.loads(first.stdout)["otpauth"]
    accepted = world.login("bety", "--codigo", code_of(uri))
    assert accepted.returncode == 0, accepted.stderr
    status, _ = world.bao("POST", f"auth/{FIRST}/login/bety", password=new_password)
    assert status in (400, 403)
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["bety"]["segundo_factor"] == "inscrito"


def test_the_service_token_cannot_grant_enrol_destroy_or_lift_the_factor(world: World) -> None:
    """The service's own token (``secrets/servicio-token``) makes first-login users and deletes
    them, nothing more: OpenBao refuses it writing a first-login policy, giving a first login
    any other policy (by name, comma-separated or as a list), enrolling or destroying a factor,
    changing who must use the factor, or removing the enforcement."""
    token = (world.home / "secrets" / "servicio-token").read_text().strip()
    root = str(world.inner.root_vault()._token)
    _, method_list = world.bao("LIST", "identity/mfa/method/totp", root)
    method = method_list["data"]["keys"][0]
    ana_token = json.loads(world.inner.session_file("ana").read_text())["token"]
    _, ana_self = world.bao("GET", "auth/token/lookup-self", ana_token)
    ana = ana_self["data"]["entity_id"]
    eve = f"auth/{FIRST}/users/eve"
    coadmin = "custodia-coadministrador"
    first_policy = first_login_policy_name("eve")
    factor = {"method_id": method, "entity_id": ana}
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"sys/policies/acl/{first_policy}", {"policy": 'path "*" {}'}),
        ("POST", eve, {"password": "x", "token_policies": coadmin}),
        ("POST", eve, {"password": "x", "token_policies": f"{first_policy},{coadmin}"}),
        ("POST", eve, {"password": "x", "token_policies": [first_policy]}),
        ("POST", eve, {"password": "x", "policies": coadmin}),
        ("POST", "identity/mfa/method/totp/admin-generate", factor),
        ("POST", "identity/mfa/method/totp/admin-destroy", factor),
        ("POST", f"identity/group/name/{MFA_GROUP}", {"member_entity_ids": []}),
        ("DELETE", f"identity/mfa/login-enforcement/{MFA_GROUP}", {}),
    ]
    for method_name, path, body in refused:
        status, _ = world.bao(method_name, path, token, **body)
        assert status == 403, (method_name, path, body)
    status, _ = world.bao(
        "POST", f"auth/{FIRST}/users/eve", token,
        password="x", token_policies=first_policy,
    )  # fmt: skip
    assert status == 204  # what it may do: one first-login policy, by its plain name
    status, _ = world.bao("DELETE", f"auth/{FIRST}/users/eve", token)
    assert status == 204


def test_a_titular_may_opt_in_and_then_openbao_asks_them_for_a_code(world: World) -> None:
    """A titular reads no credential: registered, OpenBao gives them a token for their password
    alone. ``personas segundo-factor`` (a coadministrator; recorded, ``exigido``) puts them
    under the factor: OpenBao then answers their password with an MFA requirement and no
    token; they enrol with the first-login password shown once to the coadministrator and log
    in with their usual password and a code. Asking twice is refused."""
    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "luis",
            "nombre": "Luis",
            "correo": "luis@iecm.mx",
            "rol": "titular",
            "distrito": "DD05",
            "contrasena": SERVICE_PASSWORD.format("luis"),
        },
    )
    status, body = _password_only(world, "luis")
    assert status == 200
    assert body["auth"]["client_token"]

    opted = world.run("ana", "personas", "segundo-factor", "--usuario", "luis", "--json")
    assert opted.returncode == 0, opted.stderr
    password = json.loads(opted.stdout)["contrasena"]
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["luis"]["segundo_factor"] == "exigido"
    status, body = _password_only(world, "luis")
    assert status == 200
    assert body["auth"]["client_token"] == ""

    first = world.login("luis", password=password)
    assert first.returncode == 0, first.stderr
    uri = json.loads(first.stdout)["otpauth"]
    accepted = world.login("luis", "--codigo", code_of(uri))
    assert accepted.returncode == 0, accepted.stderr
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["luis"]["segundo_factor"] == "inscrito"
    again = world.run("ana", "personas", "segundo-factor", "--usuario", "luis")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "ya usa segundo factor" in again.stderr
