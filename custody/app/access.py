"""Designation is access (6.IX, 6.X): people, their identities, and group membership.

Each person is one identity *entity* named by their user name, with one *alias* per login
method (userpass by default; an OIDC/JWT alias when the institute's identity provider is used).
Access comes only from identity groups (``custody.vault.layout``): the 3 role groups and one group
per
district whose single member is the district's designated account administrator. OpenBao/Vault
evaluates a token's identity policies on every request, so a membership change applies to
existing tokens at once — no token has to be revoked (verified by the integration tests).

All of this runs with the service token (policy ``custodia-servicio``), which may create a NEW
login (never change one: no password reset), create its alias without naming an entity (so
OpenBao makes a fresh entity: a login can never be attached to someone else's identity), and
replace the members of the 33 district groups — nothing else (issue 16, finding 5). People are
found by their login's alias, not by the entity's name (which the service may set). The role
groups (coadministradores, titulares, secretaria) are written with the requesting
coadministrator's own token (``caller_token``): the service token alone cannot make anyone a
coadministrator. ``custodia init`` uses an administrative token for the first coadministrator.

Order of writes for a designation (``designate``), so that Vault never grants what the ledger
does not (see ``custody.app.reconcile``):

1. Vault: the district's group is emptied — the outgoing person loses access first (6.X);
2. ledger: the designation is recorded (the ``record`` callback);
3. Vault: the incoming person joins the group.

A crash after 1 leaves nobody with access and the ledger naming the outgoing person; after 2,
nobody with access and the ledger naming the incoming one. Either way reconciliation sees a
group that differs from the ledger and sets it from the ledger. If recording fails, the previous
members are put back before the error propagates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import structlog

from custody.errors import (
    LoginTakenError,
    SecondFactorRequiredError,
    UnknownPersonError,
    UnknownRoleError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
)
from custody.vault.client import VaultClient, check_username
from custody.vault.layout import OWN_PASSWORD_POLICY, ROLE_GROUPS, district_group, district_id

log = structlog.get_logger()

Role = Literal["coadministrador", "titular", "administrador", "secretaria"]
T = TypeVar("T")


def login_name(entity: Mapping[str, Any], accessor: str) -> str | None:
    """The login (alias) name of an entity on the userpass mount ``accessor``; else its name."""
    for alias in entity.get("aliases") or []:
        if alias.get("mount_accessor") == accessor and alias.get("name"):
            return str(alias["name"])
    name = entity.get("name")
    return str(name) if name else None


@dataclass(frozen=True)
class Person:
    """A person's identity in OpenBao/Vault."""

    username: str
    entity_id: str
    alias_id: str | None


@dataclass(frozen=True)
class MembershipChange:
    """A group's members (user names) before and after a change."""

    group: str
    previous: tuple[str, ...]
    current: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return set(self.previous) != set(self.current)


