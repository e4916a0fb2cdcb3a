"""11.1.a: an account's phone is institutional — judged against the policy's numbering."""

from __future__ import annotations

import pytest

from events.domain import Policy
from events.domain.values import phone_violations
from events.errors import ConfigurationError


def test_the_policy_reads_the_institutional_prefixes_and_records_them() -> None:
    """``[cuentas] prefijos_telefono`` is read, recorded in the policy's settings (so a later
    report knows the rule in force), and absent from the settings when not configured."""
    policy = Policy.from_mapping({"cuentas": {"prefijos_telefono": ["+52 55 5483"]}})
    assert policy.institutional_phone_prefixes == ("+52 55 5483",)
    assert policy.settings()["cuentas"] == {"prefijos_telefono": ["+52 55 5483"]}
    assert "cuentas" not in Policy().settings()


@pytest.mark.parametrize(
    "value", [["55x"], ["5"], "+52 55", [1234], ["+52 55 5483 3800 1234 5678"]]
)
def test_bad_prefixes_name_their_key(value: object) -> None:
    """A prefix that is not 2–15 digits, or not a list of texts, is refused naming the key."""
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_mapping({"cuentas": {"prefijos_telefono": value}})
    assert "cuentas.prefijos_telefono" in str(raised.value.args) + repr(raised.value)


@pytest.mark.parametrize(
    ("observed", "registered", "prefixes", "expected"),
    [
        (None, None, ("+52 55 5483",), ["telefono_faltante"]),
        (None, None, (), ["telefono_faltante"]),
        ("+525554833800", None, ("+52 55 5483",), []),
        ("5554833800 ext 12", None, ("55 5483",), []),
        ("+523312345678", None, ("+52 55 5483",), ["telefono_no_institucional"]),
        ("+523312345678", None, (), []),  # no numbering configured: not judged
        ("+525554833801", "5554833800", ("5554",), ["telefono_distinto_al_registrado"]),
        ("+525554833800", "5554833800", ("5554",), []),
    ],
)
def test_phone_violations(
    observed: str | None, registered: str | None, prefixes: tuple[str, ...], expected: list[str]
) -> None:
    """Missing, outside the numbering (Mexico's +52 or not), or different from the registered
    phone: each its violation; an institutional phone as registered: none."""
    assert phone_violations(observed, registered=registered, prefixes=prefixes) == expected
