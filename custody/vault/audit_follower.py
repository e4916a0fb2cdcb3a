"""The OpenBao audit follower (issue 16): secret reads that bypass the ledger are detected.

People's tokens can no longer read a secret in OpenBao (custody.vault.layout,
custody.vault.credentials):
every current or older password (``<kv>/data/cuentas/…``), staged one (``<kv>/data/preparadas/…``)
and 2FA code (``<totp>/code/…``) is read by the service's own token, for a caller OpenBao has
just authorized, and recorded in the ledger. What remains is what prevention cannot stop: an
operator with a (regenerated) root token, a policy mistake that grants a person a secret path
more specifically than the people's deny, or someone using the service's token outside the
service. OpenBao's file audit device logs every request; this module tails that log, finds every
successful secret read in it and looks for the ledger record that should stand for it. A read
with none is recorded in the ledger as an :meth:`~events.domain.Incident.unrecorded_read` — who
(the person, or OpenBao's name for a token of no person, e.g. a root token or
``token-custodia-servicio``), what (account, password/2FA code, version), when, from which
address — which opens an incident for the Secretaría Ejecutiva.

What counts as a read, from the audit log alone (measured on OpenBao 2.7;
tests/integration/custody/test_openbao_audit.py holds the cases):

- a direct (unwrapped) read answers the secret: the response line has ``response.data`` with
  the (HMAC'd) secret and, for KV, the version in clear (``response.data.metadata.version``);
- a wrapped read answers only ``wrap_info`` (its ``accessor`` and ``token`` HMAC'd). Nothing is
  exposed until the wrapping token is unwrapped: the ``sys/wrapping/unwrap`` line carries the
  wrapping token's accessor HMAC as ``request.client_token_accessor`` (the same HMAC, same key),
  and the unwrapped version in clear. So a wrapped read is kept *pending* until its unwrap (a
  read, attributed to whoever made the wrapped read), its revocation or its expiry (nothing).
  A wrapped read the service made ahead and then revoked is therefore never counted; a
  ``sys/wrapping/rewrap`` moves the pending read to the new wrapping token.

How a read is matched to the ledger (the choice, and its risks): the ledger's read records do
not name OpenBao's request or wrapping token (recording them would need the wrapping token's
accessor before the ledger write, which the early-recording reveal path does not have). A read
is matched by *(reader, district, account, kind, version, time)*. The reader is the person whose
token made the read; for a read made by the service's token (its ``token_policies`` hold
``custodia-servicio`` and it has no entity: see :attr:`SecretAccess.by_service`) it is any
person — the service reads only for a caller OpenBao authorized and records each read, so one
record stands for one service read, and an extra read (the service's token used elsewhere) is
left with none:

- a password: a ``District.CredentialRead`` of that reader, account and version, and only for a
  wrapped read (Custodia never reads a password unwrapped); a 2FA code: a ``CredentialRead`` of
  kind ``codigo_totp`` of that reader and account, wrapped too;
- a staged password read directly: a ``District.RotationConfirmed`` of that reader and account
  (``rotar confirmar`` has the service read the staged password to make it current);
- within ``window`` seconds of OpenBao's time of the read; each ledger record stands for one read
  only (consumed), so a second, direct or wrapped, read next to a legitimate one is still found;
- a read of no registered person and not by the service (root token, a token with no
  ``username``) never matches.

False negatives: a person who makes a wrapped read and unwraps it themselves within ``window``
of a legitimate reveal of the same version whose own wrapped read was never unwrapped (e.g. the
service failed after recording): the legitimate record is consumed by the illegitimate read —
the person was recorded as having read that version anyway. The same holds for the service's
token used outside the service next to a legitimate reveal that was never unwrapped; when the
legitimate read is unwrapped, one of the two is reported (the count of reads and records never
agrees), though perhaps attributed to the other. False positives: a rotation
confirmation that read the staged password and then failed before recording (a rare fault: the
staged password was indeed read outside the ledger); a ledger whose clock is more than
``window`` away from OpenBao's. A read whose record is not yet visible is re-checked for
``grace`` seconds before it is declared unrecorded (the service records a confirmation just
after its read).

Changes of access (found 2026-12-07): the audit log also shows who changes the members of the
group ``custodia-segundo-factor`` (who must use the second factor) or deletes it, and who
destroys a person's factor (``identity/mfa/method/totp/admin-destroy``). A coadministrator's own
token may do both — that is how Custodia writes them, for her, inside a recorded command — so
outside Custodia she could take someone out of the group and log in with their password alone.
Each such change must be matched by a record of a command *of the person whose token made it*
(by ``Person.RoleGranted`` of a role that reads credentials — a registration —, by
``Person.SecondFactorRequired`` — an opt-in — for the group; by ``Person.SecondFactorReset`` for
a destroyed factor; for a token of no person, e.g. ``custodia init``'s root token, a record by
nobody, the bootstrap's), within ``change_window`` seconds either side (one request writes
both), each record standing for one change. A request token carries the person's entity and no
login name: the name is looked up by the entity (``entity_names``). An unmatched change, past its
grace, is recorded as the institution's incident
(:meth:`~events.domain.Incident.unrecorded_access_change`).
The layout's own writes of the group (its metadata and policies, never its members) are not
changes. A coadministrator who makes a legitimate registration and, within the window, a change
of her own outside Custodia has the second covered by the first's record only if the first made
no change itself (every registration of a credential reader does, when the factor is enforced).

Durability: the follower's state (file identity: device, inode and a digest of the first line;
the byte offset after the last whole line processed; the last request id; pending wrapped reads;
reads awaiting their grace; consumed ledger records) is written atomically to ``state_file``
after the reads found up to that offset are recorded, and resumed at start. A rotated log (the
old file renamed in the same directory) is drained from the saved offset before the new one is
read from its start; a truncated log is read again from its start (logged). Recording is
idempotent: the incident's id derives from OpenBao's request id, so a line processed twice — after
a crash between recording and saving the state, or by two service instances — records once.

Nothing secret reaches the ledger, the state file or the log: the HMAC'd values are used only as
keys between a wrapped read and its unwrap, in memory and in the state file (mode 0600); they
never go into an event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal, Protocol, cast
from uuid import UUID, uuid5

import structlog

from custody.vault.client import Mounts
from custody.vault.layout import MFA_GROUP, SERVICE_POLICY

log = structlog.get_logger("custodia.openbao_audit")

Kind = Literal["contrasena", "codigo_totp"]
AccessChangeKind = Literal["grupo_segundo_factor", "factor_destruido"]

#: Namespace of the ids of incidents opened for unrecorded reads (from OpenBao's request id).
UNRECORDED_NAMESPACE = UUID("6f1d3c52-51a7-4d8e-9a0e-2b7c1f0a9e16")

DEFAULT_WINDOW = 300.0
# A command that changes access writes OpenBao and the ledger within the same request: its
# record is seconds away from the write, and a record further away covers nothing.
DEFAULT_CHANGE_WINDOW = 60.0
DEFAULT_GRACE = 10.0
DEFAULT_POLL = 1.0
_CHUNK = 4 * 1024 * 1024
_PLATFORM = r"[a-z0-9][a-z0-9_-]{0,31}"


def incident_id_for(request_id: str) -> UUID:
    """The id of the incident recording the read OpenBao logged as ``request_id``."""
    return uuid5(UNRECORDED_NAMESPACE, f"openbao-audit:{request_id}")


# -- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretAccess:
    """One secret read, as the audit log shows it (no secret, no HMAC)."""

    request_id: str
    at: datetime
    district: str
    account: str
    kind: Kind
    staged: bool
    version: int | None
    wrapped: bool
    entity_id: str
    username: str
    display_name: str
    remote_address: str
    #: Made by the service's own token (for a caller OpenBao authorized, custody.vault.credentials).
    by_service: bool = False

    def to_json(self) -> dict[str, Any]:
        # Field by field: ``dataclasses.asdict`` deep-copies each value (ten times slower), and
        # the follower writes every pending read at each save.
        return {
            "request_id": self.request_id,
            "at": self.at.isoformat(),
            "district": self.district,
            "account": self.account,
            "kind": self.kind,
            "staged": self.staged,
            "version": self.version,
            "wrapped": self.wrapped,
            "entity_id": self.entity_id,
            "username": self.username,
            "display_name": self.display_name,
            "remote_address": self.remote_address,
            "by_service": self.by_service,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SecretAccess:
        values = dict(data)
        values["at"] = datetime.fromisoformat(str(values["at"]))
        return cls(**values)


@dataclass(frozen=True)
class WrappedRead:
    """A wrapped secret read: an access once unwrapped. ``keys`` are the logged HMACs of its
    wrapping token's accessor and token; ``expires`` its wrapping TTL's end."""

    access: SecretAccess
    keys: tuple[str, ...]
    expires: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "access": self.access.to_json(),
            "keys": list(self.keys),
            "expires": self.expires.isoformat(),
        }

    @cached_property
    def json_text(self) -> str:
        """:meth:`to_json` encoded, once: the follower writes every pending read at each save,
        and under a burst of reveals hundreds wait for their unwrap (issue 21)."""
        return json.dumps(self.to_json())


@dataclass(frozen=True)
class Unwrap:
    keys: tuple[str, ...]
    version: int | None
    has_data: bool


@dataclass(frozen=True)
class Revoke:
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Rewrap:
    """``sys/wrapping/rewrap``: the wrapped answer moves to a new wrapping token."""

    keys: tuple[str, ...]
    new_keys: tuple[str, ...]
    expires: datetime


@dataclass(frozen=True)
class AccessChange:
    """A change of who must use the second factor (the members of the group
    ``custodia-segundo-factor``, or the group deleted) or a destroyed factor, as the audit log
    shows it. ``entity_id``/``username`` are empty for a token of no person (a root token)."""

    request_id: str
    at: datetime
    change: AccessChangeKind
    entity_id: str
    username: str
    display_name: str
    remote_address: str

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "at": self.at.isoformat(),
            "change": self.change,
            "entity_id": self.entity_id,
            "username": self.username,
            "display_name": self.display_name,
            "remote_address": self.remote_address,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessChange:
        values = dict(data)
        values["at"] = datetime.fromisoformat(str(values["at"]))
        return cls(**values)


Observation = SecretAccess | WrappedRead | Unwrap | Revoke | Rewrap | AccessChange


def parse_time(text: str) -> datetime:
    """OpenBao's RFC 3339 time with nanoseconds (``2026-12-06T14:36:13.363514614Z``)."""
    text = text.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*?\.\d{1,6})\d*([+-]\d\d:\d\d)$", text)
    if match:
        text = match.group(1) + match.group(2)
    return datetime.fromisoformat(text).astimezone(UTC)


