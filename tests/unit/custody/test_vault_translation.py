"""Error translation for server answers the test server cannot easily produce (pure)."""

from __future__ import annotations

import pytest
from hvac import exceptions as hvac_exceptions

from custody.errors import (
    VaultCasConflictError,
    VaultInvalidRequestError,
    VaultPermissionDeniedError,
    VaultServerError,
    VaultTokenInvalidError,
    VaultUnavailableError,
    WrappingTokenInvalidError,
)
from custody.vault.client import VaultClient, parse_time
from events.errors import VaultError

CLIENT = VaultClient("http://127.0.0.1:1", "t")


def translate(
    exc: Exception, body: dict[str, object] | None = None, secret: bool = False
) -> VaultError:
    return CLIENT._translate(exc, "GET", "p/q", "op", "DD05-x", body, secret)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (hvac_exceptions.RateLimitExceeded(errors=["slow down"]), 429),
        (hvac_exceptions.BadGateway(errors=["bad gateway"]), 502),
        (hvac_exceptions.VaultDown(errors=["standby"]), 503),
        (hvac_exceptions.VaultNotInitialized(errors=["not initialized"]), 501),
        (hvac_exceptions.PreconditionFailed(errors=["index"]), 412),
    ],
)
def test_unavailable(exc: Exception, status: int) -> None:
    """Transient server states become VaultUnavailableError with the HTTP status."""
    error = translate(exc)
    assert isinstance(error, VaultUnavailableError)
    assert error.status == status


def test_forbidden_variants() -> None:
    """Vault's "invalid token" 403 is a token error; a plain 403 is a permission error."""
    assert isinstance(
        translate(hvac_exceptions.Forbidden(errors=["permission denied", "invalid token"])),
        VaultTokenInvalidError,
    )
    assert isinstance(
        translate(hvac_exceptions.Forbidden(errors=["permission denied"])),
        VaultPermissionDeniedError,
    )
    assert isinstance(
        translate(hvac_exceptions.Unauthorized(errors=[])), VaultPermissionDeniedError
    )


def test_bad_requests() -> None:
    """CAS conflicts keep the expected version; wrapping errors are recognised; the reason is
    dropped when the body was secret."""
    cas = translate(
        hvac_exceptions.InvalidRequest(
            errors=["check-and-set parameter did not match the current version"]
        ),
        {"options": {"cas": 4}},
    )
    assert isinstance(cas, VaultCasConflictError)
    assert cas.expected_version == 4
    assert isinstance(
        translate(
            hvac_exceptions.InvalidRequest(errors=["wrapping token is not valid or does not exist"])
        ),
        WrappingTokenInvalidError,
    )
    echoed = hvac_exceptions.InvalidRequest(errors=["bad value hunter2-secret"])
    assert isinstance(translate(echoed), VaultInvalidRequestError)
    hidden = translate(echoed, secret=True)
    assert isinstance(hidden, VaultInvalidRequestError)
    assert hidden.reason is None
    assert "hunter2" not in str(hidden)


def test_server_errors() -> None:
    """A 500 or an unknown failure is a VaultServerError."""
    assert isinstance(
        translate(hvac_exceptions.InternalServerError(errors=["boom"])), VaultServerError
    )
    assert isinstance(translate(hvac_exceptions.UnexpectedError("?")), VaultServerError)


def test_client_repr_hides_the_token() -> None:
    """A client's repr says whether a token is set, never which."""
    assert "t'" not in repr(VaultClient("http://x", "secret-token-value"))
    assert "secret-token-value" not in repr(VaultClient("http://x", "secret-token-value"))


def test_parse_time() -> None:
    """RFC 3339 with nanoseconds parses; Vault's zero time and junk give None."""
    parsed = parse_time("2026-12-30T04:13:08.043617349Z")
    assert parsed is not None
    assert parsed.microsecond == 43617
    assert parsed.utcoffset() is not None
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None
    assert parse_time("nonsense") is None
