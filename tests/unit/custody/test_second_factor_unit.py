"""Issue 18, the second factor: the method-pinned policies, the service's and a first login's
rights, and the policy file's switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.app.second_factor import required_by_policy
from custody.service.callout import user_permissions
from custody.vault.layout import policy_documents, policy_paths, second_factor_policies
from events.errors import ConfigurationError

METHOD = "52123525-38bf-6e5e-f068-2a277b6f7399"


def test_the_method_pinned_policies_grant_one_operation_each_on_custodias_method() -> None:
    """The service's grant is ``admin-generate`` only, the coadministrators' ``admin-destroy``
    only; both ``update`` with the method pinned as the only value."""
    docs = second_factor_policies(METHOD)
    generate = docs["custodia-segundo-factor-inscripcion"]
    destroy = docs["custodia-segundo-factor-restablecer"]
    assert policy_paths(generate) == ["identity/mfa/method/totp/admin-generate"]
    assert policy_paths(destroy) == ["identity/mfa/method/totp/admin-destroy"]
    for text in (generate, destroy):
        assert 'capabilities = ["update"]' in text
        assert f'"method_id" = ["{METHOD}"]' in text


@pytest.mark.parametrize("bad", ["*", "", METHOD + '"]\n}\npath "*" {', "x" * 36])
def test_the_method_pinned_policies_take_only_an_identifier(bad: str) -> None:
    """Anything but an OpenBao identifier (a glob, HCL text) is refused before rendering."""
    with pytest.raises(ValueError, match="identifier"):
        second_factor_policies(bad)


def test_no_rendered_policy_lets_anyone_write_acl_policies() -> None:
    """No policy of the layout (people, service, signer) names ``sys/policies``: nobody writes
    an ACL policy at run time. The service may create first-login users with a password and
    ``token_no_default_policy = true`` only, and may not touch the factor's group."""
    for name, text in policy_documents().items():
        assert not any(p.startswith("sys/policies") for p in policy_paths(text)), name
    text = policy_documents()["custodia-servicio"]
    block = text.split('path "auth/userpass-primer-ingreso/users/+" {', 1)[1].split("\n}", 1)[0]
    assert '"token_no_default_policy" = [true]' in block
    assert "token_policies" not in block
    group = text.split('path "identity/group/name/custodia-segundo-factor" {', 1)[1]
    assert group.split("}", 1)[0].strip() == 'capabilities = ["deny"]'


def test_a_first_login_connection_may_send_one_command_to_an_inbox_of_its_own() -> None:
    """NATS rights of a first-login token: publish on ``segundo_factor.inscribir`` only,
    subscribe to ``_INBOX.primer-ingreso+ana.>`` (not ana's own inbox)."""
    rights = user_permissions("ana", first_login=True)
    assert rights["pub"]["allow"] == ["custodia.cmd.segundo_factor.inscribir"]
    assert rights["sub"]["allow"] == ["_INBOX.primer-ingreso+ana.>"]
    assert user_permissions("ana")["sub"]["allow"] == ["_INBOX.ana.>"]


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


def test_the_otpauth_label_names_the_person_and_nothing_else_changes() -> None:
    """OpenBao labels the key with the entity's id; the authenticator app should show the
    login name. The secret, the issuer and every parameter stay as OpenBao made them."""
    from urllib.parse import parse_qs, unquote, urlsplit

    from custody.app.second_factor import labelled

    made = (
        "otpauth://totp/IECM%20Custodia:6ab4380b-9077-b379-1af4-da3432ab4d62"
        "?algorithm=SHA1&digits=6&issuer=IECM+Custodia&period=30&secret=JBSWY3DPEHPK3PXP"
    )
    shown = labelled(made, "ana")
    assert unquote(urlsplit(shown).path) == "/IECM Custodia:ana"
    assert parse_qs(urlsplit(shown).query) == parse_qs(urlsplit(made).query)
    assert shown.startswith("otpauth://totp/")
    assert labelled("https://example.org/x", "ana") == "https://example.org/x"
    unlabelled = labelled("otpauth://totp/sinemisor?secret=JBSWY3DPEHPK3PXP", "luis")
    assert unquote(urlsplit(unlabelled).path) == "/IECM Custodia:luis"
