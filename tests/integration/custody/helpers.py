"""Helpers shared by the Vault-side integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials


@dataclass
class User:
    """A person with a userpass login; ``token`` is a fresh login token."""

    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    client: VaultClient = field(repr=False)

    def login(self) -> str:
        return self.client.login_userpass(self.username, self.password)


MakeUser = Callable[..., User]


def new_event_id() -> str:
    return str(uuid.uuid4())


def set_credential(
    credentials: Credentials, coadmin_token: str, account: str, password: str
) -> int:
    """Stage and confirm ``password`` as the account's new current credential; its version."""
    event = new_event_id()
    base = credentials.current_version(account)
    credentials.stage(coadmin_token, account, password, event, base, staged_by="test")
    return credentials.confirm(coadmin_token, account, event).version
