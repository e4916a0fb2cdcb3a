"""Find actual secret bytes where they must never be (R7): events, logs, projections, errors.

Given the real secrets of a test run (a password, a staged password, a TOTP seed or code, a
token, a wrapping token, an unseal key), :func:`scan` walks any value — strings, bytes, mappings,
sequences, dataclasses, exceptions with their causes, structlog ``capture_logs()`` entries — and
reports where a secret appears, raw or in the encodings a leak usually takes: JSON-escaped,
URL-encoded, hex, and base64 at any of the three byte alignments inside a longer base64 text.
A secret of 8 bytes or more is found in part too: every run of 8 of its bytes is looked for, in
every encoding, so a token cut short in a log line is still caught.

A :class:`Finding` names the location and the encoding, never the secret, so a failing assertion
does not print what it protects.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MIN_SECRET_LENGTH = 6
# A secret of this many bytes or more is also found in part: any run of WINDOW of its bytes is
# a leak (a token logged cut at 22 of 24 characters still gives it away).
WINDOW = 8
_MAX_DEPTH = 40


@dataclass(frozen=True)
class Finding:
    """Where a secret was found and in which encoding (never the secret itself)."""

    location: str
    encoding: str
    secret_index: int


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _base64_cores(raw: bytes, encode: Any) -> list[bytes]:
    """What base64(x + raw + y) holds whatever the bytes around ``raw``, at each of the three
    byte alignments: the characters whose six bits all come from ``raw`` (a 6-byte TOTP code
    still gives 7 or 8 of them at every alignment)."""
    cores = []
    for shift in range(3):
        encoded = encode(b"\0" * shift + raw + b"\0\0\0")
        first = -(-8 * shift // 6)  # the first character made only of raw's bits
        last = 8 * (shift + len(raw)) // 6  # one past the last
        core = encoded[first:last]
        if len(core) >= 7:
            cores.append(core)
    return cores


def _windows(raw: bytes) -> list[bytes]:
    """``raw`` itself if short, else every run of :data:`WINDOW` bytes in it."""
    if len(raw) <= WINDOW:
        return [raw]
    return [raw[i : i + WINDOW] for i in range(len(raw) - WINDOW + 1)]


def _text_windows(text: str) -> list[str]:
    if len(text) <= WINDOW:
        return [text]
    return [text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)]


def variants(secret: str | bytes) -> dict[str, list[bytes]]:
    """The encodings of ``secret`` — of every :data:`WINDOW`-byte run of it when it is longer —
    that :func:`scan` looks for, by name. Each encoding here works byte by byte (or character by
    character), so the encoding of a part of the secret is a part of the encoded secret."""
    raw = _as_bytes(secret)
    parts = _windows(raw)
    texts = _text_windows(raw.decode("utf-8", errors="replace"))
    found: dict[str, list[bytes]] = {
        "raw": parts,
        "json": [
            escaped
            for text in texts
            for escaped in (
                json.dumps(text)[1:-1].encode(),
                json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8"),
            )
        ],
        "url": [
            quoted
            for part in parts
            for quoted in (
                urllib.parse.quote(part, safe="").encode(),
                urllib.parse.quote_plus(part, safe="").encode(),
            )
        ],
        "hex": [binascii.hexlify(part) for part in parts],
        "base64": [core for part in parts for core in _base64_cores(part, base64.b64encode)],
        "base64url": [
            core for part in parts for core in _base64_cores(part, base64.urlsafe_b64encode)
        ],
    }
    return {name: sorted(set(values)) for name, values in found.items() if values}


def _occurs(needle: bytes, blob: bytes, encoding: str) -> bool:
    """Whether ``needle`` is in ``blob``; a needle shorter than :data:`WINDOW` bytes (a 6-digit
    code) counts in its raw forms only as a whole token, not inside a longer run of letters and
    digits (``123456`` inside a timestamp ``1733123456789`` is not that code)."""
    if len(needle) >= WINDOW or encoding.startswith("base64"):
        return needle in blob
    start = blob.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = blob[start - 1 : start]
        after = blob[end : end + 1]
        if not (before.isalnum() or after.isalnum()):
            return True
        start = blob.find(needle, start + 1)
    return False


class _Scanner:
    def __init__(self, secrets: Iterable[str | bytes], min_length: int) -> None:
        self.needles: list[tuple[int, str, bytes]] = []
        for index, secret in enumerate(secrets):
            raw = _as_bytes(secret)
            if len(raw) < min_length:
                raise ValueError(f"secret #{index} shorter than {min_length} bytes: too ambiguous")
            for name, encoded in variants(raw).items():
                self.needles.extend((index, name, e) for e in encoded if e)
        self.findings: list[Finding] = []
        self.seen: set[int] = set()

    def check(self, blob: bytes, location: str) -> None:
        lowered = blob.lower()
        found: set[tuple[int, str]] = set()
        for index, name, needle in self.needles:
            # hex is case-insensitive; everything else must match exactly.
            if (index, name) not in found and _occurs(
                needle, lowered if name == "hex" else blob, name
            ):
                found.add((index, name))
                self.findings.append(Finding(location, name, index))

    def walk(self, value: Any, location: str, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(value, str):
            self.check(value.encode("utf-8", errors="surrogatepass"), location)
            return
        if isinstance(value, bytes | bytearray | memoryview):
            self.check(bytes(value), location)
            return
        if value is None or isinstance(value, bool | int | float):
            return
        if id(value) in self.seen:
            return
        self.seen.add(id(value))
        if isinstance(value, BaseException):
            self.check(str(value).encode("utf-8", errors="replace"), f"{location}:str")
            self.check(repr(value).encode("utf-8", errors="replace"), f"{location}:repr")
            self.walk(value.args, f"{location}.args", depth + 1)
            self.walk(vars(value), f"{location}.__dict__", depth + 1)
            self.walk(getattr(value, "__notes__", None), f"{location}.__notes__", depth + 1)
            self.walk(value.__cause__, f"{location}.__cause__", depth + 1)
            self.walk(value.__context__, f"{location}.__context__", depth + 1)
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                self.walk(key, f"{location}[key]", depth + 1)
                self.walk(item, f"{location}[{key!r}]", depth + 1)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for position, item in enumerate(value):
                self.walk(item, f"{location}[{position}]", depth + 1)
            return
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                self.walk(getattr(value, f.name, None), f"{location}.{f.name}", depth + 1)
        elif hasattr(value, "__dict__"):
            self.walk(vars(value), f"{location}.__dict__", depth + 1)
        self.check(repr(value).encode("utf-8", errors="replace"), f"{location}:repr")


def scan(
    haystack: Any,
    secrets: Iterable[str | bytes],
    *,
    where: str = "value",
    min_length: int = MIN_SECRET_LENGTH,
) -> list[Finding]:
    """Every place in ``haystack`` where one of ``secrets`` appears (in any known encoding).

    Secrets shorter than ``min_length`` bytes are refused (they would match by chance); pass a
    smaller ``min_length`` on purpose for a 6-digit TOTP code in a small haystack.
    """
    scanner = _Scanner(secrets, min_length)
    scanner.walk(haystack, where)
    return scanner.findings


def assert_no_secrets(
    haystack: Any,
    secrets: Iterable[str | bytes],
    *,
    where: str = "value",
    min_length: int = MIN_SECRET_LENGTH,
) -> None:
    """Raise ``AssertionError`` naming the locations (not the secrets) if any secret appears."""
    findings = scan(haystack, secrets, where=where, min_length=min_length)
    if findings:
        described = ", ".join(
            f"secret #{f.secret_index} ({f.encoding}) at {f.location}" for f in findings[:20]
        )
        raise AssertionError(f"{len(findings)} secret occurrence(s): {described}")