def _dict(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _expiry(wrap: dict[str, Any], default_start: datetime) -> datetime:
    """When a wrapping token expires: its creation time plus its TTL (both in clear)."""
    ttl = wrap.get("ttl")
    seconds = float(ttl) if isinstance(ttl, int | float) else 300.0
    created = _str(wrap.get("creation_time"))
    start = parse_time(created) if created else default_start
    return start + timedelta(seconds=seconds)


def _version(data: dict[str, Any]) -> int | None:
    value = _dict(data.get("metadata")).get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class AuditParser:
    """Classifies audit log entries (response lines only: they carry request and answer)."""

    def __init__(self, mounts: Mounts, service_policy: str = SERVICE_POLICY) -> None:
        self._service_policy = service_policy
        self._kv = re.compile(
            rf"^{re.escape(mounts.kv)}/data/(cuentas|preparadas)/(DD\d\d)/({_PLATFORM})$"
        )
        self._totp = re.compile(rf"^{re.escape(mounts.totp)}/code/(DD\d\d)-({_PLATFORM})$")

    def classify(self, entry: dict[str, Any]) -> Observation | None:
        if entry.get("type") != "response" or entry.get("error"):
            return None  # a request line, or a refused/failed request: nothing was answered
        request = _dict(entry.get("request"))
        response = _dict(entry.get("response"))
        path = _str(request.get("path"))
        operation = _str(request.get("operation"))
        if path == "sys/wrapping/unwrap":
            data = _dict(response.get("data"))
            token = _str(_dict(request.get("data")).get("token"))
            keys = tuple(k for k in (_str(request.get("client_token_accessor")), token) if k)
            return Unwrap(keys, _version(data), bool(data))
        if path == "sys/wrapping/rewrap":
            token = _str(_dict(request.get("data")).get("token"))
            keys = tuple(k for k in (_str(request.get("client_token_accessor")), token) if k)
            wrap = _dict(response.get("wrap_info"))
            new_keys = tuple(k for k in (_str(wrap.get("accessor")), _str(wrap.get("token"))) if k)
            return Rewrap(keys, new_keys, _expiry(wrap, parse_time(_str(entry.get("time")))))
        if path in ("auth/token/revoke-self", "auth/token/revoke-accessor", "auth/token/revoke"):
            body = _dict(request.get("data"))
            if path == "auth/token/revoke-self":
                keys = (_str(request.get("client_token_accessor")),)
            else:
                keys = (_str(body.get("accessor")), _str(body.get("token")))
            return Revoke(tuple(k for k in keys if k))
        if operation in ("create", "update", "delete"):
            return self._access_change(entry, request, path, operation)
        if operation != "read":
            return None
        target = self._target(path)
        if target is None:
            return None
        district, account, kind, staged = target
        auth = _dict(entry.get("auth"))
        # The service's token: a token policy only an administrator can attach (the service
        # cannot give a policy to anything), and no entity (an orphan token, not a login).
        policies = auth.get("token_policies")
        by_service = (
            isinstance(policies, list)
            and self._service_policy in policies
            and not _str(auth.get("entity_id"))
        )
        access = SecretAccess(
            request_id=_str(request.get("id")),
            at=parse_time(_str(entry.get("time"))),
            district=district,
            account=account,
            kind=kind,
            staged=staged,
            version=None,
            wrapped=False,
            entity_id=_str(auth.get("entity_id")),
            username=_str(_dict(auth.get("metadata")).get("username")),
            display_name=_str(auth.get("display_name")),
            remote_address=_str(request.get("remote_address")),
            by_service=by_service,
        )
        wrap = _dict(response.get("wrap_info"))
        if wrap:
            keys = tuple(k for k in (_str(wrap.get("accessor")), _str(wrap.get("token"))) if k)
            return WrappedRead(replace(access, wrapped=True), keys, _expiry(wrap, access.at))
        data = _dict(response.get("data"))
        if kind == "codigo_totp":
            return access if data.get("code") else None
        if not isinstance(data.get("data"), dict):
            return None  # nothing there (a deleted version, or no such secret)
        return replace(access, version=_version(data))

    def _access_change(
        self, entry: dict[str, Any], request: dict[str, Any], path: str, operation: str
    ) -> AccessChange | None:
        """A write to the second-factor group that changes its members (the layout's own
        writes set its metadata only) or deletes it; a factor destroyed."""
        change: AccessChangeKind
        if path == f"identity/group/name/{MFA_GROUP}":
            body = _dict(request.get("data"))
            if operation != "delete" and "member_entity_ids" not in body:
                return None
            change = "grupo_segundo_factor"
        elif path == "identity/mfa/method/totp/admin-destroy":
            change = "factor_destruido"
        else:
            return None
        auth = _dict(entry.get("auth"))
        return AccessChange(
            request_id=_str(request.get("id")),
            at=parse_time(_str(entry.get("time"))),
            change=change,
            entity_id=_str(auth.get("entity_id")),
            username=_str(_dict(auth.get("metadata")).get("username")),
            display_name=_str(auth.get("display_name")),
            remote_address=_str(request.get("remote_address")),
        )

    def _target(self, path: str) -> tuple[str, str, Kind, bool] | None:
        match = self._kv.match(path)
        if match:
            area, district, platform = match.groups()
            return district, f"{district}-{platform}", "contrasena", area == "preparadas"
        match = self._totp.match(path)
        if match:
            district, platform = match.groups()
            return district, f"{district}-{platform}", "codigo_totp", False
        return None


# -- durable state ------------------------------------------------------------------------------


@dataclass
class FollowerState:
    """Where the follower is, and what it still waits for; JSON in ``state_file``."""

    device: int | None = None
    inode: int | None = None
    head: str | None = None  # sha256 of the file's first line: the file's identity
    offset: int = 0
    last_request_id: str | None = None
    pending: list[WrappedRead] = field(default_factory=list)
    deferred: list[SecretAccess] = field(default_factory=list)
    consumed: dict[str, str] = field(default_factory=dict)  # ledger record → OpenBao time
    # Changes of access whose command's record may not be visible yet (within ``grace``).
    deferred_changes: list[AccessChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self._rest(), "pending": [p.to_json() for p in self.pending]}

    def _rest(self) -> dict[str, Any]:
        """Everything but ``pending``."""
        return {
            "device": self.device,
            "inode": self.inode,
            "head": self.head,
            "offset": self.offset,
            "last_request_id": self.last_request_id,
            "deferred": [a.to_json() for a in self.deferred],
            "consumed": self.consumed,
            "deferred_changes": [c.to_json() for c in self.deferred_changes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FollowerState:
        return cls(
            device=data.get("device"),
            inode=data.get("inode"),
            head=data.get("head"),
            offset=int(data.get("offset") or 0),
            last_request_id=data.get("last_request_id"),
            pending=[
                WrappedRead(
                    SecretAccess.from_json(p["access"]),
                    tuple(p["keys"]),
                    datetime.fromisoformat(p["expires"]),
                )
                for p in data.get("pending") or []
            ],
            deferred=[SecretAccess.from_json(a) for a in data.get("deferred") or []],
            consumed=dict(data.get("consumed") or {}),
            deferred_changes=[
                AccessChange.from_json(c) for c in data.get("deferred_changes") or []
            ],
        )

    @classmethod
    def load(cls, path: Path) -> FollowerState:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError):
            # Unreadable: read the log again from its start (recording is idempotent).
            log.warning("auditoria_openbao_estado_ilegible", archivo=str(path))
            return cls()

    def save(self, path: Path) -> None:
        """Atomically (temporary file, fsync, rename), mode 0600."""
        self.write(path, self.text())

    def text(self) -> str:
        """The state as :meth:`save` writes it: :meth:`to_json` encoded, each pending read's
        part encoded once and kept (:attr:`WrappedRead.json_text`)."""
        pending = ", ".join(p.json_text for p in self.pending)
        # json.dumps: one C call (json.dump() encodes in Python); "}" closes the object.
        return json.dumps(self._rest())[:-1] + f', "pending": [{pending}]}}'

    @staticmethod
    def write(path: Path, text: str) -> None:
        """Write ``text`` (a :meth:`text`) as :meth:`save` does."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".openbao-audit-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# -- the ledger side ----------------------------------------------------------------------------


class Ledger(Protocol):
    """What the follower needs of the ledger."""

    def records(self, access: SecretAccess, since: datetime) -> Iterable[tuple[str, datetime]]:
        """Keys and times of the ledger records, at or after ``since``, that could stand for
        ``access`` (same person — any person for a read by the service —, account, kind and
        version), newest first."""
        ...

    def record_unrecorded(self, access: SecretAccess, detected_at: datetime) -> bool:
        """Record ``access`` as an unrecorded read (and its incident); ``False`` if it was
        recorded already (idempotent)."""
        ...

    def change_records(
        self, change: AccessChange, since: datetime
    ) -> Iterable[tuple[str, datetime]]:
        """Keys and times of the ledger records, at or after ``since``, of a command of the
        person who made ``change`` that makes such a change (``None``'s, the bootstrap's, for a
        token of no person)."""
        ...

    def record_unrecorded_change(self, change: AccessChange, detected_at: datetime) -> bool:
        """Record ``change`` (and the institution's incident); ``False`` if recorded already."""
        ...


class ApplicationLedger:
    """:class:`Ledger` on Custodia's event-sourced application (the JetStream ledger)."""

    # The window is read by the stream's clock (when each record was stored), then judged by
    # each event's own time: this much earlier, so a clock a little off on either host loses
    # nothing.
    CLOCK_MARGIN = timedelta(minutes=2)
    _KINDS = (".CredentialRead", ".RotationConfirmed")

    def __init__(self, app: Any, policy: Any) -> None:
        self._app = app
        self._policy = policy
        # Each district's window, read once per pass of the follower (a burst of reads on one
        # district is matched against one read of its window, not one each).
        self._windows: dict[UUID, tuple[datetime, Sequence[Any]]] = {}
        # Every person's id (their registrations, read incrementally from the notification log):
        # a change of access is matched against the people's recent records.
        self._people: list[UUID] = []
        self._people_next = 1

    def begin_pass(self) -> None:
        """A new pass of the follower: windows read before are read again (new records)."""
        self._windows.clear()

    def _window(self, district_id: UUID, start: datetime) -> Sequence[Any]:
        cached = self._windows.get(district_id)
        if cached is not None and cached[0] <= start:
            return cached[1]
        events: Sequence[Any] = self._app.recorder.select_events_since(district_id, start)
        self._windows[district_id] = (start, events)
        return events

    def records(self, access: SecretAccess, since: datetime) -> Iterator[tuple[str, datetime]]:
        from events.domain import District, person_id

        reader: UUID | None = None
        if not access.by_service:
            if not access.username:
                return
            try:
                reader = person_id(access.username)
            except Exception:
                return
        district_id = District.create_id(access.district)
        recorder = self._app.recorder  # events.jetstream's: reads by the stream's clock
        # Issue 21: the district's last record first (one read: usually the match), then the
        # records stored in the window, never the district's whole history.
        seen: set[int] = set()
        for stored in reversed(recorder.select_last_record_events(district_id)):
            seen.add(stored.originator_version)
            event = self._event(stored)
            if event is None:
                continue
            if event.timestamp < since:
                return
            if _stands_for(event, access, reader):
                yield f"{district_id}:{event.originator_version}", event.timestamp
        for stored in reversed(self._window(district_id, since - self.CLOCK_MARGIN)):
            if stored.originator_version in seen:
                continue
            event = self._event(stored)
            if (
                event is not None
                and event.timestamp >= since
                and _stands_for(event, access, reader)
            ):
                yield f"{district_id}:{event.originator_version}", event.timestamp

    def _event(self, stored: Any) -> Any:
        """The domain event of a stored one that could be a read's record; None for any other
        kind (not decoded at all)."""
        if not stored.topic.endswith(self._KINDS):
            return None
        return self._app.mapper.to_domain_event(stored)

    # The records of the commands that change who must use the factor (a credential reader's
    # registration, a titular's or the Secretaría's opt-in), or destroy one (a reset).
    _CHANGES: Final = {
        "grupo_segundo_factor": ("Person.RoleGranted", "Person.SecondFactorRequired"),
        "factor_destruido": ("Person.SecondFactorReset",),
    }
    _FACTOR_ROLES: Final = ("coadministrador", "administrador")

    def _person_ids(self) -> list[UUID]:
        recorder = self._app.recorder
        while True:
            page = recorder.select_notifications(start=self._people_next, limit=1000, topics=())
            for n in page:
                if n.originator_version == 1 and n.topic.endswith("Person.Registered"):
                    self._people.append(UUID(str(n.originator_id)))
            if page:
                self._people_next = page[-1].id + 1
            if len(page) < 1000:
                return self._people

    def change_records(
        self, change: AccessChange, since: datetime
    ) -> Iterator[tuple[str, datetime]]:
        from events.domain import Person, person_id

        actor: UUID | None = None
        if change.entity_id:
            if not change.username:
                return  # a token of a person unknown to Custodia: no command of theirs
            try:
                actor = person_id(change.username)
            except Exception:
                return
        kinds = self._CHANGES.get(change.change, ())
        recorder = self._app.recorder
        for pid in self._person_ids():
            for stored in recorder.select_events_since(pid, since - self.CLOCK_MARGIN):
                if not stored.topic.endswith(kinds):
                    continue
                event = self._app.mapper.to_domain_event(stored)
                if event.timestamp < since or getattr(event, "by", None) != actor:
                    continue
                if isinstance(event, Person.RoleGranted) and (
                    event.role not in self._FACTOR_ROLES or event.originator_version != 2
                ):
                    # Only a registration (its role follows the Registered event) of someone
                    # who reads credentials puts them under the factor; a transfer writes no
                    # group (the person must be there already), so it covers no change.
                    continue
                yield f"{pid}:{event.originator_version}", event.timestamp

    def record_unrecorded_change(self, change: AccessChange, detected_at: datetime) -> bool:
        from events.domain import Incident

        incident_id = incident_id_for(change.request_id)
        if self._exists(incident_id):
            return False
        return self._save_new(
            Incident.unrecorded_access_change(
                incident_id=incident_id,
                change=change.change,
                actor=self._person(change.username),
                # The entity names a person's token even when it is no registered person's.
                identity=change.entity_id or change.display_name or "desconocida",
                remote_address=change.remote_address,
                audit_request_id=change.request_id,
                changed_at=change.at,
                policy=self._policy,
                at=detected_at,
            )
        )

    def record_unrecorded(self, access: SecretAccess, detected_at: datetime) -> bool:
        from events.domain import Incident

        incident_id = incident_id_for(access.request_id)
        if self._exists(incident_id):
            return False
        return self._save_new(
            Incident.unrecorded_read(
                incident_id=incident_id,
                district=access.district,
                account=access.account,
                kind=access.kind,
                version=access.version,
                staged=access.staged,
                reader=self._person(access.username),
                # A person's token by its entity; anything else as OpenBao names it (``root``).
                identity=access.entity_id or access.display_name or "desconocida",
                remote_address=access.remote_address,
                audit_request_id=access.request_id,
                accessed_at=access.at,
                policy=self._policy,
                at=detected_at,
            )
        )

    def _exists(self, incident_id: UUID) -> bool:
        from eventsourcing.application import AggregateNotFoundError

        try:
            self._app.repository.get(incident_id)
        except AggregateNotFoundError:
            return False
        return True

    def _person(self, username: str) -> UUID | None:
        """The registered person of ``username`` (None: nobody Custodia knows)."""
        from events.domain import person_id

        if not username:
            return None
        with contextlib.suppress(Exception):
            candidate = person_id(username)
            self._app.repository.get(candidate)
            return candidate
        return None

    def _save_new(self, incident: Any) -> bool:
        from eventsourcing.persistence import IntegrityError

        try:
            self._app.save(incident)
        except IntegrityError:
            return False  # another instance recorded it first
        return True


def _stands_for(event: Any, access: SecretAccess, reader: UUID | None) -> bool:
    """Whether a ledger event is the record of ``access`` (see the module docstring); ``reader``
    None: a read by the service, for whichever person the record names."""
    from events.domain import District

    if reader is not None and getattr(event, "by", None) != reader:
        return False
    if getattr(event, "account", None) != access.account:
        return False
    if access.staged:
        return isinstance(event, District.RotationConfirmed) and not access.wrapped
    if not access.wrapped or not isinstance(event, District.CredentialRead):
        return False
    if event.kind != access.kind:
        return False
    return access.kind == "codigo_totp" or event.version == access.version


# -- the follower -------------------------------------------------------------------------------


class AuditFollower:
    """Tails OpenBao's file audit log; see the module docstring. :meth:`poll` does one pass
    (tests drive it directly); :meth:`start` runs it every ``poll_seconds`` in a thread."""

    def __init__(
        self,
        audit_log: Path,
        state_file: Path,
        ledger: Ledger,
        mounts: Mounts,
        *,
        window: float = DEFAULT_WINDOW,
        grace: float = DEFAULT_GRACE,
        change_window: float = DEFAULT_CHANGE_WINDOW,
        entity_names: Callable[[str], str | None] | None = None,
        poll_seconds: float = DEFAULT_POLL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.audit_log = audit_log
        self.state_file = state_file
        self.ledger = ledger
        self.parser = AuditParser(mounts)
        self.window = timedelta(seconds=window)
        self.grace = timedelta(seconds=grace)
        self.change_window = timedelta(seconds=change_window)
        # A request token (how Custodia's commands reach OpenBao for a person) carries the
        # person's entity but no login name: the name is looked up by the entity.
        self.entity_names = entity_names
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.state = FollowerState.load(state_file)
        self._saved: str | None = None  # the state as last written to ``state_file``
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="openbao-audit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info("auditoria_openbao_siguiendo", archivo=str(self.audit_log))
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                # The state was not saved past what failed: the next pass does it again.
                log.exception("auditoria_openbao_fallo")
                self.state = FollowerState.load(self.state_file)
                self._saved = None
            self._stop.wait(self.poll_seconds)

    # -- one pass ------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read what the log has since the saved position, record the unrecorded reads, save
        the position. The number of reads recorded as unrecorded."""
        recorded = 0
        self._fresh_reads()  # the ledger's reads of this pass start fresh
        for path, fresh in self._sources():
            if fresh:
                self._switch(path)
            while True:
                chunk_end, lines = self._read_lines(path, self.state.offset)
                if not lines:
                    break
                for line in lines:
                    recorded += self._line(line)
                self.state.offset = chunk_end
                recorded += self._settle()
                self._save()
        recorded += self._settle()
        self._save()
        return recorded

    def _fresh_reads(self) -> None:
        """Have the ledger read anew what it kept from earlier in this pass (if it keeps any)."""
        begin = getattr(self.ledger, "begin_pass", None)
        if begin is not None:
            begin()

    def _save(self) -> None:
        """Write the state, unless the file holds this very state already (an idle pass, or a
        pass whose last chunk changed nothing more): no rewrite and fsync every second."""
        text = self.state.text()
        if text != self._saved:
            FollowerState.write(self.state_file, text)
            self._saved = text

    def _sources(self) -> list[tuple[Path, bool]]:
        """The files to read this pass: a rotated-away current file first (to its end), then
        the file at ``audit_log``; ``fresh`` when reading it starts from its beginning."""
        try:
            stat = self.audit_log.stat()
        except FileNotFoundError:
            return []
        state = self.state
        same = (stat.st_dev, stat.st_ino) == (state.device, state.inode)
        if state.inode is None:
            return [(self.audit_log, True)]
        if same and stat.st_size >= state.offset and self._head(self.audit_log) == state.head:
            return [(self.audit_log, False)]
        if same:
            log.warning("auditoria_openbao_truncada", archivo=str(self.audit_log))
            return [(self.audit_log, True)]
        old = self._rotated_file()
        if old is None:
            log.warning("auditoria_openbao_rotada_sin_anterior", archivo=str(self.audit_log))
            return [(self.audit_log, True)]
        return [(old, False), (self.audit_log, True)]

    def _rotated_file(self) -> Path | None:
        for candidate in self.audit_log.parent.iterdir():
            with contextlib.suppress(OSError):
                stat = candidate.stat()
                if (stat.st_dev, stat.st_ino) == (self.state.device, self.state.inode):
                    return candidate
        return None

    def _switch(self, path: Path) -> None:
        stat = path.stat()
        self.state.device, self.state.inode = stat.st_dev, stat.st_ino
        self.state.head = self._head(path)
        self.state.offset = 0

    @staticmethod
    def _head(path: Path) -> str | None:
        with path.open("rb") as handle:
            first = handle.readline()
        if not first.endswith(b"\n"):
            return None
        return hashlib.sha256(first).hexdigest()

    def _read_lines(self, path: Path, offset: int) -> tuple[int, list[bytes]]:
        """Whole lines from ``offset`` (at most about one chunk); the offset after the last."""
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(_CHUNK)
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= _CHUNK:  # one line longer than a chunk: read it whole
                with path.open("rb") as handle:
                    handle.seek(offset)
                    line = handle.readline()
                if line.endswith(b"\n"):
                    return offset + len(line), [line]
            return offset, []
        if self.state.head is None and offset == 0:
            self.state.head = hashlib.sha256(data[: data.find(b"\n") + 1]).hexdigest()
        return offset + end + 1, data[: end + 1].splitlines()

    def _line(self, line: bytes) -> int:
        try:
            entry = json.loads(line)
        except ValueError:
            log.warning("auditoria_openbao_linea_ilegible", posicion=self.state.offset)
            return 0
        if not isinstance(entry, dict):
            return 0
        observation = self.parser.classify(entry)
        request_id = _str(_dict(entry.get("request")).get("id"))
        if request_id:
            self.state.last_request_id = request_id
        if observation is None:
            return 0
        observation = self._named(observation)
        if isinstance(observation, AccessChange):
            return self._change(observation)
        if isinstance(observation, SecretAccess):
            return self._access(observation)
        if isinstance(observation, WrappedRead):
            self.state.pending.append(observation)
            return 0
        found = self._take_pending(observation.keys)
        if found is None or isinstance(observation, Revoke):
            return 0
        if isinstance(observation, Rewrap):
            if observation.new_keys:
                self.state.pending.append(
                    WrappedRead(found.access, observation.new_keys, observation.expires)
                )
            return 0
        if not observation.has_data:
            return 0
        version = observation.version if found.access.kind == "contrasena" else None
        return self._access(replace(found.access, version=version))

    def _named(self, observation: Observation) -> Observation:
        """A person's token is named by its entity's login, never by its metadata: the maker of
        a token chooses its metadata (a request token has none), so it could name someone
        else. Without a lookup (``entity_names`` None) the metadata stands."""
        names = self.entity_names
        if names is None:
            return observation
        if isinstance(observation, AccessChange | SecretAccess) and observation.entity_id:
            return replace(observation, username=names(observation.entity_id) or "")
        if isinstance(observation, WrappedRead) and observation.access.entity_id:
            access = observation.access
            return replace(
                observation, access=replace(access, username=names(access.entity_id) or "")
            )
        return observation

    def _change(self, change: AccessChange) -> int:
        """A change of access: matched by a record of its maker's command, or deferred for
        ``grace`` (the command records after it writes), then recorded as unrecorded."""
        if self._change_matches(change):
            return 0
        self.state.deferred_changes.append(change)
        return 0

    def _change_matches(self, change: AccessChange) -> bool:
        since = change.at - self.change_window
        until = change.at + self.change_window
        for key, stamp in self.ledger.change_records(change, since):
            if stamp <= until and key not in self.state.consumed:
                self.state.consumed[key] = change.at.isoformat()
                return True
        return False

    def _record_change(self, change: AccessChange) -> int:
        recorded = self.ledger.record_unrecorded_change(change, self.clock())
        log.warning(
            "cambio_de_acceso_no_registrado",
            cambio=change.change,
            solicitud=change.request_id,
            nueva=recorded,
        )
        return 1 if recorded else 0

    def _take_pending(self, keys: tuple[str, ...]) -> WrappedRead | None:
        for index, pending in enumerate(self.state.pending):
            if any(key in pending.keys for key in keys):
                return self.state.pending.pop(index)
        return None

    def _access(self, access: SecretAccess) -> int:
        if self._matches(access):
            return 0
        if self._could_match(access):
            self.state.deferred.append(access)  # its record may not be visible yet
            return 0
        return self._record(access)

    @staticmethod
    def _could_match(access: SecretAccess) -> bool:
        if not access.username and not access.by_service:
            return False
        return access.wrapped if not access.staged else not access.wrapped

    def _matches(self, access: SecretAccess) -> bool:
        since = access.at - self.window
        until = access.at + self.window
        for key, stamp in self.ledger.records(access, since):
            if stamp <= until and key not in self.state.consumed:
                self.state.consumed[key] = access.at.isoformat()
                return True
        return False

    def _record(self, access: SecretAccess) -> int:
        recorded = self.ledger.record_unrecorded(access, self.clock())
        log.warning(
            "lectura_no_registrada",
            cuenta=access.account,
            tipo=access.kind,
            version=access.version,
            solicitud=access.request_id,
            nueva=recorded,
        )
        return 1 if recorded else 0

    def _settle(self) -> int:
        """Deferred reads past their grace, and expired wrapped reads; prune consumed keys."""
        now = self.clock()
        recorded = 0
        waiting: list[SecretAccess] = []
        for access in self.state.deferred:
            if self._matches(access):
                continue
            if now - access.at < self.grace:
                waiting.append(access)
                continue
            # Before a read is called unrecorded: the ledger as it is now, not as this pass
            # first read it (its record may have landed since).
            self._fresh_reads()
            if not self._matches(access):
                recorded += self._record(access)
        self.state.deferred = waiting
        changes: list[AccessChange] = []
        for change in self.state.deferred_changes:
            if self._change_matches(change):
                continue
            if now - change.at < self.grace:
                changes.append(change)
                continue
            self._fresh_reads()
            if not self._change_matches(change):
                recorded += self._record_change(change)
        self.state.deferred_changes = changes
        self.state.pending = [p for p in self.state.pending if p.expires > now - self.grace]
        horizon = (now - 2 * self.window).isoformat()
        self.state.consumed = {k: v for k, v in self.state.consumed.items() if v >= horizon}
        return recorded


# -- wiring -------------------------------------------------------------------------------------

STATE_FILE = "openbao-audit.json"


def audit_log_path(settings: Any) -> Path | None:
    """The audit log to follow: ``CUSTODIA_OPENBAO_AUDIT_LOG``, else the embedded OpenBao's."""
    from custody.config import audit_log

    explicit = audit_log()
    if explicit is not None:
        return explicit
    if getattr(settings, "embedded_vault", False):
        return Path(settings.home) / "openbao" / "audit.log"
    return None


def start_audit_follower(services: Any, settings: Any) -> AuditFollower | None:
    """Start following OpenBao's audit log, if the service can read it (``None`` otherwise)."""
    from custody.app.access import Access

    path = audit_log_path(settings)
    if path is None:
        log.warning("auditoria_openbao_sin_archivo")
        return None
    try:
        follower = AuditFollower(
            path,
            Path(settings.home) / "run" / STATE_FILE,
            ApplicationLedger(services.app, services.custodia.policy),
            services.vault.mounts,
            entity_names=Access(services.vault).username_of_entity,
        )
        follower.start()
    except Exception:
        log.exception("auditoria_openbao_no_iniciada")
        return None
    return follower
