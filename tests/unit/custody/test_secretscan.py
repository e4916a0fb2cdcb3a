"""The secret scanner finds secret bytes in the shapes a leak takes (pure; no server)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.secretscan import WINDOW, assert_no_secrets, scan, variants

SECRET = "S3cr3t!Pa$$w0rd#2025"


@dataclass
class Holder:
    name: str
    hidden: str = field(repr=False)


def test_clean_haystack_has_no_findings() -> None:
    """Nothing found where the secret is absent (the scanner does not cry wolf)."""
    assert scan({"event": "rotated", "version": 3, "fingerprint": "vault:v1:abc"}, [SECRET]) == []


@pytest.mark.parametrize(
    ("haystack", "encoding"),
    [
        (f"log line with {SECRET} inside", "raw"),
        (SECRET.encode(), "raw"),
        (json.dumps({"p": SECRET + '"'}), "raw"),
        (urllib.parse.quote(SECRET, safe=""), "url"),
        (SECRET.encode().hex().upper(), "hex"),
    ],
)
def test_finds_encodings(haystack: object, encoding: str) -> None:
    """Raw, URL-encoded and hex forms are found."""
    assert encoding in {f.encoding for f in scan(haystack, [SECRET])}


@pytest.mark.parametrize("prefix", ["", "x", "xy", "xyz"])
def test_finds_base64_at_any_alignment(prefix: str) -> None:
    """The secret inside a longer base64 text is found whatever its byte offset."""
    blob = base64.b64encode(f'{{"a":"{prefix}{SECRET}","b":"tail"}}'.encode()).decode()
    assert "base64" in {f.encoding for f in scan(blob, [SECRET])}
    urlsafe = base64.urlsafe_b64encode(f"{prefix}{SECRET}~~~".encode()).decode()
    assert {"base64", "base64url"} & {f.encoding for f in scan(urlsafe, [SECRET])}


def test_finds_json_escaped_unicode() -> None:
    """A secret with non-ASCII characters is found after JSON escaping."""
    secret = "contraseña-ñandú-2025"
    assert scan(json.dumps({"x": secret}), [secret])
    assert "json" in {f.encoding for f in scan(json.dumps({"x": secret}), [secret])}


def test_walks_structures_and_exceptions() -> None:
    """Nested mappings, dataclass fields hidden from repr, exception causes are all searched."""
    try:
        try:
            raise ValueError(f"inner {SECRET}")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as outer:
        error = outer
    findings = scan({"logs": [{"e": 1}], "errors": [error], "obj": Holder("n", SECRET)}, [SECRET])
    locations = {f.location for f in findings}
    assert any("__cause__" in loc for loc in locations)
    assert any(loc.endswith(".hidden") for loc in locations)


def test_assertion_names_places_not_secrets() -> None:
    """The failure message says where, never what."""
    with pytest.raises(AssertionError) as failure:
        assert_no_secrets(["ok", f"leak {SECRET}"], [SECRET], where="logs")
    assert "logs[1]" in str(failure.value)
    assert SECRET not in str(failure.value)


def test_short_secrets_are_refused() -> None:
    """Too-short needles would match by chance: refused unless asked for."""
    with pytest.raises(ValueError, match="shorter"):
        scan("x", ["12345"])
    assert scan("code 12345", ["12345"], min_length=5)


def test_variants_never_empty() -> None:
    """Every encoding family yields at least one needle for a normal secret."""
    assert set(variants(SECRET)) == {"raw", "json", "url", "hex", "base64", "base64url"}


def test_finds_a_secret_logged_in_part() -> None:
    """A 24-character token logged cut at 22 characters (either end) is still found."""
    token = "hvs.CAESIJx9kq2Lr7TmWz4a"
    assert len(token) == 24
    assert scan(f"token={token[:22]}...", [token])
    assert scan(f"...{token[2:]}", [token])
    assert scan(base64.b64encode(f"x{token[:22]}".encode()).decode(), [token])


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab"])
def test_finds_a_totp_code_base64_encoded_at_every_alignment(prefix: bytes) -> None:
    """A 6-digit code, base64-encoded inside a longer text at any of the 3 alignments."""
    blob = base64.b64encode(prefix + b'{"codigo":"492039"}').decode()
    assert {"base64"} <= {f.encoding for f in scan(blob, ["492039"])}


def test_a_short_code_inside_a_longer_number_is_not_that_code() -> None:
    """A 6-digit code counts raw only as a token of its own, not inside a timestamp."""
    assert scan("ts=1733492039117 seq=7", ["492039"]) == []
    assert scan("codigo: 492039.", ["492039"])


# -- properties -------------------------------------------------------------------------------

_SECRET_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=WINDOW, max_size=48
)
_ANY_TEXT = st.text(max_size=200)
# Text that shares no character with any encoding the scanner looks for (letters, digits and
# the base64, URL and JSON escape characters): a haystack of it can hold no secret.
_UNRELATED_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=["Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Cs"],
        blacklist_characters="+/=-_%.\\",
    ),
    max_size=300,
)


@given(secret=_SECRET_TEXT, before=_ANY_TEXT, after=_ANY_TEXT)
def test_property_a_secret_at_any_offset_is_found(secret: str, before: str, after: str) -> None:
    """A secret embedded anywhere in any text is found."""
    assert scan(before + secret + after, [secret])


@given(secret=_SECRET_TEXT, data=st.data(), before=_ANY_TEXT, after=_ANY_TEXT)
def test_property_any_part_of_8_bytes_is_found(
    secret: str, data: st.DataObject, before: str, after: str
) -> None:
    """Any contiguous part of at least 8 bytes of a secret, anywhere, is found."""
    start = data.draw(st.integers(0, len(secret) - WINDOW))
    end = data.draw(st.integers(start + WINDOW, len(secret)))
    assert scan(before + secret[start:end] + after, [secret])


@given(
    secret=st.binary(min_size=6, max_size=40),
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    urlsafe=st.booleans(),
)
def test_property_base64_at_any_alignment_is_found(
    secret: bytes, before: bytes, after: bytes, urlsafe: bool
) -> None:
    """A secret of 6 bytes or more, base64-encoded (standard or URL-safe) inside other bytes at
    any alignment, is found — a 6-digit TOTP code included."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    assert scan(encode(before + secret + after), [secret])


_TOKEN_TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.",
    min_size=WINDOW,
    max_size=48,
)


@given(secrets=st.lists(_TOKEN_TEXT, min_size=1, max_size=4), haystack=_UNRELATED_TEXT)
def test_property_text_without_the_secret_is_not_flagged(secrets: list[str], haystack: str) -> None:
    """Text that cannot hold a token-like secret in any encoding is never flagged."""
    assert scan({"log": haystack, "lines": haystack.split()}, secrets) == []
