"""Per-platform password rules and generation (pure; no server)."""

from __future__ import annotations

import secrets
import string
from collections import Counter

import pytest

from custody.app.passwords import (
    AMBIGUOUS,
    DEFAULT_RULES,
    PasswordRules,
    check_password,
    generate_password,
    rules_for,
    rules_from_mapping,
)
from events.errors import ConfigurationError


@pytest.mark.parametrize("platform", [*DEFAULT_RULES, "mastodon"])
def test_generated_passwords_follow_the_platform_rules(platform: str) -> None:
    """Every generated password has the platform's length, alphabet and every required class."""
    rules = rules_for(platform)
    for _ in range(200):
        password = generate_password(platform)
        assert check_password(password, rules) == []
        assert not set(password) & set(AMBIGUOUS)


def test_defaults_are_strong_and_within_platform_limits() -> None:
    """Defaults give at least 100 bits and respect each platform's maximum (TikTok: 20)."""
    for platform, rules in DEFAULT_RULES.items():
        assert rules.entropy_bits() >= 100, platform
        assert rules.min_length <= rules.length <= rules.max_length
    assert len(generate_password("tiktok")) == 20
    assert len(generate_password("x")) == 24


def test_generation_uses_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Characters are drawn with secrets.choice (a CSPRNG), not random."""
    calls: list[str] = []

    def fake_choice(alphabet: str) -> str:
        calls.append(alphabet)
        return "aA2!"[len(calls) % 4]

    monkeypatch.setattr(secrets, "choice", fake_choice)
    assert generate_password("x") == ("A2!a" * 6)
    assert len(calls) == 24


def test_characters_are_roughly_uniform() -> None:
    """Over many draws every alphabet character appears, none wildly more than others."""
    rules = rules_for("x")
    counts = Counter("".join(generate_password("x") for _ in range(1500)))
    assert set(counts) == set(rules.alphabet())
    expected = 1500 * rules.length / len(rules.alphabet())
    assert all(0.6 * expected < n < 1.4 * expected for n in counts.values())


def test_policy_overrides() -> None:
    """The policy file's Spanish keys override one platform, starting from its default."""
    rules = rules_from_mapping(
        {"tiktok": {"longitud": 18, "simbolos": "!@#"}, "X": {"longitud": 32}}
    )
    assert rules["tiktok"].length == 18
    assert rules["tiktok"].symbols == "!@#"
    assert rules["tiktok"].max_length == 20  # kept from the default
    password = generate_password("tiktok", rules)
    assert len(password) == 18
    assert set(password) <= set(rules["tiktok"].alphabet())
    assert len(generate_password("x", rules)) == 32
    assert len(generate_password("facebook", rules)) == 24  # not overridden


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"tiktok": {"longitud": 30}}, "outside"),
        ({"x": {"simbolos": "!'"}}, "quotes"),
        ({"x": {"longitud": 8}}, "entropy"),
        ({"x": {"color": "rojo"}}, "unknown key"),
        ({"x": {"longitud": True}}, "must be int"),
        ({"x": "24"}, "must be a table"),
    ],
)
def test_bad_policy_is_a_configuration_error(table: dict[str, object], problem: str) -> None:
    """Unusable rules are refused with the offending key named."""
    with pytest.raises(ConfigurationError) as refused:
        rules_from_mapping(table)
    assert problem in refused.value.problem
    assert refused.value.name.startswith("contrasenas.")


def test_rules_without_any_class_are_refused() -> None:
    """A rule set with no character class cannot exist."""
    with pytest.raises(ConfigurationError):
        PasswordRules(lowercase=False, uppercase=False, digits=False, symbols="")


def test_check_password_names_problems() -> None:
    """check_password reports length, alphabet and missing classes."""
    rules = PasswordRules(length=20)
    assert "length" in check_password("short", rules)
    assert "alphabet" in check_password("O" * 20, rules)
    assert "missing-class" in check_password(string.ascii_lowercase[:20], rules)
