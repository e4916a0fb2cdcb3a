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
import sqlite3
from collections.abc import Callable, Iterable, Sequence
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

from events.domain import (
    AccountOpeningRequest,
    ChangeRequest,
    District,
    DistrictId,
    Incident,
    Person,
)
from projections.contact_reads import CONTACT_HANDLERS
from projections.controls import CONTROL_HANDLERS
from projections.decoding import FastJSONTranscoder, TypedState
from projections.errors import ProjectionDatabaseError, ProjectionHaltedError
from projections.fastrows import FastRows, Params, channel_text
from projections.schema import ERASED_PREFIX, PERSON_COLUMNS
from projections.view import Handler, ProjectionError, ReportsView

__all__ = [
    "APPLICATION_NAME",
    "FAST_KIND",
    "FAST_KINDS",
    "LedgerReader",
    "OnError",
    "Prepared",
    "ReportsProjection",
    "TolerantMapper",
    "UnreadableEvent",
    "fast_rows_for",
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


def _update(c: sqlite3.Cursor, sql: str, params: tuple[Any, ...]) -> None:
    """An UPDATE of exactly one row: a fact about something the view never saw is an error."""
    c.execute(sql, params)
    if c.rowcount != 1:
        raise LookupError(f"{c.rowcount} rows for {sql.split(' SET ')[0]} {params[-1]!r}")


class _Statement:
    """A handler's second half: one statement with the parameters its first half computed
    from the event (or :class:`FastRows` from its stored state); ``one_row``: an update of
    exactly one row (:func:`_update`)."""

    __slots__ = ("one_row", "sql")

    def __init__(self, sql: str, *, one_row: bool = True) -> None:
        self.sql = sql
        self.one_row = one_row

    def __call__(self, c: Any, params: Params, position: int) -> None:
        if self.one_row:
            _update(c, self.sql, params)
        else:
            c.execute(self.sql, params)


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
    return None if value is None else _text(value)


@dataclass(frozen=True)
class UnreadableEvent:
    """A stored event the mapper could not turn into a domain event (unknown topic, bad state)."""

    originator_id: UUID | str
    originator_version: int
    topic: str
    kind: str  # "tema_desconocido" | "estado_ilegible"
    reason: str


def fast_rows_for(mapper: Mapper[UUID]) -> FastRows | None:
    """:meth:`FastRows.for_mapper` with the districts' codes."""
    return FastRows.for_mapper(mapper, _CODES)


Prepared = Sequence[Any]
"""An event of a page as :meth:`ReportsProjection.apply_prepared` takes it:
``[position, kind, params, ...]``: ``kind`` is the index of its class in :data:`FAST_KINDS` and
``params`` its :class:`FastRows` parameters, or ``kind`` is ``-1`` (it goes the usual way, its
notification made by the caller's ``notification_of``). What follows is the caller's."""


class TolerantMapper(Mapper[UUID]):
    """Maps as usual, but returns an :class:`UnreadableEvent` instead of raising.

    The library's steps, with what depends only on the topic (the class, its version, how ids
    convert, a :class:`~projections.decoding.TypedState` reading its states) looked up once per
    topic: a rebuild maps every event of the ledger. A state that is exactly the current
    version's fields is read by the ``TypedState``; any other goes through the transcoder and
    the upcasters; anything unusual (a cipher or compressor, a state that does not decode to an
    object, a str id) takes the library's own path, which also makes the errors.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, tuple[type[Any], int, TypedState | None]] = {}

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        known = self._classes.get(stored_event.topic)
        if known is None:
            known = self._learn(stored_event.topic)
        if known is not None and type(stored_event.originator_id) is UUID:
            cls, class_version, typed = known
            if typed is not None:
                state = typed.decode(stored_event.state)
                if state is not None:  # the current version's fields, exactly
                    state["originator_id"] = stored_event.originator_id
                    state["originator_version"] = stored_event.originator_version
                    domain_event = object.__new__(cls)
                    object.__setattr__(domain_event, "__dict__", state)
                    return domain_event  # type: ignore[no-any-return]
            try:
                state = self.transcoder.decode(stored_event.state)
                if type(state) is dict:
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

    def _learn(self, topic: str) -> tuple[type[Any], int, TypedState | None] | None:
        """The class of ``topic``, its version and the reader of its states, if the fast
        paths of :meth:`to_domain_event` give what the library's would (UUID ids passed
        through)."""
        if self.cipher or self.compressor:
            return None
        try:
            cls = resolve_topic(topic)
            if find_id_convertor(cls, UUID) is not pass_through_convertor:
                return None
        except Exception:
            return None
        typed = TypedState.of(cls, self.transcoder)
        known = self._classes[topic] = (cls, getattr(cls, "class_version", 1), typed)
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
        self._fast_rows: FastRows | None = None
        self._fast_rows_mapper: Mapper[UUID] | None = None
        self._handlers: dict[type, Handler] = {
            Person.Registered: _person_registered,
            Person.RoleGranted: _role_granted,
            Person.RoleRevoked: _role_revoked,
            Person.DeviceRegistered: _device_registered,
            Person.DeviceRetired: _device_retired,
            Person.PersonalDataReplaced: _ignore,
            # Issue 18's login second factor: in no report (the ledger and OpenBao keep it).
            Person.SecondFactorEnrolled: _ignore,
            Person.SecondFactorRequired: _ignore,
            Person.SecondFactorReset: _ignore,
            Person.PersonalDataErased: _personal_data_erased,
            District.Registered: _district_registered,
            District.TitularAppointed: _titular_appointed,
            District.TitularEnded: _titular_ended,
            District.ActingTitularAppointed: _history_only,
            District.ActingTitularEnded: _history_only,
            District.AuthorityExceptionRecorded: _authority_exception,
            Person.Departed: _departed,
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
            District.AccountSecretsDestroyed: _ignore,  # 10: read from the district (cuentas lista)
            District.TotpRegistered: _totp_registered,
            District.RotationStarted: _rotation_started,
            District.RotationConfirmed: _rotation_confirmed,
            District.RotationAbandoned: _rotation_abandoned,
            District.CredentialRead: _credential_read,
            District.ReadVoided: _read_voided,
            # 10.I–III: requests to open accounts; the accounts themselves are projected.
            AccountOpeningRequest.Filed: _ignore,
            AccountOpeningRequest.Approved: _ignore,
            AccountOpeningRequest.Rejected: _ignore,
            ChangeRequest.Filed: _request_filed,
            ChangeRequest.Approved: _request_approved,
            ChangeRequest.Rejected: _request_rejected,
            ChangeRequest.Applied: _request_applied,
            Incident.Reported: _incident_reported,
            Incident.UnrecordedReadDetected: _unrecorded_read,
            Incident.LedgerTamperingDetected: _ledger_tampering,
            Incident.UnrecordedAccessChangeDetected: _ledger_tampering,
            Incident.LedgerContained: _ledger_contained,
            Incident.Notified: _incident_notified,
            Incident.Contained: _incident_contained,
            Incident.Closed: _incident_closed,
            Incident.Dismissed: _incident_dismissed,
            Incident.Acknowledged: _incident_acknowledged,
            **CONTROL_HANDLERS,  # issue 19 (projections.controls)
            **CONTACT_HANDLERS,  # issue 18 (projections.contact_reads)
        }

    def ignored_topics(self) -> list[str]:
        """The topics of events this projection applies as nothing (:func:`_ignore`)."""
        return sorted(
            getattr(cls, "TOPIC", f"{cls.__module__}:{cls.__qualname__}")
            for cls, handler in self._handlers.items()
            if handler is _ignore
        )

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
        except ProjectionDatabaseError:
            raise  # the view's batch failed to commit: stop, never skip (see ReportsView)
        except Exception as error:
            self._not_applicable(domain_event, tracking, error)

    def catch_up(
        self, notifications: Iterable[Notification], mapper: Mapper[UUID], application_name: str
    ) -> None:
        """What the runner and :meth:`process_event` do for each of ``notifications`` (mapped
        by ``mapper``), as a rebuild does it: a page at a time, with no ``Tracking`` object per
        event (the view's batch ends at the last event's position all the same).

        Nearly every event skips the domain event: :class:`FastRows` gives its handler's second
        half (:data:`_ROWS`) its parameters from the stored state (see :meth:`apply_prepared`).
        """
        fast_rows = self.fast_rows(mapper)
        if fast_rows is None:
            for notification in notifications:
                self._catch_up_one(notification, mapper, application_name)
            return
        fast_params = fast_rows.params
        items: list[Prepared] = []
        add = items.append
        for n in notifications:
            fast = fast_params(n)
            add((n.id, -1, None, n) if fast is None else (n.id, FAST_KIND[fast[0]], fast[1], n))
        self.apply_prepared(items, mapper, application_name, _notification_at_3)

    def fast_rows(self, mapper: Mapper[UUID]) -> FastRows | None:
        """The :class:`FastRows` for events mapped by ``mapper`` (``None``: it maps them in a
        way the shortcut does not assume)."""
        if self._fast_rows_mapper is not mapper:
            self._fast_rows = fast_rows_for(mapper)
            self._fast_rows_mapper = mapper
        return self._fast_rows

    def apply_prepared(
        self,
        items: Sequence[Prepared],
        mapper: Mapper[UUID],
        application_name: str,
        notification_of: Callable[[Any], Notification],
    ) -> None:
        """Applies a page of events, each as :data:`Prepared` says; ``notification_of(item)``
        makes the notification of one that goes the usual way. A rebuild prepares its pages in
        its reading process and applies them in this one (:mod:`.reading`); :meth:`catch_up`
        prepares them here.

        Each run of events with parameters is applied at once (:func:`_fast_run`: the run's
        credential reads in one ``executemany``). An event without, or whose parameters fail
        to apply, goes the usual way (:meth:`_catch_up_one`), which makes the same rows or
        records the same error.
        """
        run: list[Prepared] = []
        for item in items:
            if item[1] >= 0:
                run.append(item)
                continue
            if run:
                self._apply_fast(run, mapper, application_name, notification_of)
                run = []
            self._catch_up_one(notification_of(item), mapper, application_name)
        if run:
            self._apply_fast(run, mapper, application_name, notification_of)

    def _apply_fast(
        self,
        run: list[Prepared],
        mapper: Mapper[UUID],
        application_name: str,
        notification_of: Callable[[Any], Notification],
    ) -> None:
        """Applies a run of events :class:`FastRows` gave parameters for, at once; if that
        fails, one at a time, each the usual way if its parameters fail to apply."""
        try:
            self.view.apply_run(_fast_run, run, application_name, run[-1][0], len(run))
            return
        except ProjectionDatabaseError:
            raise
        except Exception:  # noqa: S110 - the run again, one event at a time
            pass
        apply_at = self.view.apply_at
        for item in run:
            try:
                apply_at(_ROWS_BY_KIND[item[1]], item[2], application_name, item[0])
            except ProjectionDatabaseError:
                raise
            except Exception:
                self._catch_up_one(notification_of(item), mapper, application_name)

    def _catch_up_one(
        self, notification: Notification, mapper: Mapper[UUID], application_name: str
    ) -> None:
        """One notification, the usual way: mapped, then handled (or recorded as poison)."""
        domain_event = mapper.to_domain_event(notification)
        handler = self._handlers.get(type(domain_event))
        if handler is None:
            self.process_event(domain_event, Tracking(application_name, notification.id))
            return
        try:
            self.view.apply_at(handler, domain_event, application_name, notification.id)
        except ProjectionDatabaseError:
            raise
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


def _ignore(c: sqlite3.Cursor, e: object, position: int) -> None:
    """Not projected: sealed personal data (8.D, 11.7), and what no report shows."""


def _person_registered(c: sqlite3.Cursor, e: Person.Registered, position: int) -> None:
    # The OpenBao user name is recorded in clear (it names who did what); erasure removes the row.
    c.execute(
        "INSERT INTO people VALUES (?, ?, ?)",
        (str(e.originator_id), stamp(e.timestamp), getattr(e, "username", None)),
    )


def _role_granted(c: sqlite3.Cursor, e: Person.RoleGranted, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO person_roles VALUES (?, ?, ?, ?)",
        (str(e.originator_id), e.role, e.district, stamp(e.timestamp)),
    )


def _role_revoked(c: sqlite3.Cursor, e: Person.RoleRevoked, position: int) -> None:
    c.execute(
        "DELETE FROM person_roles WHERE person_id = ? AND role = ?", (str(e.originator_id), e.role)
    )
    if c.rowcount != 1:
        raise LookupError(f"role {e.role} of {e.originator_id} was not granted")


def _device_registered(c: sqlite3.Cursor, e: Person.DeviceRegistered, position: int) -> None:
    _REGISTER_DEVICE(c, (str(e.originator_id), e.device_id, stamp(e.timestamp)), position)


_REGISTER_DEVICE: Final = _Statement(
    "INSERT OR REPLACE INTO person_devices VALUES (?, ?, ?)", one_row=False
)


def _device_retired(c: sqlite3.Cursor, e: Person.DeviceRetired, position: int) -> None:
    c.execute(
        "DELETE FROM person_devices WHERE person_id = ? AND device_id = ?",
        (str(e.originator_id), e.device_id),
    )


def _personal_data_erased(c: sqlite3.Cursor, e: Person.PersonalDataErased, position: int) -> None:
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


def _code(e: DomainEventProtocol[UUID]) -> str:
    try:
        return _CODES[e.originator_id.int]
    except (AttributeError, KeyError):
        return _DISTRICTS[e.originator_id]  # the error as it always was


def _district_registered(c: sqlite3.Cursor, e: District.Registered, position: int) -> None:
    if _DISTRICTS.get(e.originator_id) != e.code:
        raise ValueError(f"district {e.code} has an unexpected id")
    c.execute(
        "INSERT INTO districts (code, registered_at) VALUES (?, ?)", (e.code, stamp(e.timestamp))
    )


def _titular_appointed(c: sqlite3.Cursor, e: District.TitularAppointed, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET titular_id = ?, titular_since = ? WHERE code = ?",
        (_text(e.person_id), stamp(e.timestamp), _code(e)),
    )


def _titular_ended(c: sqlite3.Cursor, e: District.TitularEnded, position: int) -> None:
    _update(
        c,
        "UPDATE districts SET titular_id = NULL, titular_since = NULL WHERE code = ?",
        (_code(e),),
    )


def _history_only(
    c: sqlite3.Cursor,
    e: District.ActingTitularAppointed | District.ActingTitularEnded,
    position: int,
) -> None:
    """Acting titulares: read by the designation history
    (projections.history), straight from the district's events (6.VII)."""


