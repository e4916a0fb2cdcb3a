"""Issue 18, "a second factor" (the login side): when OpenBao enforces login MFA (TOTP) on a
person, ``custodia sesion iniciar`` needs ``--codigo``; OpenBao itself refuses the login without
it and refuses a code used once already.

The enforcement here is made by the test with a regenerated root token, on a group of its own
holding only the person under test (a coadministrator added for it), so the other people of the
shared service world keep logging in without a code. The TOTP secret is enrolled the way an
operator does it (``admin-generate``) and the codes are computed from it with ``cryptography``.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from .conftest import SERVICE_PASSWORD, ServiceWorld, run_custodia

pytestmark = pytest.mark.e2e

PERSON = "factorana"
GROUP = "prueba-segundo-factor"


def _bao(world: ServiceWorld, path: str, token: str | None, body: Any) -> tuple[int, Any]:
    """One raw POST to OpenBao: ``(status, body)`` exactly as the server answered."""
    headers = {"X-Vault-Token": token} if token else {}
    answer = requests.post(
        f"{world.endpoints().vault_addr}/v1/{path}", headers=headers, json=body, timeout=30
    )
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {}


def totp_code(secret: str, at: float | None = None) -> str:
    """The TOTP code of ``secret`` (base32) now: 6 digits, SHA-1, 30 s."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303  # RFC 6238 default
    return totp.generate(int(at if at is not None else time.time())).decode()


def _login(world: ServiceWorld, path: Path, *extra: str) -> Any:
    return run_custodia(
        "sesion", "iniciar", "--usuario", PERSON, "--password-stdin", *extra,
        home=world.home,
        env={"CUSTODIA_SESION": str(path)},
        stdin=SERVICE_PASSWORD.format(PERSON) + "\n",
    )  # fmt: skip


def enforce_second_factor(
    world: ServiceWorld, root: str, person: str = PERSON, group_name: str = GROUP
) -> tuple[str, str]:
    """A TOTP method, ``person`` enrolled in it, and a login enforcement on a group holding
    only them: ``(enforcement name, base32 secret)``."""
    status, body = _bao(
        world,
        "identity/mfa/method/totp",
        root,
        {
            "method_name": f"custodia-factor-{group_name}",
            "issuer": "IECM Custodia",
            "period": 30,
            "key_size": 20,
            "algorithm": "SHA1",
            "digits": 6,
            "skew": 1,
            "max_validation_attempts": 5,
        },
    )
    assert status == 200, body
    method = body["data"]["method_id"]
    token = world.token(person)
    status, body = _bao(world, "auth/token/lookup", root, {"token": token})
    entity = body["data"]["entity_id"]
    status, body = _bao(
        world, "identity/group", root, {"name": group_name, "member_entity_ids": [entity]}
    )
    assert status == 200, body
    group = body["data"]["id"]
    status, body = _bao(
        world,
        "identity/mfa/method/totp/admin-generate",
        root,
        {"method_id": method, "entity_id": entity},
    )
    assert status == 200, body
    secret = parse_qs(urlparse(body["data"]["url"]).query)["secret"][0]
    status, body = _bao(
        world,
        f"identity/mfa/login-enforcement/{group_name}",
        root,
        {"mfa_method_ids": [method], "identity_group_ids": [group]},
    )
    assert status in (200, 204), body
    return group_name, secret


def test_a_login_with_a_second_factor_needs_a_fresh_code(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """With login MFA enforced on a coadministrator: without ``--codigo`` the real CLI refuses in
    Spanish (exit 3) and keeps no session — OpenBao answered the password with an MFA requirement
    and no token; with the current code (computed from the enrolled secret) the login succeeds
    and commands work (``sesion quien`` names her); the same code again is refused by OpenBao
    (403 on ``sys/mfa/validate``) and by the CLI in Spanish (exit 3). No code in any output."""
    world = service_world
    world.add_person(PERSON, "coadministrador")
    root = str(world.root_vault()._token)
    enforcement, secret = enforce_second_factor(world, root)
    path = tmp_path / "sesion.json"
    try:
        status, body = _bao(
            world,
            f"auth/userpass/login/{PERSON}",
            None,
            {"password": SERVICE_PASSWORD.format(PERSON)},
        )
        assert status == 200
        assert body["auth"]["client_token"] == ""
        assert body["auth"]["mfa_requirement"]["mfa_request_id"]

        refused = _login(world, path)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert refused.stderr.startswith(f"Error: OpenBao exige el segundo factor de {PERSON}")
        assert "--codigo" in refused.stderr
        assert not path.exists()

        code = totp_code(secret)
        accepted = _login(world, path, "--codigo", code)
        assert accepted.returncode == 0, accepted.stderr
        assert accepted.stdout.strip() == f"Sesión iniciada como {PERSON}."
        assert path.exists()
        who = run_custodia(
            "sesion", "quien", "--json", home=world.home, env={"CUSTODIA_SESION": str(path)}
        )
        assert who.returncode == 0, who.stderr
        assert f'"usuario": "{PERSON}"' in who.stdout

        path.unlink()
        reused = _login(world, path, "--codigo", code)
        assert reused.returncode == 3, reused.stdout + reused.stderr
        assert reused.stderr.startswith("Error: OpenBao rechazó el código del segundo factor")
        assert not path.exists()
        status, body = _bao(
            world,
            f"auth/userpass/login/{PERSON}",
            None,
            {"password": SERVICE_PASSWORD.format(PERSON)},
        )
        request_id = body["auth"]["mfa_requirement"]["mfa_request_id"]
        constraints = body["auth"]["mfa_requirement"]["mfa_constraints"]
        [method] = [m["id"] for c in constraints.values() for m in c["any"]]
        status, _ = _bao(
            world,
            "sys/mfa/validate",
            None,
            {"mfa_request_id": request_id, "mfa_payload": {method: [code]}},
        )
        assert status == 403
        for run in (refused, accepted, reused, who):
            assert code not in run.stdout + run.stderr
    finally:
        requests.delete(
            f"{world.endpoints().vault_addr}/v1/identity/mfa/login-enforcement/{enforcement}",
            headers={"X-Vault-Token": root},
            timeout=30,
        )
