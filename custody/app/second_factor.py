"""Issue 18, a second factor: OpenBao's login MFA (TOTP) for the people who can read credentials.

OpenBao enforces it, not the client: ``custodia init`` makes a TOTP login method, the identity
group :data:`~custody.vault.layout.MFA_GROUP` and a login enforcement on it
(:func:`custody.vault.layout.ensure_second_factor`; ``[segundo_factor] obligatorio`` in the
policy file, true by default). Once enforced, a group member's password alone gets no token.

Enrolment without a token of the person (an unenrolled member cannot log in at all), and
without any ACL policy written at run time:

1. at a registration (``personas alta``, ``init``) of a coadministrator or an administrator, the
   person joins the group (a coadministrator's own token, like the role groups) and a
   *first-login* user of the same name and initial password is made on the mount
   ``userpass-primer-ingreso`` with the service's token, which may set a password and
   ``token_no_default_policy`` and nothing else: its tokens hold no policy at all (OpenBao
   gives them nothing, not even ``lookup-self``), and its alias is an entity of its own (OpenBao
   makes one at the first login: never the person's, never in a group);
2. at the first ``sesion iniciar``, OpenBao asks for a code the person does not have yet: the
   client logs in on the first-login mount and sends that token to the service's
   ``segundo_factor.inscribir`` (:func:`enrol`), the only command a first-login token may send.
   The service looks the token up, takes the user it was issued to on that mount, and calls
   ``admin-generate`` for that person's real entity with its own token (the policy
   ``custodia-segundo-factor-inscripcion`` pins Custodia's method); the otpauth URI goes back
   sealed to the caller's reply key, shown once (a second call gets nothing: OpenBao does not
   rotate a secret);
3. the first login with a code (OpenBao validated it) sends ``segundo_factor.confirmar``:
   the service deletes the first-login user and records
   :class:`~events.domain.person.Person.SecondFactorEnrolled` (no secret).

A lost factor: ``personas restablecer-factor`` (a coadministrator, not for themself, on a vía
oficial): the secret is destroyed with the coadministrator's token, a first login is made
again with a NEW password generated here and shown once (sealed) to the coadministrator, and
:class:`~events.domain.person.Person.SecondFactorReset` is recorded.
"""

from __future__ import annotations

import secrets
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from custody.errors import (
    CustodyStateError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
)
from custody.vault.layout import MFA_ENFORCEMENT, MFA_GROUP, MFA_ISSUER
from events.domain import OfficialChannel, Username
from events.domain.person import CREDENTIAL_READERS
from events.errors import ConfigurationError, VaultError

if TYPE_CHECKING:
    from custody.app.access import Access
    from custody.app.custodia import Actor, Custodia

log = structlog.get_logger()


class SecondFactorNotEnforcedError(CustodyStateError):
    """OpenBao enforces no login second factor here (``[segundo_factor] obligatorio = false``)."""

    def __init__(self) -> None:
        super().__init__("the login second factor is not enforced")


class OwnFactorResetError(CustodyStateError):
    """A coadministrator may not reset their own second factor (another must do it)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} cannot reset their own second factor")
        self.username = username


class SecondFactorFirstError(CustodyStateError):
    """A transfer into a role that reads credentials, of a person OpenBao does not yet ask a
    second factor of: the factor comes first (``personas segundo-factor``), or the new role
    would open every credential with the password alone."""

    def __init__(self, username: str, role: str) -> None:
        super().__init__(f"{username} must use the second factor before becoming {role}")
        self.username = username
        self.role = role


class NotSecondFactorMemberError(CustodyStateError):
    """The person is not among those OpenBao asks a second factor of."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} has no second factor to enrol or reset")
        self.username = username


