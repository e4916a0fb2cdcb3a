"""deploy/'s cluster configurations are the harness's renderers' output, and they parse."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from custody.service import permissions as nats_auth
from custody.service.callout import issuer_public_key, new_issuer_seed
from custody.stack.cluster import deploy_files
from custody.stack.servers import nats_server_binary
from tests.support.cluster import make_test_pki

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_deploy_files_match_the_renderers() -> None:
    """deploy/nats/*.conf and deploy/openbao/openbao-N.hcl are exactly what the test clusters
    run; regenerate with ``python -m custody.stack.cluster deploy deploy/`` when this fails."""
    for relative, text in deploy_files().items():
        assert (DEPLOY / relative).read_text() == text, relative


def test_deploy_accounts_carry_every_user_with_a_variable_password() -> None:
    """The accounts file names the three users of custody/service/permissions.py, each password an
    unquoted environment variable (NATS expands only unquoted ones), and no literal password."""
    text = deploy_files()["nats/accounts.conf"]
    for user in nats_auth.USERS:
        assert f'user: "{user}"' in text
        assert f"password: $CUSTODIA_NATS_{user.upper()}_PASSWORD\n" in text
    assert text.count("password:") == len(nats_auth.USERS)


def test_deploy_nats_config_is_valid_for_nats_server(tmp_path: Path) -> None:
    """``nats-server -t`` accepts a member's configuration (TLS paths pointed at test files),
    and refuses it when a password variable is missing."""
    pki = make_test_pki(tmp_path / "tls")
    files = deploy_files()
    for name in ("nats-1.conf", "accounts.conf"):
        text = (
            files[f"nats/{name}"]
            .replace("/etc/nats/tls/ca.pem", str(pki.ca))
            .replace("/etc/nats/tls/server.pem", str(pki.cert))
            .replace("/etc/nats/tls/server-key.pem", str(pki.key))
            .replace("/var/lib/nats", str(tmp_path / "data"))
        )
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_NATS_")}
    passwords = {f"CUSTODIA_NATS_{u.upper()}_PASSWORD": "x" for u in nats_auth.USERS}
    passwords["CUSTODIA_NATS_CALLOUT_ISSUER"] = issuer_public_key(new_issuer_seed())

    def check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(nats_server_binary()), "-t", "-c", str(tmp_path / "nats-1.conf")],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )

    ok = check(passwords)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    missing = check({k: v for k, v in passwords.items() if "VERIFICADOR" not in k})
    assert missing.returncode != 0
    assert "CUSTODIA_NATS_VERIFICADOR_PASSWORD" in missing.stderr + missing.stdout
