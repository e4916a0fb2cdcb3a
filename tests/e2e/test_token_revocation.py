"""Revoked and expired sessions (issue 6): the service checks the caller's token with OpenBao,
caching a success for at most ``TOKEN_CACHE_SECONDS`` (5 s); a token revoked in OpenBao is
refused within that bound, and an expired session is refused in Spanish with exit code 3 by the
real ``custodia`` executable, whether the CLI notices the expiry itself or the service does."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from custody.client import CommandClient
from custody.protocol import RemoteError
from custody.service import TOKEN_CACHE_SECONDS

from .conftest import ServiceWorld, run_custodia

pytestmark = pytest.mark.e2e

BOUND = TOKEN_CACHE_SECONDS + 0.5  # the cache bound plus one round trip's slack


def _refused(client: CommandClient, command: str, args: dict[str, str] | None = None) -> bool:
    """Whether the service refuses the client's token (any other outcome is a failure)."""
    try:
        client.call(command, args or {}, retries=0)
    except RemoteError as exc:
        refused_as = exc.remote_type
    else:
        return False
    assert refused_as == "NotAuthenticatedError"
    return True


def test_revoked_token_is_refused_within_the_cache_bound(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """bety's fresh token is used (and so cached by the service), then revoked in OpenBao with
    the root token: within 5.5 s of the revocation every request with it is refused as
    NotAuthenticatedError, and stays refused; a read of DD05-x (which she may do) is refused too
    and records nothing; the real CLI says so in Spanish with exit 3."""
    world = service_world
    path = tmp_path / "sesion-bety.json"
    token = world.login("bety", path).token
    client = CommandClient(world.endpoints(), token, timeout=5)
    assert client.call("sesion.quien")["usuario"] == "bety"  # looked up, now cached

    world.root_vault().request(
        "POST", "auth/token/revoke", operation="revoke-token", json={"token": token}
    )
    revoked_at = time.monotonic()
    polls = 0
    while not _refused(client, "sesion.quien"):
        polls += 1
        assert time.monotonic() - revoked_at <= BOUND, "revoked token still accepted"
        time.sleep(0.05)
    elapsed = time.monotonic() - revoked_at
    print(f"\nrevocation: refused {elapsed:.2f} s after revocation ({polls} accepted polls)")
    assert elapsed <= BOUND

    before = world.ledger_messages()
    for _ in range(3):
        assert _refused(client, "sesion.quien")
    assert _refused(client, "revelar", {"cuenta": "DD05-x", "motivo": "después de revocar"})
    assert world.ledger_messages() == before

    result = run_custodia("sesion", "quien", home=world.home, env={"CUSTODIA_SESION": str(path)})
    assert result.returncode == 3
    assert result.stderr.startswith("Error: Su sesión no es válida (vencida o revocada).")
    assert "custodia sesion iniciar" in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stdout + result.stderr


def test_expired_session_is_refused_in_spanish_with_exit_3(
    service_world: ServiceWorld, tmp_path: Path
) -> None:
    """tomas's login policy issues 2-second tokens. While valid, ``sesion quien`` works (and the
    service caches the token). Just after expiry, a session file claiming a later expiry gets
    the dead token to the service, which refuses it although its cache entry is younger than
    5 s («Su sesión no es válida (vencida o revocada)», exit 3); the true session file is
    refused by the CLI itself («La sesión de tomas venció», exit 3). Never a traceback, never
    the token."""
    world = service_world
    world.add_person("tomas", "secretaria")
    world.root_vault().request(
        "POST",
        "auth/userpass/users/tomas",
        operation="short-ttl",
        json={"token_ttl": "2s", "token_max_ttl": "2s"},
    )
    path = tmp_path / "sesion-tomas.json"
    session = world.login("tomas", path)
    assert session.expires_at is not None
    claims_later = tmp_path / "sesion-tomas-manipulada.json"
    forged = json.loads(path.read_text())
    forged["expira"] = "2999-01-01T00:00:00+00:00"
    claims_later.write_text(json.dumps(forged))

    alive = run_custodia(
        "sesion", "quien", "--json", home=world.home, env={"CUSTODIA_SESION": str(path)}
    )
    assert alive.returncode == 0, alive.stderr
    assert json.loads(alive.stdout)["usuario"] == "tomas"

    time.sleep(max(0.0, session.expires_at.timestamp() - time.time()) + 0.3)
    refused = run_custodia(
        "sesion", "quien", home=world.home, env={"CUSTODIA_SESION": str(claims_later)}
    )
    assert refused.returncode == 3, refused.stdout
    assert refused.stderr.startswith("Error: Su sesión no es válida (vencida o revocada).")
    assert "Traceback" not in refused.stderr
    assert session.token not in refused.stdout + refused.stderr

    expired = run_custodia("sesion", "quien", home=world.home, env={"CUSTODIA_SESION": str(path)})
    assert expired.returncode == 3
    assert expired.stderr.startswith("Error: La sesión de tomas venció.")
    assert "custodia sesion iniciar" in expired.stderr
    assert "Traceback" not in expired.stderr
