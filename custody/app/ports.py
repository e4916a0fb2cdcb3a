"""Ports: what the use cases (``custody.app``) need from the OpenBao side, as Protocols.

The real adapters live in ``custody.vault`` (:class:`custody.vault.credentials.Credentials` for
:class:`CredentialStore`); in-memory fakes live in ``tests/support/fakes.py``. One contract test
module (``tests/integration/custody/test_credential_store_contract.py``) runs the same cases
against the fake and against the real OpenBao, as the event store runs the ``eventsourcing``
library's own recorder test cases: a fake that passes it behaves like the server in every way
the use cases rely on, so the use cases can be unit-tested on it.

The values that cross the port (:class:`~custody.vault.credentials.StagedRotation` and the
others) are plain frozen dataclasses with no secret in their ``repr``; the errors are
Custodia's own (:mod:`custody.errors`), never a client library's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from custody.app.access import MembershipChange
    from custody.vault.credentials import (
        AbandonedRotation,
        ConfirmedRotation,
        Credential,
        StagedRotation,
        TotpRegistration,
        WrappedSecret,
    )

__all__ = ["CredentialStore", "IdentityStore", "PersonalDataStore", "PinnedRead"]

T = TypeVar("T")
RoleName = Literal["coadministrador", "titular", "administrador", "secretaria"]


class PinnedRead(Protocol):
    """The calls of a reveal started ahead (:meth:`CredentialStore.prefetch_reveal`)."""

    def drop(self) -> None:
        """Give up the read: anything made for it ahead is revoked."""
        ...


class CredentialStore(Protocol):
    """The accounts' credentials and 2FA seeds, versioned, with a staged slot per account.

    Every operation for a caller is decided by the store on the caller's token first (6.IX:
    who is designated may read; coadministrators rotate): a refused caller gets
    :class:`~custody.errors.VaultPermissionDeniedError` and nothing is written or handed over.

    Rotation (6.X): :meth:`stage` puts a new password in the account's staged slot (one open
    rotation per account: a second gets :class:`~custody.errors.VaultCasConflictError`, as
    does a stale ``base_version``), tagged with the ledger's rotation id; :meth:`confirm` makes
    it the next current version and empties the slot; :meth:`abandon` empties it. A ``record``
    callback (the ledger's event) runs after the store's write and before the result returns;
    if it raises in :meth:`stage` the staged password is deleted again.

    Reads (6.IX, 8.A): :meth:`reveal` hands over a single-use wrapping token only after
    ``record`` (the ledger's read) returned; if ``record`` raises, the token is revoked first.
    """

    def current_version(self, account: str) -> int:
        """The account's current version (0: none yet)."""
        ...

    def staged_metadata(self, account: str) -> dict[str, str] | None:
        """The staged slot's tags (``ledger_event_id``, ``staged_by``, ``base_version``,
        ``version``, ``fingerprint``); ``None`` when nothing is staged."""
        ...

    def fingerprint(self, secret: str | bytes) -> str:
        """A keyed fingerprint of ``secret`` (64 lowercase hex): equal secrets, equal prints."""
        ...

    def authorize(self, caller_token: str, account: str, operation: str) -> None:
        """Raise :class:`~custody.errors.VaultPermissionDeniedError` unless the caller may do
        ``operation`` (``revelar``, ``codigo``, ``preparar``, ``confirmar``, ``abandonar``,
        ``semilla``) on ``account``."""
        ...

    def authorize_destruction(self, caller_token: str, account: str) -> None:
        """:meth:`authorize` for ``destruir`` (10: a closure destroys the account's secrets),
        asked before the closure is recorded, so a refused caller records nothing."""
        ...

    def destroy(self, caller_token: str, account: str) -> None:
        """Destroys every version of the account's password (current and staged) and its 2FA
        seed once the caller is granted ``destruir``; idempotent (a retry finishes it)."""
        ...

    def prefetch_stage(self, caller_token: str, account: str, password: str) -> Any:
        """Start :meth:`stage`'s reads; the result goes to :meth:`stage` as ``prefetched``."""
        ...

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
    ) -> StagedRotation: ...

    def confirm(
        self,
        caller_token: str,
        account: str,
        rotation_event_id: str,
        *,
        confirmed_by: str | None = None,
        record: Callable[[ConfirmedRotation], object] | None = None,
    ) -> ConfirmedRotation:
        """Raises :class:`~custody.errors.NoStagedRotationError` when the slot is empty and
        :class:`~custody.errors.RotationMismatchError` when it holds another rotation."""
        ...

    def abandon(
        self,
        caller_token: str,
        account: str,
        rotation_event_id: str,
        *,
        record: Callable[[AbandonedRotation], object] | None = None,
    ) -> AbandonedRotation: ...

    def prefetch_reveal(self, caller_token: str, account: str) -> PinnedRead: ...

    def reveal(
        self,
        caller_token: str,
        account: str,
        record: Callable[[WrappedSecret], object],
        *,
        pinned: Any = None,
        record_early: Callable[[int], object] | None = None,
        void: Callable[[int, BaseException], object] | None = None,
    ) -> WrappedSecret: ...

    def unwrap(self, wrapping_token: str, expected_account: str) -> Credential:
        """Open a reveal's wrapping token, once; a used, revoked or unknown token raises
        :class:`~custody.errors.WrappingTokenInvalidError`."""
        ...

    def register_totp(
        self, caller_token: str, account: str, otpauth_uri: str
    ) -> TotpRegistration: ...

    def reveal_totp(
        self, caller_token: str, account: str, record: Callable[[WrappedSecret], object]
    ) -> WrappedSecret: ...


class IdentityStore(Protocol):
    """People's logins and identities, and the groups that are access (6.IX, 6.X).

    The real one is :class:`custody.app.access.Access` over the service's token. A district's
    administrator group is written by the service; the role groups (coadministrador, titular,
    secretaria) only with a coadministrator's own ``caller_token`` (anyone else's is refused
    with :class:`~custody.errors.VaultPermissionDeniedError`). Logins are created, never
    changed: a second :meth:`create_login` with another password is
    :class:`~custody.errors.LoginTakenError`.
    """

    def create_login(self, username: str, password: str) -> bool:
        """True if the login was created; False if it existed with this very password."""
        ...

    def ensure_person(
        self,
        username: str,
        password: str | None = None,
        role: RoleName | None = None,
        *,
        caller_token: str | None = None,
    ) -> Any: ...

    def district_holders(self, district: str) -> tuple[str, ...]: ...

    def designate(
        self, district: str, incoming: str | None, record: Callable[[], T] | None = None
    ) -> T | None:
        """Revoke the district's holder, run ``record`` (the ledger), grant ``incoming``; if
        ``record`` raises, the previous holder is restored and the error propagates; an
        ``incoming`` with no identity is :class:`~custody.errors.UnknownPersonError` before
        anyone loses access."""
        ...

    def members(self, group: str, *, caller_token: str | None = None) -> tuple[str, ...]: ...

    def role_group(self, role: RoleName) -> str: ...

    def add_role_member(
        self, role: RoleName, username: str, *, caller_token: str | None = None
    ) -> MembershipChange: ...

    def remove_role_member(
        self, role: RoleName, username: str, *, caller_token: str | None = None
    ) -> MembershipChange: ...

    def disable_person(self, username: str, *, caller_token: str | None = None) -> str | None:
        """Disable the person's identity (a departure): their tokens and login stop working.
        Returns the identity's id (``None``: they never had one)."""
        ...

    def is_disabled(self, username: str) -> bool: ...


class PersonalDataStore(Protocol):
    """Staff's personal data sealed per person, erasable for good (8.D, 11.7; 9.IV, 9.XX).

    The real one is :class:`custody.vault.personal_data.PersonalDataVault` (a transit key per
    person). A sealed value never contains the data in clear; after :meth:`erase`, opening or
    sealing for that person is :class:`~custody.errors.PersonalDataErasedError`, for good.
    """

    def seal(self, person_id: str, data: Mapping[str, str]) -> str: ...

    def open(self, person_id: str, ciphertext: str) -> dict[str, str]: ...

    def erase(self, person_id: str) -> bool:
        """Delete the person's key; True if one existed."""
        ...