def _authority_exception(
    c: sqlite3.Cursor, e: District.AuthorityExceptionRecorded, position: int
) -> None:
    c.execute(
        "INSERT OR REPLACE INTO authority_exceptions VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            position,
            _code(e),
            e.action,
            e.reason,
            channel_text(e.channel),
            str(e.by),
            stamp(e.timestamp),
        ),
    )


def _departed(c: sqlite3.Cursor, e: Person.Departed, position: int) -> None:
    # 6.X: every role ended at once.
    c.execute("DELETE FROM person_roles WHERE person_id = ?", (str(e.originator_id),))


def _administrator_designated(
    c: sqlite3.Cursor, e: District.AdministratorDesignated, position: int
) -> None:
    _DESIGNATE_ADMINISTRATOR(c, (_text(e.person_id), stamp(e.timestamp), _code(e)), position)


_DESIGNATE_ADMINISTRATOR: Final = _Statement(
    "UPDATE districts SET administrator_id = ?, administrator_since = ? WHERE code = ?"
)


def _designation_ended(c: sqlite3.Cursor, e: District.DesignationEnded, position: int) -> None:
    _END_DESIGNATION(c, (_code(e),), position)


_END_DESIGNATION: Final = _Statement(
    "UPDATE districts SET administrator_id = NULL, administrator_since = NULL WHERE code = ?"
)


