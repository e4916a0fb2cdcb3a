"""The projection: each ledger event becomes changes to the report tables (:mod:`.schema`).

Poison events stop nothing silently. An event whose topic no class answers to, or whose state
cannot be decoded, reaches :meth:`ReportsProjection.process_event` as an :class:`UnreadableEvent`
(the :class:`TolerantMapper` makes it instead of raising inside the subscription, which would
end the runner); an event whose fields do not fit its handler raises there. Either way the error
is recorded in ``projection_errors`` and, by the projection's policy (:data:`OnError`), the
projection goes on (the row is committed with the event's tracking position) or halts (the row is
committed alone and :class:`~projections.errors.ProjectionHaltedError` ends the runner; the same
event is tried again on the next start).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    Notification,
    StoredEvent,
    Tracking,
    Transcoder,
    find_id_convertor,
    pass_through_convertor,
)
from eventsourcing.projection import Projection
from eventsourcing.utils import resolve_topic

from events.domain import ChangeRequest, District, DistrictId, Incident, Person
from projections.decoding import FastJSONTranscoder
from projections.errors import ProjectionHaltedError
from projections.schema import ERASED_PREFIX, PERSON_COLUMNS
from projections.view import Handler, ProjectionError, ReportsView

__all__ = [
    "APPLICATION_NAME",
    "LedgerReader",
    "OnError",
    "ReportsProjection",
    "TolerantMapper",
    "UnreadableEvent",
    "stamp",
]

APPLICATION_NAME: Final = "custodia"

# What to do after recording a poison event: go on, or stop the projection there.
OnError = Literal["continuar", "detener"]

_DISTRICTS: Final = {District.create_id(code): str(code) for code in DistrictId.all()}
# The same, by the ids' integers: UUID hashes and compares in Python, an int in C.
_CODES: Final = {uuid.int: code for uuid, code in _DISTRICTS.items()}
_TEXTS: dict[int, str] = {}
_TEXTS_CACHED: Final = 10_000


def stamp(at: datetime) -> str:
    """An instant as the view stores it: UTC, fixed width, sortable
    (``%Y-%m-%dT%H:%M:%S.%f+00:00``)."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    if at.year < 1000:  # strftime does not pad the year to four digits
        return at.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    # isoformat() is about 2.5 times faster than strftime(), but drops zero microseconds.
    text = at.isoformat()
    return text if at.microsecond else f"{text[:19]}.000000+00:00"


def _update(c: Any, sql: str, params: tuple[Any, ...]) -> None:
    """An UPDATE of exactly one row: a fact about something the view never saw is an error."""
    c.execute(sql, params)
    if c.rowcount != 1:
        raise LookupError(f"{c.rowcount} rows for {sql.split(' SET ')[0]} {params[-1]!r}")


def _text(value: Any) -> str:
    """``str(value)``, remembered for UUIDs: the same people come back in event after event."""
    if type(value) is not UUID:
        return str(value)
    text = _TEXTS.get(value.int)
    if text is None:
        if len(_TEXTS) >= _TEXTS_CACHED:
            _TEXTS.clear()
        text = _TEXTS[value.int] = str(value)
    return text


