"""R1 (6.IX) enforced by the server: every role × every secret operation, with real user tokens.

Custodia makes no client-side role check anywhere in ``custody``: a refusal here can only be
OpenBao's 403, translated to :class:`VaultPermissionDeniedError` — on the caller's marker for an
operation through the service, on the secret path itself for a person's token used directly
(issue 16, finding 2: nobody reads or writes a secret directly). Districts used: DD05, DD06.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from custody.app.access import Access
from custody.errors import VaultPermissionDeniedError
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.layout import AccountRef
from tests.integration.custody.helpers import MakeUser, User, new_event_id, set_credential
from tests.support.secretscan import scan

pytestmark = pytest.mark.integration

ACCOUNT = "DD05-x"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTPAUTH = f"otpauth://totp/X:DD05IECM?secret={SEED}&issuer=X&period=30&digits=6"


@dataclass
class World:
    credentials: Credentials
    client: VaultClient
    tokens: dict[str, str]
    current_password: str
    staged_password: str


@pytest.fixture(scope="module")
def world(
    access: Access, credentials: Credentials, service_client: VaultClient, make_user: MakeUser
) -> World:
    coad: User = make_user("m-coad", "coadministrador")
    titular = make_user("m-titular", "titular")
    secretaria = make_user("m-secretaria", "secretaria")
    admin = make_user("m-admin")
    other = make_user("m-other")
    former = make_user("m-former")

    # The former administrator logs in while designated; their token outlives the designation.
    access.set_district_holder("DD05", former.username)
    former_token = former.login()
    access.set_district_holder("DD05", admin.username)
    access.set_district_holder("DD06", other.username)

    current = "Current-pw-" + new_event_id()
    set_credential(credentials, coad.token, ACCOUNT, current)
    set_credential(credentials, coad.token, "DD06-x", "Other-district-" + new_event_id())
    staged = "Staged-pw-" + new_event_id()
    credentials.stage(
        coad.token,
        ACCOUNT,
        staged,
        new_event_id(),
        credentials.current_version(ACCOUNT),
        staged_by=coad.username,
    )
    credentials.register_totp(coad.token, ACCOUNT, OTPAUTH)
    return World(
        credentials,
        service_client,
        {
            "coadministrador": coad.token,
            "titular": titular.token,
            "administrador": admin.token,
            "administrador_otro": other.token,
            "secretaria": secretaria.token,
            "exadministrador": former_token,
        },
        current,
        staged,
    )


def read_current(w: World, token: str) -> None:
    wrapped = w.credentials.read_current_wrapped(token, ACCOUNT)
    assert w.credentials.unwrap(wrapped.token, ACCOUNT).password == w.current_password


def read_staged(w: World, token: str) -> None:
    """Directly, with the person's token (only ``rotar confirmar`` reads it, in the service)."""
    ref = AccountRef.parse(ACCOUNT)
    body = w.client.with_token(token).read(
        ref.data_path(w.client.mounts, staged=True), operation="read-staged"
    )
    assert body["data"]["data"]["password"] == w.staged_password


def totp_code(w: World, token: str) -> None:
    assert re.fullmatch(r"\d{6}", w.credentials.totp_code(token, ACCOUNT).code)


def read_seed(w: World, token: str) -> None:
    ref = AccountRef.parse(ACCOUNT)
    w.client.with_token(token).read(ref.totp_key_path(w.client.mounts), operation="read-seed")


def stage(w: World, token: str) -> None:
    account = "DD05-instagram"
    event = new_event_id()
    base = w.credentials.current_version(account)
    w.credentials.stage(token, account, "Matrix-" + event, event, base, staged_by="matrix")
    w.credentials.abandon(token, account, event)  # leave nothing staged for the next case


def read_current_directly(w: World, token: str) -> None:
    ref = AccountRef.parse(ACCOUNT)
    body = w.client.with_token(token).read(ref.data_path(w.client.mounts), operation="read")
    assert body["data"]["data"]["password"] == w.current_password


def totp_code_directly(w: World, token: str) -> None:
    ref = AccountRef.parse(ACCOUNT)
    w.client.with_token(token).read(ref.totp_code_path(w.client.mounts), operation="read")


