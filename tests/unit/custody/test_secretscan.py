"""The secret scanner finds secret bytes in the shapes a leak takes (pure; no server)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field

import pytest

from custody.secretscan import assert_no_secrets, scan, variants

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