def _absence_reported(c: sqlite3.Cursor, e: District.AbsenceReported, position: int) -> None:
    _REPORT_ABSENCE(
        c, (e.reason, _text(e.substitute_id), e.starts_on, e.ends_on, _code(e)), position
    )


_REPORT_ABSENCE: Final = _Statement(
    "UPDATE districts SET absence_reason = ?, absence_substitute_id = ?,"
    " absence_starts_on = ?, absence_ends_on = ?, absence_in_course = 0 WHERE code = ?"
)


def _absence_started(c: sqlite3.Cursor, e: District.AbsenceStarted, position: int) -> None:
    _START_ABSENCE(c, (_code(e),), position)


_START_ABSENCE: Final = _Statement("UPDATE districts SET absence_in_course = 1 WHERE code = ?")


def _absence_ended(c: sqlite3.Cursor, e: District.AbsenceEnded, position: int) -> None:
    _END_ABSENCE(c, (_code(e),), position)


_END_ABSENCE: Final = _Statement(
    "UPDATE districts SET absence_reason = NULL, absence_substitute_id = NULL,"
    " absence_starts_on = NULL, absence_ends_on = NULL, absence_in_course = NULL"
    " WHERE code = ?"
)


def _holder_changed(c: sqlite3.Cursor, e: District.CredentialHolderChanged, position: int) -> None:
    _CHANGE_HOLDER(c, (_uid(e.holder_id), stamp(e.timestamp), e.cause, _code(e)), position)


