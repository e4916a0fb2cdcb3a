"""Signed checkpoints of the ledger's Merkle tree, in the C2SP signed-note format.

A checkpoint commits to the whole ledger up to ``size`` events (RFC 9162 §4.10 "signed tree head").
Its body follows C2SP tlog-checkpoint, with one extension line for the time; every line ends in
``\\n`` (UTF-8, no carriage returns)::

    custodia.iecm.mx/bitacora                       origin: names the log, no spaces needed
    1000                                            tree size, decimal, no leading zeros
    6x2Vd0v0eY1f0wRN3YmMZbVbZ4ofJBCQ0a3Bcx6n4kI=    root hash, standard base64 of 32 bytes
    timestamp 2026-11-28T04:05:06.123456Z           UTC, always six fraction digits

The signed checkpoint is a C2SP signed note: the body, an empty line, then one signature line::

    — bitacora:v2 <base64(key id (4 bytes) || ed25519 signature (64 bytes))>

The signature is Ed25519 over the body bytes exactly, which is what OpenBao/Vault transit signs
for an ``ed25519`` key (it returns ``vault:v<N>:<base64 signature>``). The key name is the transit
key name plus ``:v<version>``, so a checkpoint names the key version that signed it and old
checkpoints verify with old versions after rotation (:class:`PublicKeyring`). The key id is
signed-note's ``SHA-256(name || "\\n" || 0x01 || public key)[:4]``, so Go's
``golang.org/x/mod/sumdb/note`` verifies these notes given :meth:`PublicKeyring.note_verifier_key`.
Parsing is strict: any other byte sequence is rejected, so every checkpoint has one encoding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from events.merkle import HASH_SIZE, LedgerError

__all__ = [
    "BadSignatureError",
    "Checkpoint",
    "CheckpointError",
    "Ed25519Signer",
    "MalformedCheckpointError",
    "PublicKeyring",
    "SignedCheckpoint",
    "Signer",
    "UnknownKeyError",
    "WrongOriginError",
    "parse_transit_public_key",
    "parse_transit_signature",
    "sign_checkpoint",
]

_SIG_DASH = "\u2014"  # signed-note signature lines start with an em dash and a space
_ED25519_ALG = b"\x01"
_TIMESTAMP_RE = re.compile(r"timestamp (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_NAME_RE = re.compile(r"[^\s+:]+")
_SIG_LINE_RE = re.compile(_SIG_DASH + r" ([^\s+:]+):v([1-9][0-9]*) ([A-Za-z0-9+/=]+)")
_TRANSIT_SIG_RE = re.compile(r"vault:v([1-9][0-9]*):([A-Za-z0-9+/=]+)")


class CheckpointError(LedgerError):
    """A checkpoint could not be parsed or verified."""


class MalformedCheckpointError(CheckpointError):
    """The bytes are not a canonical checkpoint or signed note; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownKeyError(CheckpointError):
    """The checkpoint names a key (name or version) the keyring does not hold."""

    def __init__(self, key_name: str, key_version: int) -> None:
        super().__init__(f"unknown key {key_name}:v{key_version}")
        self.key_name = key_name
        self.key_version = key_version


class WrongOriginError(CheckpointError):
    """The checkpoint is for another log: its ``origin`` is not the ``expected`` one."""

    def __init__(self, origin: str, expected: str) -> None:
        super().__init__(f"checkpoint is for log {origin!r}, not {expected!r}")
        self.origin = origin
        self.expected = expected


