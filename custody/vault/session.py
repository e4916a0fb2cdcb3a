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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from custody.config import Settings
from custody.stack.secret_files import write_secret
from events.errors import CustodiaError, VaultError

# VaultClient (hvac, requests) is imported by login and logout only: reading the session file
# and making a request token, which every data command does, stay cheap (issue 17, the thin
# client): the two request-token calls go to OpenBao over the standard library's HTTP client.

# Request tokens: what crosses NATS instead of a session token. The role (made by ``init``,
# custody.vault.layout) bounds them whatever the client asks: OpenBao caps TTL and uses, never an
# orphan.
REQUEST_TOKEN_ROLE = "custodia-solicitud"  # noqa: S105  # a role name, not a secret
SESSION_TOKEN_ROLE = "custodia-sesion"  # noqa: S105  # a role name, not a secret
REQUEST_TOKEN_MAX_TTL = 120  # seconds
REQUEST_TOKEN_MAX_USES = 32


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
    from custody.config import session_file

    return session_file(settings.home, env)


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
    from custody.vault.client import VaultClient

    client = VaultClient(vault_addr, verify=verify)
    token, expires = session_token(client, client.login_userpass(username, password, code=code))
    session = Session(username, token, vault_addr, expires)
    logout(path)  # the session this file held, if any, is revoked: not left alive unreferenced
    write_secret(path, session.to_json())
    return session


def session_token(client: Any, login_token: str) -> tuple[str, datetime | None]:
    """The token a session keeps, and when it expires: a child of the login's token made through
    the role ``custodia-sesion``, which may not carry the login's own policy
    ``custodia-contrasena-propia`` (OpenBao refuses it). So a session found open, or its file
    copied, cannot change the person's password; only a fresh login can (``sesion contrasena``).
    The child has the person's entity (their groups' policies) and dies with the login's token,
    which is kept nowhere. A login whose token may not make one (made before the role existed,
    or not userpass) keeps its own token."""
    from custody.errors import VaultPermissionDeniedError

    own = client.with_token(login_token)
    info = own.lookup_self()
    try:
        body = own.write(
            f"auth/token/create/{SESSION_TOKEN_ROLE}",
            {"policies": ["default"], "ttl": f"{max(info.ttl, 1)}s", "renewable": False},
            operation="create-session-token",
        )
    except VaultPermissionDeniedError:
        return login_token, info.expire_time
    token = ((body or {}).get("auth") or {}).get("client_token")
    if not isinstance(token, str) or not token:
        return login_token, info.expire_time
    return token, info.expire_time


MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


