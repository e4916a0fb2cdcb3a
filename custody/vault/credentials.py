"""Account credentials in OpenBao/Vault: staged rotation, audited reveals, 2FA (6.IX, 6.X).

**Who decides, whose token** (issue 16, finding 2: a complete ledger). People's tokens read no
secret at all: their policies grant nothing on credentials, staged credentials, older versions,
2FA keys or codes, and deny each of those paths explicitly (custody.vault.layout). What they grant
is a
*marker* per operation and account, ``custodia-acceso/<district>/<operation>/<platform>``, which
holds nothing. Before every operation on a secret the service asks OpenBao, with the CALLER's
own token, for the caller's capabilities on that marker (``sys/capabilities-self``); OpenBao's
answer decides (6.IX: designation is membership of the district's group, whose policy grants the
marker). Only on "read" does the service make the operation, with ITS OWN token (policy
``custodia-servicio``), which reads a current credential or a 2FA code only wrapped
(``min_wrapping_ttl``). A refused caller gets :class:`VaultPermissionDeniedError`, as before;
a wrapped read or a staging sent ahead of the answer never leaves the service and is undone.

The service's token can therefore reveal for anyone (a compromised service host can read,
wrapped); every such read outside the ledger is still found by ``custody.vault.audit_follower``.

**Reveal, fail-closed** (:meth:`Credentials.reveal`). The read is made with response
wrapping (``X-Vault-Wrap-TTL``): the server keeps the answer and returns a single-use wrapping
token. The service records the read in the ledger and only then hands the wrapping token to the
caller, who unwraps it (:meth:`Credentials.unwrap`). If the ledger write fails, the wrapping token
is revoked and nothing is shown. Whoever holds a wrapping token can unwrap it — but only once: if
the caller finds it already used, someone intercepted it (:class:`WrappingTokenInvalidError`).
The unwrap checks the token's creation path first, so a forged token wrapping something else is
refused (:class:`WrappingPathMismatchError`).

**Rotation, and the order of the writes** (reconciled by ``custody.app.reconcile``):

- stage:   Vault (staged version, check-and-set 0 = no rotation open) → ledger. A crash leaves a
           staged credential no open rotation explains: reconciliation deletes it.
- confirm: Vault (current ← staged, check-and-set on the base version) → ledger → Vault (staged
           deleted). Vault first because the platform already uses the new password. A crash
           before the ledger leaves Vault's current version ahead, tagged with the open
           rotation's event id: reconciliation asks for the confirmation to be recorded.
- abandon: ledger → Vault (staged deleted). A crash leaves a staged leftover: deleted.

Nothing here returns or logs a secret except :class:`Credential` and :class:`TotpCode`, whose
``repr`` hides it. Events get versions and keyed fingerprints (transit HMAC), never the secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

import structlog

from custody.errors import (
    InvalidOtpauthUriError,
    NoStagedRotationError,
    RotationMismatchError,
    VaultCasConflictError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    VaultSealedError,
    VaultServerError,
    VaultTokenInvalidError,
    VaultUnavailableError,
    VaultUnreachableError,
    WrappingPathMismatchError,
    WrappingTokenInvalidError,
)
from custody.vault.client import Sent, VaultClient, parse_time
from custody.vault.layout import FINGERPRINT_KEY, AccountRef
from events.errors import VaultError

log = structlog.get_logger()
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

DEFAULT_WRAP_TTL = 60
# A confirmed rotation's staged copy is deleted after the ledger recorded it: how long to wait
# for OpenBao to elect an active member again before leaving it to reconciliation.
STAGED_CLEANUP_PATIENCE_S = 20.0
TRANSIENT_VAULT_ERRORS = (
    VaultUnreachableError,
    VaultUnavailableError,
    VaultSealedError,
    VaultServerError,
)
MAX_WRAP_TTL = 300
DEFAULT_TOTP_PERIOD = 30

# -- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """An account's credential at one version. ``repr`` never shows the password."""

    account: str
    version: int
    password: str = field(repr=False)
    created_time: datetime | None = None


@dataclass(frozen=True)
class WrappedSecret:
    """A single-use wrapping token for one read. ``repr`` never shows the token."""

    token: str = field(repr=False)
    accessor: str
    ttl: int
    creation_time: datetime | None
    creation_path: str
    account: str
    kind: Literal["password", "totp"]
    version: int | None = None

    def facts(self) -> dict[str, str | int | None]:
        """What the ledger records about this read — never the token (use this, not asdict)."""
        return {
            "account": self.account,
            "kind": self.kind,
            "version": self.version,
            "accessor": self.accessor,
            "creation_time": self.creation_time.isoformat() if self.creation_time else None,
            "ttl": self.ttl,
        }


@dataclass(frozen=True)
class WrappingInfo:
    """What the server says about a wrapping token, without unwrapping it."""

    creation_path: str
    creation_time: datetime | None
    ttl: int


@dataclass(frozen=True)
class StagedRotation:
    """A staged credential: facts for the ledger's "rotation started" event."""

    account: str
    rotation_event_id: str
    base_version: int
    version: int
    fingerprint: str
    staged_by: str


@dataclass(frozen=True)
class ConfirmedRotation:
    """A staged credential made current: facts for the "rotation confirmed" event."""

    account: str
    rotation_event_id: str
    version: int
    previous_version: int
    fingerprint: str


@dataclass(frozen=True)
class AbandonedRotation:
    """A staged credential discarded: facts for the "rotation abandoned" event."""

    account: str
    rotation_event_id: str
    fingerprint: str


@dataclass(frozen=True)
class TotpCode:
    """A 2FA code and the instant it stops being valid. ``repr`` never shows the code."""

    account: str
    code: str = field(repr=False)
    valid_until: datetime


@dataclass(frozen=True)
class TotpRegistration:
    """Facts about an imported 2FA seed, for the ledger (never the seed)."""

    account: str
    issuer: str
    label: str
    algorithm: str
    digits: int
    period: int
    seed_fingerprint: str


