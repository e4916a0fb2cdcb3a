"""Issue 18, "a second factor", set up by ``custodia init`` (``[segundo_factor] obligatorio``
true, the default): OpenBao enforces TOTP on every coadministrator and administrator; each
enrols at the first login through a first-login user whose token holds no policy at all: the
service generates the factor of that token's own person (and nothing else for that token);
a coadministrator resets a lost factor, recorded. Nobody writes an ACL policy at run time.

A world of its own (the shared one runs without the factor). Every refusal below is OpenBao's
own answer to a raw request. A TOTP code is single-use: no person here logs in twice with the
same secret in one 30 s window (each of them logs in with a code once per secret). The tests
run in this order (each builds on the one before).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from cli.messages import describe
from custody.service import protocol
from custody.service.permissions import first_login_name, inbox_prefix
from custody.vault.layout import MFA_GROUP

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


def code_of(uri: str, ahead: int = 0) -> str:
    secret = secret_of(uri)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303  # RFC 6238
    return totp.generate(int(time.time()) + ahead).decode()


class World:
    def __init__(self, home: Path, service: Any) -> None:
        self.home = home
        self.service = service
        self.inner = ServiceWorld(home, service)
        self.addr = self.inner.endpoints().vault_addr

    def bao(self, method: str, path: str, token: str | None = None, /, **body: Any) -> Any:
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


def _method(world: World) -> str:
    root = str(world.inner.root_vault()._token)
    _, methods = world.bao("LIST", "identity/mfa/method/totp", root)
    return str(methods["data"]["keys"][0])


def _entity_of(world: World, user: str) -> str:
    """``user``'s real entity (their login on the people's mount), asked as root."""
    root = str(world.inner.root_vault()._token)
    _, mounts = world.bao("GET", "sys/auth", root)
    accessor = mounts["data"]["userpass/"]["accessor"]
    _, found = world.bao(
        "POST", "identity/lookup/entity", root, alias_name=user, alias_mount_accessor=accessor
    )
    return str(found["data"]["id"])


def _wire(
    world: World,
    nats_token: str,
    nats_name: str,
    command: str,
    header_token: str,
    args: dict[str, Any] | None = None,
) -> tuple[Any, list[str], protocol.ReplyKey]:
    """One raw request on NATS: connected with ``nats_token`` (the auth callout decides the
    identity; ``nats_name`` its inbox), sending ``command`` with ``header_token`` as the
    caller. ``(reply or the exception raised, NATS errors seen, the reply key)``."""
    import asyncio
    import uuid

    import nats

    key = protocol.ReplyKey.generate()
    headers = {
        protocol.TOKEN_HEADER: header_token,
        protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
        protocol.REPLY_KEY_HEADER: key.public_b64(),
    }
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    async def send() -> Any:
        nc = await nats.connect(
            **world.inner.endpoints().nats_options(),  # type: ignore[arg-type]
            token=nats_token,
            inbox_prefix=inbox_prefix(nats_name),
            error_cb=on_error,
            allow_reconnect=False,
        )
        try:
            msg = await nc.request(
                f"custodia.cmd.{command}", json.dumps(args or {}).encode(), timeout=10,
                headers=headers,
            )  # fmt: skip
            return protocol.decode_reply(msg.data)
        except Exception as exc:
            return exc
        finally:
            await nc.close()

    return asyncio.run(send()), errors, key


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


def test_an_administrators_first_login_can_do_nothing_but_ask_the_service_for_their_factor(
    world: World,
) -> None:
    """``personas alta --rol administrador`` puts bety under the factor: OpenBao refuses her
    password alone on the main login. Her first-login token (the same initial password on
    ``userpass-primer-ingreso``) holds no policy, belongs to an entity of its own in no group,
    and gets OpenBao's 403 for everything: looking itself up, admin-generate for her own entity,
    admin-destroy, writing an ACL policy, the audit devices, secrets, the factor's group. On
    NATS it may publish on ``segundo_factor.inscribir`` only (NATS reports the violation); the
    service refuses it any other command even carried on another person's connection, and
    refuses ``segundo_factor.inscribir`` from a person's token. ``inscribir`` takes no user
    name: it enrols the token's own person (her code then opens HER login), once: asked again,
    nothing new, and a used token is revoked. After her confirmed login the first-login user is
    gone."""
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
    assert not body["auth"]["policies"]
    assert not body["auth"].get("identity_policies")
    throwaway = body["auth"]["entity_id"]
    real = _entity_of(world, "bety")
    method = _method(world)
    root = str(world.inner.root_vault()._token)
    _, entity = world.bao("GET", f"identity/entity/id/{throwaway}", root)
    assert throwaway != real
    assert not entity["data"]["group_ids"]

    factor = {"method_id": method, "entity_id": real}
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "auth/token/lookup-self", {}),
        ("POST", "identity/mfa/method/totp/admin-generate", factor),
        ("POST", "identity/mfa/method/totp/admin-destroy", factor),
        ("POST", "sys/policies/acl/custodia-primer-ingreso-bety", {"policy": 'path "*" {}'}),
        ("GET", "sys/audit", {}),
        ("GET", "custodia-acceso/DD05/revelar/x", {}),
        ("GET", "custodia/data/cuentas/DD05/x", {}),
        ("POST", f"identity/group/name/{MFA_GROUP}", {"member_entity_ids": []}),
    ]
    for verb, path, payload in refused:
        status, _ = world.bao(verb, path, first_token, **payload)
        assert status == 403, (verb, path)

    # NATS: the first-login connection may publish on segundo_factor.inscribir only.
    answer, errors, _ = _wire(
        world, first_token, first_login_name("bety"), "sesion.quien", first_token
    )
    assert isinstance(answer, Exception)
    assert any("permissions violation" in e.lower() for e in errors), errors
    # The service: a first-login token carried on ana's own connection is refused any other
    # command; ana's token is refused segundo_factor.inscribir.
    ana_token = json.loads(world.inner.session_file("ana").read_text())["token"]
    for command in ("sesion.quien", "personas.lista", "segundo_factor.confirmar"):
        answer, _, _ = _wire(world, ana_token, "ana", command, first_token)
        assert isinstance(answer, protocol.RemoteError), command
        assert answer.remote_type == "NotAuthenticatedError", command
    answer, _, _ = _wire(world, ana_token, "ana", "segundo_factor.inscribir", ana_token)
    assert isinstance(answer, protocol.RemoteError)
    assert answer.remote_type == "NotAuthenticatedError"
    # No user name to choose: the argument is refused, and nothing was generated for anyone.
    answer, _, _ = _wire(
        world, first_token, first_login_name("bety"), "segundo_factor.inscribir", first_token,
        {"usuario": "ana"},
    )  # fmt: skip
    assert isinstance(answer, protocol.RemoteError)

    # The CLI's first login (another first-login token) enrols bety's factor, shown once.
    first = world.login("bety")
    assert first.returncode == 0, first.stderr
    uri = json.loads(first.stdout)["otpauth"]
    # Asked again with the still unused first token: nothing new (OpenBao does not rotate).
    answer, _, _ = _wire(
        world, first_token, first_login_name("bety"), "segundo_factor.inscribir", first_token
    )
    assert isinstance(answer, protocol.RemoteError)
    assert answer.remote_type == "FactorAlreadyEnrolledError"
    assert secret_of(uri) not in json.dumps(answer.attrs)
    # ...and that token, used once, is revoked by the service.
    status, _ = world.bao("POST", "auth/token/lookup", root, token=first_token)
    assert status in (400, 403)

    accepted = world.login("bety", "--codigo", code_of(uri))  # her code opens HER login
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout) == {"usuario": "bety", "sesion_iniciada": True}
    status, _ = _password_only(world, "bety", FIRST)
    assert status in (400, 403)
    _, users = world.bao("LIST", f"auth/{FIRST}/users", root)
    assert "bety" not in ((users or {}).get("data") or {}).get("keys", [])
    again = world.login("bety")  # the initial password yields no enrolment any more
    assert again.returncode == 3, again.stdout + again.stderr
    assert "otpauth" not in again.stdout
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


def test_the_service_token_cannot_grant_destroy_or_lift_the_factor(world: World) -> None:
    """The service's own token (``secrets/servicio-token``) makes first-login users with a
    password and no policy, deletes them, and generates a factor on Custodia's method only.
    OpenBao refuses it writing any ACL policy (a first-login name, its own, a new one), giving a
    first login any policy (token_policies by name, comma-separated or as a list; policies;
    the default policy), generating on another method, destroying a factor, changing who must
    use the factor, or removing the enforcement."""
    token = (world.home / "secrets" / "servicio-token").read_text().strip()
    method = _method(world)
    ana = _entity_of(world, "ana")
    eve = f"auth/{FIRST}/users/eve"
    coadmin = "custodia-coadministrador"
    other_method = "00000000-0000-0000-0000-000000000000"
    factor = {"method_id": method, "entity_id": ana}
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "sys/policies/acl/custodia-primer-ingreso-eve", {"policy": 'path "*" {}'}),
        ("POST", "sys/policies/acl/custodia-servicio", {"policy": 'path "*" {}'}),
        ("POST", "sys/policies/acl/x", {"policy": 'path "*" {}'}),
        ("DELETE", "sys/policies/acl/custodia-segundo-factor-inscripcion", {}),
        ("POST", eve, {"password": "x", "token_policies": coadmin}),
        ("POST", eve, {"password": "x", "token_policies": f"default,{coadmin}"}),
        ("POST", eve, {"password": "x", "token_policies": [coadmin]}),
        ("POST", eve, {"password": "x", "policies": coadmin}),
        ("POST", eve, {"password": "x", "token_no_default_policy": False}),
        ("POST", "identity/mfa/method/totp/admin-generate", {**factor, "method_id": other_method}),
        ("POST", "identity/mfa/method/totp/admin-destroy", factor),
        ("POST", f"identity/group/name/{MFA_GROUP}", {"member_entity_ids": []}),
        ("DELETE", f"identity/mfa/login-enforcement/{MFA_GROUP}", {}),
    ]
    for method_name, path, body in refused:
        status, _ = world.bao(method_name, path, token, **body)
        assert status == 403, (method_name, path, body)
    status, body = world.bao("POST", "identity/mfa/method/totp/admin-generate", token, **factor)
    assert status == 200  # allowed on Custodia's method; ana has a secret: nothing new
    assert body["data"] is None
    status, _ = world.bao(
        "POST", eve, token, password="x", token_no_default_policy=True
    )  # fmt: skip
    assert status == 204  # what it may do: a login that holds no policy at all
    status, _ = world.bao("DELETE", eve, token)
    assert status == 204


def test_a_coadministrator_cannot_write_any_acl_policy(world: World) -> None:
    """The attack this layout closes: a coadministrator registering a made-up person and
    writing a policy ``path "*"`` under a first-login name, to log in as that person on the
    first-login mount. OpenBao refuses her token any ACL policy write (a first-login name,
    her own role's, a new one), admin-generate, and admin-destroy on another method; the
    made-up person's first login holds no policy (403 on the audit devices and the policies)."""
    ana_token = json.loads(world.inner.session_file("ana").read_text())["token"]
    method = _method(world)
    bety = _entity_of(world, "bety")
    other_method = "00000000-0000-0000-0000-000000000000"
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "sys/policies/acl/custodia-primer-ingreso-x", {"policy": 'path "*" {}'}),
        ("POST", "sys/policies/acl/custodia-coadministrador", {"policy": 'path "*" {}'}),
        ("POST", "sys/policies/acl/x", {"policy": 'path "*" {}'}),
        ("POST", "identity/mfa/method/totp/admin-generate", {"method_id": method,
                                                              "entity_id": bety}),
        ("POST", "identity/mfa/method/totp/admin-destroy", {"method_id": other_method,
                                                             "entity_id": bety}),
    ]  # fmt: skip
    for verb, path, body in refused:
        status, _ = world.bao(verb, path, ana_token, **body)
        assert status == 403, (verb, path)

    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "mallory",
            "nombre": "Mallory",
            "correo": "mallory@iecm.mx",
            "rol": "coadministrador",
            "contrasena": SERVICE_PASSWORD.format("mallory"),
        },
    )
    status, body = _password_only(world, "mallory", FIRST)
    assert status == 200, body
    assert not body["auth"]["policies"]
    mallory = body["auth"]["client_token"]
    for verb, path in (("GET", "sys/audit"), ("GET", "sys/policies/acl"),
                       ("POST", "sys/policies/acl/x")):  # fmt: skip
        status, _ = world.bao(verb, path, mallory, policy='path "*" {}')
        assert status == 403, path


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
    # Enrolling is normal use: the projections apply its events (no "may be incomplete" note).
    errors = world.run("ana", "reporte", "errores", "--json")
    assert errors.returncode == 0, errors.stderr
    assert "SecondFactor" not in errors.stdout
    report = world.run("ana", "reporte", "cambios")
    assert report.returncode == 0, report.stderr
    assert "no se pudieron proyectar" not in report.stdout