def check_new_password(current: str, new: str) -> None:
    """A new password: 12 to 256 characters, no control characters, not the current one
    (:class:`~events.domain.ValidationError` on ``contrasena``, which never holds the value)."""
    from events.domain import ValidationError

    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationError("contrasena", f"shorter than {MIN_PASSWORD_LENGTH} characters")
    if len(new) > MAX_PASSWORD_LENGTH:
        raise ValidationError("contrasena", f"longer than {MAX_PASSWORD_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in new):
        raise ValidationError("contrasena", "control characters")
    if new == current:
        raise ValidationError("contrasena", "same as the current one")


def change_password(
    vault_addr: str,
    username: str,
    current: str,
    new: str,
    *,
    verify: bool | str = True,
    code: str | None = None,
) -> None:
    """Change ``username``'s own password (``custodia sesion contrasena``). A fresh login with
    the current password (and the second factor's ``code`` when OpenBao enforces it) proves it
    is the person, not whoever finds an open session; that login's own token, which alone holds
    the policy ``custodia-contrasena-propia``, makes the change and is revoked. Sessions already
    open stay open."""
    from custody.vault.client import VaultClient

    check_new_password(current, new)
    client = VaultClient(vault_addr, verify=verify)
    own = client.with_token(client.login_userpass(username, current, code=code))
    try:
        own.change_own_password(username, new)
    finally:
        with contextlib.suppress(VaultError):
            own.revoke_self()


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
    from custody.vault.client import VaultClient

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
    path = f"auth/token/create/{REQUEST_TOKEN_ROLE}"
    body = _post(
        vault_addr,
        path,
        session_token,
        # Only ``default`` among the session's token policies (the identity groups' policies
        # come with the person): never the login's own password (the role refuses it too).
        {"ttl": f"{ttl}s", "num_uses": uses, "renewable": False, "policies": ["default"]},
        verify,
        "create-child-token",
    )
    token = ((body or {}).get("auth") or {}).get("client_token")
    if not isinstance(token, str) or not token:
        from custody.errors import VaultPermissionDeniedError

        raise VaultPermissionDeniedError("create-child-token", path)
    return token


def forget_request_token(vault_addr: str, token: str, *, verify: bool | str = True) -> None:
    """Revoke a request token once its request is answered (best effort: one that ran out of
    uses or expired is already gone)."""
    with contextlib.suppress(CustodiaError):
        _post(vault_addr, "auth/token/revoke-self", token, {}, verify, "revoke-self")


def _post(
    vault_addr: str,
    path: str,
    token: str,
    payload: dict[str, object],
    verify: bool | str,
    operation: str,
) -> dict[str, Any] | None:
    """One POST to OpenBao's API with the standard library: the decoded JSON answer; OpenBao's
    refusals as :mod:`custody.errors` says them (never the token, never the body).
    ``vault_addr`` may name the members of an HA cluster, comma-separated: a member that cannot
    be connected to (the request surely never sent), or that answers it cannot serve (5xx), is
    passed over for the next."""
    import http.client

    addrs = [a.strip().rstrip("/") for a in vault_addr.split(",") if a.strip()]
    for tried, addr in enumerate(addrs, start=1):
        conn, base = _connection(addr, verify)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            if tried < len(addrs):
                continue
            _refused(addr, path, operation, None, type(exc).__name__)
        target = f"{base}/v1/{path}"
        for _ in range(4):  # a standby member may redirect to the active one (307)
            try:
                conn.request(
                    "POST",
                    target,
                    body=json.dumps(payload),
                    headers={"X-Vault-Token": token, "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                raw = response.read()
                location = response.getheader("Location")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                _refused(addr, path, operation, None, type(exc).__name__)
            conn.close()
            if response.status not in (307, 308) or not location:
                break
            conn, target = _redirected(location, verify)
        if response.status >= 500 and tried < len(addrs):
            # A member that cannot serve (a standby still looking for the active one, one
            # sealed after a restart): the next may. Both calls are safe to repeat (a second
            # request token is one more that expires unused; a revocation is idempotent).
            continue
        if response.status >= 300:
            _refused(addr, path, operation, response.status, None)
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            _refused(addr, path, operation, 500, None)
        return answer if isinstance(answer, dict) else None
    _refused(vault_addr, path, operation, None, "no address")


def _redirected(location: str, verify: bool | str) -> tuple[Any, str]:
    """The connection and request target a redirect names (method and body kept: 307/308)."""
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    conn, _ = _connection(f"{parts.scheme}://{parts.netloc}", verify)
    return conn, parts.path + (f"?{parts.query}" if parts.query else "")


def _connection(addr: str, verify: bool | str) -> tuple[Any, str]:
    """An unopened HTTP(S) connection to one OpenBao member, and its base path."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(addr)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        if verify is False:
            context = ssl._create_unverified_context()  # noqa: S323  # as the caller asked
        else:
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        secure = http.client.HTTPSConnection(host, parts.port or 443, timeout=30, context=context)
        return secure, parts.path.rstrip("/")
    return http.client.HTTPConnection(host, parts.port or 80, timeout=30), parts.path.rstrip("/")


def _refused(
    vault_addr: str, path: str, operation: str, status: int | None, reason: str | None
) -> NoReturn:
    """Raise what OpenBao's answer means (custody.errors loads the domain: only on failure)."""
    from custody.errors import (
        VaultPermissionDeniedError,
        VaultServerError,
        VaultUnavailableError,
        VaultUnreachableError,
    )

    if status is None:
        raise VaultUnreachableError(vault_addr, operation, reason or "unreachable")
    if status in (400, 401, 403):
        raise VaultPermissionDeniedError(operation, path)
    if status in (429, 472, 473, 501, 503):
        raise VaultUnavailableError(vault_addr, operation, status)
    raise VaultServerError(operation, path, status)
