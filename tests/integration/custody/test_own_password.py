"""A person changes their own password (``custodia sesion contrasena``), and nobody else can.

Why: a coadministrator gives the initial password at ``personas alta``. Until the person changes
it she knows it; with it, and her right to change who must use the second factor, she could log
in as that person (threat model, "Lo que no se protege"). The change is OpenBao's own: the token
policy ``custodia-contrasena-propia`` on every userpass login grants the login's own
``users/<name>/password`` and nothing else.

Each refusal is OpenBao's, with a real token against the real server: another person's token,
a coadministrator's, the service's, a request token (the role refuses the policy), the service
creating a login with any other policy or none.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

from custody.errors import LoginRefusedError, OwnPasswordDeniedError
from custody.vault import session as sessions
from custody.vault.client import VaultClient
from custody.vault.layout import (
    OWN_PASSWORD_POLICY,
    REQUEST_TOKEN_ROLE,
    SESSION_TOKEN_ROLE,
    ensure_own_password,
)
from events.domain import ValidationError
from tests.integration.custody.helpers import MakeUser, User
from tests.integration.custody.test_service_privilege import bao, login

pytestmark = pytest.mark.integration


def _new_password() -> str:
    return secrets.token_urlsafe(18)


def test_a_person_changes_her_own_password_and_the_old_one_stops_working(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    person = make_user("propia")
    new = _new_password()
    sessions.change_password(service_client.addr, person.username, person.password, new)
    assert login(service_client, person.username, person.password)[0] in (400, 403)
    assert login(service_client, person.username, new)[0] == 200
    # The token the change was made with is revoked; a session opened before stays open.
    assert bao(service_client.with_token(person.token), "GET", "auth/token/lookup-self")[0] == 200


def test_the_change_needs_the_current_password(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    """An open session alone is not enough: whoever finds it cannot change the password."""
    person = make_user("actual")
    with pytest.raises(LoginRefusedError):
        sessions.change_password(
            service_client.addr, person.username, "no-es-la-actual", _new_password()
        )
    assert login(service_client, person.username, person.password)[0] == 200


@pytest.mark.parametrize(
    ("new", "problem"),
    [("corta", "shorter than 12"), ("x" * 257, "longer than 256"), ("a\nbcdefghijklm", "control")],
)
def test_a_bad_new_password_is_refused_before_openbao(
    service_client: VaultClient, make_user: MakeUser, new: str, problem: str
) -> None:
    person = make_user("mala")
    with pytest.raises(ValidationError) as refused:
        sessions.change_password(service_client.addr, person.username, person.password, new)
    assert problem in str(refused.value.problem)
    assert new not in str(refused.value)
    assert login(service_client, person.username, person.password)[0] == 200


def test_the_same_password_is_not_a_change(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    person = make_user("misma")
    with pytest.raises(ValidationError) as refused:
        sessions.change_password(
            service_client.addr, person.username, person.password, person.password
        )
    assert (refused.value.field, refused.value.problem) == ("contrasena", "same as the current one")


def test_nobody_changes_another_persons_password(
    service_client: VaultClient, make_user: MakeUser, coadmin: User
) -> None:
    """Another person's own token, a coadministrator's (who gave the initial password) and the
    service's: OpenBao's 403 each; the victim's password keeps working, the attacker's does
    not. Nor can a login give itself another policy through its password endpoint."""
    victim, other = make_user("victima"), make_user("otra")
    stolen = _new_password()
    path = f"auth/userpass/users/{victim.username}/password"
    for token in (other.token, coadmin.login(), service_client.token):
        assert bao(service_client.with_token(token), "POST", path, {"password": stolen})[0] == 403
    own = f"auth/userpass/users/{other.username}"
    other_client = service_client.with_token(other.token)
    assert (
        bao(other_client, "POST", f"{own}/password", {"password": stolen, "token_policies": "x"})[0]
        == 403
    )
    assert bao(other_client, "POST", own, {"token_policies": "custodia-coadministrador"})[0] == 403
    assert bao(other_client, "POST", f"{own}/policies", {"token_policies": "root"})[0] == 403
    with pytest.raises(OwnPasswordDeniedError):
        other_client.change_own_password(victim.username, stolen)
    assert login(service_client, victim.username, stolen)[0] in (400, 403)
    assert login(service_client, victim.username, victim.password)[0] == 200


def test_a_request_token_cannot_change_the_password(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    """Request tokens reach the service: none carries the policy. The client's request token
    is refused the change; the role refuses any child that would carry the policy, asked for
    or inherited."""
    person = make_user("solicitud")
    child = sessions.request_token(service_client.addr, person.token, uses=4, ttl=30)
    path = f"auth/userpass/users/{person.username}/password"
    child_client = service_client.with_token(child)
    assert bao(child_client, "POST", path, {"password": _new_password()})[0] == 403
    assert OWN_PASSWORD_POLICY not in child_client.lookup_self().policies
    session = service_client.with_token(person.token)  # the login's own token: it has the policy
    create = f"auth/token/create/{REQUEST_TOKEN_ROLE}"
    status, answer = bao(session, "POST", create, {"ttl": "30s"})
    assert status == 200, answer
    assert answer["auth"]["policies"] == ["default"]  # inherited? no: the role's only policy
    status, answer = bao(
        session, "POST", create, {"ttl": "30s", "policies": ["default", OWN_PASSWORD_POLICY]}
    )
    assert status == 400, answer
    assert login(service_client, person.username, person.password)[0] == 200


@pytest.mark.parametrize("role", [REQUEST_TOKEN_ROLE, SESSION_TOKEN_ROLE])
def test_no_token_made_through_the_roles_gets_a_policy_its_maker_chooses(
    service_client: VaultClient, make_user: MakeUser, role: str
) -> None:
    """Attack: a person asks either role for a child with a coadministrator's policy, or the
    own-password policy, or a name of someone else's (metadata, display name): OpenBao refuses
    each (an earlier layout of this change, with ``disallowed_policies`` and no
    ``allowed_policies``, granted ANY policy). Only ``default`` is ever given."""
    person = make_user("rol")
    create = f"auth/token/create/{role}"
    session = service_client.with_token(person.token)
    for policies in (["custodia-coadministrador"], ["default", OWN_PASSWORD_POLICY], ["root"]):
        status, answer = bao(session, "POST", create, {"ttl": "30s", "policies": policies})
        assert status == 400, (policies, answer)
        assert "subset" in str(answer.get("errors")), answer
    for named in ({"meta": {"username": "ana"}}, {"display_name": "ana"}):
        assert bao(session, "POST", create, {"ttl": "30s", **named})[0] == 403, named
    status, answer = bao(session, "POST", create, {"ttl": "30s"})
    assert status == 200, answer
    assert answer["auth"]["policies"] == ["default"]


def test_a_session_cannot_change_the_password_nor_make_another_session(
    service_client: VaultClient, make_user: MakeUser, tmp_path: Path
) -> None:
    """Attack: whoever finds a session open, or copies its file, tries to change the password
    (to lock the person out, or to keep a login for later): OpenBao refuses, the session is a
    child without the own-password policy. Nor can it make another session. It still has the
    person's entity (their groups' policies) and makes request tokens; a fresh login (the
    current password) can change the password."""
    person = make_user("sesion")
    opened = sessions.login(
        service_client.addr, person.username, person.password, tmp_path / "sesion.json"
    )
    stolen = service_client.with_token(opened.token)
    info = stolen.lookup_self()
    assert OWN_PASSWORD_POLICY not in info.policies
    assert info.entity_id == service_client.with_token(person.token).lookup_self().entity_id
    path = f"auth/userpass/users/{person.username}/password"
    assert bao(stolen, "POST", path, {"password": _new_password()})[0] == 403
    assert bao(stolen, "POST", f"auth/token/create/{SESSION_TOKEN_ROLE}", {})[0] == 403
    assert sessions.request_token(service_client.addr, opened.token, uses=2, ttl=30)
    assert login(service_client, person.username, person.password)[0] == 200
    sessions.change_password(service_client.addr, person.username, person.password, "z" * 16)
    assert login(service_client, person.username, "z" * 16)[0] == 200


def test_the_service_gives_every_login_that_policy_and_no_other(
    service_client: VaultClient,
) -> None:
    """The service's token must give exactly :data:`OWN_PASSWORD_POLICY`: none, another, or
    one more is OpenBao's 403, and no login is made."""
    for policies in (None, "custodia-coadministrador", f"{OWN_PASSWORD_POLICY},root", "default"):
        name = f"sinpol-{uuid.uuid4().hex[:8]}"
        body: dict[str, object] = {"password": _new_password()}
        if policies is not None:
            body["token_policies"] = policies
        assert bao(service_client, "POST", f"auth/userpass/users/{name}", body)[0] == 403
        assert login(service_client, name, str(body["password"]))[0] in (400, 403)