def test_a_first_login_older_than_the_reset_cannot_enrol_the_new_factor(world: World) -> None:
    """Someone who knew carla's initial password keeps a spare first-login token, enrols
    "her" factor with another one and confirms it. carla reports it and a coadministrator resets
    her factor: the spare token (issued before the reset, still within its TTL, since deleting a
    userpass user revokes nothing) is refused by the service, which revokes it; nothing is
    generated for it. carla then enrols with the new first-login password."""
    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "carla",
            "nombre": "Carla",
            "correo": "carla@iecm.mx",
            "rol": "administrador",
            "distrito": "DD07",
            "contrasena": SERVICE_PASSWORD.format("carla"),
        },
    )
    status, body = _password_only(world, "carla", FIRST)
    assert status == 200, body
    spare = body["auth"]["client_token"]
    stolen = world.login("carla")  # the intruder's enrolment, confirmed with a code
    assert stolen.returncode == 0, stolen.stderr
    stolen_uri = json.loads(stolen.stdout)["otpauth"]
    assert world.login("carla", "--codigo", code_of(stolen_uri)).returncode == 0

    reset = world.run(
        "ana", "personas", "restablecer-factor", "--usuario", "carla",
        "--motivo", "factor registrado por alguien más", "--oficio", "UTCSyD/078/2026", "--json",
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    new_password = json.loads(reset.stdout)["contrasena"]

    answer, _, _ = _wire(world, spare, first_login_name("carla"), "segundo_factor.inscribir", spare)
    assert isinstance(answer, protocol.RemoteError)
    assert answer.remote_type == "FirstLoginBeforeResetError"
    assert "otpauth" not in json.dumps(answer.attrs)
    root = str(world.inner.root_vault()._token)
    status, _ = world.bao("POST", "auth/token/lookup", root, token=spare)
    assert status in (400, 403)  # revoked by the service

    world.inner.session_file("carla").unlink(missing_ok=True)
    first = world.login("carla", password=new_password)
    assert first.returncode == 0, first.stderr
    uri = json.loads(first.stdout)["otpauth"]
    assert secret_of(uri) != secret_of(stolen_uri)


def test_a_role_spelt_with_capitals_is_the_same_role_everywhere(world: World) -> None:
    """Attack: ``--rol Coadministrador``. The ledger read it as coadministrador, while the
    service's OpenBao group, second-factor and one-titular checks compared the raw text: the
    person became a coadministrator for the ledger whose password alone gave OpenBao a token,
    and ``Titular`` gave a district a second titular. One spelling now reaches every check:
    OpenBao demands the factor, and the second titular is refused."""
    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "quique",
            "nombre": "Quique",
            "correo": "quique@iecm.mx",
            "rol": "Coadministrador",
            "contrasena": SERVICE_PASSWORD.format("quique"),
        },
    )
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert "coadministrador" in people["quique"]["roles"]
    status, body = _password_only(world, "quique")
    assert status == 200, body
    assert body["auth"]["client_token"] == ""  # OpenBao asks for the second factor
    assert body["auth"].get("mfa_requirement")

    assert people["luis"]["roles"].get("titular") == "DD05"
    second = world.inner.run(
        "ana", "personas", "alta", "--usuario", "tere", "--nombre", "Tere",
        "--correo", "tere@iecm.mx", "--rol", " Titular", "--distrito", "DD05",
        "--password-stdin", stdin=SERVICE_PASSWORD.format("tere") + "\n",
    )  # fmt: skip
    assert second.returncode != 0
    assert "DD05" in second.stderr
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert "tere" not in people