def confirm(w: World, token: str) -> None:
    """Stage (a coadministrator's), then confirm with ``token``; abandoned if refused."""
    account = "DD05-threads"
    event = new_event_id()
    base = w.credentials.current_version(account)
    coad = w.tokens["coadministrador"]
    w.credentials.stage(coad, account, "Confirm-" + event, event, base, staged_by="matrix")
    try:
        w.credentials.confirm(token, account, event)
    except BaseException:
        w.credentials.abandon(coad, account, event)
        raise


def register_seed(w: World, token: str) -> None:
    w.credentials.register_totp(token, "DD05-youtube", OTPAUTH)


def write_current(w: World, token: str) -> None:
    """Directly, with the person's token."""
    ref = AccountRef.parse("DD05-facebook")
    version = w.credentials.current_version(ref)
    w.client.with_token(token).write(
        ref.data_path(w.client.mounts),
        {"data": {"password": "Written-" + new_event_id()}, "options": {"cas": version}},
        operation="write-current",
    )


OPERATIONS: dict[str, Callable[[World, str], None]] = {
    "leer_contrasena": read_current,
    "codigo_totp": totp_code,
    "preparar_rotacion": stage,
    "confirmar_rotacion": confirm,
    "registrar_semilla": register_seed,
    "leer_contrasena_directa": read_current_directly,
    "codigo_totp_directo": totp_code_directly,
    "leer_preparada_directa": read_staged,
    "leer_semilla_directa": read_seed,
    "escribir_contrasena_directa": write_current,
}

# R1 / 6.IX: exactly these (role, operation) pairs are allowed, all through the service;
# everything else is refused, and nobody does anything directly (issue 16, finding 2).
ALLOWED = {
    ("coadministrador", "leer_contrasena"),
    ("coadministrador", "codigo_totp"),
    ("coadministrador", "preparar_rotacion"),
    ("coadministrador", "confirmar_rotacion"),
    ("coadministrador", "registrar_semilla"),
    ("administrador", "leer_contrasena"),
    ("administrador", "codigo_totp"),
}
ROLES = [
    "coadministrador",
    "titular",
    "administrador",
    "administrador_otro",
    "secretaria",
    "exadministrador",
]


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(world: World, role: str, operation: str) -> None:
    """Each role can do exactly what R1 allows; every other operation is refused by OpenBao."""
    action = OPERATIONS[operation]
    token = world.tokens[role]
    if (role, operation) in ALLOWED:
        action(world, token)
    else:
        with pytest.raises(VaultPermissionDeniedError) as refused:
            action(world, token)
        assert refused.value.status == 403


def test_refused_people_hold_valid_tokens(world: World) -> None:
    """The refusals above come from policies, not from dead tokens: every token still works."""
    for role, token in world.tokens.items():
        info = world.client.with_token(token).lookup_self()
        assert info.entity_id, role


def test_other_district_administrator_reads_their_own(world: World) -> None:
    """The administrator refused on DD05 does read DD06: access is per district, not broken."""
    token = world.tokens["administrador_otro"]
    wrapped = world.credentials.read_current_wrapped(token, "DD06-x")
    assert world.credentials.unwrap(wrapped.token, "DD06-x").password.startswith("Other-district")


def test_seed_never_comes_back_even_to_root(world: World, root_client: VaultClient) -> None:
    """Even the root token reading the TOTP key gets its parameters, never the imported seed."""
    ref = AccountRef.parse(ACCOUNT)
    body = root_client.read(ref.totp_key_path(root_client.mounts), operation="read-seed")
    assert body["data"]["period"] == 30
    assert scan(body, [SEED, SEED.lower(), base64.b32decode(SEED)]) == []


def test_service_token_reads_current_secrets_only_wrapped(
    world: World, service_client: VaultClient
) -> None:
    """The service's own token reads current credentials and 2FA codes for verified callers,
    but OpenBao refuses it a plain (unwrapped) read of either (min_wrapping_ttl)."""
    ref = AccountRef.parse(ACCOUNT)
    mounts = service_client.mounts
    for path in (ref.data_path(mounts), ref.totp_code_path(mounts)):
        with pytest.raises(VaultPermissionDeniedError):
            service_client.read(path, operation="service-read")
