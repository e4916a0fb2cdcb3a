"""The layout is created once and re-running it is safe: it corrects drift, never membership.
District used: DD30.
"""

from __future__ import annotations

import base64

import pytest

from custody.app.access import Access
from custody.errors import VaultLayoutError, VaultPermissionDeniedError
from custody.vault.client import Mounts, VaultClient
from custody.vault.layout import (
    DISTRICTS,
    LEDGER_KEY,
    SIGNER_POLICY,
    LayoutReport,
    await_kv_ready,
    create_service_token,
    ensure_layout,
    group_specs,
    policy_documents,
)
from events.errors import VaultError
from tests.integration.custody.helpers import MakeUser

pytestmark = pytest.mark.integration


def test_layout_is_complete(layout: LayoutReport, root_client: VaultClient) -> None:
    """Mounts, 38 policies and 36 groups exist as specified; KV requires check-and-set."""
    mounts = root_client.read("sys/mounts", operation="t")["data"]
    assert mounts["custodia/"]["type"] == "kv"
    assert mounts["custodia/"]["options"]["version"] == "2"
    assert mounts["custodia-totp/"]["type"] == "totp"
    assert mounts["custodia-transit/"]["type"] == "transit"
    assert root_client.read("custodia/config", operation="t")["data"]["cas_required"] is True
    assert len(policy_documents()) == 5 + len(DISTRICTS) == 38
    for spec in group_specs():
        group = root_client.read(f"identity/group/name/{spec.name}", operation="t")["data"]
        assert group["policies"] == list(spec.policies)


def test_second_run_changes_nothing(layout: LayoutReport, root_client: VaultClient) -> None:
    """Running the layout again on a complete server creates and updates nothing."""
    again = ensure_layout(root_client)
    assert not again.changed
    assert len(again.unchanged) >= 3 + 38 + 36


def test_rerun_repairs_drift_but_keeps_members(
    layout: LayoutReport, root_client: VaultClient, access: Access, make_user: MakeUser
) -> None:
    """A tampered policy and a group stripped of its policy are restored; members stay."""
    holder = make_user("lay-holder")
    access.set_district_holder("DD30", holder.username)
    root_client.write(
        "sys/policies/acl/custodia-titular",
        {"policy": 'path "custodia/*" { capabilities = ["read"] }'},
        operation="tamper",
    )
    root_client.write(
        "identity/group/name/dd30-administracion", {"policies": []}, operation="tamper"
    )
    report = ensure_layout(root_client)
    assert set(report.updated) == {"policy:custodia-titular", "group:dd30-administracion"}
    assert access.district_holders("DD30") == (holder.username,)
    titular = root_client.read("sys/policies/acl/custodia-titular", operation="t")["data"]
    assert titular["policy"] == policy_documents()["custodia-titular"]


def test_wrong_mount_type_is_refused(root_client: VaultClient) -> None:
    """A path already used by another engine is reported, not overwritten."""
    root_client.write("sys/mounts/otro-kv", {"type": "transit"}, operation="t")
    clashing = VaultClient(root_client.addr, root_client.token, mounts=Mounts(kv="otro-kv"))
    with pytest.raises(VaultLayoutError) as clash:
        ensure_layout(clashing)
    assert clash.value.path == "otro-kv"


def test_a_fresh_kv_mount_is_awaited_and_other_refusals_are_raised(
    root_client: VaultClient,
) -> None:
    """A KV v2 engine just mounted refuses requests while it sets up its storage; after
    ``await_kv_ready`` a write on it succeeds at once. A refusal that is not that setup (here:
    no engine mounted there at all) is raised, not waited on."""
    root_client.write(
        "sys/mounts/recien-kv", {"type": "kv", "options": {"version": "2"}}, operation="t"
    )
    await_kv_ready(root_client, "recien-kv")
    root_client.write("recien-kv/data/sonda", {"data": {"x": "1"}}, operation="t")
    assert root_client.read("recien-kv/data/sonda", operation="t")["data"]["data"] == {"x": "1"}
    with pytest.raises(VaultError):
        await_kv_ready(root_client, "no-montado", timeout=5)


def test_ledger_key_signs_and_never_leaves(
    layout: LayoutReport, service_client: VaultClient, root_client: VaultClient
) -> None:
    """The ledger follower's own token signs with the ed25519 ledger key, the service's cannot
    (issue 16); nobody, not even root, can export it."""
    signer = root_client.with_token(
        create_service_token(root_client, policy=SIGNER_POLICY, display_name="firmante")
    )
    with pytest.raises(VaultPermissionDeniedError):
        service_client.write(
            f"custodia-transit/sign/{LEDGER_KEY}",
            {"input": base64.b64encode(b"checkpoint").decode()},
            operation="sign",
        )
    signed = signer.write(
        f"custodia-transit/sign/{LEDGER_KEY}",
        {"input": base64.b64encode(b"checkpoint").decode()},
        operation="sign",
    )
    assert signed is not None
    assert signed["data"]["signature"].startswith("vault:v")  # v2+ once another test rotated
    key = service_client.read(f"custodia-transit/keys/{LEDGER_KEY}", operation="t")["data"]
    assert key["type"] == "ed25519"
    assert key["exportable"] is False
    assert key["keys"]["1"]["public_key"]
    with pytest.raises(VaultPermissionDeniedError):
        service_client.read(f"custodia-transit/export/signing-key/{LEDGER_KEY}", operation="t")


def test_service_cannot_grant_itself_policies(
    service_client: VaultClient, access: Access, make_user: MakeUser
) -> None:
    """The service changes membership only: it cannot attach policies to a group, an entity
    or a login."""
    user = make_user("lay-svc")
    entity_id = access.require_entity_id(user.username)
    attempts: list[tuple[str, dict[str, object]]] = [
        ("identity/group/name/dd30-administracion", {"policies": ["custodia-coadministrador"]}),
        (f"identity/entity/id/{entity_id}", {"policies": ["custodia-coadministrador"]}),
        (f"auth/userpass/users/{user.username}", {"token_policies": ["custodia-coadministrador"]}),
        ("sys/policies/acl/custodia-servicio", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
    ]
    for path, body in attempts:
        with pytest.raises(VaultPermissionDeniedError):
            service_client.write(path, body, operation="escalate")
