"""Issue 16, finding 2, prevented: nobody reads a secret outside the service's recorded flow.

Before this change a designated administrator (and any coadministrator) read the current
password, an older version, a staged password and a 2FA code straight from OpenBao with the
token of their own session: designation was a grant on the secret paths themselves. Now people's
policies grant only markers (``custodia-acceso/<district>/<operation>/<platform>``) and deny
every secret path; the service asks OpenBao for the caller's capability on the marker (with the
caller's token) and only then reads, with its own token, wrapped. Every refusal below is
OpenBao's own 403, on real userpass tokens. Districts used: DD16, DD17.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from custody.app.access import Access
from custody.errors import VaultPermissionDeniedError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials, WrappedSecret
from tests.integration.custody.helpers import MakeUser, User, new_event_id, set_credential

pytestmark = pytest.mark.integration

ACCOUNT = "DD16-x"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTPAUTH = f"otpauth://totp/X:DD16IECM?secret={SEED}&issuer=X&period=30&digits=6"

# (what, method, path, body, wrapped): every way a person's own token could get a secret.
DIRECT_READS: list[tuple[str, str, str, dict[str, Any] | None, bool]] = [
    ("contrasena_actual", "GET", "custodia/data/cuentas/DD16/x", None, False),
    ("contrasena_actual_envuelta", "GET", "custodia/data/cuentas/DD16/x", None, True),
    ("version_anterior", "GET", "custodia/data/cuentas/DD16/x?version=1", None, False),
    ("contrasena_preparada", "GET", "custodia/data/preparadas/DD16/x", None, False),
    ("codigo_2fa", "GET", "custodia-totp/code/DD16-x", None, False),
    ("codigo_2fa_envuelto", "GET", "custodia-totp/code/DD16-x", None, True),
    ("versiones", "GET", "custodia/metadata/cuentas/DD16/x", None, False),
    (
        "escribir_contrasena",
        "POST",
        "custodia/data/cuentas/DD16/x",
        {"data": {"password": "Written-by-hand"}, "options": {"cas": 2}},
        False,
    ),
    ("importar_semilla", "POST", "custodia-totp/keys/DD16-x", {"key": SEED}, False),
    (
        "huella",
        "POST",
        "custodia-transit/hmac/custodia-fingerprint/sha2-256",
        {"input": "eA=="},
        False,
    ),
]


def call(
    client: VaultClient, token: str, method: str, path: str, body: Any, wrapped: bool
) -> requests.Response:
    """One raw HTTP request to OpenBao, as an attacker would make it (no Custodia code)."""
    headers = {"X-Vault-Token": token}
    if wrapped:
        headers["X-Vault-Wrap-TTL"] = "60s"
    return requests.request(
        method, f"{client.addr}/v1/{path}", headers=headers, json=body, timeout=10
    )


@pytest.fixture(scope="module")
def people(access: Access, credentials: Credentials, make_user: MakeUser) -> dict[str, User]:
    """DD16-x with versions 1 and 2, a staged version 3 and a 2FA seed; DD16's designated
    administrator, DD17's, and a coadministrator."""
    coad = make_user("ro-coad", "coadministrador")
    admin16 = make_user("ro-admin16")
    admin17 = make_user("ro-admin17")
    access.set_district_holder("DD16", admin16.username)
    access.set_district_holder("DD17", admin17.username)
    set_credential(credentials, coad.token, ACCOUNT, "First-" + new_event_id())
    set_credential(credentials, coad.token, ACCOUNT, "Second-" + new_event_id())
    set_credential(credentials, coad.token, "DD17-x", "Other-" + new_event_id())
    credentials.stage(
        coad.token, ACCOUNT, "Staged-" + new_event_id(), new_event_id(), 2, staged_by="t"
    )
    credentials.register_totp(coad.token, ACCOUNT, OTPAUTH)
    return {"coadministrador": coad, "administrador": admin16, "administrador_dd17": admin17}


@pytest.mark.parametrize(("what", "method", "path", "body", "wrapped"), DIRECT_READS)
@pytest.mark.parametrize("who", ["administrador", "coadministrador"])
def test_people_cannot_reach_a_secret_with_their_own_token(
    people: dict[str, User],
    service_client: VaultClient,
    who: str,
    what: str,
    method: str,
    path: str,
    body: Any,
    wrapped: bool,
) -> None:
    """The attack of finding 2: the designated administrator of DD16 and a coadministrator use
    the token of their own session against OpenBao directly — the current password (plain and
    wrapped), the older version 1, the staged password, a 2FA code (plain and wrapped), the
    version list, a write of the current password, a seed import, a fingerprint. OpenBao
    answers 403 to every one (before: 200 for the reads of both, and the writes of the
    coadministrator), while the same token still works (it looks itself up)."""
    token = people[who].login()
    answer = call(service_client, token, method, path, body, wrapped)
    assert answer.status_code == 403, (who, what, answer.status_code)
    assert "wrap_info" not in answer.text
    assert service_client.with_token(token).lookup_self().username == people[who].username


