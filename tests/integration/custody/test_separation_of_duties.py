"""Defence in depth (6.IX): a titular or the Secretaría Ejecutiva never reads a secret, even when
placed by mistake (or by an attacker) in a district group AND in the coadministrators' group.

Their policies only deny, and an explicit deny wins over any grant: OpenBao answers 403 on
every secret path — current and staged credentials (data, metadata, listing), 2FA codes and
keys, transit — as it does now to every person's token (issue 16, finding 2), and "deny" on
every authorization marker the service asks about, while a plain coadministrator is granted
those markers. Since the coadministrator and district grants cover every marker below, each
deny block of the titular and secretaria policies is what refuses it: deleting any one of them
fails this test. District used: DD14.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests

from custody.app.access import Access
from custody.errors import VaultPermissionDeniedError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import ACCESS_OPERATIONS, COADMIN_GROUP, AccountRef, district_group
from tests.integration.custody.helpers import MakeUser, User, new_event_id, set_credential

pytestmark = pytest.mark.integration

ACCOUNT = "DD14-x"
SEED = "JBSWY3DPEHPK3PXP"

# (deny block, method, path, body): every secret path, with the block that must refuse it.
PROBES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("custodia/data/cuentas/DD14/*", "GET", "custodia/data/cuentas/DD14/x", None),
    ("custodia/data/cuentas/DD14/*", "GET", "custodia/data/cuentas/DD14/x?version=1", None),
    ("custodia/metadata/cuentas/*", "GET", "custodia/metadata/cuentas/DD14/x", None),
    ("custodia/metadata/cuentas/*", "LIST", "custodia/metadata/cuentas/DD14", None),
    ("custodia/data/preparadas/*", "GET", "custodia/data/preparadas/DD14/x", None),
    ("custodia/metadata/preparadas/*", "GET", "custodia/metadata/preparadas/DD14/x", None),
    ("custodia/data/cuentas/DD14/*", "POST", "custodia/data/cuentas/DD14/x", {"data": {}}),
    ("custodia-totp/code/DD14-*", "GET", "custodia-totp/code/DD14-x", None),
    ("custodia-totp/keys/*", "POST", "custodia-totp/keys/DD14-x", {"key": SEED}),
    ("custodia-totp/keys/*", "GET", "custodia-totp/keys/DD14-x", None),
    (
        "custodia-transit/hmac/custodia-fingerprint",
        "POST",
        "custodia-transit/hmac/custodia-fingerprint",
        {"input": "eA=="},
    ),
]


def capabilities(client: VaultClient, token: str, paths: list[str]) -> dict[str, list[str]]:
    """OpenBao's answer for ``token`` on ``paths`` (what the service asks before acting)."""
    answer = requests.post(
        f"{client.addr}/v1/sys/capabilities-self",
        headers={"X-Vault-Token": token},
        json={"paths": paths},
        timeout=10,
    )
    answer.raise_for_status()
    data: dict[str, list[str]] = answer.json()["data"]
    return data


def status(client: VaultClient, token: str, method: str, path: str, body: Any) -> int:
    answer = requests.request(
        method, f"{client.addr}/v1/{path}", headers={"X-Vault-Token": token}, json=body, timeout=10
    )
    return answer.status_code


@pytest.fixture(scope="module")
def secrets_in_place(credentials: Credentials, coadmin: User) -> None:
    """A current credential, a staged one and a 2FA seed for DD14-x."""
    set_credential(credentials, coadmin.token, ACCOUNT, "sod-" + secrets.token_urlsafe(12))
    base = credentials.current_version(ACCOUNT)
    credentials.stage(
        coadmin.token,
        ACCOUNT,
        "sod-" + secrets.token_urlsafe(12),
        new_event_id(),
        base,
        staged_by="test",
    )
    credentials.register_totp(coadmin.token, ACCOUNT, f"otpauth://totp/X:DD14IECM?secret={SEED}")


@pytest.mark.parametrize("also_coadmin", [False, True], ids=["district", "district+coadmin"])
@pytest.mark.parametrize("role", ["titular", "secretaria"])
def test_titular_and_secretaria_read_nothing_even_as_holders_and_coadministrators(
    role: str,
    also_coadmin: bool,
    secrets_in_place: None,
    make_user: MakeUser,
    root_client: VaultClient,
    service_client: VaultClient,
    credentials: Credentials,
    coadmin: User,
) -> None:
    """Placed in dd14-administracion (the service can do that), and also in coadministradores
    (root's doing: a policy mistake or an attack), a titular / secretaria still gets OpenBao's
    403 on every secret path and "deny" on every marker, so the service reveals nothing for
    them; the same markers are granted to a plain coadministrator (the grants are real, the
    deny wins)."""
    person = make_user(f"sod-{role[:3]}", role)
    entity = Access(service_client).require_entity_id(person.username)
    groups = (district_group("DD14"), COADMIN_GROUP) if also_coadmin else (district_group("DD14"),)
    saved = {}
    for group in groups:
        data = root_client.read(f"identity/group/name/{group}", operation="t")["data"]
        saved[group] = list(data.get("member_entity_ids") or [])
        root_client.write(
            f"identity/group/name/{group}",
            {"member_entity_ids": [*saved[group], entity]},
            operation="t",
        )
    try:
        token = person.login()
        policies = service_client.with_token(token).lookup_self().identity_policies
        assert "custodia-administrador-dd14" in policies
        assert ("custodia-coadministrador" in policies) is also_coadmin
        for block, method, path, body in PROBES:
            assert status(root_client, token, method, path, body) == 403, (block, method, path)
        markers = [AccountRef.parse(ACCOUNT).access_path(op) for op in ACCESS_OPERATIONS]
        for marker, granted in capabilities(root_client, token, markers).items():
            assert granted == ["deny"], marker
        with pytest.raises(VaultPermissionDeniedError):
            credentials.reveal(token, ACCOUNT, lambda w: pytest.fail("recorded"))
        with pytest.raises(VaultPermissionDeniedError):
            credentials.reveal_totp(token, ACCOUNT, lambda w: pytest.fail("recorded"))
        # The control: a coadministrator is granted every marker (and reveals through the
        # service), so each refusal above is the titular's or secretaria's deny.
        for marker, granted in capabilities(root_client, coadmin.token, markers).items():
            assert granted == ["read"], marker
        credentials.revoke_wrapped(credentials.reveal(coadmin.token, ACCOUNT, lambda w: None))
    finally:
        for group in groups:
            root_client.write(
                f"identity/group/name/{group}",
                {"member_entity_ids": saved[group]},
                operation="t",
            )
