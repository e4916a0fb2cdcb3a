"""Identifiers, paths and the policies as code (pure; no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custody.errors import InvalidAccountError, InvalidDistrictError
from custody.layout import (
    DISTRICTS,
    AccountRef,
    district_group,
    district_id,
    district_policy,
    group_specs,
    policy_documents,
)
from custody.vault import Mounts

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
    assert AccountRef.parse("DD05-google-business").platform == "google-business"


@pytest.mark.parametrize("text", ["DD05", "DD05-", "DD05-x/../y", "DD40-x", "DD05-*", "x-DD05"])
def test_bad_accounts(text: str) -> None:
    """Anything that could escape its path or glob is refused."""
    with pytest.raises(InvalidAccountError):
        AccountRef.parse(text)


def test_one_policy_and_group_per_district() -> None:
    """33 district policies from one template, each naming only its own district."""
    docs = policy_documents()
    assert len(DISTRICTS) == 33
    for district in DISTRICTS:
        text = docs[district_policy(district)]
        paths = re.findall(r'^path "([^"]+)"', text, re.MULTILINE)
        assert paths == [f"custodia/data/cuentas/{district}/*", f"custodia-totp/code/{district}-*"]
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
    secret mounts and every pattern the coadministrator and district policies grant on them
    (deleting any deny block fails this test)."""
    docs = policy_documents()
    granted: set[str] = set()
    for name, text in docs.items():
        if name == "custodia-coadministrador" or name.startswith("custodia-administrador-"):
            granted.update(
                p
                for p in re.findall(r'^path "([^"]+)"', text, re.MULTILINE)
                if p.split("/", 1)[0] in ("custodia", "custodia-totp", "custodia-transit")
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
    assert "custodia/data/cuentas/DD05/*" in granted
    assert "custodia-totp/code/DD05-*" in granted
    assert "custodia/data/preparadas/*" in granted
    wanted = granted | {"custodia/*", "custodia-totp/*", "custodia-transit/*"}
    for name in ("custodia-titular", "custodia-secretaria"):
        blocks = re.findall(
            r'^path "([^"]+)" \{\n  capabilities = \["deny"\]\n\}', docs[name], re.MULTILINE
        )
        assert len(blocks) == len(set(blocks))
        assert set(blocks) == wanted, name


def test_service_policy_denies_secret_values() -> None:
    """The service policy explicitly denies KV data and TOTP codes (least privilege)."""
    text = policy_documents()["custodia-servicio"]
    assert re.search(r'path "custodia/data/\*" \{\s*capabilities = \["deny"\]', text)
    assert re.search(r'path "custodia-totp/code/\*" \{\s*capabilities = \["deny"\]', text)


def test_mount_names_are_rendered() -> None:
    """Other mount paths render into every policy; no placeholder is left."""
    docs = policy_documents(Mounts(kv="kv2", totp="otp", transit="tr", userpass="up"))
    assert all("$" not in text for text in docs.values())
    assert 'path "kv2/data/cuentas/DD05/*"' in docs["custodia-administrador-dd05"]
    assert 'path "auth/up/users/+"' in docs["custodia-servicio"]


def test_deploy_copies_are_in_sync() -> None:
    """deploy/openbao/policies holds exactly the rendered policies for the default mounts
    (regenerate with: python -m custody.layout deploy/openbao/policies)."""
    docs = policy_documents()
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in DEPLOY.glob("*.hcl")}
    assert on_disk == docs
