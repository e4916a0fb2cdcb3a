"""Identifiers: districts, accounts, people."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.domain import (
    AccountId,
    District,
    DistrictId,
    InvalidIdentifierError,
    InvalidUsernameError,
    Person,
    Username,
    normalize_platform,
    parse_account_id,
    parse_district_id,
    person_id,
)


@pytest.mark.parametrize("text", ["DD05", "dd05", "Dd05", "DD5", "05", "5", " 5 ", "dd5"])
def test_district_parse_accepts_the_forms_users_type(text: str) -> None:
    """`5`, `05`, `dd05`, `DD5` all mean DD05."""
    assert parse_district_id(text) == "DD05"
    assert type(parse_district_id(text)) is DistrictId


@pytest.mark.parametrize(
    "text", ["0", "00", "34", "DD34", "DD00", "DD034", "005", "D05", "DD-05", "5a", "", "٥", "DD٠٥"]
)
def test_district_parse_refuses_anything_but_1_to_33(text: str) -> None:
    """Only districts 1..33 in ASCII digits exist (1.)."""
    with pytest.raises(InvalidIdentifierError) as raised:
        DistrictId.parse(text)
    assert raised.value.kind == "district"


@pytest.mark.parametrize("text", ["dd05", "5", "DD5", "DD34"])
def test_district_constructor_accepts_only_the_canonical_form(text: str) -> None:
    """`DistrictId(...)` validates, it does not normalize: that is `parse`'s job."""
    with pytest.raises(InvalidIdentifierError):
        DistrictId(text)


@given(st.integers(min_value=1, max_value=33))
def test_every_district_number_round_trips(number: int) -> None:
    """Every number 1..33 parses, in every accepted spelling, to `DDnn` with that number."""
    for text in (str(number), f"{number:02d}", f"dd{number:02d}", f"DD{number}"):
        parsed = DistrictId.parse(text)
        assert parsed == f"DD{number:02d}"
        assert parsed.number == number


@given(st.integers().filter(lambda n: not 1 <= n <= 33))
def test_no_other_number_is_a_district(number: int) -> None:
    """Numbers outside 1..33 are refused however written."""
    with pytest.raises(InvalidIdentifierError):
        DistrictId.parse(str(number))


def test_all_districts_are_33_in_order() -> None:
    """`DistrictId.all()` lists DD01..DD33."""
    districts = DistrictId.all()
    assert len(districts) == 33
    assert districts[0] == "DD01"
    assert districts[-1] == "DD33"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DD05-x", "DD05-x"),
        ("dd5-X", "DD05-x"),
        ("5-facebook", "DD05-facebook"),
        (" DD05-Instagram ", "DD05-instagram"),
        ("DD05-twitter", "DD05-x"),
        ("DD33-mastodon", "DD33-mastodon"),
    ],
)
def test_account_parse_normalizes(text: str, expected: str) -> None:
    """An account is a district plus a platform; known and other lowercase platforms."""
    account = parse_account_id(text)
    assert account == expected
    assert account.district == expected.split("-")[0]
    assert account.platform == expected.split("-")[1]


@pytest.mark.parametrize(
    "text", ["DD05", "DD05-", "-x", "DD34-x", "DD05-face book", "DD05-9gag", "DD05-x!", "x-DD05"]
)
def test_account_parse_refuses_malformed(text: str) -> None:
    """Malformed accounts are refused, naming the account as the kind."""
    with pytest.raises(InvalidIdentifierError) as raised:
        AccountId.parse(text)
    assert raised.value.kind == "account"


def test_account_constructor_accepts_only_the_canonical_form() -> None:
    """`AccountId("dd05-x")` is refused; `AccountId.of` builds one from parts."""
    with pytest.raises(InvalidIdentifierError):
        AccountId("dd05-x")
    assert AccountId.of(DistrictId("DD05"), "YouTube") == "DD05-youtube"


def test_platform_names_are_lowercase_words() -> None:
    """Platforms are lowercased; `twitter` is `x` (10.VIII); junk is refused."""
    assert normalize_platform("TikTok") == "tiktok"
    assert normalize_platform("Twitter") == "x"
    with pytest.raises(InvalidIdentifierError):
        normalize_platform("tik tok")


def test_person_ids_ignore_case_and_surrounding_space() -> None:
    """OpenBao/Vault user names are case-insensitive, so their ids are too."""
    assert person_id("JPerez") == person_id(" jperez ") == Person.create_id("jperez")
    assert person_id("jperez") != person_id("jperez2")


def test_invalid_user_names_are_refused_without_echoing_them() -> None:
    """A refused user name is not repeated in the error (it may be a real name)."""
    with pytest.raises(InvalidIdentifierError) as raised:
        person_id("Juan Pérez")
    assert "Juan" not in str(raised.value)
    assert "Juan" not in raised.value.value


@pytest.mark.parametrize(
    "text", ["ana@iecm", "ana lopez", "ñandu", "-ana", "ana-", ".ana", "ana.", "ana..lopez",
             "_ana", "a" * 65, "", "\u212aarla"],
)  # fmt: skip
def test_user_names_openbao_would_refuse_are_refused_by_the_one_parser(text: str) -> None:
    """``Username`` (what ``person_id`` and the OpenBao adapter use) refuses what OpenBao's
    userpass refuses or cannot log in (checked against the server in
    tests/integration/custody/test_usernames.py), with an error naming no value."""
    with pytest.raises(InvalidUsernameError) as raised:
        Username.parse(text)
    assert raised.value.value == "…"
    with pytest.raises(InvalidUsernameError):
        person_id(text)


def test_a_typed_user_name_becomes_the_name_openbao_stores() -> None:
    """Upper case and surrounding blanks are what OpenBao's userpass forgives (it lower-cases):
    the parser gives the stored form; the constructor takes only that form."""
    assert Username.parse(" Ana.Lopez ") == "ana.lopez"
    assert Username.parse("a" * 64) == "a" * 64
    with pytest.raises(InvalidUsernameError):
        Username("Ana.Lopez")


def test_ids_are_stable_across_installations() -> None:
    """District and person ids are fixed by their namespaces: every stored stream depends on
    them, so these values must never change."""
    assert District.create_id("DD05") == UUID("6c71ad3a-4f7b-5db9-b6bb-267f20a249f1")
    assert person_id("ana") == UUID("0f2468f0-78ae-58e6-afa7-54f997936440")