_CHANGE_HOLDER: Final = _Statement(
    "UPDATE districts SET holder_id = ?, holder_since = ?, holder_cause = ? WHERE code = ?"
)


def _obligation_opened(
    c: sqlite3.Cursor, e: District.RotationObligationOpened, position: int
) -> None:
    _OPEN_OBLIGATION(
        c,
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
        position,
    )


_OPEN_OBLIGATION: Final = _Statement(
    "INSERT INTO obligations (obligation_id, position, district, account, cause,"
    " outgoing_holder_id, incoming_holder_id, opened_at, deadline)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    one_row=False,
)


def _obligation_withdrawn(
    c: sqlite3.Cursor, e: District.RotationObligationWithdrawn, position: int
) -> None:
    _WITHDRAW_OBLIGATION(c, (stamp(e.timestamp), e.reason, str(e.obligation_id)), position)


_WITHDRAW_OBLIGATION: Final = _Statement(
    "UPDATE obligations SET withdrawn_at = ?, withdrawn_reason = ? WHERE obligation_id = ?"
)


def _account_registered(c: sqlite3.Cursor, e: District.AccountRegistered, position: int) -> None:
    _REGISTER_ACCOUNT(
        c,
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
        position,
    )


# A re-registered account starts again without a current credential (versions keep rising).
_REGISTER_ACCOUNT: Final = _Statement(
    "INSERT OR REPLACE INTO accounts VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, 0)",
    one_row=False,
)