class AlreadySecondFactorMemberError(CustodyStateError):
    """The person already must use the second factor."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} already uses the second factor")
        self.username = username


def required_by_policy(policy_file: Path | None) -> bool:
    """``[segundo_factor] obligatorio`` of the policy file; true when absent."""
    if policy_file is None:
        return True
    try:
        with Path(policy_file).open("rb") as handle:
            table = tomllib.load(handle).get("segundo_factor", {})
    except (OSError, tomllib.TOMLDecodeError):
        return True  # the policy loader reports a broken file
    if not isinstance(table, dict):
        raise ConfigurationError("segundo_factor", "debe ser una tabla")
    value = table.get("obligatorio", True)
    if not isinstance(value, bool):
        raise ConfigurationError("segundo_factor.obligatorio", "debe ser true o false")
    return value


class SecondFactor:
    """The OpenBao side: enforcement, first logins, reset. ``access`` acts with the service's
    token (``init``: the administrative one); ``caller_token`` is a coadministrator's own."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.client = access._client

    def enforcement(self) -> tuple[str, str] | None:
        """``(method id, group id)`` when OpenBao enforces the factor, else None."""
        try:
            body = self.client.read(
                f"identity/mfa/login-enforcement/{MFA_ENFORCEMENT}", operation="second-factor"
            )
        except VaultNotFoundError:
            return None
        data = body.get("data") or {}
        methods = list(data.get("mfa_method_ids") or [])
        groups = list(data.get("identity_group_ids") or [])
        if not methods or not groups:
            return None
        return str(methods[0]), str(groups[0])

    def first_login_accessor(self) -> str:
        body = self.client.read("sys/auth", operation="second-factor")
        mounts = body.get("data") or body
        entry = mounts.get(self.client.mounts.first_login + "/") or {}
        if not entry.get("accessor"):
            raise VaultNotFoundError("second-factor", f"sys/auth/{self.client.mounts.first_login}")
        return str(entry["accessor"])

    def prepare(
        self,
        username: str,
        password: str,
        *,
        caller_token: str | None = None,
        join: bool = True,
        rewrite: bool = False,
    ) -> bool:
        """Steps 1 of the module docstring for ``username``; False when not enforced."""
        enforced = self.enforcement()
        if enforced is None:
            return False
        name = str(Username.parse(username))
        self.access.require_entity_id(name)  # a registered person
        if join:
            # Members only, with the coadministrator's token; from now on OpenBao asks this
            # person for a code at every login.
            members = self.access.members(MFA_GROUP, caller_token=caller_token)
            if name not in members or rewrite:
                # ``rewrite``: written even when already there, so the command's record stands
                # for a write of its own (the OpenBao audit follower pairs them one to one).
                self.access.set_members(MFA_GROUP, {*members, name}, caller_token=caller_token)
        self._create_first_login(name, password)
        log.info("custody.second_factor.first_login_ready", username=name)
        return True

    def _create_first_login(self, username: str, password: str) -> None:
        path = f"auth/{self.client.mounts.first_login}/users/{username}"
        # No policy, not even ``default``: the token can do nothing in OpenBao itself.
        body = {"password": password, "token_no_default_policy": True}
        try:
            self.client.write(path, body, operation="second-factor", secret_body=True)
        except VaultPermissionDeniedError:
            # Already there (a retry, or a reset before any enrolment): made again, so the
            # password is the one given now.
            self.client.delete(path, operation="second-factor")
            self.client.write(path, body, operation="second-factor", secret_body=True)

    def forget_first_login(self, username: str) -> None:
        """Delete ``username``'s first-login user (idempotent)."""
        name = str(Username.parse(username))
        self.client.delete(
            f"auth/{self.client.mounts.first_login}/users/{name}", operation="second-factor"
        )

    def is_member(self, username: str, group_id: str) -> bool:
        """Whether OpenBao counts ``username`` in the enforced group (read on the entity: the
        service's token may not read that group)."""
        entity_id = self.access.require_entity_id(username)
        body = self.client.read(f"identity/entity/id/{entity_id}", operation="second-factor")
        return group_id in ((body.get("data") or {}).get("group_ids") or [])

    def revoke_first_login_token(self, token: str) -> None:
        """Revoke a used first-login token (with the service's token; best effort: it expires
        within minutes anyway, see custody.vault.layout.FIRST_LOGIN_TOKEN_TTL)."""
        try:
            accessor = self.client.lookup_token(token).accessor
            if accessor:
                self.client.revoke_token_accessor(accessor)
        except VaultError as exc:
            log.warning("custody.second_factor.first_login_not_revoked", error=type(exc).__name__)

    def has_first_login(self, username: str) -> bool:
        """Whether ``username`` still has a first-login user (not yet enrolled, or reset)."""
        return username in self.client.list(
            f"auth/{self.client.mounts.first_login}/users", operation="second-factor"
        )

    def destroy(self, username: str, method_id: str, caller_token: str) -> None:
        entity_id = self.access.require_entity_id(username)
        self.client.with_token(caller_token).totp_admin_destroy(method_id, entity_id)