def _uid(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _channel(payload: dict[str, str | None] | None) -> str | None:
    if not payload:
        return None
    text = f"{payload['kind']} {payload['reference']}"
    return f"{text} ({payload['date']})" if payload.get("date") else text


@dataclass(frozen=True)
class UnreadableEvent:
    """A stored event the mapper could not turn into a domain event (unknown topic, bad state)."""

    originator_id: UUID | str
    originator_version: int
    topic: str
    kind: str  # "tema_desconocido" | "estado_ilegible"
    reason: str


class TolerantMapper(Mapper[UUID]):
    """Maps as usual, but returns an :class:`UnreadableEvent` instead of raising.

    The library's steps, with what depends only on the topic (the class, its version, how ids
    convert) looked up once per topic: a rebuild maps every event of the ledger. Anything
    unusual (a cipher or compressor, a state that does not decode to an object, a str id) takes
    the library's own path, which also makes the errors.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, tuple[type[Any], int]] = {}

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        known = self._classes.get(stored_event.topic)
        if known is None:
            known = self._learn(stored_event.topic)
        if known is not None and type(stored_event.originator_id) is UUID:
            try:
                state = self.transcoder.decode(stored_event.state)
                if type(state) is dict:
                    cls, class_version = known
                    state["originator_id"] = stored_event.originator_id
                    state["originator_version"] = stored_event.originator_version
                    from_version = state.pop("class_version", 1)
                    while from_version < class_version:
                        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                        from_version += 1
                    domain_event = object.__new__(cls)
                    object.__setattr__(domain_event, "__dict__", state)
                    return domain_event  # type: ignore[no-any-return]
            except Exception:  # noqa: S110 - the library's path below makes the error
                pass
        try:
            return super().to_domain_event(stored_event)
        except Exception as error:
            topic_error = type(error).__name__ == "TopicError"
            event: Any = UnreadableEvent(
                originator_id=stored_event.originator_id,
                originator_version=stored_event.originator_version,
                topic=stored_event.topic,
                kind="tema_desconocido" if topic_error else "estado_ilegible",
                reason=f"{type(error).__name__}: {error}"[:500],
            )
            return event  # type: ignore[no-any-return]

    def _learn(self, topic: str) -> tuple[type[Any], int] | None:
        """The class of ``topic`` and its version, if the fast path of
        :meth:`to_domain_event` gives what the library's would (UUID ids passed through)."""
        if self.cipher or self.compressor:
            return None
        try:
            cls = resolve_topic(topic)
            if find_id_convertor(cls, UUID) is not pass_through_convertor:
                return None
        except Exception:
            return None
        known = self._classes[topic] = (cls, getattr(cls, "class_version", 1))
        return known


class LedgerReader(Application[UUID]):
    """The ledger (application ``custodia``) as the projections read it: no snapshots, a mapper
    that hands poison events over instead of failing the subscription, and the faster decoding
    of :mod:`.decoding` (same domain events)."""

    name = APPLICATION_NAME

    def construct_transcoder(self) -> Transcoder:
        transcoder = super().construct_transcoder()
        if type(transcoder) is JSONTranscoder:
            return FastJSONTranscoder.like(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=TolerantMapper
        )


class ReportsProjection(Projection[ReportsView]):
    """Keeps the report tables; see the module docstring for poison events."""

    name = "reportes"
    on_error: ClassVar[OnError] = "continuar"

    @classmethod
    def with_policy(cls, on_error: OnError) -> type[ReportsProjection]:
        """This projection with another poison-event policy (same name, same tables)."""
        if on_error == cls.on_error:
            return cls
        return type(cls.__name__, (cls,), {"name": cls.name, "on_error": on_error})

    def __init__(self, view: ReportsView) -> None:
        super().__init__(view)
        self._handlers: dict[type, Handler] = {
            Person.Registered: _person_registered,
            Person.RoleGranted: _role_granted,
            Person.RoleRevoked: _role_revoked,
            Person.DeviceRegistered: _device_registered,
            Person.DeviceRetired: _device_retired,
            Person.PersonalDataReplaced: _ignore,
            Person.PersonalDataErased: _personal_data_erased,
            District.Registered: _district_registered,
            District.TitularAppointed: _titular_appointed,
            District.AdministratorDesignated: _administrator_designated,
            District.DesignationEnded: _designation_ended,
            District.AbsenceReported: _absence_reported,
            District.AbsenceStarted: _absence_started,
            District.AbsenceEnded: _absence_ended,
            District.CredentialHolderChanged: _holder_changed,
            District.RotationObligationOpened: _obligation_opened,
            District.RotationObligationWithdrawn: _obligation_withdrawn,
            District.AccountRegistered: _account_registered,
            District.AccountStatusRecorded: _account_status_recorded,
            District.AccountSettingChanged: _account_setting_changed,
            District.AccountClosed: _account_closed,
            District.TotpRegistered: _totp_registered,
            District.RotationStarted: _rotation_started,
            District.RotationConfirmed: _rotation_confirmed,
            District.RotationAbandoned: _rotation_abandoned,
            District.CredentialRead: _credential_read,
            ChangeRequest.Filed: _request_filed,
            ChangeRequest.Approved: _request_approved,
            ChangeRequest.Rejected: _request_rejected,
            ChangeRequest.Applied: _request_applied,
            Incident.Reported: _incident_reported,
            Incident.Notified: _incident_notified,
            Incident.Contained: _incident_contained,
            Incident.Closed: _incident_closed,
        }

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        handler = self._handlers.get(type(domain_event))
        if handler is None:
            if isinstance(domain_event, UnreadableEvent):
                poison = ProjectionError(
                    domain_event.kind,
                    domain_event.reason,
                    action=self._action,
                    notification_id=tracking.notification_id,
                    topic=domain_event.topic,
                    originator_id=str(domain_event.originator_id),
                    originator_version=domain_event.originator_version,
                )
            else:
                # A known class with no handler: a new event type this projection predates.
                poison = self._failure("evento_sin_tratamiento", domain_event, tracking)
            self._poison(poison, tracking)
            return
        try:
            self.view.apply(handler, domain_event, tracking)
        except Exception as error:
            self._not_applicable(domain_event, tracking, error)

    def catch_up(
        self, notifications: Iterable[Notification], mapper: Mapper[UUID], application_name: str
    ) -> None:
        """What the runner and :meth:`process_event` do for each of ``notifications`` (mapped
        by ``mapper``), as a rebuild does it: a page at a time, with no ``Tracking`` object per
        event (the view's batch ends at the last event's position all the same)."""
        handlers = self._handlers
        apply_at = self.view.apply_at
        to_domain_event = mapper.to_domain_event
        for notification in notifications:
            domain_event = to_domain_event(notification)
            handler = handlers.get(type(domain_event))
            if handler is None:
                self.process_event(domain_event, Tracking(application_name, notification.id))
                continue
            try:
                apply_at(handler, domain_event, application_name, notification.id)
            except Exception as error:
                tracking = Tracking(application_name, notification.id)
                self._not_applicable(domain_event, tracking, error)

    def _not_applicable(self, domain_event: Any, tracking: Tracking, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"[:500]
        failure = self._failure("evento_no_aplicable", domain_event, tracking, reason)
        self._poison(failure, tracking)

    @property
    def _action(self) -> str:
        return "detenida" if self.on_error == "detener" else "omitido"

    def _failure(
        self, kind: str, event: Any, tracking: Tracking, reason: str | None = None
    ) -> ProjectionError:
        cls = type(event)
        return ProjectionError(
            kind,
            reason or f"no handler for {cls.__qualname__}",
            action=self._action,
            notification_id=tracking.notification_id,
            topic=getattr(cls, "TOPIC", f"{cls.__module__}:{cls.__qualname__}"),
            originator_id=str(getattr(event, "originator_id", "")) or None,
            originator_version=getattr(event, "originator_version", None),
        )

    def _poison(self, error: ProjectionError, tracking: Tracking) -> None:
        if self.on_error == "detener":
            self.view.record_error(error, None)
            raise ProjectionHaltedError(error.kind, error.ref, error.reason)
        self.view.record_error(error, tracking)


# --- handlers: (cursor, event, notification id) -------------------------------------------------


def _ignore(c: Any, e: Any, position: int) -> None:
    """Sealed personal data is not projected (R7)."""


def _person_registered(c: Any, e: Any, position: int) -> None:
    # The OpenBao user name is recorded in clear (it names who did what); erasure removes the row.
    c.execute(
        "INSERT INTO people VALUES (?, ?, ?)",
        (str(e.originator_id), stamp(e.timestamp), getattr(e, "username", None)),
    )


def _role_granted(c: Any, e: Any, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO person_roles VALUES (?, ?, ?, ?)",
        (str(e.originator_id), e.role, e.district, stamp(e.timestamp)),
    )


def _role_revoked(c: Any, e: Any, position: int) -> None:
    c.execute(
        "DELETE FROM person_roles WHERE person_id = ? AND role = ?", (str(e.originator_id), e.role)
    )
    if c.rowcount != 1:
        raise LookupError(f"role {e.role} of {e.originator_id} was not granted")


def _device_registered(c: Any, e: Any, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO person_devices VALUES (?, ?, ?)",
        (str(e.originator_id), e.device_id, stamp(e.timestamp)),
    )


def _device_retired(c: Any, e: Any, position: int) -> None:
    c.execute(
        "DELETE FROM person_devices WHERE person_id = ? AND device_id = ?",
        (str(e.originator_id), e.device_id),
    )


def _personal_data_erased(c: Any, e: Any, position: int) -> None:
    # 9.XX: the person's id leaves every table; an alias keeps counts and histories whole.
    person = str(e.originator_id)
    exposed = getattr(c, "exposed", None)
    if exposed is not None:
        exposed.clear()  # rows of this person become the alias's
    c.execute("SELECT COUNT(*) FROM erased_people")
    alias = f"{ERASED_PREFIX}{c.fetchone()[0] + 1}"
    c.execute("INSERT INTO erased_people VALUES (?, ?)", (alias, stamp(e.timestamp)))
    for table in ("people", "person_roles", "person_devices"):
        c.execute(f"DELETE FROM {table} WHERE person_id = ?", (person,))  # noqa: S608
    for table, column in PERSON_COLUMNS:
        c.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (alias, person))  # noqa: S608


def _code(e: Any) -> str:
    try:
        return _CODES[e.originator_id.int]
    except (AttributeError, KeyError):
        return _DISTRICTS[e.originator_id]  # the error as it always was


def _district_registered(c: Any, e: Any, position: int) -> None:
    if _DISTRICTS.get(e.originator_id) != e.code:
        raise ValueError(f"district {e.code} has an unexpected id")
    c.execute(
        "INSERT INTO districts (code, registered_at) VALUES (?, ?)", (e.code, stamp(e.timestamp))
    )


def _titular_appointed(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET titular_id = ?, titular_since = ? WHERE code = ?",
        (str(e.person_id), stamp(e.timestamp), _code(e)),
    )


def _administrator_designated(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET administrator_id = ?, administrator_since = ? WHERE code = ?",
        (str(e.person_id), stamp(e.timestamp), _code(e)),
    )


def _designation_ended(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET administrator_id = NULL, administrator_since = NULL WHERE code = ?",
        (_code(e),),
    )


def _absence_reported(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET absence_reason = ?, absence_substitute_id = ?,"
        " absence_starts_on = ?, absence_ends_on = ?, absence_in_course = 0 WHERE code = ?",
        (e.reason, str(e.substitute_id), e.starts_on, e.ends_on, _code(e)),
    )


def _absence_started(c: Any, e: Any, position: int) -> None:
    _update(c, "UPDATE districts SET absence_in_course = 1 WHERE code = ?", (_code(e),))


def _absence_ended(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET absence_reason = NULL, absence_substitute_id = NULL,"
        " absence_starts_on = NULL, absence_ends_on = NULL, absence_in_course = NULL"
        " WHERE code = ?",
        (_code(e),),
    )


def _holder_changed(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET holder_id = ?, holder_since = ?, holder_cause = ? WHERE code = ?",
        (_uid(e.holder_id), stamp(e.timestamp), e.cause, _code(e)),
    )


def _obligation_opened(c: Any, e: Any, position: int) -> None:
    c.execute(
        "INSERT INTO obligations (obligation_id, position, district, account, cause,"
        " outgoing_holder_id, incoming_holder_id, opened_at, deadline)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(e.obligation_id),
            position,
            _code(e),
            e.account,
            e.cause,
            _uid(e.outgoing_holder_id),
            _uid(e.incoming_holder_id),
            stamp(e.timestamp),
            stamp(e.deadline),
        ),
    )