class BadSignatureError(CheckpointError):
    """The signature does not verify with the named key version."""

    def __init__(self, key_name: str, key_version: int) -> None:
        super().__init__(f"signature does not verify with {key_name}:v{key_version}")
        self.key_name = key_name
        self.key_version = key_version


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCheckpointError(f"{what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedCheckpointError(f"{what} is not canonical base64")
    return raw


def _check_key_name(name: str) -> None:
    if not _KEY_NAME_RE.fullmatch(name):
        raise ValueError(f"key name {name!r} must be non-empty, without spaces, '+' or ':'")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Unsigned: the log ``origin`` had ``size`` events with ``root`` at ``timestamp`` (UTC)."""

    origin: str
    size: int
    root: bytes
    timestamp: datetime

    def __post_init__(self) -> None:
        if not self.origin or not self.origin.isprintable() or self.origin != self.origin.strip():
            raise ValueError(f"origin {self.origin!r} must be printable, non-empty, unpadded")
        if self.size < 0:
            raise ValueError("size must be >= 0")
        if len(self.root) != HASH_SIZE:
            raise ValueError(f"root must be {HASH_SIZE} bytes")
        if self.timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        object.__setattr__(self, "root", bytes(self.root))
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))

    def body(self) -> bytes:
        """The canonical note body, the bytes that are signed."""
        stamp = self.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\ntimestamp {stamp}\n".encode()

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        """Parse a canonical body; raises :class:`MalformedCheckpointError`."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedCheckpointError("body is not UTF-8") from None
        lines = text.split("\n")
        if len(lines) != 5 or lines[4] != "":
            raise MalformedCheckpointError("body must be exactly four lines ending in newline")
        origin, size_line, root_line, stamp_line, _ = lines
        if not _SIZE_RE.fullmatch(size_line):
            raise MalformedCheckpointError("size line is not a canonical decimal")
        root = _b64decode(root_line, "root line")
        stamp = _TIMESTAMP_RE.fullmatch(stamp_line)
        if stamp is None:
            raise MalformedCheckpointError("timestamp line is malformed")
        try:
            timestamp = datetime.fromisoformat(stamp.group(1)).replace(tzinfo=UTC)
            checkpoint = cls(origin, int(size_line), root, timestamp)
        except ValueError as exc:
            raise MalformedCheckpointError(str(exc)) from None
        if checkpoint.body() != body:
            raise MalformedCheckpointError("body is not canonical")
        return checkpoint


def _key_id(note_name: str, public_key: bytes) -> bytes:
    """signed-note key id: ``SHA-256(name || "\\n" || 0x01 || key)[:4]``."""
    return hashlib.sha256(note_name.encode() + b"\n" + _ED25519_ALG + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint and the Ed25519 signature of its body by ``key_name`` ``key_version``."""

    checkpoint: Checkpoint
    key_name: str
    key_version: int
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.key_name)
        if self.key_version < 1:
            raise ValueError("key versions start at 1")
        if len(self.key_id) != 4:
            raise ValueError("key id must be 4 bytes")
        if len(self.signature) != 64:
            raise ValueError("an ed25519 signature is 64 bytes")

    @property
    def note_name(self) -> str:
        """The signed-note key name, ``<key name>:v<version>``."""
        return f"{self.key_name}:v{self.key_version}"

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    @property
    def timestamp(self) -> datetime:
        return self.checkpoint.timestamp

    def to_bytes(self) -> bytes:
        """The signed note: body, empty line, one signature line."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return self.checkpoint.body() + f"\n{_SIG_DASH} {self.note_name} {blob}\n".encode()

    def to_text(self) -> str:
        return self.to_bytes().decode("utf-8")

    @classmethod
    def from_bytes(cls, note: bytes) -> SignedCheckpoint:
        """Parse a note with exactly one signature; raises :class:`MalformedCheckpointError`."""
        body, sep, sigs = note.partition(b"\n\n")
        if not sep:
            raise MalformedCheckpointError("no blank line between body and signature")
        checkpoint = Checkpoint.from_body(body + b"\n")
        try:
            sig_lines = sigs.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise MalformedCheckpointError("signature is not UTF-8") from None
        if len(sig_lines) != 2 or sig_lines[1] != "":
            raise MalformedCheckpointError("exactly one signature line, ending in newline")
        match = _SIG_LINE_RE.fullmatch(sig_lines[0])
        if match is None:
            raise MalformedCheckpointError("signature line is malformed")
        blob = _b64decode(match.group(3), "signature")
        if len(blob) != 4 + 64:
            raise MalformedCheckpointError("signature is not a key id and an ed25519 signature")
        signed = cls(checkpoint, match.group(1), int(match.group(2)), blob[:4], blob[4:])
        if signed.to_bytes() != note:
            raise MalformedCheckpointError("signed note is not canonical")
        return signed

    @classmethod
    def from_text(cls, note: str) -> SignedCheckpoint:
        return cls.from_bytes(note.encode("utf-8"))

    def verify(self, keyring: PublicKeyring, origin: str | None = None) -> None:
        """Raise unless the signature holds (and the origin is ``origin``, if given).

        Raises :class:`WrongOriginError`, :class:`UnknownKeyError` or :class:`BadSignatureError`.
        """
        if origin is not None and self.checkpoint.origin != origin:
            raise WrongOriginError(self.checkpoint.origin, origin)
        public = keyring.raw_public_key(self.key_name, self.key_version)
        if _key_id(self.note_name, public) != self.key_id:
            raise BadSignatureError(self.key_name, self.key_version)
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(
                self.signature, self.checkpoint.body()
            )
        except InvalidSignature:
            raise BadSignatureError(self.key_name, self.key_version) from None


class Signer(Protocol):
    """Signs checkpoint bodies with the current version of an Ed25519 key.

    The production signer is OpenBao transit (the private key never leaves it); see
    :func:`parse_transit_signature` for turning its answer into the returned pair.
    """

    @property
    def key_name(self) -> str:
        """The key's name (transit key name), without version."""
        ...

    def sign(self, message: bytes) -> tuple[int, bytes]:
        """Sign ``message`` as is; return ``(key version used, 64-byte signature)``."""
        ...


def sign_checkpoint(
    checkpoint: Checkpoint, signer: Signer, keyring: PublicKeyring
) -> SignedCheckpoint:
    """Sign ``checkpoint``; ``keyring`` must hold the key version the signer uses.

    The signature is verified before it is returned, so a signer that used a version the keyring
    lacks (:class:`UnknownKeyError`: refresh the keyring after a rotation) or a wrong key
    (:class:`BadSignatureError`) fails here rather than in an audit years later.
    """
    version, signature = signer.sign(checkpoint.body())
    note_name = f"{signer.key_name}:v{version}"
    public = keyring.raw_public_key(signer.key_name, version)
    signed = SignedCheckpoint(
        checkpoint, signer.key_name, version, _key_id(note_name, public), signature
    )
    signed.verify(keyring)
    return signed


class PublicKeyring:
    """The public versions of one named Ed25519 key: version → raw 32-byte key.

    Rotation adds versions and never removes them, so old checkpoints keep verifying. JSON form
    (:meth:`to_json`) is ``{"name": ..., "keys": {"1": "<base64 raw key>", ...}}``, the shape of
    transit's ``export/public-key`` answer plus the name.
    """

    __slots__ = ("_keys", "_name")

    def __init__(self, name: str, keys: Mapping[int, bytes | Ed25519PublicKey]) -> None:
        _check_key_name(name)
        self._name = name
        self._keys: dict[int, bytes] = {}
        for version, key in keys.items():
            raw = _raw_public(key) if isinstance(key, Ed25519PublicKey) else bytes(key)
            if version < 1:
                raise ValueError("key versions start at 1")
            Ed25519PublicKey.from_public_bytes(raw)  # validates length and encoding
            self._keys[version] = raw

    @property
    def name(self) -> str:
        return self._name

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keys))

    def raw_public_key(self, key_name: str, version: int) -> bytes:
        """The raw key for ``key_name`` version ``version``; raises :class:`UnknownKeyError`."""
        if key_name != self._name or version not in self._keys:
            raise UnknownKeyError(key_name, version)
        return self._keys[version]

    def with_version(self, version: int, key: bytes | Ed25519PublicKey) -> PublicKeyring:
        """A keyring with one more version (a rotation); an existing version must not change."""
        raw = _raw_public(key) if isinstance(key, Ed25519PublicKey) else bytes(key)
        if self._keys.get(version, raw) != raw:
            raise ValueError(f"version {version} already holds a different key")
        return PublicKeyring(self._name, {**self._keys, version: raw})

    def note_verifier_key(self, version: int) -> str:
        """The signed-note verifier key ``<name>:v<N>+<hex key id>+<base64(0x01 || key)>``."""
        raw = self.raw_public_key(self._name, version)
        note_name = f"{self._name}:v{version}"
        encoded = base64.b64encode(_ED25519_ALG + raw).decode("ascii")
        return f"{note_name}+{_key_id(note_name, raw).hex()}+{encoded}"

    def to_json(self) -> dict[str, object]:
        keys = {str(v): base64.b64encode(k).decode("ascii") for v, k in sorted(self._keys.items())}
        return {"name": self._name, "keys": keys}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PublicKeyring:
        """Inverse of :meth:`to_json`; raises :class:`MalformedCheckpointError` on bad input."""
        name, keys = data.get("name"), data.get("keys")
        if not isinstance(name, str) or not isinstance(keys, Mapping):
            raise MalformedCheckpointError("keyring needs a 'name' and a 'keys' mapping")
        return cls.from_transit(name, keys)

    @classmethod
    def from_transit(cls, name: str, keys: Mapping[str, object]) -> PublicKeyring:
        """Build from transit's ``data.keys``: from ``export/public-key`` (version → base64) or
        from reading the key (version → ``{"public_key": base64, ...}``)."""
        parsed: dict[int, bytes] = {}
        for version, entry in keys.items():
            value = entry.get("public_key") if isinstance(entry, Mapping) else entry
            if not isinstance(value, str) or not version.isdigit():
                raise MalformedCheckpointError(f"key version {version!r} has no public key")
            parsed[int(version)] = parse_transit_public_key(value)
        try:
            return cls(name, parsed)
        except ValueError as exc:
            raise MalformedCheckpointError(str(exc)) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKeyring):
            return NotImplemented
        return (self._name, self._keys) == (other._name, other._keys)

    def __hash__(self) -> int:
        return hash((self._name, tuple(sorted(self._keys.items()))))

    def __repr__(self) -> str:
        return f"PublicKeyring({self._name!r}, versions={self.versions})"


