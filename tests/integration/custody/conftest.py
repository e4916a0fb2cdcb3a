"""Fixtures for the Vault side, on the session's real OpenBao (``openbao`` in tests/conftest.py).

The layout is created once per session with the root token; everything afterwards acts as the
service (its own token, policy ``custodia-servicio``) or as people logged in with userpass.
People get unique names, so modules never see each other's people; districts are global, so
each module uses its own districts (noted in its docstring).
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from custody.app.access import Access, Role
from custody.stack.servers import BaoProcess
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import LayoutReport, create_service_token, ensure_layout
from tests.integration.custody.helpers import MakeUser, User


@pytest.fixture(scope="session")
def root_client(openbao: BaoProcess) -> VaultClient:
    assert openbao.root_token
    return VaultClient(openbao.addr, openbao.root_token)


@pytest.fixture(scope="session")
def layout(root_client: VaultClient) -> LayoutReport:
    return ensure_layout(root_client)


@pytest.fixture(scope="session")
def service_client(root_client: VaultClient, layout: LayoutReport) -> VaultClient:
    return root_client.with_token(create_service_token(root_client))


@pytest.fixture(scope="session")
def access(service_client: VaultClient) -> Access:
    return Access(service_client)


@pytest.fixture(scope="session")
def credentials(service_client: VaultClient) -> Credentials:
    return Credentials(service_client)


@pytest.fixture(scope="session")
def founder(root_client: VaultClient, service_client: VaultClient, layout: LayoutReport) -> User:
    """The first coadministrator, made with the administrative token as ``custodia init`` does."""
    username = f"fundador-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    Access(root_client).ensure_person(username, password, "coadministrador")
    anonymous = service_client.with_token(None)
    return User(username, password, anonymous.login_userpass(username, password), anonymous)


@pytest.fixture(scope="session")
def make_user(access: Access, service_client: VaultClient, founder: User) -> MakeUser:
    """``make_user(prefix, role=None)``: a registered person, logged in. The service creates
    the login; a role is granted with a coadministrator's own token (the founder's)."""

    def make(prefix: str, role: Role | None = None) -> User:
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(18)
        access.ensure_person(username, password, role, caller_token=founder.login())
        anonymous = service_client.with_token(None)
        return User(username, password, anonymous.login_userpass(username, password), anonymous)

    return make


@pytest.fixture(scope="session")
def coadmin(make_user: MakeUser) -> User:
    return make_user("coad", "coadministrador")