def _account_status_recorded(
    c: sqlite3.Cursor, e: District.AccountStatusRecorded, position: int
) -> None:
    _RECORD_ACCOUNT_STATUS(
        c,
        (int(e.public), int(e.direct_messages), json.dumps(list(e.violations)), e.account),
        position,
    )


_RECORD_ACCOUNT_STATUS: Final = _Statement(
    "UPDATE accounts SET public = ?, direct_messages = ?, violations = ? WHERE account = ?"
)


def _account_setting_changed(
    c: sqlite3.Cursor, e: District.AccountSettingChanged, position: int
) -> None:
    _change_setting(c, (e.setting, e.value, json.dumps(list(e.violations)), e.account), position)


def _change_setting(c: sqlite3.Cursor, params: Params, position: int) -> None:
    setting, value, violations, account = params
    column = {"correo": "email", "usuario": "handle"}.get(setting)
    if column is None:  # the phone is not projected
        c.execute("UPDATE accounts SET violations = ? WHERE account = ?", (violations, account))
        return
    _update(
        c,
        f"UPDATE accounts SET {column} = ?, violations = ? WHERE account = ?",  # noqa: S608
        (value, violations, account),
    )


def _account_closed(c: sqlite3.Cursor, e: District.AccountClosed, position: int) -> None:
    _CLOSE_ACCOUNT(c, (stamp(e.timestamp), e.account), position)


_CLOSE_ACCOUNT: Final = _Statement(
    "UPDATE accounts SET closed_at = ?, staged_version = NULL, staged_since = NULL"
    " WHERE account = ?"
)


def _totp_registered(c: sqlite3.Cursor, e: District.TotpRegistered, position: int) -> None:
    _REGISTER_TOTP(c, (e.account,), position)


_REGISTER_TOTP: Final = _Statement("UPDATE accounts SET totp_registered = 1 WHERE account = ?")


_EXPOSED_REMEMBERED: Final = 100_000


def _expose(c: sqlite3.Cursor, account: str, version: int, person: str, at: str, how: str) -> None:
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


def _rotation_started(c: sqlite3.Cursor, e: District.RotationStarted, position: int) -> None:
    at = stamp(e.timestamp)
    _start_rotation(c, (e.version, at, e.account, _text(e.by)), position)


def _start_rotation(c: sqlite3.Cursor, params: Params, position: int) -> None:
    version, at, account, by = params
    _update(
        c,
        "UPDATE accounts SET staged_version = ?, staged_since = ? WHERE account = ?",
        (version, at, account),
    )
    _expose(c, account, version, by, at, "generacion")


def _rotation_confirmed(c: sqlite3.Cursor, e: District.RotationConfirmed, position: int) -> None:
    at = stamp(e.timestamp)
    version, account, by = e.version, e.account, _text(e.by)
    obligations = tuple([str(obligation) for obligation in e.closed_obligation_ids])
    _confirm_rotation(c, (version, at, account, by, obligations), position)


def _confirm_rotation(c: sqlite3.Cursor, params: Params, position: int) -> None:
    version, at, account, by, obligations = params
    _update(
        c,
        "UPDATE accounts SET current_version = ?, current_since = ?, staged_version = NULL,"
        " staged_since = NULL WHERE account = ?",
        (version, at, account),
    )
    for obligation in obligations:
        _update(
            c,
            "UPDATE obligations SET closed_at = ?, closed_by = ?, closed_by_version = ?"
            " WHERE obligation_id = ?",
            (at, by, version, obligation),
        )


def _rotation_abandoned(c: sqlite3.Cursor, e: District.RotationAbandoned, position: int) -> None:
    _ABANDON_ROTATION(c, (e.account,), position)


_ABANDON_ROTATION: Final = _Statement(
    "UPDATE accounts SET staged_version = NULL, staged_since = NULL WHERE account = ?"
)


