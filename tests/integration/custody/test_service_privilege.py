"""Issue 16, finding 5: the service token is not a coadministrator in disguise.

Each attack is mounted with the real service token (policy ``custodia-servicio``) against the real
OpenBao, over plain HTTP, and must get OpenBao's own 403. Before this change every one of them
succeeded: the service created a login with an entity, put it in ``coadministradores`` and read
every password; it reset an existing person's password and logged in as them.
The legitimate flows (the service creates logins and designates district administrators; a
coadministrator's own token grants roles) keep working. District used: DD33.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
import requests

from custody.app.access import Access
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import (
    COADMIN_GROUP,
    OWN_PASSWORD_POLICY,
    SECRETARIA_GROUP,
    TITULAR_GROUP,
    district_group,
)
from tests.integration.custody.helpers import MakeUser, User, set_credential

pytestmark = pytest.mark.integration

ROLE_GROUPS = (COADMIN_GROUP, TITULAR_GROUP, SECRETARIA_GROUP)


def bao(
    client: VaultClient, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """One raw request with ``client``'s token: OpenBao's status code and answer."""
    headers = {"X-Vault-Token": client.token} if client.token else {}
    answer = requests.request(
        method, f"{client.addr}/v1/{path}", headers=headers, json=body, timeout=10
    )
    return answer.status_code, (answer.json() if answer.text else {})


def login(client: VaultClient, username: str, password: str) -> tuple[int, dict[str, Any]]:
    return bao(
        client.with_token(None), "POST", f"auth/userpass/login/{username}", {"password": password}
    )


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def userpass_accessor(root_client: VaultClient) -> str:
    return str(root_client.read("sys/auth", operation="t")["data"]["userpass/"]["accessor"])


def test_service_cannot_make_a_coadministrator(
    service_client: VaultClient,
    root_client: VaultClient,
    credentials: Credentials,
    coadmin: User,
) -> None:
    """The attack of finding 5: a new login (allowed) gets an identity, but joining it to
    coadministradores (or any role group) is refused, and so is attaching the login to an
    existing coadministrator's entity; the new login reads nothing."""
    set_credential(credentials, coadmin.token, "DD33-x", "priv-" + secrets.token_urlsafe(12))
    name, password = new_name("mallory"), secrets.token_urlsafe(18)
    new_login = {"password": password, "token_policies": OWN_PASSWORD_POLICY}
    assert bao(service_client, "POST", f"auth/userpass/users/{name}", new_login)[0] == 204
    accessor = userpass_accessor(root_client)
    coadmin_entity = Access(service_client).require_entity_id(coadmin.username)
    # An alias on the coadministrator's entity would inherit their groups: refused.
    status, _ = bao(
        service_client,
        "POST",
        "identity/entity-alias",
        {"name": name, "mount_accessor": accessor, "canonical_id": coadmin_entity},
    )
    assert status == 403
    # A named entity with a policy, or any entity made directly: refused.
    assert bao(service_client, "POST", "identity/entity", {"name": name})[0] == 403
    # The allowed way: a fresh entity for the new login.
    status, body = bao(
        service_client, "POST", "identity/entity-alias", {"name": name, "mount_accessor": accessor}
    )
    assert status == 200
    entity = body["data"]["canonical_id"]
    for group in ROLE_GROUPS:
        before = root_client.read(f"identity/group/name/{group}", operation="t")["data"]
        members = list(before.get("member_entity_ids") or [])
        status, _ = bao(
            service_client,
            "POST",
            f"identity/group/name/{group}",
            {"member_entity_ids": [*members, entity]},
        )
        assert status == 403, group
        # Emptying a role group (locking the coadministrators out) is refused too.
        assert (
            bao(service_client, "POST", f"identity/group/name/{group}", {"member_entity_ids": []})[
                0
            ]
            == 403
        )
        # The service may not even read a role group's members.
        assert bao(service_client, "GET", f"identity/group/name/{group}")[0] == 403
        after = root_client.read(f"identity/group/name/{group}", operation="t")["data"]
        assert after.get("member_entity_ids") == before.get("member_entity_ids")
    status, answer = login(service_client, name, password)
    assert status == 200
    intruder = service_client.with_token(answer["auth"]["client_token"])
    for path in ("custodia/data/cuentas/DD33/x", "custodia/data/preparadas/DD33/x"):
        assert bao(intruder, "GET", path)[0] == 403


