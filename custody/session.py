"""A person's session: their own OpenBao/Vault token, kept in a 0600 file under CUSTODIA_HOME.

``CUSTODIA_SESION`` names another file (several people on one machine, the demo).

The session token never leaves the person's machine except to OpenBao: each request to the
service carries a *request token* instead (:func:`request_token`), a child of the session token
made through the token role ``custodia-solicitud`` — a TTL of seconds, a few uses, no right to
make tokens of its own (OpenBao refuses "restricted use token cannot generate child tokens"),
the same entity (so the same identity-group policies), revoked with the session.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from events.errors import CustodiaError, VaultError

from .config import Settings
from .layout import REQUEST_TOKEN_MAX_TTL, REQUEST_TOKEN_MAX_USES, REQUEST_TOKEN_ROLE
from .secret_files import write_secret
from .vault import VaultClient


class NoSessionError(CustodiaError):
    """There is no session: ``custodia sesion iniciar`` first."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class SessionExpiredError(CustodiaError):
    """The session's token expired or was revoked; log in again."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


@dataclass(frozen=True)
class Session:
    """The logged-in person."""

    username: str
    token: str = field(repr=False)
    vault_addr: str
    expires_at: datetime | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "usuario": self.username,
                "token": self.token,
                "vault_addr": self.vault_addr,
                "expira": self.expires_at.isoformat() if self.expires_at else None,
            }
        )


def session_path(settings: Settings, env: dict[str, str] | None = None) -> Path:
    source = os.environ if env is None else env
    configured = source.get("CUSTODIA_SESION", "").strip()
    return Path(configured).expanduser() if configured else settings.home / "sesion.json"


def login(
    vault_addr: str,
    username: str,
    password: str,
    path: Path,
    *,
    verify: bool | str = True,
    code: str | None = None,
) -> Session:
    """Log in with userpass and keep the token in ``path`` (0600); ``verify``: a CA bundle;
    ``code``: the current TOTP code when OpenBao enforces a second factor on this person."""
    client = VaultClient(vault_addr, verify=verify)
    token = client.login_userpass(username, password, code=code)
    info = client.with_token(token).lookup_self()
    session = Session(username, token, vault_addr, info.expire_time)
    write_secret(path, session.to_json())
    return session


def load(path: Path) -> Session:
    """The saved session, or :class:`NoSessionError`; an expired one raises
    :class:`SessionExpiredError` (the file is left for ``sesion cerrar``)."""
    try:
        data = json.loads(path.read_text())
        session = Session(
            username=str(data["usuario"]),
            token=str(data["token"]),
            vault_addr=str(data["vault_addr"]),
            expires_at=datetime.fromisoformat(data["expira"]) if data.get("expira") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        raise NoSessionError(path) from None
    if session.expires_at is not None and session.expires_at <= datetime.now(UTC):
        raise SessionExpiredError(session.username)
    return session


def logout(path: Path) -> str | None:
    """Revoke the token (if still valid) and forget it; the user name, or None if none."""
    try:
        session = load(path)
    except NoSessionError:
        return None
    except SessionExpiredError as exc:
        path.unlink(missing_ok=True)
        return exc.username
    try:
        VaultClient(session.vault_addr, session.token).revoke_self()
    except VaultError:
        pass  # already revoked or expired: forgetting it is all that is left
    finally:
        path.unlink(missing_ok=True)
    return session.username


def request_token(
    vault_addr: str, session_token: str, *, uses: int, ttl: int, verify: bool | str = True
) -> str:
    """A child of ``session_token`` for one request: ``uses`` uses, ``ttl`` seconds (both within
    the role's bounds, which OpenBao enforces whatever is asked). A revoked or expired session
    raises :class:`~custody.errors.VaultPermissionDeniedError` (OpenBao's refusal)."""
    uses = max(1, min(uses, REQUEST_TOKEN_MAX_USES))
    ttl = max(1, min(ttl, REQUEST_TOKEN_MAX_TTL))
    client = VaultClient(vault_addr, session_token, verify=verify)
    return client.create_child_token(REQUEST_TOKEN_ROLE, ttl=ttl, num_uses=uses)


def forget_request_token(vault_addr: str, token: str, *, verify: bool | str = True) -> None:
    """Revoke a request token once its request is answered (best effort: one that ran out of
    uses or expired is already gone)."""
    with contextlib.suppress(CustodiaError):
        VaultClient(vault_addr, token, verify=verify).revoke_self()