def _mfa_members(world: World, token: str) -> list[str]:
    status, body = world.bao("GET", f"identity/group/name/{MFA_GROUP}", token)
    assert status == 200, body
    return list(body["data"].get("member_entity_ids") or [])


def _set_mfa_members(world: World, token: str, members: list[str]) -> None:
    status, body = world.bao(
        "POST", f"identity/group/name/{MFA_GROUP}", token, member_entity_ids=members
    )
    assert status in (200, 204), body


def test_once_she_changed_her_password_a_coadministrator_cannot_log_in_as_her(
    world: World,
) -> None:
    """The attack of the threat model. ana, a coadministrator, gave dalia her initial password
    (``personas alta``) and may, with her own token, take dalia out of the second-factor group:
    then that password alone gives ana a token as dalia (shown first: the attack works). dalia
    changes her password (``sesion contrasena``: the current one and a code); ana's attempt
    now fails, OpenBao refuses the initial password. Neither password reaches any output or
    the service's log. And each of ana's direct changes of the group is detected: the service
    (its OpenBao audit follower) opens an incident for each, while every change made by this
    module's legitimate commands (registrations, an opt-in, a reset) opened none."""
    assert _access_incidents(world) == []
    initial = SERVICE_PASSWORD.format("dalia")
    registration = {
        "usuario": "dalia",
        "nombre": "Dalia",
        "correo": "dalia@iecm.mx",
        "rol": "coadministrador",
        "contrasena": initial,
    }
    world.inner.call("ana", "personas.alta", registration)
    first = world.login("dalia")
    assert first.returncode == 0, first.stderr
    uri = json.loads(first.stdout)["otpauth"]
    assert world.login("dalia", "--codigo", code_of(uri)).returncode == 0
    # The same registration sent again (a retry whose answer was lost) completes, though
    # OpenBao now asks dalia's password for a code: the password is proven all the same.
    assert world.inner.call("ana", "personas.alta", registration)["usuario"] == "dalia"
    ana = world.inner.token("ana")
    dalia = _entity_of(world, "dalia")
    members = _mfa_members(world, ana)
    assert dalia in members

    def impersonate(password: str) -> tuple[int, Any]:
        _set_mfa_members(world, ana, [m for m in members if m != dalia])
        try:
            return world.bao(  # type: ignore[no-any-return]
                "POST", "auth/userpass/login/dalia", password=password
            )
        finally:
            _set_mfa_members(world, ana, members)

    status, body = impersonate(initial)
    assert status == 200, body  # the attack, before: it works
    assert body["auth"]["client_token"]
    world.bao("POST", "auth/token/revoke-self", body["auth"]["client_token"])

    new = "nueva-de-dalia-" + secrets.token_urlsafe(12)
    # The code of the next 30 s window (OpenBao allows one step of skew): the enrolment's
    # login just used this window's code, and OpenBao takes a code once.
    changed = world.inner.run(
        "dalia", "sesion", "contrasena", "--password-stdin",
        "--codigo", code_of(uri, ahead=30),
        stdin=f"{initial}\n{new}\n",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert changed.stdout.startswith("Contraseña de dalia cambiada.")

    status, body = impersonate(initial)
    assert status in (400, 403), body  # the attack, after: the initial password is dead
    assert not (body.get("auth") or {}).get("client_token")
    status, body = _password_only_with(world, "dalia", new)
    assert status == 200, body  # her new password, with the factor still asked for
    assert body["auth"]["mfa_requirement"]
    for text in (changed.stdout + changed.stderr, world.inner.log_text()):
        assert initial not in text
        assert new not in text
    deadline = time.monotonic() + 60
    while len(_access_incidents(world)) < 4:  # 2 attempts, each out of the group and back
        assert time.monotonic() < deadline, _access_incidents(world)
        time.sleep(0.5)
    time.sleep(2)
    assert len(_access_incidents(world)) == 4
    assert {i["distrito"] for i in _access_incidents(world)} == {None}


def _access_incidents(world: World) -> list[dict[str, Any]]:
    rows = world.inner.call("ana", "incidentes.bitacora", {})
    return [r for r in rows if r["tipo"] == "cambio_de_acceso_no_registrado"]


def _password_only_with(world: World, user: str, password: str) -> tuple[int, Any]:
    return world.bao("POST", f"auth/userpass/login/{user}", password=password)  # type: ignore[no-any-return]


def test_changing_a_password_refuses_bad_input_in_spanish(world: World) -> None:
    """A wrong current password (OpenBao's refusal, exit 3), a short or unchanged new one
    (exit 2, before OpenBao), no terminal and no ``--password-stdin`` (exit 2): each says what
    to do, and the password that works stays the same."""
    current = SERVICE_PASSWORD.format("quique")
    cases = [
        (f"no-es-esta\n{'x' * 20}\n", 3, "OpenBao no aceptó el usuario «quique»"),
        (f"{current}\ncorta\n", 2, "debe tener al menos 12 caracteres"),
        (f"{current}\n{current}\n", 2, "es igual a la actual"),
    ]
    for stdin, code, said in cases:
        result = world.inner.run(
            None, "sesion", "contrasena", "--usuario", "quique", "--password-stdin", stdin=stdin
        )
        assert result.returncode == code, result.stdout + result.stderr
        assert said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    prompt = world.inner.run(None, "sesion", "contrasena", "--usuario", "quique", stdin="")
    assert prompt.returncode == 2, prompt.stdout + prompt.stderr
    assert "--password-stdin" in prompt.stderr
    nobody = world.inner.run(None, "sesion", "contrasena", "--password-stdin", stdin="a\nb\n")
    assert nobody.returncode == 2, nobody.stdout + nobody.stderr
    assert "No hay sesión abierta: indique su usuario con --usuario." in nobody.stderr
    status, body = _password_only_with(world, "quique", current)
    assert status == 200, body
    assert body["auth"]["mfa_requirement"]


def test_a_transfer_into_a_credential_role_needs_the_second_factor_first(world: World) -> None:
    """Attack (a mover): tito, a titular, has no second factor. Transferred to
    coadministrador (``personas cambiar``, what ``personas importar`` sends), he would have
    read every credential with his password alone: the transfer is refused, in Spanish, and
    nothing changes (still titular; his password alone still opens no coadministrator's
    token). Once a coadministrator put him under the factor (``personas segundo-factor``),
    the same transfer goes through, and OpenBao asks him for a code."""
    world.inner.call(
        "ana",
        "personas.alta",
        {
            "usuario": "tito",
            "nombre": "Tito",
            "correo": "tito@iecm.mx",
            "rol": "titular",
            "distrito": "DD11",
            "contrasena": SERVICE_PASSWORD.format("tito"),
        },
    )
    move = {"usuario": "tito", "rol": "coadministrador", "oficio": "UTCSyD/088/2026"}
    with pytest.raises(protocol.RemoteError) as refused:
        world.inner.call("ana", "personas.cambiar", move)
    assert refused.value.remote_type == "SecondFactorFirstError"
    code, said = describe(refused.value)
    assert code != 0
    assert "primero exíjaselo con «custodia personas segundo-factor --usuario tito»" in said
    people = {p["usuario"]: p for p in world.inner.call("ana", "personas.lista")}
    assert people["tito"]["roles"] == {"titular": "DD11"}
    status, body = _password_only(world, "tito")
    assert status == 200, body
    assert "custodia-coadministrador" not in body["auth"]["identity_policies"]

    # An opt-in that failed after putting him in the group (its first login not made, nothing
    # recorded), as ana's token leaves it: sent again, it completes (not "ya usa").
    ana = world.inner.token("ana")
    members = _mfa_members(world, ana)
    before = len(_access_incidents(world))
    _set_mfa_members(world, ana, [*members, _entity_of(world, "tito")])
    opted = world.inner.json(
        "ana", "personas", "segundo-factor", "--usuario", "tito"
    )  # the first-login password is shown to ana
    # The completed opt-in wrote the group again, with its record: the direct write above is
    # still an unrecorded change (the opt-in's record does not cover it).
    deadline = time.monotonic() + 60
    while len(_access_incidents(world)) < before + 1:
        assert time.monotonic() < deadline, "the direct write was not detected"
        time.sleep(0.5)
    time.sleep(2)
    assert len(_access_incidents(world)) == before + 1
    assert opted["usuario"] == "tito"
    moved = world.inner.call("ana", "personas.cambiar", move)
    assert moved["rol"] == "coadministrador"
    status, body = _password_only(world, "tito")
    assert status == 200, body
    assert body["auth"]["client_token"] == ""
    assert body["auth"]["mfa_requirement"]
