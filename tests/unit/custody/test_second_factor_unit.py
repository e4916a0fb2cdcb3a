"""Issue 18, the second factor: the rendered first-login policy and the policy file's switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.app.second_factor import required_by_policy
from custody.vault.layout import first_login_policy, policy_documents, policy_paths
from events.errors import ConfigurationError

METHOD = "52123525-38bf-6e5e-f068-2a277b6f7399"
ENTITY = "5ff10a99-1f97-f725-51ff-3e4be9185795"


def test_a_first_login_policy_grants_only_admin_generate_pinned_to_one_person() -> None:
    """One path, ``update`` only, with the method and the entity pinned as the only values."""
    text = first_login_policy(METHOD, ENTITY)
    assert policy_paths(text) == ["identity/mfa/method/totp/admin-generate"]
    assert 'capabilities = ["update"]' in text
    assert f'"method_id" = ["{METHOD}"]' in text
    assert f'"entity_id" = ["{ENTITY}"]' in text


@pytest.mark.parametrize("bad", ["*", "", ENTITY + '"]\n}\npath "*" {', "x" * 36])
def test_a_first_login_policy_takes_only_identifiers(bad: str) -> None:
    """Anything but an OpenBao identifier (a glob, HCL text) is refused before rendering."""
    with pytest.raises(ValueError, match="identifier"):
        first_login_policy(METHOD, bad)


def test_the_service_may_give_a_first_login_one_first_login_policy_only() -> None:
    """The service's policy allows a plain ``custodia-primer-ingreso-*`` name and denies any
    comma-separated list; it never writes a policy, and the factor's group is denied to it."""
    text = policy_documents()["custodia-servicio"]
    assert '"token_policies" = ["custodia-primer-ingreso-*"]' in text
    assert '"token_policies" = ["*,*"]' in text
    block = text.split('path "sys/policies/acl/custodia-primer-ingreso-*" {', 1)[1]
    assert block.split("}", 1)[0].strip() == 'capabilities = ["delete"]'
    group = text.split('path "identity/group/name/custodia-segundo-factor" {', 1)[1]
    assert group.split("}", 1)[0].strip() == 'capabilities = ["deny"]'


def test_the_switch_defaults_to_required(tmp_path: Path) -> None:
    """No policy file, or no ``[segundo_factor]``: required; ``obligatorio = false`` turns it
    off; a value that is not a boolean is a configuration error."""
    assert required_by_policy(None) is True
    empty = tmp_path / "vacia.toml"
    empty.write_text("[plazos]\n")
    assert required_by_policy(empty) is True
    off = tmp_path / "sin.toml"
    off.write_text("[segundo_factor]\nobligatorio = false\n")
    assert required_by_policy(off) is False
    wrong = tmp_path / "mal.toml"
    wrong.write_text('[segundo_factor]\nobligatorio = "no"\n')
    with pytest.raises(ConfigurationError):
        required_by_policy(wrong)
