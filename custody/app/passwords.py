"""Strong passwords per platform, drawn with :mod:`secrets` (6.X: a designation change obliges a
new password).

Each platform has length and character rules (:class:`PasswordRules`); the defaults below stay
inside what each platform accepts, leave out characters that are easy to misread when typed by
hand (``0 O 1 l I``) or that break copying and shells (quotes, backslash, spaces), and give at
least 100 bits of entropy. The policy file (``CUSTODIA_POLITICA``) may override them per
platform through :func:`rules_from_mapping`.

A password is drawn uniformly from the alphabet and redrawn until it has every required class,
so every acceptable password is equally likely (no "one of each, then shuffle" bias).
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from events.errors import ConfigurationError

AMBIGUOUS = "0O1lI"
DEFAULT_SYMBOLS = "!#$%&*+-=?@^_"
# Never used, whatever a policy says: they break JSON/shell quoting or look like whitespace.
FORBIDDEN_SYMBOLS = frozenset("\"'`\\ \t\n\r")
MIN_ENTROPY_BITS = 80.0
_MAX_DRAWS = 1000


@dataclass(frozen=True)
class PasswordRules:
    """How passwords for one platform are made."""

    length: int = 24
    lowercase: bool = True
    uppercase: bool = True
    digits: bool = True
    symbols: str = DEFAULT_SYMBOLS
    exclude_ambiguous: bool = True
    #: The platform's own limits; ``length`` must lie within them.
    min_length: int = 8
    max_length: int = 128

    def __post_init__(self) -> None:
        if not self.min_length <= self.length <= self.max_length:
            raise ConfigurationError(
                "password.length",
                f"{self.length} outside the platform's {self.min_length}..{self.max_length}",
            )
        bad = FORBIDDEN_SYMBOLS.intersection(self.symbols) | {
            c for c in self.symbols if not c.isascii() or c.isalnum() or not c.isprintable()
        }
        if bad:
            raise ConfigurationError("password.symbols", "quotes, backslash, spaces not allowed")
        if not self.classes():
            raise ConfigurationError("password", "no character class enabled")
        if len(self.classes()) > self.length:
            raise ConfigurationError("password.length", "shorter than the required classes")
        if self.entropy_bits() < MIN_ENTROPY_BITS:
            raise ConfigurationError(
                "password",
                f"{self.entropy_bits():.0f} bits of entropy, at least {MIN_ENTROPY_BITS:.0f}",
            )

    def classes(self) -> list[str]:
        """The character classes a password must each contain at least once."""
        drop = set(AMBIGUOUS) if self.exclude_ambiguous else set()
        wanted = []
        if self.lowercase:
            wanted.append(string.ascii_lowercase)
        if self.uppercase:
            wanted.append(string.ascii_uppercase)
        if self.digits:
            wanted.append(string.digits)
        if self.symbols:
            wanted.append("".join(dict.fromkeys(self.symbols)))
        return ["".join(c for c in chars if c not in drop) for chars in wanted]

    def alphabet(self) -> str:
        return "".join(self.classes())

    def entropy_bits(self) -> float:
        """A (slight over-)estimate: ``length × log2(alphabet)``."""
        return self.length * math.log2(max(len(self.alphabet()), 1))


#: Defaults per platform (5.III). Limits as the platforms publish them: X 8–128, Facebook and
#: Instagram at least 6, TikTok 8–20 with letters, digits and symbols, Google/YouTube 8–100.
DEFAULT_RULES: Mapping[str, PasswordRules] = {
    "x": PasswordRules(length=24, min_length=8, max_length=128),
    "facebook": PasswordRules(length=24, min_length=6, max_length=128),
    "instagram": PasswordRules(length=24, min_length=6, max_length=128),
    "tiktok": PasswordRules(length=20, min_length=8, max_length=20),
    "youtube": PasswordRules(length=24, min_length=8, max_length=100),
}
FALLBACK_RULES = PasswordRules()


def rules_for(platform: str, overrides: Mapping[str, PasswordRules] | None = None) -> PasswordRules:
    """The rules for ``platform``: an override, else the default, else :data:`FALLBACK_RULES`."""
    key = platform.lower()
    if overrides and key in overrides:
        return overrides[key]
    return DEFAULT_RULES.get(key, FALLBACK_RULES)


def generate_password(platform: str, rules: Mapping[str, PasswordRules] | None = None) -> str:
    """A new password for ``platform`` following its rules (``rules`` overrides the defaults)."""
    chosen = rules_for(platform, rules)
    alphabet = chosen.alphabet()
    classes = chosen.classes()
    for _ in range(_MAX_DRAWS):
        candidate = "".join(secrets.choice(alphabet) for _ in range(chosen.length))
        if all(any(c in chars for c in candidate) for chars in classes):
            return candidate
    raise ConfigurationError("password", "rules too tight to draw a password")  # pragma: no cover


def check_password(password: str, rules: PasswordRules) -> list[str]:
    """What is wrong with ``password`` under ``rules`` (names of problems; empty: fine)."""
    problems = []
    if len(password) != rules.length:
        problems.append("length")
    alphabet = set(rules.alphabet())
    if any(c not in alphabet for c in password):
        problems.append("alphabet")
    for chars in rules.classes():
        if not any(c in chars for c in password):
            problems.append("missing-class")
    return problems


# Keys of a ``[contrasenas.<plataforma>]`` table in the policy file (Spanish, as users write it).
_POLICY_KEYS = {
    "longitud": "length",
    "minusculas": "lowercase",
    "mayusculas": "uppercase",
    "digitos": "digits",
    "simbolos": "symbols",
    "excluir_ambiguos": "exclude_ambiguous",
    "longitud_minima": "min_length",
    "longitud_maxima": "max_length",
}


def rules_from_mapping(data: Mapping[str, Any]) -> dict[str, PasswordRules]:
    """Per-platform rules from the policy file's ``contrasenas`` table.

    ``{"tiktok": {"longitud": 18, "simbolos": "!@#"}}`` starts from the platform's default and
    changes only the keys given. Unknown keys or wrong types: :class:`ConfigurationError`.
    """
    result: dict[str, PasswordRules] = {}
    for platform, table in data.items():
        name = f"contrasenas.{platform}"
        if not isinstance(table, Mapping):
            raise ConfigurationError(name, "must be a table")
        changes: dict[str, Any] = {}
        for key, value in table.items():
            field_name = _POLICY_KEYS.get(key)
            if field_name is None:
                raise ConfigurationError(f"{name}.{key}", "unknown key")
            expected: type = str if field_name == "symbols" else bool
            if field_name in ("length", "min_length", "max_length"):
                expected = int
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigurationError(f"{name}.{key}", f"must be {expected.__name__}")
            changes[field_name] = value
        try:
            result[platform.lower()] = replace(rules_for(platform), **changes)
        except ConfigurationError as error:
            problem = f"{error.name}: {error.problem}"
        else:
            continue
        raise ConfigurationError(name, problem)
    return result