@dataclass(frozen=True)
class OtpauthKey:
    """A parsed ``otpauth://totp/`` URI. ``repr`` never shows the seed."""

    secret_b32: str = field(repr=False)
    issuer: str
    label: str
    algorithm: str
    digits: int
    period: int


# -- otpauth ---------------------------------------------------------------------------------

_B32_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


SEED_TAG_PREFIX = "custodia:"


def seed_tag(fingerprint: str) -> str:
    """What Custodia writes as a TOTP key's ``account_name``: the seed's keyed fingerprint."""
    return f"{SEED_TAG_PREFIX}{fingerprint}"


def parse_otpauth(account: str, uri: str) -> OtpauthKey:
    """Validate an ``otpauth://totp/`` URI; :class:`InvalidOtpauthUriError` names the bad part.

    The seed must be base32 of at least 80 bits (RFC 4226 recommends 160); SHA1/SHA256/SHA512,
    6 or 8 digits, a period of 15–300 s. HOTP (counter based) is refused.
    """

    def bad(problem: str) -> InvalidOtpauthUriError:
        return InvalidOtpauthUriError(account, problem)

    if not isinstance(uri, str) or len(uri) > 2048:
        raise bad("too-long")
    parts = urllib.parse.urlsplit(uri.strip())
    if parts.scheme.lower() != "otpauth":
        raise bad("scheme")
    if parts.netloc.lower() != "totp":
        raise bad("type")
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower()
        if key in params:
            raise bad("duplicate-parameter")
        params[key] = value
    label = urllib.parse.unquote(parts.path.lstrip("/"))
    label_issuer, _, label_account = label.rpartition(":")
    secret = "".join(params.get("secret", "").split()).upper().rstrip("=")
    if not secret:
        raise bad("secret-missing")
    if not set(secret) <= _B32_ALPHABET:
        raise bad("secret-encoding")
    padded = secret + "=" * (-len(secret) % 8)
    try:
        seed = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        raise bad("secret-encoding") from None
    if len(seed) < 10:
        raise bad("secret-too-short")
    if len(seed) > 128:
        raise bad("secret-too-long")
    algorithm = params.get("algorithm", "SHA1").upper()
    if algorithm not in ("SHA1", "SHA256", "SHA512"):
        raise bad("algorithm")
    try:
        digits = int(params.get("digits", "6"))
        period = int(params.get("period", str(DEFAULT_TOTP_PERIOD)))
    except ValueError:
        raise bad("digits-or-period") from None
    if digits not in (6, 8):
        raise bad("digits")
    if not 15 <= period <= 300:
        raise bad("period")
    issuer = params.get("issuer") or label_issuer
    return OtpauthKey(padded, issuer[:128], label_account[:128], algorithm, digits, period)