def _credential_read(c: sqlite3.Cursor, e: District.CredentialRead, position: int) -> None:
    # _text() and _code(), inline for their usual case: most of the ledger is reads.
    at = stamp(e.timestamp)
    by = _TEXTS.get(e.by.int) if type(e.by) is UUID else None
    if by is None:
        by = _text(e.by)
    district = _CODES.get(e.originator_id.int) if type(e.originator_id) is UUID else None
    if district is None:
        district = _code(e)
    _read_row(
        c,
        (
            position,
            at,
            district,
            e.account,
            e.kind,
            e.version,
            by,
            e.reader_role,
            e.purpose,
            e.device_id,
            int(e.registered_device),
            int(e.outside_working_hours),
        ),
        position,
    )


_INSERT_READ: Final = "INSERT INTO reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _read_voided(c: sqlite3.Cursor, e: District.ReadVoided, position: int) -> None:
    _VOID_READ(
        c,
        (
            position,
            stamp(e.timestamp),
            _code(e),
            e.account,
            e.kind,
            e.version,
            _text(e.by),
            e.reason,
        ),
        position,
    )


_VOID_READ: Final = _Statement(
    "INSERT INTO voided_reads VALUES (?, ?, ?, ?, ?, ?, ?, ?)", one_row=False
)


def _read_row(c: sqlite3.Cursor, row: Params, position: int) -> None:
    """A credential read, as its ``reads`` row."""
    c.execute(_INSERT_READ, row)
    kind, version = row[4], row[5]
    if kind == "contrasena" and version is not None:
        _expose(c, row[3], version, row[6], row[1], "lectura")


def _request_filed(c: sqlite3.Cursor, e: ChangeRequest.Filed, position: int) -> None:
    channel = e.channel
    _FILE_REQUEST(
        c,
        (
            _text(e.originator_id),
            position,
            e.district,
            e.account,
            e.field,
            e.detail,
            channel["kind"],
            channel["reference"],
            channel.get("date"),
            stamp(e.timestamp),
            _text(e.by),
        ),
        position,
    )


_FILE_REQUEST: Final = _Statement(
    "INSERT INTO change_requests (request_id, position, district, account, field, detail,"
    " channel_kind, channel_reference, channel_date, status, filed_at, filed_by)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'solicitada', ?, ?)",
    one_row=False,
)


def _decided(
    c: sqlite3.Cursor,
    e: ChangeRequest.Approved | ChangeRequest.Rejected,
    status: str,
    position: int,
) -> None:
    _DECIDE_REQUEST(
        c, (status, stamp(e.timestamp), _text(e.by), e.reason, _text(e.originator_id)), position
    )


_DECIDE_REQUEST: Final = _Statement(
    "UPDATE change_requests SET status = ?, decided_at = ?, decided_by = ?,"
    " decision_reason = ? WHERE request_id = ?"
)


def _request_approved(c: sqlite3.Cursor, e: ChangeRequest.Approved, position: int) -> None:
    _decided(c, e, "aprobada", position)


def _request_rejected(c: sqlite3.Cursor, e: ChangeRequest.Rejected, position: int) -> None:
    _decided(c, e, "rechazada", position)


def _request_applied(c: sqlite3.Cursor, e: ChangeRequest.Applied, position: int) -> None:
    _APPLY_REQUEST(
        c, (stamp(e.timestamp), _text(e.by), e.rotation_version, _text(e.originator_id)), position
    )


_APPLY_REQUEST: Final = _Statement(
    "UPDATE change_requests SET status = 'aplicada', applied_at = ?, applied_by = ?,"
    " rotation_version = ? WHERE request_id = ?"
)


def _incident_reported(c: sqlite3.Cursor, e: Incident.Reported, position: int) -> None:
    _report_incident(
        c,
        (
            _text(e.originator_id),
            position,
            e.district,
            e.account,
            e.incident_type,
            e.description,
            stamp(e.timestamp),
            _text(e.by),
            stamp(e.notify_by),
            stamp(e.detected_at),
        ),
        position,
    )


def _report_incident(c: sqlite3.Cursor, params: Params, position: int) -> None:
    """The incident's row, and its step «detected» (the last parameter)."""
    _REPORT_INCIDENT(c, params[:-1], position)
    _STEP_DETECTED(c, (params[0], params[-1]), position)


_STEP_DETECTED: Final = _Statement(
    "INSERT INTO incident_steps (incident_id, detected_at) VALUES (?, ?)", one_row=False
)