# -- use cases (the service's commands: custody.service.factor_commands) ---------------------


def _factor(custodia: Custodia) -> SecondFactor:
    factor: SecondFactor | None = getattr(custodia, "second_factor", None)
    return factor if factor is not None else SecondFactor(custodia.access)


class NotFirstLoginError(CustodyStateError):
    """``segundo_factor.inscribir`` comes only with a first-login token (and nothing else does)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username}: only a first login enrols a second factor")
        self.username = username


class FactorAlreadyEnrolledError(CustodyStateError):
    """OpenBao holds a factor for the person already: nothing is generated again."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username} has a second factor already")
        self.username = username


class FirstLoginBeforeResetError(CustodyStateError):
    """A first-login token issued before the person's factor was last reset: it cannot enrol
    the new factor (log in on the first login again, with the new password)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username}: first login older than the last reset")
        self.username = username


def _enforced_method(factor: SecondFactor, name: str) -> str:
    """Custodia's TOTP method, once OpenBao enforces it and ``name`` is in the enforced group."""
    enforced = factor.enforcement()
    if enforced is None:
        raise SecondFactorNotEnforcedError
    method_id, group_id = enforced
    if not factor.is_member(name, group_id):
        raise NotSecondFactorMemberError(name)
    return method_id


def enrol(custodia: Custodia, actor: Actor, first_login: bool) -> dict[str, Any]:
    """Step 2: ``actor`` is the user a first-login token was issued to (the service read it from
    OpenBao, ``first_login``); their factor is generated for their own real entity with the
    service's token, on Custodia's method only. The otpauth URI is returned to be sealed for
    the caller; a person with a factor already gets nothing."""
    if not first_login:
        raise NotFirstLoginError(actor.username)
    name = str(Username.parse(actor.username))
    factor = _factor(custodia)
    method_id = _enforced_method(factor, name)
    if not factor.has_first_login(name):
        raise FactorAlreadyEnrolledError(name)  # confirmed already: the login is gone
    reset_at = custodia.person(name).second_factor_reset_at
    if reset_at is not None:
        # A first-login token outlives its user (deleting a userpass user revokes nothing): one
        # issued before the last reset belongs to the lost factor's first login, whose password
        # someone else may have known. Only a login made since may enrol the new factor.
        issued = factor.client.lookup_token(actor.token).issued_at
        if issued is None or issued < reset_at:
            factor.revoke_first_login_token(actor.token)
            raise FirstLoginBeforeResetError(name)
    entity_id = custodia.access.require_entity_id(name)
    actor.proceed()
    try:
        uri = factor.client.totp_admin_generate(method_id, entity_id)
    finally:
        factor.revoke_first_login_token(actor.token)  # it served its one enrolment
    if uri is None:
        raise FactorAlreadyEnrolledError(name)
    log.info("custody.second_factor.generated", username=name)
    return {"usuario": name, "otpauth": labelled(uri, name)}


def labelled(uri: str, account: str) -> str:
    """``uri`` with the person's login name as its account label (OpenBao labels the key with
    the entity's id, which tells a person with several keys nothing). The label is what the
    authenticator app shows; the secret, issuer and parameters are untouched."""
    from urllib.parse import quote, unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.scheme != "otpauth":
        return uri
    current = unquote(parts.path.lstrip("/"))
    issuer = current.partition(":")[0] if ":" in current else MFA_ISSUER
    return urlunsplit(parts._replace(path="/" + quote(f"{issuer}:{account}")))


def confirm_enrolment(custodia: Custodia, actor: Actor) -> dict[str, Any]:
    """Step 3: the caller logged in with a code OpenBao validated (their token exists, and
    OpenBao gives a member of the enforced group none without one). Their first login goes,
    and the enrolment is recorded once."""
    factor = _factor(custodia)
    enforced = factor.enforcement()
    if enforced is None:
        raise SecondFactorNotEnforcedError
    if not factor.is_member(actor.username, enforced[1]):
        raise NotSecondFactorMemberError(actor.username)
    person = custodia.person(actor.username)
    actor.proceed()
    factor.forget_first_login(actor.username)
    recorded = False
    if person.second_factor != "inscrito":
        with custodia.ledger.person_lock(person.id):
            person = custodia.person(actor.username)
            if person.second_factor != "inscrito":
                person.enrol_second_factor(at=custodia.clock())
                custodia.ledger.save(person)
                recorded = True
    return {"usuario": actor.username, "segundo_factor": "inscrito", "registrado": recorded}


