"""Identifiers, paths and the policies as code (pure; no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custody.errors import InvalidAccountError, InvalidDistrictError
from custody.vault.client import Mounts
from custody.vault.layout import (
    ACCESS_OPERATIONS,
    DISTRICTS,
    AccountRef,
    district_group,
    district_id,
    district_policy,
    group_specs,
    policy_documents,
    secret_paths,
)

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "openbao" / "policies"


@pytest.mark.parametrize("text", ["DD05", "dd05", "05", "5", " DD5 "])
def test_district_forms(text: str) -> None:
    """Districts are accepted as the CLI documents them."""
    assert district_id(text) == "DD05"


@pytest.mark.parametrize("text", ["DD00", "DD34", "34", "D05", "", "DD5x"])
def test_bad_districts(text: str) -> None:
    """Only DD01..DD33 exist."""
    with pytest.raises(InvalidDistrictError):
        district_id(text)


def test_account_paths() -> None:
    """An account maps to its current and staged KV paths and its TOTP key name."""
    ref = AccountRef.parse("dd05-X")
    mounts = Mounts()
    assert ref.name == "DD05-x"
    assert ref.data_path(mounts) == "custodia/data/cuentas/DD05/x"
    assert ref.data_path(mounts, staged=True) == "custodia/data/preparadas/DD05/x"
    assert ref.metadata_path(mounts) == "custodia/metadata/cuentas/DD05/x"
    assert ref.totp_code_path(mounts) == "custodia-totp/code/DD05-x"
    assert ref.access_path("revelar") == "custodia-acceso/DD05/revelar/x"
    assert AccountRef.parse("DD05-google-business").platform == "google-business"
    with pytest.raises(ValueError, match="unknown operation"):
        ref.access_path("leer")


@pytest.mark.parametrize("text", ["DD05", "DD05-", "DD05-x/../y", "DD40-x", "DD05-*", "x-DD05"])
def test_bad_accounts(text: str) -> None:
    """Anything that could escape its path or glob is refused."""
    with pytest.raises(InvalidAccountError):
        AccountRef.parse(text)


def _blocks(text: str) -> list[tuple[str, set[str]]]:
    """(path, capabilities) of every block of a policy document."""
    return [
        (path, set(re.findall(r'"(\w+)"', capabilities)))
        for path, capabilities in re.findall(
            r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', text
        )
    ]


def test_one_policy_and_group_per_district() -> None:
    """33 district policies from one template, each granting only its own district's reveal
    and 2FA markers, and denying every secret path (issue 16, finding 2)."""
    docs = policy_documents()
    assert len(DISTRICTS) == 33
    for district in DISTRICTS:
        blocks = _blocks(docs[district_policy(district)])
        grants = [(p, c) for p, c in blocks if c != {"deny"}]
        assert grants == [
            (f"custodia-acceso/{district}/revelar/*", {"read"}),
            (f"custodia-acceso/{district}/codigo/*", {"read"}),
        ]
        assert [p for p, c in blocks if c == {"deny"}] == secret_paths(Mounts())
    names = [spec.name for spec in group_specs()]
    assert names[:3] == ["coadministradores", "titulares", "secretaria"]
    assert names[3:] == [district_group(d) for d in DISTRICTS]


def test_titular_and_secretaria_are_denied_everything_secret() -> None:
    """Titular and secretaria policies only deny (6.IX): no capability other than deny, except
    the secretaria's read of the ledger's anchored head and witnesses (public data, issue 16)."""
    docs = policy_documents()
    for name in ("custodia-titular", "custodia-secretaria"):
        blocks = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', docs[name])
        assert blocks
        for path, capabilities in blocks:
            if name == "custodia-secretaria" and path.startswith(
                ("custodia/data/bitacora/", "custodia/metadata/bitacora/")
            ):
                assert set(re.findall(r'"(\w+)"', capabilities)) <= {"read", "list"}
                continue
            assert capabilities == '"deny"', (name, path)


def test_titular_and_secretaria_deny_every_secret_grant_exactly() -> None:
    """OpenBao decides by the most specific matching pattern of all of a token's policies, so a
    deny on a mount is not enough: the titular and secretaria policies deny exactly the three
    secret mounts, the authorization markers, and every pattern the coadministrator and
    district policies name on them (deleting any deny block fails this test)."""
    docs = policy_documents()
    granted: set[str] = set()
    for name, text in docs.items():
        if name == "custodia-coadministrador" or name.startswith("custodia-administrador-"):
            granted.update(
                p
                for p in re.findall(r'^path "([^"]+)"', text, re.MULTILINE)
                if p.split("/", 1)[0]
                in ("custodia", "custodia-totp", "custodia-transit", "custodia-acceso")
            )
    # The ledger's anchored head and witnesses hold no secret: the Secretaría Ejecutiva reads
    # them to verify the ledger (her policy grants that read; it is not denied).
    ledger_records = {"custodia/data/bitacora/*", "custodia/metadata/bitacora/*"}
    assert ledger_records <= granted
    granted -= ledger_records
    assert (
        'path "custodia/data/bitacora/*" {\n  capabilities = ["read"]'
        in (docs["custodia-secretaria"])
    )
    assert "custodia-acceso/DD05/revelar/*" in granted
    assert "custodia-acceso/+/codigo/*" in granted
    assert "custodia/data/preparadas/*" in granted
    wanted = granted | {"custodia/*", "custodia-totp/*", "custodia-transit/*", "custodia-acceso/*"}
    for name in ("custodia-titular", "custodia-secretaria"):
        blocks = re.findall(
            r'^path "([^"]+)" \{\n  capabilities = \["deny"\]\n\}', docs[name], re.MULTILINE
        )
        assert len(blocks) == len(set(blocks))
        assert set(blocks) == wanted, name


def test_people_policies_grant_nothing_on_a_secret() -> None:
    """Issue 16, finding 2: no person's policy (coadministrator, district administrator,
    titular, secretaria) grants any capability on a path that holds or yields a secret; each
    coadministrator and district policy denies every one of them explicitly; the
    coadministrator's markers cover every operation."""
    docs = policy_documents()
    secret = secret_paths(Mounts())
    areas = (
        "custodia/data/cuentas",
        "custodia/data/preparadas",
        "custodia/metadata/cuentas",
        "custodia/metadata/preparadas",
        "custodia-totp/",
        "custodia-transit/hmac",
    )
    for name, text in docs.items():
        if name in ("custodia-servicio", "custodia-firmante"):
            continue
        for path, capabilities in _blocks(text):
            if path.startswith(areas) or path in ("custodia/*", "custodia-totp/*"):
                assert capabilities == {"deny"}, (name, path)
        if name == "custodia-coadministrador" or name.startswith("custodia-administrador-"):
            denied = {p for p, c in _blocks(text) if c == {"deny"}}
            assert set(secret) <= denied, name
    coadmin = dict(_blocks(docs["custodia-coadministrador"]))
    for operation in ACCESS_OPERATIONS:
        assert coadmin[f"custodia-acceso/+/{operation}/*"] == {"read"}