def _incident_dismissed(c: sqlite3.Cursor, e: Incident.Dismissed, position: int) -> None:
    """Issue 19: a false alarm, closed with its reason."""
    incident = _text(e.originator_id)
    _update(c, "UPDATE incidents SET status = 'descartado' WHERE incident_id = ?", (incident,))
    c.execute(
        "INSERT INTO incident_steps (incident_id, dismissed_at, dismissed_by, dismiss_reason)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET"
        " dismissed_at = excluded.dismissed_at, dismissed_by = excluded.dismissed_by,"
        " dismiss_reason = excluded.dismiss_reason",
        (incident, stamp(e.timestamp), _text(e.by), e.reason),
    )


def _incident_acknowledged(c: sqlite3.Cursor, e: Incident.Acknowledged, position: int) -> None:
    """8.C, issue 19: the Secretaría Ejecutiva's acknowledgement and measures."""
    incident = _text(e.originator_id)
    c.execute(
        "INSERT INTO incident_steps (incident_id, acknowledged_at, acknowledged_by, measures)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET"
        " acknowledged_at = excluded.acknowledged_at,"
        " acknowledged_by = excluded.acknowledged_by, measures = excluded.measures",
        (incident, stamp(e.timestamp), _text(e.by), e.measures),
    )


#: ``reported_by`` of an incident the service opened itself (no person reported it).
DETECTED_BY: Final = "custodia-servicio"


def _unrecorded_read(c: sqlite3.Cursor, e: Incident.UnrecordedReadDetected, position: int) -> None:
    """Issue 16: a secret read found in OpenBao's audit log with no ledger record. It opens an
    incident, and it is a read like any other in the reads report (no purpose, no registered
    device) and, for a password, in the exposure report."""
    at = stamp(e.accessed_at)
    reader = _text(e.reader) if e.reader is not None else f"openbao:{e.identity}"
    _REPORT_INCIDENT(
        c,
        (
            _text(e.originator_id),
            position,
            e.district,
            e.account,
            e.incident_type,
            e.description,
            stamp(e.timestamp),
            DETECTED_BY,
            stamp(e.notify_by),
        ),
        position,
    )
    _read_row(
        c,
        (
            position,
            at,
            e.district,
            e.account,
            e.kind,
            None if e.staged else e.version,
            reader,
            "no_registrada",
            "lectura sin registro (auditoría de OpenBao)",
            None,
            0,
            0,
        ),
        position,
    )
    if e.staged and e.kind == "contrasena":
        # A staged password becomes the account's staged version once confirmed.
        row = c.execute(
            "SELECT staged_version FROM accounts WHERE account = ?", (e.account,)
        ).fetchone()
        if row is not None and row[0] is not None:
            _expose(c, e.account, int(row[0]), reader, at, "lectura")


#: ``district`` and ``account`` of the institution's incident (the ledger's), which has
#: neither: the columns are NOT NULL; reports show ``None`` (projections.reports).
INSTITUTION: Final = ""


def _ledger_tampering(
    c: sqlite3.Cursor,
    e: Incident.LedgerTamperingDetected | Incident.UnrecordedAccessChangeDetected,
    position: int,
) -> None:
    """Issue 16: the ledger follower refused to sign a ledger that does not extend the head
    anchored in OpenBao; or OpenBao's audit log shows a change of who must use the second
    factor that no command recorded. The institution's incident: no district, no account."""
    _REPORT_INCIDENT(
        c,
        (
            _text(e.originator_id),
            position,
            INSTITUTION,
            INSTITUTION,
            e.incident_type,
            e.description,
            stamp(e.timestamp),
            DETECTED_BY,
            stamp(e.notify_by),
        ),
        position,
    )


def _ledger_contained(c: sqlite3.Cursor, e: Incident.LedgerContained, position: int) -> None:
    _CONTAIN_INCIDENT(c, (stamp(e.timestamp), None, _text(e.originator_id)), position)


_REPORT_INCIDENT: Final = _Statement(
    "INSERT INTO incidents (incident_id, position, district, account, incident_type,"
    " description, status, reported_at, reported_by, notify_by)"
    " VALUES (?, ?, ?, ?, ?, ?, 'reportado', ?, ?, ?)",
    one_row=False,
)


def _incident_notified(c: sqlite3.Cursor, e: Incident.Notified, position: int) -> None:
    _NOTIFY_INCIDENT(
        c,
        (stamp(e.timestamp), int(e.on_time), channel_text(e.channel), _text(e.originator_id)),
        position,
    )


