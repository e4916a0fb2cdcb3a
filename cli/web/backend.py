"""What the web view needs of Custodia: log a person in against OpenBao, send a command to
``custodia servicio`` as that person, log them out. Nothing else (no reveal, no ledger access).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from custody.bootstrap import Endpoints, resolve
from custody.config import Settings

__all__ = ["Backend", "Identity", "ServiceBackend"]


@dataclass(frozen=True)
class Identity:
    """A person logged in through the web view. ``repr`` never shows the token."""

    username: str
    token: str = field(repr=False)
    expires_at: datetime


class Backend(Protocol):
    async def login(self, username: str, password: str, code: str | None) -> Identity: ...

    async def call(self, who: Identity, command: str, args: dict[str, Any]) -> Any: ...

    async def logout(self, who: Identity) -> None: ...

    async def change_password(
        self, who: Identity, current: str, new: str, code: str | None
    ) -> None: ...


class ServiceBackend:
    """The real thing: OpenBao's userpass login (with its second factor when the person has
    one), and :class:`custody.service.client.CommandClient` for each page."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._endpoints: Endpoints | None = None

    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = resolve(self.settings, "cliente")
        return self._endpoints

    def _vault(self, token: str | None = None) -> Any:
        from custody.vault.client import VaultClient

        ca = self.settings.vault_ca
        return VaultClient(self.endpoints().vault_addr, token, verify=str(ca) if ca else True)

    async def login(self, username: str, password: str, code: str | None) -> Identity:
        def work() -> Identity:
            from custody.vault.session import session_token

            client = self._vault()
            token, expires = session_token(client, _login(client, username, password, code))
            return Identity(username, token, expires or datetime.now(UTC) + timedelta(hours=1))

        return await asyncio.to_thread(work)

    async def call(self, who: Identity, command: str, args: dict[str, Any]) -> Any:
        from custody.service.client import CommandClient

        clean = {k: v for k, v in args.items() if v is not None}
        client = CommandClient(self.endpoints(), who.token, username=who.username)
        return await asyncio.to_thread(client.call, command, clean)

    async def change_password(
        self, who: Identity, current: str, new: str, code: str | None
    ) -> None:
        """``sesion contrasena`` for the person of ``who``: a fresh login with ``current`` (and
        ``code``) changes it; the web session's own token cannot (custody.vault.session)."""
        from custody.vault.session import change_password

        ca = self.settings.vault_ca
        verify: bool | str = str(ca) if ca else True
        await asyncio.to_thread(
            change_password,
            self.endpoints().vault_addr,
            who.username,
            current,
            new,
            verify=verify,
            code=code,
        )

    async def logout(self, who: Identity) -> None:
        def work() -> None:
            self._vault(who.token).write("auth/token/revoke-self", operation="logout")

        try:
            await asyncio.to_thread(work)
        except Exception:  # already expired or revoked: the session ends all the same
            return


def _login(client: Any, username: str, password: str, code: str | None) -> str:
    """userpass login; when OpenBao enforces the person's second factor, ``code`` completes it
    (a missing, wrong or reused code is refused by OpenBao itself)."""
    return str(client.login_userpass(username, password, code=code))