def test_service_policy_reads_current_secrets_only_wrapped() -> None:
    """The service policy reads current credentials and 2FA codes only wrapped
    (min_wrapping_ttl) and keeps the explicit deny on the rest of the KV data."""
    text = policy_documents()["custodia-servicio"]
    assert re.search(r'path "custodia/data/\*" \{\s*capabilities = \["deny"\]', text)
    for path in (r"custodia/data/cuentas/\*", r"custodia-totp/code/\*"):
        block = re.search(rf'path "{path}" \{{([^}}]*)\}}', text)
        assert block is not None, path
        assert 'min_wrapping_ttl = "1s"' in block.group(1)


def test_mount_names_are_rendered() -> None:
    """Other mount paths render into every policy; no placeholder is left."""
    docs = policy_documents(Mounts(kv="kv2", totp="otp", transit="tr", userpass="up"))
    assert all("$" not in text for text in docs.values())
    assert 'path "kv2/data/cuentas/*"' in docs["custodia-administrador-dd05"]
    assert 'path "auth/up/users/+"' in docs["custodia-servicio"]


def test_deploy_copies_are_in_sync() -> None:
    """deploy/openbao/policies holds exactly the rendered policies for the default mounts
    (regenerate with: python -m custody.vault.layout deploy/openbao/policies)."""
    docs = policy_documents()
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in DEPLOY.glob("*.hcl")}
    assert on_disk == docs