_NOTIFY_INCIDENT: Final = _Statement(
    # A contained incident stays contained (issue 19: containment may come first).
    "UPDATE incidents SET status = CASE status WHEN 'reportado' THEN 'notificado' ELSE status"
    " END, notified_at = ?, notified_on_time = ?, notified_channel = ? WHERE incident_id = ?"
)


def _incident_contained(c: sqlite3.Cursor, e: Incident.Contained, position: int) -> None:
    _CONTAIN_INCIDENT(c, (stamp(e.timestamp), e.rotation_version, _text(e.originator_id)), position)


_CONTAIN_INCIDENT: Final = _Statement(
    "UPDATE incidents SET status = 'contenido', contained_at = ?, rotation_version = ?"
    " WHERE incident_id = ?"
)


def _incident_closed(c: sqlite3.Cursor, e: Incident.Closed, position: int) -> None:
    _CLOSE_INCIDENT(c, (stamp(e.timestamp), _text(e.originator_id)), position)


_CLOSE_INCIDENT: Final = _Statement(
    "UPDATE incidents SET status = 'cerrado', closed_at = ? WHERE incident_id = ?"
)


def _fast_run(c: sqlite3.Cursor, run: list[Prepared], position: int) -> None:
    """Applies a run of events from their :class:`FastRows` parameters, in order.

    The run's ``reads`` rows go in one ``executemany`` at its end: no other handler here
    touches that table, and each row names its own position (the primary key), so the rows are
    the same; what a read changes elsewhere (its password's exposure) is done in order.
    """
    reads: list[Params] = []
    add_read = reads.append
    exposed = getattr(c, "exposed", None)
    rows = _ROWS_BY_KIND
    read = _READ_KIND
    for item in run:
        kind = item[1]
        params = item[2]
        if kind == read:
            add_read(params)
            version = params[5]
            # Mostly a password its reader has seen already: _expose()'s first test, inline.
            if (
                params[4] == "contrasena"
                and version is not None
                and (exposed is None or (params[3], version, params[6]) not in exposed)
            ):
                _expose(c, params[3], version, params[6], params[1], "lectura")
            continue
        rows[kind](c, params, position)
    if reads:
        c.executemany(_INSERT_READ, reads)


_READ: Final = District.CredentialRead
# The second halves of the handlers FastRows gives parameters for.
_ROWS: Final[dict[type[Any], Handler]] = {
    _READ: _read_row,
    District.RotationObligationOpened: _OPEN_OBLIGATION,
    District.RotationStarted: _start_rotation,
    District.RotationConfirmed: _confirm_rotation,
    District.CredentialHolderChanged: _CHANGE_HOLDER,
    District.AdministratorDesignated: _DESIGNATE_ADMINISTRATOR,
    District.DesignationEnded: _END_DESIGNATION,
    District.AbsenceReported: _REPORT_ABSENCE,
    District.AbsenceStarted: _START_ABSENCE,
    District.AbsenceEnded: _END_ABSENCE,
    District.RotationObligationWithdrawn: _WITHDRAW_OBLIGATION,
    District.AccountRegistered: _REGISTER_ACCOUNT,
    District.AccountStatusRecorded: _RECORD_ACCOUNT_STATUS,
    District.AccountClosed: _CLOSE_ACCOUNT,
    District.AccountSettingChanged: _change_setting,
    District.ReadVoided: _VOID_READ,
    District.TotpRegistered: _REGISTER_TOTP,
    District.RotationAbandoned: _ABANDON_ROTATION,
    Person.DeviceRegistered: _REGISTER_DEVICE,
    ChangeRequest.Filed: _FILE_REQUEST,
    ChangeRequest.Approved: _DECIDE_REQUEST,
    ChangeRequest.Rejected: _DECIDE_REQUEST,
    ChangeRequest.Applied: _APPLY_REQUEST,
    Incident.Reported: _report_incident,
    Incident.Notified: _NOTIFY_INCIDENT,
    Incident.Contained: _CONTAIN_INCIDENT,
    Incident.Closed: _CLOSE_INCIDENT,
}
# The same classes in a fixed order: an event's kind is its class's index (FAST_KIND; a
# rebuild's reading process sends the index), and _ROWS_BY_KIND its handler's second half.
FAST_KINDS: Final[tuple[type[Any], ...]] = tuple(_ROWS)
_ROWS_BY_KIND: Final[tuple[Handler, ...]] = tuple(_ROWS.values())
FAST_KIND: Final[dict[type[Any], int]] = {cls: kind for kind, cls in enumerate(FAST_KINDS)}
_READ_KIND: Final = FAST_KIND[_READ]


def _notification_at_3(item: Prepared) -> Notification:
    notification: Notification = item[3]
    return notification
