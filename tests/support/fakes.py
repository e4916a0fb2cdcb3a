"""In-memory fakes of the ports in :mod:`custody.app.ports`.

Each fake passes the same contract test as the real adapter (``tests/contract/``), so a unit test
of a use case on a fake tests what the use case would do against the real server. Fakes keep no
secret anywhere but in their own memory and never print one (the values' ``repr`` hide them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from custody.app.access import MembershipChange
from custody.app.ports import RoleName
from custody.errors import (
    LoginTakenError,
    NoStagedRotationError,
    PersonalDataErasedError,
    RotationMismatchError,
    UnknownPersonError,
    UnknownRoleError,
    VaultCasConflictError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    WrappingPathMismatchError,
    WrappingTokenInvalidError,
)
from custody.vault.credentials import (
    AbandonedRotation,
    ConfirmedRotation,
    Credential,
    OtpauthKey,
    StagedRotation,
    TotpRegistration,
    WrappedSecret,
    parse_otpauth,
)
from custody.vault.layout import ROLE_GROUPS, district_group
from custody.vault.personal_data import pii_key_name

__all__ = ["FakeCredentialStore", "FakeIdentityStore", "FakePersonalDataStore", "Grants"]

T = TypeVar("T")

# (caller token, account, operation) -> allowed?
Grants = Callable[[str, str, str], bool]


@dataclass
class _Staged:
    password: str = field(repr=False)
    tags: dict[str, str]


@dataclass
class _Wrapped:
    account: str
    path: str
    version: int | None
    value: str = field(repr=False)


class _Pinned:
    def drop(self) -> None:
        """Nothing is made ahead in memory: nothing to revoke."""


class FakeCredentialStore:
    """:class:`custody.app.ports.CredentialStore` in memory. ``grants`` decides, as OpenBao's
    policies and identity groups do, whether a caller's token may do an operation on an
    account; ``writes`` counts the writes (a refused caller must leave it unchanged)."""

    def __init__(self, grants: Grants) -> None:
        self._grants = grants
        self._key = secrets.token_bytes(32)
        self._versions: dict[str, list[str]] = {}  # account -> passwords, version = index + 1
        self._staged: dict[str, _Staged] = {}
        self._wrapped: dict[str, _Wrapped] = {}
        self._seeds: dict[str, OtpauthKey] = {}
        self._lock = threading.RLock()
        self.writes = 0

    # -- reads ---------------------------------------------------------------------------------

    def current_version(self, account: str) -> int:
        return len(self._versions.get(account, []))

    def staged_metadata(self, account: str) -> dict[str, str] | None:
        staged = self._staged.get(account)
        return dict(staged.tags) if staged else None

    def fingerprint(self, secret: str | bytes) -> str:
        data = secret.encode() if isinstance(secret, str) else secret
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def authorize(self, caller_token: str, account: str, operation: str) -> None:
        if not self._grants(caller_token, account, operation):
            raise VaultPermissionDeniedError(
                f"authorize-{operation}", f"custodia-acceso/{operation}/{account}", account
            )

    # -- rotation ------------------------------------------------------------------------------

    def prefetch_stage(self, caller_token: str, account: str, password: str) -> Any:
        return None

    def stage(
        self,
        caller_token: str,
        account: str,
        password: str,
        ledger_event_id: str,
        base_version: int,
        *,
        staged_by: str,
        record: Callable[[StagedRotation], object] | None = None,
        prefetched: Any = None,
    ) -> StagedRotation:
        self.authorize(caller_token, account, "preparar")
        fingerprint = self.fingerprint(password)
        with self._lock:
            if account in self._staged:  # check-and-set 0 on the staged slot
                raise VaultCasConflictError("stage", f"staged/{account}", account, 0, 1)
            current = self.current_version(account)
            if current != base_version:
                raise VaultCasConflictError(
                    "stage", f"credentials/{account}", account, base_version, current
                )
            tags = {
                "ledger_event_id": ledger_event_id,
                "staged_by": staged_by,
                "base_version": str(base_version),
                "version": str(base_version + 1),
                "fingerprint": fingerprint,
            }
            self._staged[account] = _Staged(password, tags)
            self.writes += 1
        staged = StagedRotation(
            account, ledger_event_id, base_version, base_version + 1, fingerprint, staged_by
        )
        if record is not None:
            try:
                record(staged)
            except BaseException:
                self._staged.pop(account, None)  # compensation, as the real store does
                raise
        return staged

    def _open_rotation(self, account: str, rotation_event_id: str) -> _Staged:
        staged = self._staged.get(account)
        if staged is None:
            raise NoStagedRotationError(account)
        if staged.tags["ledger_event_id"] != rotation_event_id:
            raise RotationMismatchError(account, rotation_event_id, staged.tags["ledger_event_id"])
        return staged

    def confirm(
        self,
        caller_token: str,
        account: str,
        rotation_event_id: str,
        *,
        confirmed_by: str | None = None,
        record: Callable[[ConfirmedRotation], object] | None = None,
    ) -> ConfirmedRotation:
        self.authorize(caller_token, account, "confirmar")
        with self._lock:
            staged = self._open_rotation(account, rotation_event_id)
            base = int(staged.tags["base_version"])
            current = self.current_version(account)
            if current != base:  # check-and-set on the base version
                raise VaultCasConflictError(
                    "confirm", f"credentials/{account}", account, base, current
                )
            self._versions.setdefault(account, []).append(staged.password)
            self.writes += 1
        confirmed = ConfirmedRotation(
            account, rotation_event_id, base + 1, base, staged.tags["fingerprint"]
        )
        if record is not None:
            record(confirmed)
        self._staged.pop(account, None)
        return confirmed

    def abandon(
        self,
        caller_token: str,
        account: str,
        rotation_event_id: str,
        *,
        record: Callable[[AbandonedRotation], object] | None = None,
    ) -> AbandonedRotation:
        self.authorize(caller_token, account, "abandonar")
        staged = self._open_rotation(account, rotation_event_id)
        abandoned = AbandonedRotation(account, rotation_event_id, staged.tags["fingerprint"])
        if record is not None:
            record(abandoned)
        self._staged.pop(account, None)
        self.writes += 1
        return abandoned

    # -- reads for a person --------------------------------------------------------------------

    def _wrap(
        self, account: str, kind: Literal["password", "totp"], version: int | None, value: str
    ) -> WrappedSecret:
        token = "fake." + secrets.token_urlsafe(24)
        path = f"{kind}/{account}"
        self._wrapped[token] = _Wrapped(account, path, version, value)
        return WrappedSecret(
            token=token,
            accessor=secrets.token_hex(8),
            ttl=60,
            creation_time=datetime.now(UTC),
            creation_path=path,
            account=account,
            kind=kind,
            version=version,
        )

    def _hand_over(
        self, wrapped: WrappedSecret, record: Callable[[WrappedSecret], object]
    ) -> WrappedSecret:
        try:
            record(wrapped)
        except BaseException:
            self._wrapped.pop(wrapped.token, None)  # revoked: nothing leaves unrecorded
            raise
        return wrapped

    def prefetch_reveal(self, caller_token: str, account: str) -> _Pinned:
        return _Pinned()

    def reveal(
        self,
        caller_token: str,
        account: str,
        record: Callable[[WrappedSecret], object],
        *,
        pinned: Any = None,
        record_early: Callable[[int], object] | None = None,
        void: Callable[[int, BaseException], object] | None = None,
    ) -> WrappedSecret:
        self.authorize(caller_token, account, "revelar")
        version = self.current_version(account)
        if version == 0:
            raise VaultNotFoundError("reveal", f"credentials/{account}", account)
        password = self._versions[account][version - 1]
        return self._hand_over(self._wrap(account, "password", version, password), record)

    def unwrap(self, wrapping_token: str, expected_account: str) -> Credential:
        wrapped = self._wrapped.pop(wrapping_token, None)
        if wrapped is None:
            raise WrappingTokenInvalidError("unwrap", expected_account)
        expected = f"password/{expected_account}"
        if wrapped.path != expected:
            raise WrappingPathMismatchError(expected, wrapped.path)
        return Credential(expected_account, wrapped.version or 0, wrapped.value)

    # -- 2FA -----------------------------------------------------------------------------------

    def authorize_destruction(self, caller_token: str, account: str) -> None:
        self.authorize(caller_token, account, "destruir")

    def destroy(self, caller_token: str, account: str) -> None:
        self.authorize(caller_token, account, "destruir")
        with self._lock:
            self._versions.pop(account, None)
            self._staged.pop(account, None)
            self._seeds.pop(account, None)
            self.writes += 1

    def register_totp(self, caller_token: str, account: str, otpauth_uri: str) -> TotpRegistration:
        key = parse_otpauth(account, otpauth_uri)
        self.authorize(caller_token, account, "semilla")
        self._seeds[account] = key
        self.writes += 1
        return TotpRegistration(
            account,
            key.issuer,
            key.label,
            key.algorithm,
            key.digits,
            key.period,
            self.fingerprint(key.secret_b32.rstrip("=")),
        )

    def reveal_totp(
        self, caller_token: str, account: str, record: Callable[[WrappedSecret], object]
    ) -> WrappedSecret:
        self.authorize(caller_token, account, "codigo")
        key = self._seeds.get(account)
        if key is None:
            raise VaultNotFoundError("totp-code", f"totp/{account}", account)
        return self._hand_over(self._wrap(account, "totp", None, _totp(key)), record)


def _totp(key: OtpauthKey, at: datetime | None = None) -> str:
    """RFC 6238 for the seed (SHA1/256/512)."""
    moment = (at or datetime.now(UTC)) - datetime(1970, 1, 1, tzinfo=UTC)
    counter = int(moment / timedelta(seconds=key.period))
    seed = base64.b32decode(key.secret_b32 + "=" * (-len(key.secret_b32) % 8))
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
    mac = hmac.new(seed, struct.pack(">Q", counter), digest[key.algorithm.upper()]).digest()
    offset = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**key.digits
    return f"{value:0{key.digits}d}"


class FakeIdentityStore:
    """:class:`custody.app.ports.IdentityStore` in memory. ``coadmin_tokens`` are the tokens
    OpenBao would let write the role groups (coadministrators' own); the service's own token
    (``caller_token=None``) may not."""

    def __init__(self, coadmin_tokens: set[str]) -> None:
        self._coadmin_tokens = coadmin_tokens
        self._logins: dict[str, str] = {}  # username -> password
        self._entities: dict[str, str] = {}  # username -> entity id
        self._disabled: set[str] = set()
        self._groups: dict[str, set[str]] = {}
        self.writes = 0

    def create_login(self, username: str, password: str) -> bool:
        if username in self._logins:
            if not hmac.compare_digest(self._logins[username], password):
                raise LoginTakenError(username)
            return False
        self._logins[username] = password
        self.writes += 1
        return True

    def ensure_person(
        self,
        username: str,
        password: str | None = None,
        role: RoleName | None = None,
        *,
        caller_token: str | None = None,
    ) -> Any:
        if password is not None:
            self.create_login(username, password)
        entity = self._entities.setdefault(username, secrets.token_hex(8))
        if role is not None and role in ROLE_GROUPS:
            self.add_role_member(role, username, caller_token=caller_token)
        return entity

    def _require(self, username: str) -> str:
        if username not in self._entities:
            raise UnknownPersonError(username)
        return self._entities[username]

    def _set(self, group: str, usernames: set[str]) -> MembershipChange:
        previous = tuple(sorted(self._groups.get(group, set())))
        self._groups[group] = set(usernames)
        self.writes += 1
        return MembershipChange(group, previous, tuple(sorted(usernames)))

    def district_holders(self, district: str) -> tuple[str, ...]:
        return self.members(district_group(district))

    def designate(
        self, district: str, incoming: str | None, record: Callable[[], T] | None = None
    ) -> T | None:
        group = district_group(district)
        if incoming is not None:
            self._require(incoming)
        revoked = self._set(group, set())
        result: T | None = None
        if record is not None:
            try:
                result = record()
            except BaseException:
                self._set(group, set(revoked.previous))
                raise
        if incoming is not None:
            self._set(group, {incoming})
        return result

    def members(self, group: str, *, caller_token: str | None = None) -> tuple[str, ...]:
        if group in ROLE_GROUPS.values():
            self._check_role_writer(group, caller_token, "read-group")
        return tuple(sorted(self._groups.get(group, set())))

    def role_group(self, role: RoleName) -> str:
        if role not in ROLE_GROUPS:
            raise UnknownRoleError(role)
        return ROLE_GROUPS[role]

    def _check_role_writer(self, group: str, caller_token: str | None, operation: str) -> None:
        if caller_token not in self._coadmin_tokens:
            raise VaultPermissionDeniedError(operation, f"identity/group/name/{group}")

    def add_role_member(
        self, role: RoleName, username: str, *, caller_token: str | None = None
    ) -> MembershipChange:
        group = self.role_group(role)
        self._check_role_writer(group, caller_token, "set-members")
        self._require(username)
        return self._set(group, {*self._groups.get(group, set()), username})

    def remove_role_member(
        self, role: RoleName, username: str, *, caller_token: str | None = None
    ) -> MembershipChange:
        group = self.role_group(role)
        self._check_role_writer(group, caller_token, "set-members")
        return self._set(group, self._groups.get(group, set()) - {username})

    def disable_person(self, username: str, *, caller_token: str | None = None) -> str | None:
        if username not in self._entities:
            return None
        if caller_token not in self._coadmin_tokens:
            raise VaultPermissionDeniedError("disable-person", f"identity/entity/{username}")
        self._disabled.add(username)
        self.writes += 1
        return self._entities[username]

    def is_disabled(self, username: str) -> bool:
        self._require(username)
        return username in self._disabled


class FakePersonalDataStore:
    """:class:`custody.app.ports.PersonalDataStore` in memory: AES-GCM under a key per person
    (``cryptography``), a tombstone per erased person."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._erased: set[str] = set()

    def seal(self, person_id: str, data: Mapping[str, str]) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        pii_key_name(person_id)  # the same check of the id
        if person_id in self._erased:
            raise PersonalDataErasedError(person_id)
        key = self._keys.setdefault(person_id, AESGCM.generate_key(bit_length=256))
        nonce = secrets.token_bytes(12)
        plaintext = json.dumps(dict(data), sort_keys=True, ensure_ascii=False).encode()
        sealed = nonce + AESGCM(key).encrypt(nonce, plaintext, person_id.encode())
        return "fake:v1:" + base64.b64encode(sealed).decode("ascii")

    def open(self, person_id: str, ciphertext: str) -> dict[str, str]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        pii_key_name(person_id)
        key = self._keys.get(person_id)
        if key is None:
            raise PersonalDataErasedError(person_id)
        raw = base64.b64decode(ciphertext.removeprefix("fake:v1:"))
        value = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], person_id.encode()))
        return {str(k): str(v) for k, v in value.items()}

    def erase(self, person_id: str) -> bool:
        pii_key_name(person_id)
        self._erased.add(person_id)
        return self._keys.pop(person_id, None) is not None