def test_init_gives_the_policy_to_logins_made_before_it(
    root_client: VaultClient, service_client: VaultClient
) -> None:
    """A login made before this policy existed cannot change its password (a clear refusal),
    until the layout runs again with the administrative token; then it can."""
    name, password = f"previa-{uuid.uuid4().hex[:8]}", _new_password()
    root_client.write(f"auth/userpass/users/{name}", {"password": password}, operation="t")
    with pytest.raises(OwnPasswordDeniedError):
        sessions.change_password(service_client.addr, name, password, _new_password())
    assert login(service_client, name, password)[0] == 200
    ensure_own_password(root_client)
    user = root_client.read(f"auth/userpass/users/{name}", operation="t")["data"]
    assert user["token_policies"] == [OWN_PASSWORD_POLICY]
    new = _new_password()
    sessions.change_password(service_client.addr, name, password, new)
    assert login(service_client, name, new)[0] == 200


def test_a_second_login_to_the_same_session_file_revokes_the_first_session(
    service_client: VaultClient, make_user: MakeUser, tmp_path: Path
) -> None:
    """``sesion iniciar`` twice: the session the file held is revoked, not left alive with
    nothing referring to it."""
    person = make_user("dos")
    path = tmp_path / "sesion.json"
    first = sessions.login(service_client.addr, person.username, person.password, path)
    second = sessions.login(service_client.addr, person.username, person.password, path)
    assert bao(service_client.with_token(first.token), "GET", "auth/token/lookup-self")[0] == 403
    assert bao(service_client.with_token(second.token), "GET", "auth/token/lookup-self")[0] == 200