def _obligation_withdrawn(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE obligations SET withdrawn_at = ?, withdrawn_reason = ? WHERE obligation_id = ?",
        (stamp(e.timestamp), e.reason, str(e.obligation_id)),
    )


def _account_registered(c: Any, e: Any, position: int) -> None:
    # A re-registered account starts again without a current credential (versions keep rising).
    c.execute(
        "INSERT OR REPLACE INTO accounts VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, 0)",
        (
            e.account,
            _code(e),
            e.platform,
            e.handle,
            e.email,
            int(e.public),
            int(e.direct_messages),
            json.dumps(list(e.violations)),
            int(e.existing),
            stamp(e.timestamp),
        ),
    )


def _account_status_recorded(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE accounts SET public = ?, direct_messages = ?, violations = ? WHERE account = ?",
        (int(e.public), int(e.direct_messages), json.dumps(list(e.violations)), e.account),
    )


def _account_setting_changed(c: Any, e: Any, position: int) -> None:
    column = {"correo": "email", "usuario": "handle"}.get(e.setting)
    if column is None:  # the phone is not projected
        c.execute(
            "UPDATE accounts SET violations = ? WHERE account = ?",
            (json.dumps(list(e.violations)), e.account),
        )
        return
    _update(
        c,
        f"UPDATE accounts SET {column} = ?, violations = ? WHERE account = ?",  # noqa: S608
        (e.value, json.dumps(list(e.violations)), e.account),
    )


