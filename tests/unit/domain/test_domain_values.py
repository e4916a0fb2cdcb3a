"""The vía oficial (5.XXIII) and the validation of plain values."""

from __future__ import annotations

import string
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.domain import (
    ABSENCE_REASONS,
    DEPARTURE_REASONS,
    INCIDENT_TYPES,
    InvalidChoiceError,
    InvalidEmailError,
    InvalidHandleError,
    InvalidIdentifierError,
    InvalidOfficialChannelError,
    InvalidPhoneError,
    InvalidTextError,
    OfficialChannel,
    account_violations,
)
from events.domain.values import (
    choice,
    validate_email,
    validate_fingerprint,
    validate_handle,
    validate_phone,
    validate_text,
)

# --- vía oficial -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender", ["redessociales@iecm.mx", "Juan.Perez@IECM.MX", "dd05@Iecm.Mx", " dd05@iecm.mx "]
)
def test_mail_from_iecm_mx_is_an_official_channel(sender: str) -> None:
    """5.XXIII: e-mail from the iecm.mx domain, in any letter case, is a vía oficial."""
    channel = OfficialChannel.email(sender, date(2025, 3, 1))
    assert channel.kind == "correo"
    assert channel.reference.endswith("@iecm.mx")


@pytest.mark.parametrize(
    "sender",
    [
        "dd05@iecm.mx.evil.com",  # the domain as a prefix
        "dd05@xiecm.mx",  # the domain as a suffix
        "dd05@sub.iecm.mx",  # a subdomain is another domain
        "dd05@iecm.mx.",  # trailing root dot
        "dd05@iecm.com.mx",
        "dd05@iecm-mx.com",
        "dd05@iеcm.mx",  # Cyrillic "е": the lookalike under test
        "iecm.mx@evil.com",
        "dd05@evil.com@iecm.mx",
        "Juan <dd05@iecm.mx>",
        "dd05 @iecm.mx",
        "dd05@gmail.com",
        "@iecm.mx",
        "iecm.mx",
    ],
)
def test_lookalike_and_foreign_mail_is_not_an_official_channel(sender: str) -> None:
    """Only the exact domain counts: lookalikes, subdomains and other domains are refused."""
    with pytest.raises(InvalidOfficialChannelError) as raised:
        OfficialChannel.email(sender)
    assert raised.value.kind == "correo"


def test_a_refused_sender_is_reported_by_domain_not_address() -> None:
    """The error names the foreign domain, never the (personal) address."""
    with pytest.raises(InvalidOfficialChannelError) as raised:
        OfficialChannel.email("juan.perez@gmail.com")
    assert raised.value.domain == "gmail.com"
    assert "juan" not in str(raised.value)


_LOCAL = st.text(string.ascii_letters + string.digits + "_+-", min_size=1, max_size=20)
_LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)


@given(local=_LOCAL, labels=st.lists(_LABEL, min_size=1, max_size=3), tld=_LABEL)
def test_only_the_exact_iecm_domain_is_official(local: str, labels: list[str], tld: str) -> None:
    """For any syntactically valid address, the channel is accepted iff its domain is iecm.mx."""
    domain = ".".join([*labels, tld if tld[0].isalpha() else "x" + tld])
    sender = f"{local}@{domain}"
    if domain.lower() == "iecm.mx":
        assert OfficialChannel.email(sender).reference == f"{local}@iecm.mx"
    else:
        with pytest.raises(InvalidOfficialChannelError):
            OfficialChannel.email(sender)


@given(local=_LOCAL, case=st.lists(st.booleans(), min_size=7, max_size=7))
def test_iecm_mx_in_any_case_is_official(local: str, case: list[bool]) -> None:
    """The domain comparison ignores letter case, and the stored address is lowercased."""
    domain = "".join(c.upper() if up else c for c, up in zip("iecm.mx", case, strict=True))
    assert OfficialChannel.email(f"{local}@{domain}").reference == f"{local}@iecm.mx"


def test_oficio_and_memorandum_need_a_reference() -> None:
    """An oficio or memorándum is cited by its number; blank or multi-line is refused."""
    assert OfficialChannel.oficio("  IECM/DD05/12/2025 ").reference == "IECM/DD05/12/2025"
    assert OfficialChannel.memorandum("MEM-7").kind == "memorandum"
    for bad in ("", "   ", "IECM\n/12"):
        with pytest.raises(InvalidOfficialChannelError):
            OfficialChannel.oficio(bad)


def test_an_official_channel_date_is_a_calendar_date() -> None:
    """The document's date is a date, not an instant."""
    with pytest.raises(InvalidOfficialChannelError):
        OfficialChannel.oficio("IECM/1", datetime(2025, 3, 1))  # a datetime is a date too


def test_official_channels_round_trip_through_event_payloads() -> None:
    """In events a channel is a plain dict; reading it back gives the same channel."""
    for channel in (
        OfficialChannel.oficio("IECM/DD05/1/2025", date(2025, 2, 28)),
        OfficialChannel.memorandum("MEM-7"),
        OfficialChannel.email("redessociales@iecm.mx", date(2025, 3, 1)),
    ):
        payload = channel.to_event()
        assert set(payload) == {"kind", "reference", "date"}
        assert OfficialChannel.from_event(payload) == channel