def test_service_cannot_reset_an_existing_password(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    """An existing login cannot be changed by the service: a new password (on the user or on
    its password endpoint), a deletion (to create it again), a policy — all 403; the person's
    own password keeps working and the attacker's does not."""
    victim = make_user("victim", "coadministrador")
    stolen = secrets.token_urlsafe(18)
    user = f"auth/userpass/users/{victim.username}"
    assert bao(service_client, "POST", user, {"password": stolen})[0] == 403
    assert bao(service_client, "POST", f"{user}/password", {"password": stolen})[0] == 403
    assert bao(service_client, "POST", f"{user}/policies", {"token_policies": ["root"]})[0] == 403
    assert bao(service_client, "DELETE", user)[0] == 403
    assert login(service_client, victim.username, stolen)[0] in (400, 403)
    assert login(service_client, victim.username, victim.password)[0] == 200


def test_service_cannot_attach_policies(
    service_client: VaultClient, root_client: VaultClient, make_user: MakeUser
) -> None:
    """No policy through a new login, an entity, an alias or a district group: 403 each."""
    person = make_user("pol")
    entity = Access(service_client).require_entity_id(person.username)
    new = new_name("pol-new")
    assert (
        bao(
            service_client,
            "POST",
            f"auth/userpass/users/{new}",
            {"password": "x" * 20, "token_policies": ["custodia-coadministrador"]},
        )[0]
        == 403
    )
    assert (
        bao(
            service_client,
            "POST",
            f"identity/entity/id/{entity}",
            {"policies": ["custodia-coadministrador"]},
        )[0]
        == 403
    )
    assert bao(service_client, "POST", f"identity/entity/id/{entity}", {"disabled": True})[0] == 403
    group = district_group("DD33")
    for body in (
        {"policies": ["custodia-coadministrador"]},
        {"member_group_ids": ["x"]},
        {"type": "external"},
    ):
        assert bao(service_client, "POST", f"identity/group/name/{group}", body)[0] == 403
    assert root_client.read(f"identity/group/name/{group}", operation="t")["data"]["policies"] == [
        "custodia-administrador-dd33"
    ]
    assert (
        bao(service_client, "POST", "sys/policies/acl/custodia-servicio", {"policy": ""})[0] == 403
    )


@pytest.mark.parametrize(
    "name", ["dd34-administracion", "dd-administracion", "ddx", "coadministradores2", "otro"]
)
def test_service_cannot_create_a_group(
    service_client: VaultClient, root_client: VaultClient, name: str
) -> None:
    """``update`` on a missing group name would create it: no name outside the 33 district
    groups is writable, by name or through identity/group."""
    assert (
        bao(service_client, "POST", f"identity/group/name/{name}", {"member_entity_ids": []})[0]
        == 403
    )
    assert bao(service_client, "POST", "identity/group", {"name": name})[0] == 403
    assert bao(root_client, "GET", f"identity/group/name/{name}")[0] == 404


def test_legitimate_flows_still_work(
    access: Access, service_client: VaultClient, make_user: MakeUser, coadmin: User
) -> None:
    """The service registers people (a new login and its identity) and designates a district
    administrator; a coadministrator's own token grants each role, which reaches the person's
    token as the role's policy."""
    for role, policy in (
        ("coadministrador", "custodia-coadministrador"),
        ("titular", "custodia-titular"),
        ("secretaria", "custodia-secretaria"),
    ):
        name, password = new_name(f"legit-{role[:4]}"), secrets.token_urlsafe(18)
        person = access.ensure_person(name, password, role, caller_token=coadmin.token)  # type: ignore[arg-type]
        token = service_client.with_token(None).login_userpass(name, password)
        info = service_client.with_token(token).lookup_self()
        assert policy in info.identity_policies
        assert info.entity_id == person.entity_id
        assert name in access.members(access.role_group(role), caller_token=coadmin.token)  # type: ignore[arg-type]
    admin = make_user("legit-adm")
    access.designate("DD33", admin.username)
    assert access.district_holders("DD33") == (admin.username,)
    assert (
        "custodia-administrador-dd33"
        in service_client.with_token(admin.login()).lookup_self().identity_policies
    )
    access.designate("DD33", None)
    assert access.district_holders("DD33") == ()


def test_a_coadministrator_token_changes_role_members_only(
    service_client: VaultClient, root_client: VaultClient, coadmin: User
) -> None:
    """The coadministrator's own token, which now writes role membership, may set the members
    of the three role groups and nothing else: no policy on a role group, no new group, no
    district group (designation goes through the service and the ledger)."""
    own = service_client.with_token(coadmin.token)
    for group in ROLE_GROUPS:
        status, _ = bao(own, "POST", f"identity/group/name/{group}", {"policies": ["root"]})
        assert status == 403, group
        assert bao(own, "GET", f"identity/group/name/{group}")[0] == 200
    assert bao(own, "POST", "identity/group/name/otro", {"member_entity_ids": []})[0] == 403
    assert (
        bao(
            own, "POST", f"identity/group/name/{district_group('DD33')}", {"member_entity_ids": []}
        )[0]
        == 403
    )
    assert bao(root_client, "GET", "identity/group/name/otro")[0] == 404