def _account_closed(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE accounts SET closed_at = ?, staged_version = NULL, staged_since = NULL"
        " WHERE account = ?",
        (stamp(e.timestamp), e.account),
    )


def _totp_registered(c: Any, e: Any, position: int) -> None:
    _update(c, "UPDATE accounts SET totp_registered = 1 WHERE account = ?", (e.account,))


_EXPOSED_REMEMBERED: Final = 100_000


def _expose(c: Any, account: str, version: int, person: str, at: str, how: str) -> None:
    # The first exposure of a version to a person is the one kept: later ones change nothing,
    # and the view remembers which it holds (:class:`~projections.view.ViewCursor`).
    known = getattr(c, "exposed", None)
    key = (account, version, person)
    if known is not None and key in known:
        return
    c.execute(
        "INSERT OR IGNORE INTO exposure VALUES (?, ?, ?, ?, ?)", (account, version, person, at, how)
    )
    if known is not None:
        if len(known) >= _EXPOSED_REMEMBERED:
            known.clear()
        known.add(key)


def _rotation_started(c: Any, e: Any, position: int) -> None:
    at = stamp(e.timestamp)
    _update(
        c,
        "UPDATE accounts SET staged_version = ?, staged_since = ? WHERE account = ?",
        (e.version, at, e.account),
    )
    _expose(c, e.account, e.version, _text(e.by), at, "generacion")


