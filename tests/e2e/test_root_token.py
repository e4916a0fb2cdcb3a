"""Issue 16, finding 6 (OpenBao side): nobody keeps the embedded OpenBao's root token.

Before: ``custodia init`` used the root token and left it, valid, beside the unseal key in
``secrets/openbao-init.json`` for good. Now the first ``init`` revokes it (OpenBao itself then
refuses it), the unseal key stays alone in its own 0600 file, a restart still unseals, a second
``init`` works without any root token (and says the layout was not applied again), and an
operator regenerates a root token with the unseal key when one is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from custody.stack.embedded import EmbeddedStack
from custody.vault.client import VaultClient

from .conftest import run_custodia, without_second_factor

pytestmark = pytest.mark.e2e


def _init(home: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    # Without the login second factor: ana logs in below with her password alone.
    env = {**without_second_factor(home), **(env or {})}
    result = run_custodia(
        "init",
        "--usuario",
        "ana",
        "--password-stdin",
        "--json",
        home=home,
        env=env,
        stdin="ana-clave-segura-1\n",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _lookup_self(addr: str, token: str) -> int:
    answer = requests.get(
        f"{addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}, timeout=10
    )
    return answer.status_code


def test_init_revokes_the_root_token_and_restarts_still_unseal(tmp_path: Path) -> None:
    """The root token written at OpenBao's first start is refused (403) by OpenBao once
    ``init`` is done, and its file is gone; the unseal key file holds nothing else; after
    ``detener`` and ``arrancar`` OpenBao is unsealed again; a second ``init`` succeeds without a
    root token; a root token generated with the unseal key works (and is revoked here)."""
    home = tmp_path / "home"
    assert run_custodia("arrancar", home=home).returncode == 0
    stack = EmbeddedStack(home)
    info = stack.info()
    assert info is not None
    root = stack.vault_keys().root_token
    assert root is not None
    assert _lookup_self(info.vault_addr, root) == 200  # before init: a working root token

    first = _init(home)
    assert first["bitacora_creada"] is True
    assert first["token_raiz_revocado"] is True
    assert _lookup_self(info.vault_addr, root) == 403  # OpenBao's own refusal
    assert not stack.root_token_file.exists()
    key_file = home / "secrets" / "openbao-init.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(key_file.read_text())) == {"unseal_key"}
    assert root not in key_file.read_text()
    assert stack.vault_keys().root_token is None

    assert run_custodia("detener", home=home).returncode == 0
    assert run_custodia("arrancar", home=home).returncode == 0
    info = stack.info()
    assert info is not None
    health = requests.get(f"{info.vault_addr}/v1/sys/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["sealed"] is False

    # A crash between the revocation and the file's deletion leaves a dead token behind: the
    # next init recognises it (OpenBao refuses it), deletes it and goes on without it.
    stack.root_token_file.write_text(root)
    stack.root_token_file.chmod(0o600)
    second = _init(home)
    assert not stack.root_token_file.exists()
    assert second["bitacora_creada"] is False
    assert second["politicas_aplicadas"] is False
    assert second["token_raiz_revocado"] is False

    # Regeneration needs two parties: the unseal key (the operator) and a coadministrator's
    # token. Neither alone: without a token OpenBao refuses the attempt.
    assert (
        requests.put(
            f"{info.vault_addr}/v1/sys/generate-root-token/attempt", json={}, timeout=10
        ).status_code
        == 403
    )
    ana = VaultClient(info.vault_addr).login_userpass("ana", "ana-clave-segura-1")
    regenerated = stack.generate_root_token(ana)
    assert _lookup_self(info.vault_addr, regenerated) == 200
    # With the operator's token in CUSTODIA_VAULT_TOKEN, init applies the layout again and
    # leaves the operator's token alone (the operator revokes it).
    third = _init(home, {"CUSTODIA_VAULT_TOKEN": regenerated})
    assert third["politicas_aplicadas"] is True
    assert third["token_raiz_revocado"] is False
    requests.post(
        f"{info.vault_addr}/v1/auth/token/revoke-self",
        headers={"X-Vault-Token": regenerated},
        timeout=10,
    ).raise_for_status()
    assert _lookup_self(info.vault_addr, regenerated) == 403
    assert run_custodia("detener", home=home).returncode == 0


def test_a_key_file_of_an_earlier_version_is_split(tmp_path: Path) -> None:
    """A home from before this change (unseal key and root token in one file) is split on the
    next start: the key file keeps only the key, the token moves to its own 0600 file, and the
    next ``init`` revokes it."""
    home = tmp_path / "home"
    assert run_custodia("arrancar", home=home).returncode == 0
    stack = EmbeddedStack(home)
    keys = stack.vault_keys()
    assert keys.root_token is not None
    stack.forget_root_token()
    key_file = home / "secrets" / "openbao-init.json"
    key_file.write_text(json.dumps({"unseal_key": keys.unseal_key, "root_token": keys.root_token}))
    split = stack.vault_keys()
    assert split == keys
    assert set(json.loads(key_file.read_text())) == {"unseal_key"}
    assert stack.root_token_file.stat().st_mode & 0o777 == 0o600
    assert _init(home)["token_raiz_revocado"] is True
    info = stack.info()
    assert info is not None
    assert _lookup_self(info.vault_addr, keys.root_token) == 403
    assert run_custodia("detener", home=home).returncode == 0