def parse_transit_public_key(text: str) -> bytes:
    """A transit ``ed25519`` public key (base64 of the raw 32 bytes) as raw bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCheckpointError("public key is not base64") from None
    if len(raw) != 32:
        raise MalformedCheckpointError("an ed25519 public key is 32 bytes")
    return raw


def parse_transit_signature(text: str) -> tuple[int, bytes]:
    """Split transit's ``vault:v<N>:<base64>`` signature into ``(N, 64-byte signature)``."""
    match = _TRANSIT_SIG_RE.fullmatch(text.strip())
    if match is None:
        raise MalformedCheckpointError("not a transit signature 'vault:v<N>:<base64>'")
    try:
        signature = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCheckpointError("transit signature is not base64") from None
    if len(signature) != 64:
        raise MalformedCheckpointError("an ed25519 signature is 64 bytes")
    return int(match.group(1)), signature


class Ed25519Signer:
    """A local, in-memory :class:`Signer` with versioned keys, for tests and offline use."""

    def __init__(self, key_name: str, keys: Mapping[int, Ed25519PrivateKey] | None = None) -> None:
        _check_key_name(key_name)
        self._key_name = key_name
        self._keys = dict(keys) if keys else {1: Ed25519PrivateKey.generate()}

    @property
    def key_name(self) -> str:
        return self._key_name

    @property
    def latest_version(self) -> int:
        return max(self._keys)

    def rotate(self) -> int:
        """Add a new key version, used from now on; return its number."""
        version = self.latest_version + 1
        self._keys[version] = Ed25519PrivateKey.generate()
        return version

    def sign(self, message: bytes) -> tuple[int, bytes]:
        version = self.latest_version
        return version, self._keys[version].sign(message)

    def public_key(self, version: int | None = None) -> bytes:
        """Raw public key of ``version`` (default: latest)."""
        key = self._keys[self.latest_version if version is None else version]
        return _raw_public(key.public_key())

    def public_keyring(self) -> PublicKeyring:
        return PublicKeyring(self._key_name, {v: k.public_key() for v, k in self._keys.items()})

    def sign_checkpoint(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        """Sign with the latest version."""
        return sign_checkpoint(checkpoint, self, self.public_keyring())
