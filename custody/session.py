"""A person's session: their own OpenBao/Vault token, kept in a 0600 file under CUSTODIA_HOME.

``CUSTODIA_SESION`` names another file (several people on one machine, the demo).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from events.errors import CustodiaError, VaultError

from .config import Settings
from .secret_files import write_secret

# VaultClient (hvac, requests) is imported by login and logout only: reading the session file,
# which every data command does, stays cheap (issue 17, the thin client).


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
    vault_addr: str, username: str, password: str, path: Path, *, verify: bool | str = True
) -> Session:
    """Log in with userpass and keep the token in ``path`` (0600); ``verify``: a CA bundle."""
    from .vault import VaultClient

    client = VaultClient(vault_addr, verify=verify)
    token = client.login_userpass(username, password)
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
    from .vault import VaultClient

    try:
        VaultClient(session.vault_addr, session.token).revoke_self()
    except VaultError:
        pass  # already revoked or expired: forgetting it is all that is left
    finally:
        path.unlink(missing_ok=True)
    return session.username
