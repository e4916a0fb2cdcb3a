"""User names have one parser (``events.domain.Username``, behind ``normalize_username`` and
``person_id``), and what it accepts is a login OpenBao's userpass accepts, under that very name;
what it refuses is refused by the OpenBao adapter too, with the command line's Spanish message.

Checked against the session's real OpenBao, on a userpass mount of this module's own (so the
generated names never touch another module's people), with a bounded number of examples.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cli.messages import EXIT_USAGE, describe
from custody.vault.client import VaultClient, check_username
from events.domain import InvalidIdentifierError, normalize_username, person_id

pytestmark = pytest.mark.integration

PASSWORD = "clave-de-prueba-1"

# What people type: user-name-like text, with the characters that go wrong (upper case, ``@``,
# blanks, accents, separators at the ends, ``..``), and any text at all.
_TYPED = st.one_of(
    st.from_regex(r"[A-Za-z0-9._@ -]{1,70}", fullmatch=True),
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
    st.text(max_size=70),
)


@pytest.fixture(scope="module")
def mount(root_client: VaultClient) -> Iterator[str]:
    """A userpass mount of this module's own, removed afterwards."""
    path = f"nombres-{secrets.token_hex(4)}"
    root_client.write(f"sys/auth/{path}", {"type": "userpass"}, operation="test")
    try:
        yield path
    finally:
        root_client.delete(f"sys/auth/{path}", operation="test")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(typed=_TYPED)
@example(typed="Luis")  # issue 17: accepted by the ledger, refused by the OpenBao adapter
@example(typed="ana@iecm")  # issue 17: accepted by the ledger, refused by OpenBao
@example(typed="ana-")  # accepted by the old adapter check, refused by OpenBao
@example(typed="ana..lopez")  # stored by OpenBao, but its login fails
@example(typed=" Ana.Lopez ")
@example(typed="\u212aarla")  # the Kelvin sign lower-cases to an ASCII "k"
def test_what_the_parser_accepts_openbao_accepts_as_a_login_and_the_rest_is_refused_in_spanish(
    root_client: VaultClient, mount: str, typed: str
) -> None:
    """A typed name the parser accepts is canonical for the OpenBao adapter too, OpenBao creates
    that login, logs it in, and names the token's owner by exactly that name; the person id is
    the same for what was typed and for the canonical name. A name the parser refuses is refused
    by the adapter as well, and the command line says so in Spanish, as a usage error."""
    try:
        name = normalize_username(typed)
    except InvalidIdentifierError as refused:
        code, message = describe(refused)
        assert code == EXIT_USAGE
        assert message.startswith("El usuario no es válido para OpenBao")
        with pytest.raises(InvalidIdentifierError):
            check_username(typed)
        return
    assert check_username(name) == name
    assert person_id(typed) == person_id(name)
    root_client.write(f"auth/{mount}/users/{name}", {"password": PASSWORD}, operation="test")
    anonymous = root_client.with_token(None)
    token = anonymous.login_userpass(name, PASSWORD, mount=mount)
    person = anonymous.with_token(token)
    try:
        assert person.lookup_self().username == name
    finally:
        person.revoke_self()
