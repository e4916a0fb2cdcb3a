"""Identifiers: districts, accounts, platforms and people.

A district is ``DD01`` … ``DD33`` (1.); an account is the district plus its platform
(``DD05-x``, ``DD05-facebook``; 5.III, 10.I). Users may type ``5``, ``05`` or ``dd05``:
:meth:`DistrictId.parse` and :meth:`AccountId.parse` accept those and return the canonical form;
the constructors accept only the canonical form.

People are identified in events by a UUID derived from their OpenBao/Vault user name (their login
identifier, recorded once, at registration). :class:`Username` is the one parser of user names:
the domain, the service and the OpenBao adapter (``custody.vault.client.check_username``) all use
it, so
a name the ledger accepts is one OpenBao's userpass accepts as a login.
"""

from __future__ import annotations

import re
from typing import Final
from uuid import UUID, uuid5

from events.domain.errors import InvalidIdentifierError, InvalidUsernameError

__all__ = [
    "DISTRICT_COUNT",
    "DISTRICT_NAMESPACE",
    "KNOWN_PLATFORMS",
    "PERSON_NAMESPACE",
    "USERNAME_MAX_LENGTH",
    "AccountId",
    "DistrictId",
    "Username",
    "normalize_platform",
    "normalize_username",
    "parse_account_id",
    "parse_district_id",
    "person_id",
]

DISTRICT_COUNT: Final = 33

# Fixed namespaces: changing them would orphan every stored aggregate.
DISTRICT_NAMESPACE: Final = UUID("5f0c1d7e-3a55-4c1e-9a57-0b6f2f9e4d21")
PERSON_NAMESPACE: Final = UUID("c3b1e6a4-8d2f-4f7b-b1de-7e55a0c9f312")

# 5.III, 10.I: the platforms the guidelines name; others are allowed ("u otras redes sociales").
KNOWN_PLATFORMS: Final = ("facebook", "instagram", "tiktok", "youtube", "x")
_PLATFORM_ALIASES: Final = {"twitter": "x"}  # 10.VIII: "X (antes Twitter)"

_CANONICAL_DISTRICT = re.compile(r"DD(0[1-9]|[12][0-9]|3[0-3])", re.ASCII)
_LENIENT_DISTRICT = re.compile(r"(?:dd)?([0-9]{1,2})", re.ASCII | re.IGNORECASE)
_PLATFORM = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
# OpenBao's userpass takes a name matching ``\w(([\w-.]+)?\w)?`` and stores it lower-cased;
# a name with ``..`` is stored but cannot log in (measured on OpenBao 2.7). Custodia takes the
# subset below: lower-case ASCII letters and digits at both ends, ``.``, ``_`` and ``-`` between,
# no ``..``, at most 64 characters (tests/integration/custody/test_usernames.py checks it
# against the real server).
USERNAME_MAX_LENGTH: Final = 64
_USERNAME = re.compile(
    rf"(?!.*\.\.)[a-z0-9](?:[a-z0-9._-]{{0,{USERNAME_MAX_LENGTH - 2}}}[a-z0-9])?", re.ASCII
)


class DistrictId(str):
    """A district code in canonical form, ``DD01`` … ``DD33``."""

    __slots__ = ()

    def __new__(cls, value: str) -> DistrictId:
        if not isinstance(value, str) or not _CANONICAL_DISTRICT.fullmatch(value):
            raise InvalidIdentifierError("district", str(value))
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> DistrictId:
        """Accepts ``DD05``, ``dd05``, ``DD5``, ``05`` and ``5``; refuses anything outside 1..33."""
        match = _LENIENT_DISTRICT.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None or not 1 <= int(match.group(1)) <= DISTRICT_COUNT:
            raise InvalidIdentifierError("district", str(text))
        return cls(f"DD{int(match.group(1)):02d}")

    @classmethod
    def all(cls) -> list[DistrictId]:
        """The 33 districts, in order."""
        return [cls(f"DD{n:02d}") for n in range(1, DISTRICT_COUNT + 1)]

    @property
    def number(self) -> int:
        return int(self[2:])


def normalize_platform(text: str) -> str:
    """The canonical platform name: lowercase, ``twitter`` → ``x``."""
    name = text.strip().lower() if isinstance(text, str) else ""
    name = _PLATFORM_ALIASES.get(name, name)
    if not _PLATFORM.fullmatch(name):
        raise InvalidIdentifierError("platform", str(text))
    return name


class AccountId(str):
    """An institutional account in canonical form, ``DD05-x``: district, hyphen, platform."""

    __slots__ = ()

    def __new__(cls, value: str) -> AccountId:
        if not isinstance(value, str):
            raise InvalidIdentifierError("account", str(value))
        district, sep, platform = value.partition("-")
        if (
            not sep
            or not _CANONICAL_DISTRICT.fullmatch(district)
            or not _PLATFORM.fullmatch(platform)
        ):
            raise InvalidIdentifierError("account", value)
        return super().__new__(cls, value)

    @classmethod
    def of(cls, district: DistrictId, platform: str) -> AccountId:
        return cls(f"{DistrictId(district)}-{normalize_platform(platform)}")

    @classmethod
    def parse(cls, text: str) -> AccountId:
        """Accepts ``DD05-x``, ``dd5-X``, ``5-facebook``, ``DD05-twitter`` (→ ``DD05-x``)."""
        if not isinstance(text, str):
            raise InvalidIdentifierError("account", str(text))
        district, sep, platform = text.strip().partition("-")
        if not sep:
            raise InvalidIdentifierError("account", text)
        try:
            return cls.of(DistrictId.parse(district), normalize_platform(platform))
        except InvalidIdentifierError:
            raise InvalidIdentifierError("account", text) from None

    @property
    def district(self) -> DistrictId:
        return DistrictId(self.partition("-")[0])

    @property
    def platform(self) -> str:
        return self.partition("-")[2]


def parse_district_id(text: str) -> DistrictId:
    """Same as :meth:`DistrictId.parse`."""
    return DistrictId.parse(text)


def parse_account_id(text: str) -> AccountId:
    """Same as :meth:`AccountId.parse`."""
    return AccountId.parse(text)


class Username(str):
    """An OpenBao/Vault (userpass) user name in canonical form: what the server stores.

    The constructor accepts only the canonical form (lower case); :meth:`parse` also takes what
    a person types (``Luis``, `` luis ``) and returns it as OpenBao stores it (userpass lowercases
    names). Anything else is refused with :class:`InvalidUsernameError` (``ana@iecm``,
    ``ana lopez``, ``ñandu``, ``-ana``, ``ana.``)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Username:
        if not isinstance(value, str) or not _USERNAME.fullmatch(value):
            # The value is not echoed: a mistyped user name can be someone's real name.
            raise InvalidUsernameError()
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> Username:
        """``text`` without surrounding blanks, lower-cased, if that is a valid user name."""
        name = text.strip() if isinstance(text, str) else ""
        # ASCII before lowering: "\u212a" (Kelvin sign) lowers to "k".
        return cls(name.lower() if name.isascii() else "")


def normalize_username(username: str) -> Username:
    """Same as :meth:`Username.parse`."""
    return Username.parse(username)


def person_id(username: str) -> UUID:
    """The stable id of the person whose OpenBao/Vault user name is ``username``."""
    return uuid5(PERSON_NAMESPACE, normalize_username(username))
