"""otpauth URI validation and code validity windows (pure; no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custody.errors import InvalidOtpauthUriError
from custody.vault.credentials import _valid_until, parse_otpauth

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_parses_a_typical_uri() -> None:
    """Issuer from the parameter, label account, defaults for algorithm, digits, period."""
    key = parse_otpauth("DD05-x", f"otpauth://totp/X:DD05IECM?secret={SEED.lower()}&issuer=X")
    assert (key.issuer, key.label, key.algorithm, key.digits, key.period) == (
        "X",
        "DD05IECM",
        "SHA1",
        6,
        30,
    )
    assert key.secret_b32 == SEED
    assert SEED not in repr(key)


def test_accepts_spaces_and_padding_in_the_seed() -> None:
    """Seeds as platforms print them (grouped, padded) are normalized."""
    key = parse_otpauth("DD05-x", "otpauth://totp/a?secret=JBSW%20Y3DP%20EHPK%203PXP%3D%3D")
    assert key.secret_b32.rstrip("=") == "JBSWY3DPEHPK3PXP"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        (f"https://totp/a?secret={SEED}", "scheme"),
        (f"otpauth://hotp/a?secret={SEED}&counter=1", "type"),
        ("otpauth://totp/a?issuer=X", "secret-missing"),
        ("otpauth://totp/a?secret=JBSWY3DP!!", "secret-encoding"),
        ("otpauth://totp/a?secret=JBSWY3DPE", "secret-encoding"),
        ("otpauth://totp/a?secret=JBSWY3DPEHPK3PX", "secret-too-short"),
        (f"otpauth://totp/a?secret={SEED}&algorithm=MD5", "algorithm"),
        (f"otpauth://totp/a?secret={SEED}&digits=7", "digits"),
        (f"otpauth://totp/a?secret={SEED}&period=5", "period"),
        (f"otpauth://totp/a?secret={SEED}&period=x", "digits-or-period"),
        (f"otpauth://totp/a?secret={SEED}&secret={SEED}", "duplicate-parameter"),
        ("otpauth://totp/a?secret=" + "A" * 3000, "too-long"),
    ],
)
def test_rejects(uri: str, problem: str) -> None:
    """Each defect is named; the message never contains the seed."""
    with pytest.raises(InvalidOtpauthUriError) as refused:
        parse_otpauth("DD05-x", uri)
    assert refused.value.problem == problem
    assert SEED not in str(refused.value)


def test_valid_until_prefers_the_server() -> None:
    """OpenBao's expire_time wins; otherwise the end of the generation window."""
    assert _valid_until({"expire_time": 1800000030}, 0, None) == datetime.fromtimestamp(
        1800000030, UTC
    )
    assert _valid_until({"period": "30s"}, 1800000001.5, None).timestamp() == 1800000030
    assert _valid_until({}, 1800000059.9, 60).timestamp() == 1800000060
    assert _valid_until({"generated": 1800000010}, 0, None).timestamp() == 1800000030