class Access:
    """People and group membership, acting with the service token."""

    def __init__(self, client: VaultClient, *, auth_mount: str | None = None) -> None:
        self._client = client
        self._auth_mount = auth_mount or client.mounts.userpass
        self._accessor: str | None = None
        # Identity groups have no check-and-set: a read-modify-write of one group is serialized
        # in this process (the service runs commands concurrently). Another process's change
        # can still be lost; reconciliation against the ledger puts it back.
        self._group_locks: dict[str, threading.RLock] = {}
        self._group_locks_guard = threading.Lock()

    # -- people ------------------------------------------------------------------------------

    def ensure_person(
        self,
        username: str,
        password: str | None = None,
        role: Role | None = None,
        *,
        caller_token: str | None = None,
    ) -> Person:
        """Create or complete a person's login, entity and alias; safe to call again.

        ``password`` creates the userpass login; None leaves the login as it is (with OIDC/JWT
        there is no password here). With the service token an existing login cannot be changed:
        OpenBao refuses (:class:`VaultPermissionDeniedError`) — a password reset is an
        operator's act. ``role`` adds the person to that role's group (coadministrador,
        titular, secretaria) with ``caller_token`` (a coadministrator's own token; None: this
        client's token, administrative at ``custodia init``); an administrador gets access only
        through a designation. Call it after the person's registration is recorded in the ledger.
        """
        check_username(username)
        if password is not None:
            self._client.write(
                f"auth/{self._auth_mount}/users/{username}",
                {"password": password, "token_policies": OWN_PASSWORD_POLICY},
                operation="ensure-person",
                secret_body=True,
            )
        entity_id, alias_id = self._ensure_alias(username)
        if role is not None and role in ROLE_GROUPS:
            self.add_role_member(role, username, caller_token=caller_token)
        log.info("custody.person.ensured", username=username, role=role)
        return Person(username, entity_id, alias_id)

    def create_login(self, username: str, password: str) -> bool:
        """Create ``username``'s userpass login; True if created, False if it was already there
        with this very password (a retry of a registration whose ledger write failed after its
        login was made). OpenBao's refusal is the existence check: the service may only
        *create* a login, so an existing one answers 403 and is never changed. Any other
        existing login: :class:`LoginTakenError`.

        Nothing here can delete a login (the service may not: that would be a password reset),
        so a registration creates the login before it writes the ledger and a retry adopts the
        login only by proving its password."""
        name = check_username(username)
        try:
            self._client.write(
                f"auth/{self._auth_mount}/users/{name}",
                {"password": password, "token_policies": OWN_PASSWORD_POLICY},
                operation="ensure-person",
                secret_body=True,
            )
        except VaultPermissionDeniedError:
            if not self._opens(name, password):
                raise LoginTakenError(name) from None
            log.info("custody.person.login_adopted", username=name)
            return False
        return True

    def _opens(self, username: str, password: str) -> bool:
        """Whether ``password`` logs ``username`` in (the token made to prove it is revoked)."""
        anonymous = self._client.with_token(None)
        try:
            token = anonymous.login_userpass(username, password, mount=self._auth_mount)
        except SecondFactorRequiredError:
            # OpenBao took the password and asks for the person's factor (a retry of the
            # registration of someone who reads credentials): the password is proven.
            return True
        except (VaultPermissionDeniedError, VaultInvalidRequestError, VaultNotFoundError):
            return False
        anonymous.with_token(token).revoke_self()
        return True

    def entity_id(self, username: str) -> str | None:
        """The entity id of ``username``'s login (its alias), or None if it has no identity yet.

        By alias, not by entity name: the login is the person (only they know its password), and
        an alias cannot be moved to another entity with the service token, while a name can be
        given to any entity."""
        check_username(username)
        found = self._lookup_alias(username)
        return str(found["id"]) if found.get("id") else None

    def require_entity_id(self, username: str) -> str:
        entity_id = self.entity_id(username)
        if entity_id is None:
            raise UnknownPersonError(username)
        return entity_id

    def mount_accessor(self) -> str:
        """The accessor of the userpass mount (people's aliases live on it)."""
        if self._accessor is None:
            body = self._client.read("sys/auth", operation="ensure-person")
            mounts = body.get("data") or body
            entry = mounts.get(self._auth_mount + "/") or {}
            if not entry.get("accessor"):
                raise VaultNotFoundError("ensure-person", f"sys/auth/{self._auth_mount}")
            self._accessor = str(entry["accessor"])
        return self._accessor

    def _lookup_alias(self, username: str) -> dict[str, Any]:
        try:
            body = self._client.write(
                "identity/lookup/entity",
                {"alias_name": username, "alias_mount_accessor": self.mount_accessor()},
                operation="lookup-person",
            )
        except VaultNotFoundError:
            return {}
        return dict((body or {}).get("data") or {})

    def _ensure_alias(self, username: str) -> tuple[str, str | None]:
        """The entity and alias of ``username``'s login, created if missing.

        The alias is created without ``canonical_id``: OpenBao then creates a new entity for it
        (the service policy allows nothing else). The entity is then named after the login; if
        that name is taken (an entity made outside Custodia), the entity keeps its generated
        name — the alias is what identifies the person."""
        accessor = self.mount_accessor()
        found = self._lookup_alias(username)
        if not found:
            created = self._client.write(
                "identity/entity-alias",
                {"name": username, "mount_accessor": accessor},
                operation="ensure-person",
            )
            canonical = ((created or {}).get("data") or {}).get("canonical_id")
            # No answer: the alias was made meanwhile (OpenBao answers a duplicate with 204).
            found = {"id": canonical} if canonical else self._lookup_alias(username)
        entity_id = str(found.get("id") or "")
        if not entity_id:  # pragma: no cover - the server answered without an id
            raise UnknownPersonError(username)
        self._name_entity(username, entity_id)
        for alias in self._lookup_alias(username).get("aliases") or []:
            if alias.get("mount_accessor") == accessor and alias.get("name") == username:
                return entity_id, str(alias.get("id"))
        return entity_id, None

    def _name_entity(self, username: str, entity_id: str) -> None:
        body = self._client.read(f"identity/entity/id/{entity_id}", operation="ensure-person")
        data = body.get("data") or {}
        if data.get("name") == username:
            return
        try:
            self._client.write(
                f"identity/entity/id/{entity_id}",
                {"name": username, "metadata": {"custodia": "persona"}},
                operation="ensure-person",
            )
        except VaultInvalidRequestError:
            # The name belongs to another entity (made outside Custodia): the alias identifies.
            log.warning("custody.person.entity_name_taken", username=username)

    def disable_person(self, username: str, *, caller_token: str | None = None) -> str | None:
        """6.X, a departure: disable the person's identity (entity) with a coadministrator's
        ``caller_token``. OpenBao then refuses every token of that entity — the sessions they
        have open, child tokens included — and their login, from the very next request (verified
        by the tests against the real server). Their groups are emptied separately (the ledger's
        holders); the entity stays for the audit trail. Returns its id (None: never had one)."""
        entity_id = self.entity_id(username)
        if entity_id is None:
            return None
        self._as(caller_token).write(
            f"identity/entity/id/{entity_id}", {"disabled": True}, operation="disable-person"
        )
        log.info("custody.person.disabled", username=username)
        return entity_id

    def is_disabled(self, username: str) -> bool:
        entity_id = self.require_entity_id(username)
        body = self._client.read(f"identity/entity/id/{entity_id}", operation="read-person")
        return bool((body.get("data") or {}).get("disabled"))

    def delete_login(self, username: str) -> None:
        """Remove a person's userpass login; their entity stays for the audit trail.

        Needs an administrative token: the service may not delete logins (deleting and creating
        one again would be a password reset)."""
        check_username(username)
        self._client.delete(f"auth/{self._auth_mount}/users/{username}", operation="delete-login")

    # -- groups ------------------------------------------------------------------------------

    def _as(self, caller_token: str | None) -> VaultClient:
        return self._client if caller_token is None else self._client.with_token(caller_token)

    def members(self, group: str, *, caller_token: str | None = None) -> tuple[str, ...]:
        """The user names (login names) of a group's members, sorted; a role group is read with
        a coadministrator's ``caller_token`` (the service may not read it)."""
        ids = self._member_ids(group, self._as(caller_token))
        return tuple(sorted(self._names_of(ids)))

    def _member_ids(self, group: str, client: VaultClient) -> list[str]:
        body = client.read(f"identity/group/name/{group}", operation="read-group")
        return [str(i) for i in ((body.get("data") or {}).get("member_entity_ids") or [])]

    def username_of_entity(self, entity_id: str) -> str | None:
        """The login name of the person whose entity is ``entity_id`` (None: no such entity).
        A request token carries no login metadata, only its person's entity."""
        try:
            body = self._client.read(f"identity/entity/id/{entity_id}", operation="read-entity")
        except VaultNotFoundError:
            return None
        return login_name(body.get("data") or {}, self.mount_accessor())

    def _names_of(self, entity_ids: Iterable[str]) -> list[str]:
        accessor = self.mount_accessor()
        names = []
        for entity_id in entity_ids:
            try:
                body = self._client.read(f"identity/entity/id/{entity_id}", operation="read-group")
            except VaultNotFoundError:
                names.append(entity_id)  # a deleted entity still listed: show its id
                continue
            names.append(login_name(body.get("data") or {}, accessor) or entity_id)
        return names

    def _group_lock(self, group: str) -> threading.RLock:
        with self._group_locks_guard:
            return self._group_locks.setdefault(group, threading.RLock())

    def set_members(
        self, group: str, usernames: Iterable[str], *, caller_token: str | None = None
    ) -> MembershipChange:
        """Replace a group's members in ONE write: leavers and joiners change together.

        ``caller_token`` writes with that token instead of this client's (role groups)."""
        wanted = sorted(set(usernames))
        ids = [self.require_entity_id(u) for u in wanted]
        client = self._as(caller_token)
        with self._group_lock(group):
            previous = self.members(group, caller_token=caller_token)
            client.write(
                f"identity/group/name/{group}",
                {"member_entity_ids": ids},
                operation="set-members",
            )
        change = MembershipChange(group, previous, tuple(wanted))
        if change.changed:
            log.info(
                "custody.group.members_set", group=group, previous=previous, current=tuple(wanted)
            )
        return change

    def set_district_holder(self, district: str, username: str | None) -> MembershipChange:
        """Make ``username`` the only member of the district's administrator group (None: nobody).

        One write replaces the membership, so the outgoing person leaves and the incoming one
        joins together; the outgoing person's existing tokens are refused from the next request.
        """
        return self.set_members(district_group(district), [username] if username else [])

    def district_holders(self, district: str) -> tuple[str, ...]:
        return self.members(district_group(district))

    def designate(
        self, district: str, incoming: str | None, record: Callable[[], T] | None = None
    ) -> T | None:
        """Change a district's administrator: revoke, record in the ledger, grant (6.X).

        ``record`` writes the designation to the ledger. If it raises, the previous members are
        restored and the error propagates; if the final grant fails, the ledger already holds
        the designation and reconciliation completes the grant.
        """
        district = district_id(district)
        if incoming is not None:
            self.require_entity_id(incoming)  # fail before anyone loses access
        revoked = self.set_district_holder(district, None)
        result: T | None = None
        if record is not None:
            try:
                result = record()
            except BaseException:
                try:
                    self.set_members(district_group(district), revoked.previous)
                except Exception:
                    log.warning("custody.designation.restore_failed", district=district)
                raise
        if incoming is not None:
            self.set_district_holder(district, incoming)
        log.info(
            "custody.designation.applied",
            district=district,
            previous=revoked.previous,
            current=incoming,
        )
        return result

    def role_group(self, role: Role) -> str:
        group = ROLE_GROUPS.get(role)
        if group is None:
            raise UnknownRoleError(role)
        return group

    def set_role_members(
        self, role: Role, usernames: Iterable[str], *, caller_token: str | None = None
    ) -> MembershipChange:
        """Replace the members of a role's group (coadministradores, titulares, secretaria),
        with a coadministrator's ``caller_token`` (None: this client's, administrative)."""
        return self.set_members(self.role_group(role), usernames, caller_token=caller_token)

    def add_role_member(
        self, role: Role, username: str, *, caller_token: str | None = None
    ) -> MembershipChange:
        """Add one member (read-modify-write: identity groups have no check-and-set; serialized
        in this process, while two processes changing the group at once can lose one change,
        which reconciliation against the ledger restores)."""
        group = self.role_group(role)
        with self._group_lock(group):
            current = self.members(group, caller_token=caller_token)
            return self.set_members(group, {*current, username}, caller_token=caller_token)

    def remove_role_member(
        self, role: Role, username: str, *, caller_token: str | None = None
    ) -> MembershipChange:
        group = self.role_group(role)
        with self._group_lock(group):
            current = self.members(group, caller_token=caller_token)
            return self.set_members(group, set(current) - {username}, caller_token=caller_token)

    def groups_of(self, username: str) -> tuple[str, ...]:
        """The names of the groups a person belongs to (for the service's role mapping)."""
        entity_id = self.require_entity_id(username)
        body = self._client.read(f"identity/entity/id/{entity_id}", operation="read-person")
        group_ids = (body.get("data") or {}).get("group_ids") or []
        names = []
        for group_id in group_ids:
            try:
                group = self._client.read(f"identity/group/id/{group_id}", operation="read-person")
                names.append(str((group.get("data") or {}).get("name") or group_id))
            except VaultNotFoundError:
                continue
        return tuple(sorted(names))