def test_unknown_channel_kinds_are_refused() -> None:
    """Only oficio, memorandum and correo exist (5.XXIII): a phone call is not one."""
    with pytest.raises(InvalidOfficialChannelError):
        OfficialChannel("whatsapp", "55 1234 5678")  # type: ignore[arg-type]


# --- other values ----------------------------------------------------------------------------


def test_choices_accept_hyphens_and_case() -> None:
    """Users type `cambio-adscripcion` or `Operacion-No-Autorizada`; both are the vocabulary's."""
    assert choice("reason", "Cambio-Adscripcion", DEPARTURE_REASONS) == "cambio_adscripcion"
    assert choice("type", "operacion-no-autorizada", INCIDENT_TYPES) == "operacion_no_autorizada"
    with pytest.raises(InvalidChoiceError) as raised:
        choice("reason", "jubilacion", ABSENCE_REASONS)
    assert raised.value.allowed == ABSENCE_REASONS


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "empty"), ("  ", "empty"), ("a\x00b", "control characters"), ("x" * 11, "longer")],
)
def test_free_text_is_bounded_and_printable(text: str, problem: str) -> None:
    """Free text is stripped, non-empty, bounded, and free of control characters."""
    with pytest.raises(InvalidTextError) as raised:
        validate_text("purpose", text, max_length=10)
    assert problem in raised.value.problem


def test_multiline_text_keeps_newlines() -> None:
    """Descriptions may span lines; one-line fields may not."""
    assert validate_text("d", " a\nb ", max_length=10, multiline=True) == "a\nb"
    with pytest.raises(InvalidTextError):
        validate_text("d", "a\nb", max_length=10)


@pytest.mark.parametrize(
    ("phone", "canonical"),
    [
        ("55 5483 3800", "5554833800"),
        ("+52 (55) 5483-3800", "+525554833800"),
        ("55.5483.3800 ext. 1234", "5554833800 ext 1234"),
        ("5554833800 extensión 12", "5554833800 ext 12"),
    ],
)
def test_phones_are_canonicalized(phone: str, canonical: str) -> None:
    """Institutional phones keep their digits, an optional + and an extension."""
    assert validate_phone("phone", phone) == canonical


@pytest.mark.parametrize("phone", ["", "1234", "55 5483 38OO", "+52 55 5483 3800 1234 5678"])
def test_malformed_phones_are_refused(phone: str) -> None:
    """Too short, too long or non-digits: not a phone."""
    with pytest.raises(InvalidPhoneError):
        validate_phone("phone", phone)


def test_email_addresses_are_validated_and_domains_lowercased() -> None:
    """Any valid address is accepted (policy is judged elsewhere); its domain is lowercased."""
    assert validate_email("email", "DD05.X@IECM.MX") == "DD05.X@iecm.mx"
    for bad in ("dd05", "dd05@", "@iecm.mx", "a..b@iecm.mx", "a@-iecm.mx", "a@iecm"):
        with pytest.raises(InvalidEmailError):
            validate_email("email", bad)


def test_handles_follow_the_platform_rules() -> None:
    """X user names are 1–15 of [A-Za-z0-9_] (a leading @ is dropped); others are laxer."""
    assert validate_handle("x", "@DD05IECM") == "DD05IECM"
    assert validate_handle("facebook", "iecm.dd05") == "iecm.dd05"
    for bad in ("iecm.dd05", "DD05_IECM_DIRECCION", ""):
        with pytest.raises(InvalidHandleError):
            validate_handle("x", bad)


@pytest.mark.parametrize(
    ("platform", "handle", "email", "public", "dms", "expected"),
    [
        ("x", "DD05IECM", "dd05@iecm.mx", True, True, []),
        ("x", "DD05iecm", "dd05@iecm.mx", True, True, ["usuario_x_sin_sufijo_iecm"]),
        ("x", "IECMDD05", "dd05@iecm.mx", True, True, ["usuario_x_sin_sufijo_iecm"]),
        ("facebook", "dd05", "dd05@iecm.mx", True, True, []),
        ("facebook", "dd05", "dd05@gmail.com", True, True, ["correo_no_institucional"]),
        ("tiktok", "dd05", "dd05@iecm.mx", False, True, ["cuenta_privada"]),
        ("youtube", "dd05", "dd05@iecm.mx", True, False, ["mensajes_privados_desactivados"]),
    ],
)
def test_account_violations(
    platform: str, handle: str, email: str, public: bool, dms: bool, expected: list[str]
) -> None:
    """10.V, 10.VI, 10.VIII: institutional e-mail, `IECM` suffix on X (case-sensitive),
    public, direct messages on."""
    assert account_violations(platform, handle, email, public=public, direct_messages=dms) == (
        expected
    )


@pytest.mark.parametrize("value", ["AB" * 16, "ab" * 7, "abc" * 11, "zz" * 16, "ab" * 65])
def test_fingerprints_are_lowercase_hex_of_sane_length(value: str) -> None:
    """A fingerprint is 16–128 lowercase hex digits; anything else is refused unechoed."""
    with pytest.raises(InvalidIdentifierError) as raised:
        validate_fingerprint(value)
    assert value not in str(raised.value)