def reset(
    custodia: Custodia, actor: Actor, username: str, reason: str, channel: OfficialChannel
) -> dict[str, Any]:
    """A lost factor (CLI.md: only a coadministrator, recorded): destroyed in OpenBao, a new
    first login with a new password (returned to be sealed for the caller), then recorded."""
    name = str(Username.parse(username))
    by = custodia.person(actor.username)
    person = custodia.person(name)
    if by.id == person.id:
        raise OwnFactorResetError(name)
    at: datetime = custodia.clock()
    # The domain's checks (coadministrator, departed, reason) before anything is changed.
    trial = custodia.person(name)
    trial.reset_second_factor(reason, by=by, channel=channel, at=at)
    factor = _factor(custodia)
    method_id = _enforced_method(factor, name)
    actor.proceed()
    factor.destroy(name, method_id, actor.token)
    password = secrets.token_urlsafe(18)
    factor.prepare(name, password, caller_token=actor.token, join=False)
    with custodia.ledger.person_lock(person.id):
        person = custodia.person(name)
        person.reset_second_factor(reason, by=by, channel=channel, at=at)
        custodia.ledger.save(person)
    log.info("custody.second_factor.reset", username=name, by=actor.username)
    return {"usuario": name, "segundo_factor": "restablecido", "contrasena": password}


def require(custodia: Custodia, actor: Actor, username: str) -> dict[str, Any]:
    """An opt-in (a titular, the Secretaría, at their request): a coadministrator puts the
    person under the factor; OpenBao refuses their password alone from now on, and a first
    login with a NEW password (returned to be sealed for the caller) lets them enrol."""
    name = str(Username.parse(username))
    by = custodia.person(actor.username)
    at: datetime = custodia.clock()
    trial = custodia.person(name)
    # Already under the factor, by the ledger: an opt-in recorded, or a role that reads
    # credentials (its registration put them there).
    recorded = trial.second_factor is not None or bool(CREDENTIAL_READERS & set(trial.roles))
    trial.require_second_factor(by=by, at=at)  # the domain's checks, nothing saved
    factor = _factor(custodia)
    enforced = factor.enforcement()
    if enforced is None:
        raise SecondFactorNotEnforcedError
    member = factor.is_member(name, enforced[1])
    if recorded and member:
        raise AlreadySecondFactorMemberError(name)
    # In the group with nothing recorded: an opt-in that failed after joining the group (its
    # first login not made, or the ledger not written). Sent again, it completes, and writes
    # the group again: its record must not be left to cover someone else's change.
    actor.proceed()
    password = secrets.token_urlsafe(18)
    factor.prepare(name, password, caller_token=actor.token, rewrite=member)
    with custodia.ledger.person_lock(trial.id):
        person = custodia.person(name)
        person.require_second_factor(by=by, at=at)
        custodia.ledger.save(person)
    return {"usuario": name, "segundo_factor": "exigido", "contrasena": password}


def require_factor_for(custodia: Custodia, username: str, role: str) -> None:
    """Before a transfer (``personas cambiar``) gives ``username`` a role that reads credentials:
    :class:`SecondFactorFirstError` unless OpenBao already asks them for the factor (or enforces
    none here). ``personas alta`` puts a new credential reader under it itself; a transfer has
    no password to make a first login with, so the opt-in (which gives one) comes first."""
    if role not in CREDENTIAL_READERS:
        return
    factor = _factor(custodia)
    enforced = factor.enforcement()
    if enforced is None:
        return
    if not factor.is_member(username, enforced[1]):
        raise SecondFactorFirstError(str(Username.parse(username)), role)


def on_registered(
    custodia: Custodia, actor: Actor, username: str, role: str, password: str | None
) -> None:
    """After ``personas alta``: a person who can read credentials must use the factor."""
    if password is None or role not in CREDENTIAL_READERS:
        return
    if custodia.person(username).second_factor == "inscrito":
        return  # registered again (a retry): enrolled already, no first login to make
    _factor(custodia).prepare(username, password, caller_token=actor.token)