def _valid_until(data: dict[str, Any], generated_at: float, period: int | None) -> datetime:
    """When a code stops being valid: the server's ``expire_time`` (OpenBao), else the end of
    the period window the code was generated in."""
    expire = data.get("expire_time")
    if isinstance(expire, int | float) and expire > 0:
        return datetime.fromtimestamp(float(expire), UTC)
    if period is None:
        raw = str(data.get("period") or "").rstrip("s")
        period = int(raw) if raw.isdigit() else DEFAULT_TOTP_PERIOD
    generated = data.get("generated")
    at = float(generated) if isinstance(generated, int | float) and generated > 0 else generated_at
    return datetime.fromtimestamp((int(at) // period + 1) * period, UTC)


def _check_ttl(ttl: int) -> int:
    if not 1 <= int(ttl) <= MAX_WRAP_TTL:
        raise ValueError(f"wrap TTL must be 1..{MAX_WRAP_TTL} s")
    return int(ttl)


def _custom(values: dict[str, str | None]) -> dict[str, str]:
    """``custom_metadata`` without empty values (KV v2 refuses them)."""
    return {k: v for k, v in values.items() if v}


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


# -- the service -----------------------------------------------------------------------------


def _log_wrapped(wrapped: WrappedSecret) -> None:
    log.info(
        "custody.reveal.wrapped",
        account=wrapped.account,
        version=wrapped.version,
        accessor=wrapped.accessor,
        ttl=wrapped.ttl,
    )


class RevealPrefetch:
    """The reads of a reveal, already sent (see :meth:`Credentials.prefetch_reveal`): OpenBao's
    answer for the caller (``authorized``), the current metadata and, when this process knows
    the account's current version (``guess``), the service's wrapped read of that version
    (``ahead``). A wrapping token made ahead and not taken is revoked as soon as it arrives."""

    def __init__(
        self,
        credentials: Credentials,
        account: str,
        authorized: Later[None],
        metadata: Later[dict[str, Any] | None],
        guess: int | None,
        ahead: Later[WrappedSecret] | None,
    ) -> None:
        self._credentials = credentials
        self.account = account
        self.authorized = authorized
        self.metadata = metadata
        self.guess = guess
        self.ahead = ahead
        self._settled = ahead is None

    def take(self, version: int) -> WrappedSecret | None:
        """The wrapped read made ahead if it is of ``version`` (its error, if it failed); else
        None, and a token made for another version is revoked."""
        if self._settled or self.ahead is None:
            return None
        self._settled = True
        if self.guess == version:
            return self.ahead.result()
        self._revoke_when_done(self.ahead)
        return None

    def drop(self) -> None:
        """Not needed after all (the command was refused): revoke the token if one was made."""
        if not self._settled and self.ahead is not None:
            self._settled = True
            self._revoke_when_done(self.ahead)

    def _revoke_when_done(self, ahead: Later[WrappedSecret]) -> None:
        """Revoke the token made ahead once it arrives, in the background (nobody waits)."""
        self._credentials.revoke_when_done(ahead, self.account)


class Later(Protocol[T_co]):
    """A result on its way: an :class:`Answer` or a ``concurrent.futures.Future``."""

    def result(self) -> T_co: ...


class Answer(Generic[T]):
    """What a request already sent (:meth:`VaultClient.send`) will give, parsed: read once,
    by whichever thread asks first; later calls return or raise the same."""

    def __init__(
        self,
        sent: Sent,
        parse: Callable[[dict[str, Any] | None], T],
        *,
        absent_is_none: bool = False,
    ) -> None:
        self._sent = sent
        self._parse = parse
        self._absent_is_none = absent_is_none  # not found: parse(None), not an error
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def result(self) -> T:
        with self._lock:
            if not self._done:
                try:
                    try:
                        body = self._sent.result()
                    except VaultNotFoundError:
                        if not self._absent_is_none:
                            raise
                        body = None
                    self._value = self._parse(body)
                except Exception as exc:
                    self._error = exc
                self._done = True
            if self._error is not None:
                raise self._error
            return self._value  # type: ignore[return-value]


@dataclass(frozen=True)
class StagePrefetch:
    """The reads :meth:`Credentials.stage` needs, already sent (see ``prefetch_stage``), and
    OpenBao's answer for the caller (``authorized``), awaited before anything is written."""

    account: str
    metadata: Later[dict[str, Any] | None] = field(repr=False)
    fingerprint: Later[str] = field(repr=False)
    authorized: Later[None] = field(repr=False)


class Credentials:
    """Credentials and 2FA for verified callers; ``client`` carries the service token, which
    makes every operation once OpenBao granted the caller's token the operation's marker."""

    def __init__(self, client: VaultClient) -> None:
        self._client = client
        self._mounts = client.mounts
        self._periods: dict[str, int] = {}
        # Independent OpenBao calls of one command are sent at once from the command's own
        # thread (``VaultClient.send``; see ``prefetch_*`` and ``stage``); this pool only runs
        # clean-up nobody waits for (revoking a wrapping token made ahead and not used).
        self._ahead = ThreadPoolExecutor(max_workers=4, thread_name_prefix="custodia-vault")
        # The current version of each account as this process last saw it (a guess for
        # ``prefetch_reveal``; never trusted without the metadata read).
        self._known_current: dict[str, int] = {}

    # -- calls sent ahead ----------------------------------------------------------------------

    def prefetch_stage(
        self, caller_token: str, account: str | AccountRef, password: str
    ) -> StagePrefetch:
        """Send the independent calls of :meth:`stage` (the caller's authorization, with the
        caller's token; the current metadata and the password's fingerprint, with the
        service's) and return at once: OpenBao answers them while the caller loads the ledger.
        Answers nobody reads are dropped (nothing is written by any of them)."""
        ref = AccountRef.parse(account)
        authorized = self._send_authorization(caller_token, ref, "preparar")
        # The fingerprint next: the tag waits for it, and the tag is the last write.
        fingerprint = self._send_fingerprint(password)
        return StagePrefetch(
            ref.name, self._send_metadata(self._client, ref, False), fingerprint, authorized
        )

    def prefetch_reveal(
        self, caller_token: str, account: str | AccountRef, ttl: int = DEFAULT_WRAP_TTL
    ) -> RevealPrefetch:
        """Start the calls of :meth:`reveal` while the caller loads the ledger: the caller's
        authorization (caller's token), the current metadata (service token) and, if this
        process has seen the account's current version before, the service's wrapped read of
        that version at the same time (on a reveal the wrapped read is the slow part: OpenBao
        stores a new token). Nothing leaves before OpenBao granted the caller the read; the
        metadata still decides the version: a wrapped read of another version is revoked and
        done again. Take it while holding the account's lock, so no rotation of this process
        lands in between."""
        ref = AccountRef.parse(account)
        ttl = _check_ttl(ttl)
        guess = self._known_current.get(ref.name)
        # The wrapped read first: it is the slow one (OpenBao stores a token for it), and
        # nothing of it leaves before the caller's authorization below is granted.
        ahead = self._send_wrapped_read(ref, guess, ttl) if guess else None
        try:
            authorized = self._send_authorization(caller_token, ref, "revelar")
        except BaseException:
            if ahead is not None:
                self.revoke_when_done(ahead, ref.name)
            raise
        return RevealPrefetch(
            self, ref.name, authorized, self._send_metadata(self._client, ref, False), guess, ahead
        )

    def in_background(self, work: Callable[[], object]) -> None:
        """Run ``work`` on one of this object's threads; nobody waits for it."""
        self._ahead.submit(work)

    def revoke_when_done(self, later: Later[WrappedSecret], account: str) -> None:
        """Revoke a wrapping token made for nobody (refused caller, stale version) once it
        arrives, in the background: it never leaves this process."""

        def revoke() -> None:
            try:
                wrapped = later.result()
            except Exception:
                return  # no token was made
            try:
                self.revoke_wrapped(wrapped)
            except VaultError:
                # It still expires after its short TTL, is single use, and never left here.
                log.error("custody.reveal.revoke_failed", account=account)

        self.in_background(revoke)

    def _as(self, caller_token: str) -> VaultClient:
        return self._client.with_token(caller_token)

    # -- the caller's authorization ------------------------------------------------------------

    def authorize(self, caller_token: str, account: str | AccountRef, operation: str) -> None:
        """Whether OpenBao grants the caller ``operation`` on ``account``: the caller's own
        capabilities on the operation's marker (:meth:`AccountRef.access_path`), asked with
        the caller's token; :class:`VaultPermissionDeniedError` unless they include "read"."""
        self._send_authorization(caller_token, AccountRef.parse(account), operation).result()

    def _send_authorization(
        self, caller_token: str, ref: AccountRef, operation: str
    ) -> Answer[None]:
        """:meth:`authorize`, sent now and read later. One request, on the caller's token only:
        ``sys/capabilities-self`` evaluates the token's policies (its identity groups' included:
        designation) on a path that holds nothing, so it reveals nothing and writes nothing."""
        marker = ref.access_path(operation)
        sent = self._as(caller_token).send(
            "POST",
            "sys/capabilities-self",
            json={"paths": [marker]},
            operation=f"authorize-{operation}",
            account=ref.name,
        )

        def parse(body: dict[str, Any] | None) -> None:
            answer = (body or {}).get("data") or body or {}
            granted = answer.get(marker) if isinstance(answer, dict) else None
            if not isinstance(granted, list) or "deny" in granted or "read" not in granted:
                log.info("custody.app.access.refused", account=ref.name, operation=operation)
                raise VaultPermissionDeniedError(f"authorize-{operation}", marker, ref.name)

        return Answer(sent, parse)

    def fingerprint(self, secret: str | bytes) -> str:
        """A keyed fingerprint (transit HMAC-SHA256, key ``custodia-fingerprint``) of a secret.

        Comparable across events without revealing the secret; useless without the server.
        Returned as lowercase hex (the ledger's format); the HMAC key version is not part of it.
        Service token: people's tokens cannot compute one (it would be a guessing oracle).
        """
        return self._send_fingerprint(secret).result()

    def _send_fingerprint(self, secret: str | bytes) -> Answer[str]:
        sent = self._client.send(
            "POST",
            f"{self._mounts.transit}/hmac/{FINGERPRINT_KEY}/sha2-256",
            json={"input": _b64(secret)},
            operation="fingerprint",
            secret_body=True,
        )
        return Answer(sent, self._parse_fingerprint)

    def _parse_fingerprint(self, body: dict[str, Any] | None) -> str:
        value = ((body or {}).get("data") or {}).get("hmac")
        if not value:
            raise VaultServerError("fingerprint", f"{self._mounts.transit}/hmac", None)
        try:
            return base64.b64decode(str(value).rsplit(":", 1)[-1], validate=True).hex()
        except ValueError:
            raise VaultServerError("fingerprint", f"{self._mounts.transit}/hmac", None) from None

    # -- versions (service token) ----------------------------------------------------------

    def current_version(self, account: str | AccountRef) -> int:
        """The account's current credential version (0: none yet). Service token, metadata."""
        ref = AccountRef.parse(account)
        meta = self._metadata(self._client, ref, staged=False)
        return int(meta.get("current_version") or 0) if meta else 0

    def staged_metadata(self, account: str | AccountRef) -> dict[str, str] | None:
        """The staged credential's ``custom_metadata`` (None: nothing staged). Service token."""
        ref = AccountRef.parse(account)
        meta = self._metadata(self._client, ref, staged=True)
        if meta is None:
            return None
        return {str(k): str(v) for k, v in (meta.get("custom_metadata") or {}).items()}

    def _metadata(
        self, client: VaultClient, ref: AccountRef, staged: bool
    ) -> dict[str, Any] | None:
        try:
            body = client.read(
                ref.metadata_path(self._mounts, staged), operation="read-metadata", account=ref.name
            )
        except VaultNotFoundError:
            return None
        data: dict[str, Any] = body.get("data") or {}
        return data

    def _send_metadata(
        self, client: VaultClient, ref: AccountRef, staged: bool
    ) -> Answer[dict[str, Any] | None]:
        """:meth:`_metadata`, sent now and read later."""
        sent = client.send(
            "GET",
            ref.metadata_path(self._mounts, staged),
            operation="read-metadata",
            account=ref.name,
        )

        def parse(body: dict[str, Any] | None) -> dict[str, Any] | None:
            if body is None:
                return None
            data: dict[str, Any] = body.get("data") or {}
            return data

        return Answer(sent, parse, absent_is_none=True)

    # -- reveal ------------------------------------------------------------------------------

    def read_current_wrapped(
        self,
        caller_token: str,
        account: str | AccountRef,
        ttl: int = DEFAULT_WRAP_TTL,
        *,
        pinned: RevealPrefetch | None = None,
    ) -> WrappedSecret:
        """The current credential, read by the service for the caller and wrapped for ``ttl``
        seconds, once OpenBao granted the CALLER's token the reveal (its marker).

        The version is pinned by the metadata (service token), so the ledger can record exactly
        which version the caller will see. Permission is decided by the server on the caller's
        token: a refused caller gets :class:`VaultPermissionDeniedError` and no wrapping token.
        ``pinned``: the calls started ahead by :meth:`prefetch_reveal`.
        """
        ref = AccountRef.parse(account)
        ttl = _check_ttl(ttl)
        prefetch = pinned
        if prefetch is not None and prefetch.account != ref.name:
            raise ValueError("prefetched for another account")
        try:
            if prefetch is not None:
                authorized = prefetch.authorized
                meta = prefetch.metadata.result()
            else:
                authorized = self._send_authorization(caller_token, ref, "revelar")
                meta = self._send_metadata(self._client, ref, False).result()
            authorized.result()  # before anything else is said about the account
            version = int((meta or {}).get("current_version") or 0)
            if version <= 0:
                raise VaultNotFoundError("reveal", ref.data_path(self._mounts), ref.name)
            self._known_current[ref.name] = version
            wrapped = prefetch.take(version) if prefetch is not None else None
        except BaseException:
            if prefetch is not None:
                prefetch.drop()
            raise
        if wrapped is None:
            wrapped = self._wrapped_read(ref, version, ttl)
        _log_wrapped(wrapped)
        return wrapped

    def _wrapped_read(self, ref: AccountRef, version: int | None, ttl: int) -> WrappedSecret:
        """Version ``version`` of the credential, read by the service, wrapped."""
        return self._send_wrapped_read(ref, version, ttl).result()

    def _send_wrapped_read(
        self, ref: AccountRef, version: int | None, ttl: int
    ) -> Answer[WrappedSecret]:
        """:meth:`_wrapped_read`, sent now and read later. Only ever handed over once the
        caller's authorization came back granted (callers of this method check it)."""
        path = ref.data_path(self._mounts)
        sent = self._client.send(
            "GET",
            path,
            operation="reveal",
            account=ref.name,
            params={"version": version},
            wrap_ttl=ttl,
        )

        def parse(body: dict[str, Any] | None) -> WrappedSecret:
            if body is None:
                raise VaultNotFoundError("reveal", path, ref.name)
            return self._wrapped(body, ref, "password", version, "reveal", path)

        return Answer(sent, parse)

    def reveal(
        self,
        caller_token: str,
        account: str | AccountRef,
        record: Callable[[WrappedSecret], object],
        ttl: int = DEFAULT_WRAP_TTL,
        *,
        pinned: RevealPrefetch | None = None,
        record_early: Callable[[int], object] | None = None,
        void: Callable[[int, BaseException], object] | None = None,
    ) -> WrappedSecret:
        """Fail-closed reveal (6.XII, 8.A, 8.B): wrap, ``record`` the read in the ledger, then
        hand over.

        If ``record`` raises, the wrapping token is revoked before the error propagates, so the
        credential can no longer be obtained with it: nothing is shown unless it was recorded.
        ``pinned``: the reads started by :meth:`prefetch_reveal`. With ``record_early`` and
        ``void`` too, when the wrapped read sent ahead is of the current version, the read is
        recorded (``record_early(version)``) while that wrapped read is on its way; if it then
        fails, ``void(version, error)`` records that it never arrived and the error propagates.
        Either way nothing leaves before the read is recorded.
        """
        if pinned is not None and record_early is not None and void is not None:
            early = self._reveal_early(account, pinned, record_early, void)
            if early is not None:
                return early
        wrapped = self.read_current_wrapped(caller_token, account, ttl, pinned=pinned)
        self._record_or_revoke(wrapped, record)
        return wrapped

    def _reveal_early(
        self,
        account: str | AccountRef,
        pinned: RevealPrefetch,
        record: Callable[[int], object],
        void: Callable[[int, BaseException], object],
    ) -> WrappedSecret | None:
        """The reveal when the wrapped read sent ahead is of the version the metadata names:
        the read is recorded while that wrapped read is still on its way (on a reveal it is
        the slow part), then the token is awaited. None: the guess was wrong (or there was
        none); the caller goes the usual way."""
        ref = AccountRef.parse(account)
        if pinned.account != ref.name:
            raise ValueError("prefetched for another account")
        if pinned.ahead is None or not pinned.guess:
            return None
        try:
            meta = pinned.metadata.result()
            pinned.authorized.result()  # nothing is recorded for a refused caller
        except BaseException:
            pinned.drop()
            raise
        version = int((meta or {}).get("current_version") or 0)
        if version != pinned.guess:
            return None
        self._known_current[ref.name] = version
        try:
            record(version)
        except BaseException:
            pinned.drop()  # its token is revoked as soon as it arrives: it never leaves here
            log.warning("custody.reveal.not_recorded", account=ref.name)
            raise
        try:
            wrapped = pinned.take(version)
            if wrapped is None:  # pragma: no cover - take() of the guessed version answers
                raise VaultServerError("reveal", ref.data_path(self._mounts), None)
        except BaseException as error:
            # Recorded, never delivered: the ledger says so, and the caller gets the error.
            try:
                void(version, error)
            except BaseException:
                log.error(
                    "custody.reveal.void_not_recorded", account=ref.name, error=type(error).__name__
                )
            raise
        _log_wrapped(wrapped)
        return wrapped

    def _record_or_revoke(
        self, wrapped: WrappedSecret, record: Callable[[WrappedSecret], object]
    ) -> None:
        try:
            record(wrapped)
        except BaseException:
            try:
                self.revoke_wrapped(wrapped)
            except VaultError:
                # Could not revoke: the token still expires after its short TTL, and it is
                # single use. Nobody but this process holds it; it is dropped here.
                log.error("custody.reveal.revoke_failed", account=wrapped.account)
            log.warning(
                "custody.reveal.not_recorded", account=wrapped.account, accessor=wrapped.accessor
            )
            raise

    def _wrapped(
        self,
        body: dict[str, Any],
        ref: AccountRef,
        kind: Literal["password", "totp"],
        version: int | None,
        operation: str,
        path: str,
    ) -> WrappedSecret:
        info = body.get("wrap_info") or {}
        if not info.get("token"):
            # The server ignored the wrap request: never pass an unwrapped secret along.
            raise VaultServerError(operation, path, None)
        return WrappedSecret(
            token=str(info["token"]),
            accessor=str(info.get("accessor") or ""),
            ttl=int(info.get("ttl") or 0),
            creation_time=parse_time(info.get("creation_time")),
            creation_path=str(info.get("creation_path") or ""),
            account=ref.name,
            kind=kind,
            version=version,
        )

    def lookup_wrapping(self, wrapping_token: str) -> WrappingInfo:
        """Inspect a wrapping token without using it up (no token needed)."""
        body = self._client.with_token(None).write(
            "sys/wrapping/lookup",
            {"token": wrapping_token},
            operation="lookup-wrapping",
            secret_body=True,
        )
        data = (body or {}).get("data") or {}
        return WrappingInfo(
            creation_path=str(data.get("creation_path") or ""),
            creation_time=parse_time(data.get("creation_time")),
            ttl=int(data.get("creation_ttl") or 0),
        )

    def _unwrap(
        self, wrapping_token: str, expected_path: str, account: str
    ) -> tuple[dict[str, Any], WrappingInfo]:
        info = self.lookup_wrapping(wrapping_token)
        if info.creation_path != expected_path:
            raise WrappingPathMismatchError(expected_path, info.creation_path)
        body = self._client.with_token(wrapping_token).write(
            "sys/wrapping/unwrap", operation="unwrap", account=account, secret_body=True
        )
        data: dict[str, Any] = (body or {}).get("data") or {}
        return data, info

    def unwrap(self, wrapping_token: str, expected_account: str | AccountRef) -> Credential:
        """Unwrap a reveal (the caller does this, once); checks it wraps ``expected_account``."""
        ref = AccountRef.parse(expected_account)
        data, _ = self._unwrap(wrapping_token, ref.data_path(self._mounts), ref.name)
        secret = data.get("data") or {}
        meta = data.get("metadata") or {}
        password = secret.get("password")
        if not isinstance(password, str):
            raise VaultServerError("unwrap", ref.data_path(self._mounts), None)
        return Credential(
            account=ref.name,
            version=int(meta.get("version") or 0),
            password=password,
            created_time=parse_time(meta.get("created_time")),
        )

    def revoke_wrapped(self, wrapped: WrappedSecret | str) -> bool:
        """Revoke a wrapping token so it can never be unwrapped (fail closed).

        Given a :class:`WrappedSecret` (or the token itself): False if the token was already
        used, revoked or expired, True if it was revoked now — by itself (a wrapping token may
        revoke itself, no policy needed) or, failing that, by accessor with the service token.
        Given a bare accessor: revoked by accessor; True once the server accepted it.
        """
        token = wrapped.token if isinstance(wrapped, WrappedSecret) else wrapped
        accessor = wrapped.accessor if isinstance(wrapped, WrappedSecret) else None
        try:
            self.lookup_wrapping(token)
            is_token = True
        except WrappingTokenInvalidError:
            is_token = False
        if not is_token and accessor is not None:
            return False  # already used, revoked or expired
        if is_token:
            try:
                self._client.with_token(token).write(
                    "auth/token/revoke-self", operation="revoke-wrapped"
                )
                log.info("custody.wrapping.revoked", accessor=accessor)
                return True
            except (VaultPermissionDeniedError, VaultTokenInvalidError):
                if accessor is None:
                    raise
        try:
            self._client.write(
                "auth/token/revoke-accessor",
                {"accessor": accessor or token},
                operation="revoke-wrapped",
                secret_body=accessor is None,  # might be a (used) token: keep it out of errors
            )
        except VaultInvalidRequestError:
            return False  # not a known accessor: nothing left to revoke
        # A bare string is not logged: it might be a token, not an accessor.
        log.info("custody.wrapping.revoked", accessor=accessor)
        return True

    # -- rotation ----------------------------------------------------------------------------

    def stage(
        self,
        caller_token: str,
        account: str | AccountRef,
        password: str,
        ledger_event_id: str,
        base_version: int,
        *,
        staged_by: str,
        record: Callable[[StagedRotation], object] | None = None,
        prefetched: StagePrefetch | None = None,
    ) -> StagedRotation:
        """Stage ``password`` as the account's pending credential (coadministrators, 6.X).

        ``base_version`` is the current version this rotation replaces, as the ledger knows it
        (0: the account has none yet): checked alongside the staging (from a stale base, what
        was staged is deleted again and :class:`VaultCasConflictError` raised), and enforced
        with check-and-set when the rotation is confirmed. The staged path is written with
        check-and-set 0, so only one rotation per account can be open: a concurrent one gets
        :class:`VaultCasConflictError`.
        ``custom_metadata`` ties the staged version to ``ledger_event_id`` (the ledger's
        "rotation started" event); data and tag are written at the same time (the data's
        check-and-set decides who owns the rotation). With ``record``, the event is written
        after Vault; if it fails, the staged credential is deleted again.
        The service writes, once OpenBao granted the caller's token the staging (its marker):
        nothing is written for a refused caller.
        """
        ref = AccountRef.parse(account)
        caller = self._client
        if prefetched is not None and prefetched.account != ref.name:
            raise ValueError("prefetched for another account")
        authorized = (
            prefetched.authorized
            if prefetched is not None
            else self._send_authorization(caller_token, ref, "preparar")
        )
        # The current version is checked once the staged data is written, not before: the
        # write does not depend on it (check-and-set 0 on the staged path), and a rotation
        # from a stale base is rare (drift); it is then deleted again.
        currents = (
            prefetched.metadata
            if prefetched is not None
            else self._send_metadata(caller, ref, False)
        )
        fingerprints = (
            prefetched.fingerprint if prefetched is not None else self._send_fingerprint(password)
        )
        authorized.result()  # OpenBao's answer for the caller, before anything is written
        metadata_path = ref.metadata_path(self._mounts, staged=True)

        def send_tag(metadata_cas: int) -> Sent:
            return caller.send(
                "POST",
                metadata_path,
                json={
                    "custom_metadata": _custom(
                        {
                            "ledger_event_id": ledger_event_id,
                            "staged_by": staged_by,
                            "base_version": str(base_version),
                            "version": str(base_version + 1),
                            "fingerprint": fingerprints.result(),
                        }
                    ),
                    "metadata_cas": metadata_cas,
                },
                operation="stage",
                account=ref.name,
            )

        def tag(metadata_cas: int) -> None:
            send_tag(metadata_cas).result()

        # The data (check-and-set 0) and the tag (metadata check-and-set 0) are written at
        # once: both sent from this thread, then both answers read. Whoever wins the data owns
        # the rotation: a rotation whose data lost stops with the conflict, leaving its tag (if
        # it won) for the data's owner to replace; a leftover it tagged is reconciliation's to
        # delete, as before.
        data = caller.send(
            "POST",
            ref.data_path(self._mounts, staged=True),
            json={"data": {"password": password}, "options": {"cas": 0}},
            operation="stage",
            account=ref.name,
            secret_body=True,
        )
        tagging: Sent | None = None
        untagged: Exception | None = None
        try:
            tagging = send_tag(0)
        except Exception as exc:  # no fingerprint: raised once the data's answer is in
            untagged = exc
        try:
            data.result()
        except BaseException:
            if tagging is not None:
                with contextlib.suppress(Exception):
                    tagging.result()
            raise
        try:
            if tagging is None:
                raise untagged or VaultServerError("fingerprint", metadata_path, None)
            try:
                tagging.result()
                won_tag = True
            except VaultCasConflictError:
                won_tag = False  # another rotation's tag came first
            current_version = int((currents.result() or {}).get("current_version") or 0)
            if current_version != base_version:
                raise VaultCasConflictError(
                    "stage", ref.data_path(self._mounts), ref.name, base_version, current_version
                )
            if not won_tag:
                self._retag(caller, ref, tag)
            fingerprint = fingerprints.result()
        except BaseException:
            self._compensate_stage(caller, ref)
            raise
        staged = StagedRotation(
            account=ref.name,
            rotation_event_id=ledger_event_id,
            base_version=base_version,
            version=base_version + 1,
            fingerprint=fingerprint,
            staged_by=staged_by,
        )
        log.info(
            "custody.rotation.staged",
            account=ref.name,
            rotation=ledger_event_id,
            version=staged.version,
            fingerprint=fingerprint,
        )
        if record is not None:
            try:
                record(staged)
            except BaseException:
                self._compensate_stage(caller, ref)
                raise
        return staged

    def _retag(self, caller: VaultClient, ref: AccountRef, tag: Callable[[int], None]) -> None:
        """This rotation's data won the check-and-set but another rotation's tag came first
        (its data lost, so it stops): the data's owner replaces that tag, with check-and-set on
        the metadata version it reads (nobody else writes a tag past version 0)."""
        for attempt in range(3):
            meta = self._metadata(caller, ref, staged=True) or {}
            try:
                tag(int(meta.get("current_metadata_version") or 0))
                return
            except VaultCasConflictError:
                if attempt == 2:
                    raise

    def _compensate_stage(self, caller: VaultClient, ref: AccountRef) -> None:
        """Delete a staged credential whose rotation could not be completed (best effort:
        reconciliation deletes an orphan later if this fails)."""
        try:
            self._delete_staged(caller, ref)
        except VaultError:
            log.warning("custody.rotation.compensation_failed", account=ref.name)

    def confirm(
        self,
        caller_token: str,
        account: str | AccountRef,
        rotation_event_id: str,
        *,
        confirmed_by: str | None = None,
        record: Callable[[ConfirmedRotation], object] | None = None,
    ) -> ConfirmedRotation:
        """Make the staged credential current (check-and-set on the base version), then delete
        the staged one. With ``record``, the ledger's "rotation confirmed" event is written in
        between; if it fails the new current version stays (the platform already uses it) and
        reconciliation reports the confirmation to record.
        The service reads and writes, once OpenBao granted the caller's token the confirmation
        (its marker); the staged read is sent alongside and goes nowhere for a refused caller.
        """
        ref = AccountRef.parse(account)
        caller = self._client
        authorized = self._send_authorization(caller_token, ref, "confirmar")
        staged = Answer(
            caller.send(
                "GET",
                ref.data_path(self._mounts, staged=True),
                operation="confirm",
                account=ref.name,
            ),
            lambda body: body,
            absent_is_none=True,
        )
        try:
            authorized.result()
        except BaseException:
            with contextlib.suppress(Exception):
                staged.result()  # read, and dropped
            raise
        body = staged.result()
        if body is None:
            raise NoStagedRotationError(ref.name)
        data = body.get("data") or {}
        custom = (data.get("metadata") or {}).get("custom_metadata") or {}
        if custom.get("ledger_event_id") != rotation_event_id:
            raise RotationMismatchError(ref.name, rotation_event_id, custom.get("ledger_event_id"))
        password = (data.get("data") or {}).get("password")
        if not isinstance(password, str):
            raise NoStagedRotationError(ref.name)
        base_version = int(custom.get("base_version") or 0)
        fingerprint = str(custom.get("fingerprint") or "")
        # Tag first, then write: a crash in between leaves the tag on an unchanged version,
        # which reconciliation ignores; the tag is there whenever the new version is.
        caller.write(
            ref.metadata_path(self._mounts),
            {
                "custom_metadata": _custom(
                    {
                        "ledger_event_id": rotation_event_id,
                        "version": str(base_version + 1),
                        "fingerprint": fingerprint,
                        "confirmed_by": confirmed_by,
                    }
                )
            },
            operation="confirm",
            account=ref.name,
        )
        # Wrapped (the service's policy has min_wrapping_ttl on current credentials): the answer
        # is only the new version's metadata; its wrapping token expires unused within a second.
        # Check-and-set on the base version makes the new version base + 1.
        caller.write(
            ref.data_path(self._mounts),
            {"data": {"password": password}, "options": {"cas": base_version}},
            operation="confirm",
            account=ref.name,
            secret_body=True,
            wrap_ttl=1,
        )
        version = base_version + 1
        self._known_current[ref.name] = version
        confirmed = ConfirmedRotation(
            ref.name, rotation_event_id, version, base_version, fingerprint
        )
        log.info(
            "custody.rotation.confirmed",
            account=ref.name,
            rotation=rotation_event_id,
            version=version,
            fingerprint=fingerprint,
        )
        if record is not None:
            record(confirmed)
            # Recorded: the rotation is confirmed, whatever happens to the cleanup below. Telling
            # the caller it failed would make the ledger's event a ghost (issue 10).
            self._delete_staged_patiently(caller, ref)
        else:
            self._delete_staged(caller, ref)
        return confirmed

    def abandon(
        self,
        caller_token: str,
        account: str | AccountRef,
        rotation_event_id: str,
        *,
        record: Callable[[AbandonedRotation], object] | None = None,
    ) -> AbandonedRotation:
        """Discard the staged credential: ``record`` (ledger) first, then delete it in Vault.
        The service does it, once OpenBao granted the caller's token the abandonment."""
        ref = AccountRef.parse(account)
        caller = self._client
        authorized = self._send_authorization(caller_token, ref, "abandonar")
        metadata = self._send_metadata(caller, ref, True)
        authorized.result()
        meta = metadata.result()
        if meta is None or not meta.get("current_version"):
            raise NoStagedRotationError(ref.name)
        custom = meta.get("custom_metadata") or {}
        if custom.get("ledger_event_id") != rotation_event_id:
            raise RotationMismatchError(ref.name, rotation_event_id, custom.get("ledger_event_id"))
        abandoned = AbandonedRotation(
            ref.name, rotation_event_id, str(custom.get("fingerprint") or "")
        )
        if record is not None:
            record(abandoned)
        self._delete_staged(caller, ref)
        log.info("custody.rotation.abandoned", account=ref.name, rotation=rotation_event_id)
        return abandoned

    def _delete_staged_patiently(self, client: VaultClient, ref: AccountRef) -> None:
        """Delete the staged credential, waiting out an OpenBao failover (no active member for
        a few seconds); if it still fails, leave it for reconciliation and say so in the log."""
        deadline = time.monotonic() + STAGED_CLEANUP_PATIENCE_S
        while True:
            try:
                self._delete_staged(client, ref)
                return
            except TRANSIENT_VAULT_ERRORS as exc:
                if time.monotonic() > deadline:
                    log.warning(
                        "custody.rotation.staged_left", account=ref.name, error=type(exc).__name__
                    )
                    return
                time.sleep(0.25)

    def _delete_staged(self, client: VaultClient, ref: AccountRef) -> None:
        # Deleting the metadata destroys every version: the staged secret is gone for good.
        client.delete(
            ref.metadata_path(self._mounts, staged=True),
            operation="delete-staged",
            account=ref.name,
        )

    # -- closure (10) ------------------------------------------------------------------------

    def authorize_destruction(self, caller_token: str, account: str | AccountRef) -> None:
        """Whether OpenBao lets the caller destroy ``account``'s secrets (coadministrators):
        asked before the closure is recorded, so a refused caller records nothing."""
        self.authorize(caller_token, account, "destruir")

    def destroy(self, caller_token: str, account: str | AccountRef) -> None:
        """10: destroys the closed account's password — every version and the metadata of the
        current and the staged credential (KV v2 ``delete metadata``: nothing to undelete) —
        and its 2FA seed (the TOTP engine's key), once OpenBao granted the caller the marker.
        Idempotent: a path already gone is not an error, so a retry finishes a destruction a
        failure interrupted. Called only after the ledger recorded the closure."""
        ref = AccountRef.parse(account)
        self.authorize(caller_token, ref, "destruir")
        for staged in (False, True):
            self._client.delete(
                ref.metadata_path(self._mounts, staged=staged),
                operation="destroy-credential",
                account=ref.name,
            )
        self._client.delete(
            ref.totp_key_path(self._mounts), operation="destroy-totp", account=ref.name
        )
        self._periods.pop(ref.name, None)
        log.info("custody.account.secrets_destroyed", account=ref.name)

    # -- 2FA ---------------------------------------------------------------------------------

    def register_totp(
        self, caller_token: str, account: str | AccountRef, otpauth_uri: str
    ) -> TotpRegistration:
        """Import a 2FA seed from an ``otpauth://totp/`` URI (coadministrators). Write-only: the
        TOTP engine never returns an imported seed, and no policy lets anyone read a key.
        The service writes it, once OpenBao granted the caller's token the import."""
        ref = AccountRef.parse(account)
        key = parse_otpauth(ref.name, otpauth_uri)
        authorized = self._send_authorization(caller_token, ref, "semilla")
        fingerprints = self._send_fingerprint(key.secret_b32.rstrip("="))
        authorized.result()
        fingerprint = fingerprints.result()
        self._client.write(
            ref.totp_key_path(self._mounts),
            {
                "key": key.secret_b32,
                "issuer": key.issuer,
                # The seed's keyed fingerprint, also recorded in the ledger: reconciliation
                # recognises a seed imported straight into OpenBao (issue 16, finding 11).
                "account_name": seed_tag(fingerprint),
                "algorithm": key.algorithm,
                "digits": key.digits,
                "period": key.period,
                "exported": False,
            },
            operation="register-totp",
            account=ref.name,
            secret_body=True,
        )
        self._periods[ref.name] = key.period
        log.info("custody.totp.registered", account=ref.name, seed_fingerprint=fingerprint)
        return TotpRegistration(
            ref.name, key.issuer, key.label, key.algorithm, key.digits, key.period, fingerprint
        )

    def _period(self, ref: AccountRef) -> int | None:
        if ref.name not in self._periods:
            try:  # service token: key parameters only, the engine never returns the seed
                body = self._client.read(
                    ref.totp_key_path(self._mounts), operation="totp-period", account=ref.name
                )
                self._periods[ref.name] = int((body.get("data") or {}).get("period") or 0) or 30
            except VaultError:
                return None
        return self._periods[ref.name]

    def totp_code(self, caller_token: str, account: str | AccountRef) -> TotpCode:
        """A current 2FA code for the caller (administrator of the district or coadministrator)
        and when it stops being valid: :meth:`totp_code_wrapped`, unwrapped here. NOT recorded
        in the ledger (the audit follower reports it): the command service uses
        :meth:`reveal_totp`; this is for tests and tools."""
        wrapped = self.totp_code_wrapped(caller_token, account)
        return self.unwrap_totp(wrapped.token, account)

    def totp_code_wrapped(
        self, caller_token: str, account: str | AccountRef, ttl: int = DEFAULT_WRAP_TTL
    ) -> WrappedSecret:
        """A 2FA code read by the service and wrapped, for a fail-closed reveal, once OpenBao
        granted the caller's token the code (its marker). The read is sent alongside the
        authorization; for a refused caller its wrapping token is revoked, never handed over."""
        ref = AccountRef.parse(account)
        path = ref.totp_code_path(self._mounts)
        authorized = self._send_authorization(caller_token, ref, "codigo")
        sent = self._client.send(
            "GET", path, operation="totp-code", account=ref.name, wrap_ttl=_check_ttl(ttl)
        )

        def parse(body: dict[str, Any] | None) -> WrappedSecret:
            if body is None:
                raise VaultNotFoundError("totp-code", path, ref.name)
            return self._wrapped(body, ref, "totp", None, "totp-code", path)

        answer = Answer(sent, parse)
        try:
            authorized.result()
        except BaseException:
            self.revoke_when_done(answer, ref.name)
            raise
        wrapped = answer.result()
        log.info("custody.totp.wrapped", account=ref.name, accessor=wrapped.accessor)
        return wrapped

    def reveal_totp(
        self,
        caller_token: str,
        account: str | AccountRef,
        record: Callable[[WrappedSecret], object],
        ttl: int = DEFAULT_WRAP_TTL,
    ) -> WrappedSecret:
        """Fail-closed 2FA code: wrap, record, hand over; revoke if recording fails."""
        wrapped = self.totp_code_wrapped(caller_token, account, ttl)
        self._record_or_revoke(wrapped, record)
        return wrapped

    def unwrap_totp(self, wrapping_token: str, expected_account: str | AccountRef) -> TotpCode:
        """Unwrap a wrapped 2FA code (once), checking it is ``expected_account``'s."""
        ref = AccountRef.parse(expected_account)
        data, info = self._unwrap(wrapping_token, ref.totp_code_path(self._mounts), ref.name)
        created = info.creation_time.timestamp() if info.creation_time else time.time()
        return TotpCode(ref.name, str(data.get("code") or ""), _valid_until(data, created, None))