def test_a_policy_mistake_on_the_same_paths_is_overridden(
    people: dict[str, User], root_client: VaultClient, service_client: VaultClient
) -> None:
    """An operator attaches by mistake a policy granting read on every credential and 2FA code
    to the administrator's entity: the people's explicit deny on the same patterns wins, and
    OpenBao still answers 403 (a grant on a narrower path is what the audit follower is for)."""
    admin = people["administrador"]
    entity = service_client.with_token(admin.token).lookup_self().entity_id
    assert entity
    name = "error-" + uuid.uuid4().hex[:8]
    root_client.write(
        f"sys/policies/acl/{name}",
        {
            "policy": 'path "custodia/data/cuentas/*" { capabilities = ["read"] }\n'
            'path "custodia-totp/code/*" { capabilities = ["read"] }\n'
        },
        operation="test",
    )
    root_client.write(f"identity/entity/id/{entity}", {"policies": [name]}, operation="test")
    try:
        token = admin.login()
        for path in ("custodia/data/cuentas/DD16/x", "custodia-totp/code/DD16-x"):
            assert call(service_client, token, "GET", path, None, False).status_code == 403
    finally:
        root_client.write(f"identity/entity/id/{entity}", {"policies": []}, operation="test")


def test_the_service_reveals_for_the_designated_administrator_only(
    people: dict[str, User], access: Access, credentials: Credentials, make_user: MakeUser
) -> None:
    """Through the service the designated administrator of DD16 gets the current password and a
    2FA code (recorded first, unwrapped by the caller). OpenBao's answer on the marker refuses
    DD17's administrator, and DD16's administrator once the designation passed to someone
    else — with the same session token — and nothing is recorded for a refused caller."""
    admin16, admin17 = people["administrador"], people["administrador_dd17"]
    token = admin16.login()
    recorded: list[WrappedSecret] = []
    wrapped = credentials.reveal(token, ACCOUNT, recorded.append)
    assert recorded == [wrapped]
    assert credentials.unwrap(wrapped.token, ACCOUNT).password.startswith("Second-")
    code = credentials.reveal_totp(token, ACCOUNT, recorded.append)
    assert len(credentials.unwrap_totp(code.token, ACCOUNT).code) == 6

    def never(_: object) -> None:
        pytest.fail("a refused caller's read is recorded")

    with pytest.raises(VaultPermissionDeniedError):
        credentials.reveal(admin17.login(), ACCOUNT, never)
    with pytest.raises(VaultPermissionDeniedError) as other:
        credentials.reveal_totp(admin17.token, ACCOUNT, never)
    assert other.value.status == 403

    successor = make_user("ro-successor16")
    access.set_district_holder("DD16", successor.username)
    try:
        with pytest.raises(VaultPermissionDeniedError):
            credentials.reveal(token, ACCOUNT, never)
        with pytest.raises(VaultPermissionDeniedError):
            credentials.reveal_totp(token, ACCOUNT, never)
        assert credentials.unwrap(
            credentials.reveal(successor.token, ACCOUNT, lambda w: None).token, ACCOUNT
        ).password.startswith("Second-")
    finally:
        access.set_district_holder("DD16", admin16.username)


def test_the_service_token_reads_only_wrapped_and_nothing_beyond_its_list(
    people: dict[str, User], service_client: VaultClient
) -> None:
    """The service's own token (policy custodia-servicio) now reads secrets for verified
    callers, but only wrapped: OpenBao refuses it a plain read of a current password, an older
    version and a 2FA code (min_wrapping_ttl), and refuses it writing a policy, generating a
    readable 2FA key, reading a seed's secret or the ledger's anchored head."""
    token = service_client.token
    assert token
    refused: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "custodia/data/cuentas/DD16/x", None),
        ("GET", "custodia/data/cuentas/DD16/x?version=1", None),
        ("GET", "custodia-totp/code/DD16-x", None),
        ("POST", "sys/policies/acl/custodia-servicio", {"policy": 'path "*" {}'}),
        ("POST", "custodia-totp/keys/DD16-y", {"generate": True, "exported": True}),
        ("GET", "custodia/data/bitacora/cabeza", None),
        ("POST", "custodia/data/bitacora/cabeza", {"data": {"x": 1}}),
        ("POST", "auth/token/create", {"policies": ["custodia-coadministrador"]}),
    ]
    for method, path, body in refused:
        answer = call(service_client, token, method, path, body, False)
        assert answer.status_code == 403, (method, path, answer.status_code)
    wrapped = call(service_client, token, "GET", "custodia/data/cuentas/DD16/x", None, True)
    assert wrapped.status_code == 200
    assert wrapped.json()["wrap_info"]["token"]
    requests.post(
        f"{service_client.addr}/v1/auth/token/revoke-self",
        headers={"X-Vault-Token": wrapped.json()["wrap_info"]["token"]},
        timeout=10,
    )