def _rotation_confirmed(c: Any, e: Any, position: int) -> None:
    at = stamp(e.timestamp)
    _update(
        c,
        "UPDATE accounts SET current_version = ?, current_since = ?, staged_version = NULL,"
        " staged_since = NULL WHERE account = ?",
        (e.version, at, e.account),
    )
    by = str(e.by)
    for obligation in e.closed_obligation_ids:
        _update(
            c,
            "UPDATE obligations SET closed_at = ?, closed_by = ?, closed_by_version = ?"
            " WHERE obligation_id = ?",
            (at, by, e.version, str(obligation)),
        )


def _rotation_abandoned(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE accounts SET staged_version = NULL, staged_since = NULL WHERE account = ?",
        (e.account,),
    )


def _credential_read(c: Any, e: Any, position: int) -> None:
    # The stamp and the reader's id are made once for both rows.
    # _text() and _code(), inline for their usual case: most of the ledger is reads.
    at = stamp(e.timestamp)
    by = _TEXTS.get(e.by.int) if type(e.by) is UUID else None
    if by is None:
        by = _text(e.by)
    district = _CODES.get(e.originator_id.int) if type(e.originator_id) is UUID else None
    if district is None:
        district = _code(e)
    account, kind, version = e.account, e.kind, e.version
    c.execute(
        "INSERT INTO reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            position,
            at,
            district,
            account,
            kind,
            version,
            by,
            e.reader_role,
            e.purpose,
            e.device_id,
            int(e.registered_device),
            int(e.outside_working_hours),
        ),
    )
    if kind == "contrasena" and version is not None:
        _expose(c, account, version, by, at, "lectura")


def _request_filed(c: Any, e: Any, position: int) -> None:
    channel = e.channel
    c.execute(
        "INSERT INTO change_requests (request_id, position, district, account, field, detail,"
        " channel_kind, channel_reference, channel_date, status, filed_at, filed_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'solicitada', ?, ?)",
        (
            str(e.originator_id),
            position,
            e.district,
            e.account,
            e.field,
            e.detail,
            channel["kind"],
            channel["reference"],
            channel.get("date"),
            stamp(e.timestamp),
            str(e.by),
        ),
    )


def _decided(c: Any, e: Any, status: str) -> None:
    _update(
        c,
        "UPDATE change_requests SET status = ?, decided_at = ?, decided_by = ?,"
        " decision_reason = ? WHERE request_id = ?",
        (status, stamp(e.timestamp), str(e.by), e.reason, str(e.originator_id)),
    )


def _request_approved(c: Any, e: Any, position: int) -> None:
    _decided(c, e, "aprobada")


def _request_rejected(c: Any, e: Any, position: int) -> None:
    _decided(c, e, "rechazada")


def _request_applied(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE change_requests SET status = 'aplicada', applied_at = ?, applied_by = ?,"
        " rotation_version = ? WHERE request_id = ?",
        (stamp(e.timestamp), str(e.by), e.rotation_version, str(e.originator_id)),
    )


def _incident_reported(c: Any, e: Any, position: int) -> None:
    c.execute(
        "INSERT INTO incidents (incident_id, position, district, account, incident_type,"
        " description, status, reported_at, reported_by, notify_by)"
        " VALUES (?, ?, ?, ?, ?, ?, 'reportado', ?, ?, ?)",
        (
            str(e.originator_id),
            position,
            e.district,
            e.account,
            e.incident_type,
            e.description,
            stamp(e.timestamp),
            str(e.by),
            stamp(e.notify_by),
        ),
    )


def _incident_notified(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE incidents SET status = 'notificado', notified_at = ?, notified_on_time = ?,"
        " notified_channel = ? WHERE incident_id = ?",
        (stamp(e.timestamp), int(e.on_time), _channel(e.channel), str(e.originator_id)),
    )


def _incident_contained(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE incidents SET status = 'contenido', contained_at = ?, rotation_version = ?"
        " WHERE incident_id = ?",
        (stamp(e.timestamp), e.rotation_version, str(e.originator_id)),
    )


def _incident_closed(c: Any, e: Any, position: int) -> None:
    _update(
        c,
        "UPDATE incidents SET status = 'cerrado', closed_at = ? WHERE incident_id = ?",
        (stamp(e.timestamp), str(e.originator_id)),
    )
