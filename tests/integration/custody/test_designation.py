"""Designation is access (6.X): vacation substitution and the designation protocol, at the Vault
level. Districts used: DD07, DD08, DD09.
"""

from __future__ import annotations

import pytest

from custody.app.access import Access
from custody.errors import UnknownPersonError, UnknownRoleError, VaultPermissionDeniedError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from tests.integration.custody.helpers import MakeUser, User, set_credential

pytestmark = pytest.mark.integration


def reads(credentials: Credentials, token: str, account: str) -> str:
    wrapped = credentials.read_current_wrapped(token, account)
    return credentials.unwrap(wrapped.token, account).password


def test_vacation_substitution(
    access: Access, credentials: Credentials, make_user: MakeUser, coadmin: User
) -> None:
    """A reads; holder → B: A's existing token is refused at once, B reads (also the rotated
    password); back to A: A's same old token reads again and B is refused."""
    a, b = make_user("vac-a"), make_user("vac-b")
    set_credential(credentials, coadmin.token, "DD07-x", "Before-vacation-1")
    access.designate("DD07", a.username)
    token_a = a.login()
    assert reads(credentials, token_a, "DD07-x") == "Before-vacation-1"

    ledger: list[str] = []
    access.designate("DD07", b.username, record=lambda: ledger.append("substitution"))
    assert ledger == ["substitution"]
    with pytest.raises(VaultPermissionDeniedError):
        reads(credentials, token_a, "DD07-x")
    with pytest.raises(VaultPermissionDeniedError):
        credentials.totp_code(token_a, "DD07-x")
    assert access.district_holders("DD07") == (b.username,)
    assert reads(credentials, b.token, "DD07-x") == "Before-vacation-1"

    # 6.X: the change obliges a new password; B sees it once confirmed.
    version = set_credential(credentials, coadmin.token, "DD07-x", "During-vacation-2")
    assert (
        credentials.unwrap(
            credentials.read_current_wrapped(b.token, "DD07-x").token, "DD07-x"
        ).version
        == version
    )
    assert reads(credentials, b.token, "DD07-x") == "During-vacation-2"

    access.designate("DD07", a.username)
    assert reads(credentials, token_a, "DD07-x") == "During-vacation-2"
    with pytest.raises(VaultPermissionDeniedError):
        reads(credentials, b.token, "DD07-x")


def test_refused_token_is_not_revoked(
    access: Access, service_client: VaultClient, make_user: MakeUser
) -> None:
    """The outgoing person's token stays valid (lookup works): only its access changed."""
    a, b = make_user("tok-a"), make_user("tok-b")
    access.set_district_holder("DD08", a.username)
    access.set_district_holder("DD08", b.username)
    info = service_client.with_token(a.token).lookup_self()
    assert info.username == a.username
    assert "custodia-administrador-dd08" not in info.identity_policies
    assert (
        "custodia-administrador-dd08"
        in service_client.with_token(b.token).lookup_self().identity_policies
    )


def test_failed_record_restores_previous_holder(access: Access, make_user: MakeUser) -> None:
    """If the ledger write fails, the outgoing person gets access back and the error propagates."""
    a, b = make_user("rec-a"), make_user("rec-b")
    access.designate("DD09", a.username)

    def failing_record() -> None:
        assert access.district_holders("DD09") == ()  # revoked before recording
        raise RuntimeError("ledger unavailable")

    with pytest.raises(RuntimeError, match="ledger unavailable"):
        access.designate("DD09", b.username, record=failing_record)
    assert access.district_holders("DD09") == (a.username,)


def test_unknown_incoming_person_changes_nothing(access: Access, make_user: MakeUser) -> None:
    """Designating someone without an identity fails before the current holder loses access."""
    a = make_user("unk-a")
    access.designate("DD09", a.username)
    with pytest.raises(UnknownPersonError):
        access.designate("DD09", "nadie-registrado")
    assert access.district_holders("DD09") == (a.username,)


def test_designate_nobody_empties_the_group(access: Access, make_user: MakeUser) -> None:
    """A district may be left without an administrator: nobody reads its credentials."""
    a = make_user("none-a")
    access.designate("DD09", a.username)
    access.designate("DD09", None)
    assert access.district_holders("DD09") == ()


def test_role_groups_and_lookup(
    access: Access, make_user: MakeUser, service_client: VaultClient, coadmin: User
) -> None:
    """A person's role group shows in their token's identity policies and in groups_of;
    removing them from the role (with a coadministrator's token) takes the policy away from
    the same token."""
    s = make_user("role-sec", "secretaria")
    assert "secretaria" in access.groups_of(s.username)
    assert (
        "custodia-secretaria" in service_client.with_token(s.token).lookup_self().identity_policies
    )
    access.remove_role_member("secretaria", s.username, caller_token=coadmin.token)
    assert "secretaria" not in access.groups_of(s.username)
    assert (
        "custodia-secretaria"
        not in service_client.with_token(s.token).lookup_self().identity_policies
    )
    with pytest.raises(UnknownRoleError):
        access.add_role_member("administrador", s.username)


def test_ensure_person_is_idempotent(access: Access, make_user: MakeUser) -> None:
    """Registering the same person again keeps one entity and one alias."""
    u = make_user("idem")
    first = access.ensure_person(u.username, None)
    second = access.ensure_person(u.username, None)
    assert first == second
    assert first.alias_id


def test_concurrent_role_changes_lose_nothing(
    access: Access, make_user: MakeUser, coadmin: User
) -> None:
    """The service runs commands concurrently: people added to (and removed from) one role
    group at the same time all end up where they should (identity groups have no
    check-and-set; the read-modify-writes of one process are serialized)."""
    from concurrent.futures import ThreadPoolExecutor

    people = [make_user(f"conc-tit{i}").username for i in range(8)]
    token = coadmin.token

    def members() -> set[str]:
        return set(access.members("titulares", caller_token=token))

    before = members()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda u: access.add_role_member("titular", u, caller_token=token), people))
    assert members() == before | set(people)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda u: access.remove_role_member("titular", u, caller_token=token), people[:5]
            )
        )
    assert members() == before | set(people[5:])
