"""The ledger as the use cases see it: the ``custodia`` eventsourcing application, and one
helper that loads, locks, saves and indexes its aggregates.

:class:`CustodiaApplication` is a plain ``eventsourcing`` ``Application`` (named ``custodia``:
stream ``custodia-events``) holding the domain aggregates. :class:`Ledger` is what every use case
of :mod:`custody.app` goes through: the people and districts loaded (two reads in flight at
once), a lock per district or per other key serializing the commands of this process (the
store's optimistic concurrency still protects against other processes), a save whose conflict
becomes :class:`ConflictError`, and an index of the ledger's creation events (every person,
change request, incident …).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from events.domain import District, DistrictId, Person, parse_district_id, person_id
from events.errors import CustodiaError

T = TypeVar("T")

# The creation events the index keeps (the first event of each aggregate it lists).
_CREATIONS = (
    "Registered",
    "Filed",
    "Reported",
    "UnrecordedReadDetected",
    "LedgerTamperingDetected",
    "UnrecordedAccessChangeDetected",
)


class CustodiaApplication(Application[UUID]):
    """Custodia's ledger: districts, people, change requests and incidents."""

    name = "custodia"
    # A district accumulates every credential read; snapshots keep loading it cheap.
    snapshotting_intervals = {District: 200, Person: 100}  # noqa: RUF012  # library convention

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Record, then keep a copy of each saved aggregate in the cache (the library does
        that only without fast-forward). The next ``get`` still fast-forwards it from the
        store (another instance may have written since), but from this version, not from an
        older cached one: one read of nothing instead of a read of the records in between."""
        recordings = super()._record(processing_event)
        cache = self.repository.cache
        if cache is not None and self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                # A copy: the caller's object may still be mutated after the save.
                cache.put(aggregate_id, deepcopy(aggregate))
        return recordings

    def register_transcodings(self, transcoder: Any) -> None:
        # Snapshots hold domain value types the default transcoder does not know.
        super().register_transcodings(transcoder)
        from events.domain import register_transcodings

        register_transcodings(transcoder)


class PersonNotRegisteredError(CustodiaError):
    """The user name has no registration in the ledger."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


class PersonNotFoundError(PersonNotRegisteredError):
    """A person a command names (not its caller) has no registration in the ledger."""


class NotFoundError(CustodiaError):
    """A change request or incident does not exist."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier}")
        self.kind = kind
        self.identifier = identifier


class ConflictError(CustodiaError):
    """Someone else changed the same data first; the command was not applied."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Ledger:
    """Load, lock, save and index the aggregates of one :class:`CustodiaApplication`."""

    def __init__(self, app: CustodiaApplication) -> None:
        self.app = app
        # Commands on one district are serialized in this process (the ledger's optimistic
        # concurrency still protects against other processes).
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Creation events by aggregate class name, read up to notification ``_index_next``.
        self._index: dict[str, list[UUID]] = {}
        self._index_next = 1
        self._index_guard = threading.Lock()
        # The caller's person is loaded here while the command's thread loads the district.
        self._loads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="custodia-load")

    # -- loading ----------------------------------------------------------------------------

    def person(self, username: str) -> Person:
        """The registered person ``username``, or :class:`PersonNotRegisteredError`."""
        try:
            person: Any = self.app.repository.get(person_id(username))
        except AggregateNotFoundError:
            raise PersonNotRegisteredError(username) from None
        assert isinstance(person, Person)
        return person

    def district(self, code: str | DistrictId) -> District:
        district: Any = self.app.repository.get(
            District.create_id(str(parse_district_id(str(code))))
        )
        assert isinstance(district, District)
        return district

    def person_and_district(self, username: str, code: str | DistrictId) -> tuple[Person, District]:
        """Both at once: two reads of the store in flight instead of one after the other. The
        person's refusal comes first, as when they are loaded in that order."""
        person, district = self.together(lambda: self.person(username), lambda: self.district(code))
        return person, district

    def together(self, *loads: Callable[[], Any]) -> list[Any]:
        """Each load's result, in order, with the reads in flight at once: all but the last run
        on the loading threads while the last runs here. Once all are done, the first error in
        order is raised (as when they are loaded one after the other)."""
        ahead = [self._loads.submit(load) for load in loads[:-1]]
        try:
            here: tuple[bool, Any] = (True, loads[-1]())
        except BaseException as error:
            here = (False, error)
        results = [f.result() for f in ahead]
        if not here[0]:
            raise here[1]
        return [*results, here[1]]

    def registered(self, pid: UUID) -> Person | None:
        """The person of id ``pid``, or ``None`` if the ledger has none."""
        try:
            person: Any = self.app.repository.get(pid)
        except AggregateNotFoundError:
            return None
        assert isinstance(person, Person)
        return person

    def username_of(self, pid: UUID | None) -> str | None:
        if pid is None:
            return None
        try:
            person: Any = self.app.repository.get(pid)
        except AggregateNotFoundError:
            return None
        return getattr(person, "username", None)

    def find(self, kind: type[T], identifier: str, what: str) -> T:
        """The aggregate ``identifier`` of type ``kind`` (a change request, a request to open an
        account, an incident), or :class:`NotFoundError` naming ``what``."""
        try:
            item: Any = self.app.repository.get(UUID(identifier))
        except (ValueError, AggregateNotFoundError):
            raise NotFoundError(what, identifier) from None
        if not isinstance(item, kind):
            raise NotFoundError(what, identifier)
        return item

    def all_of(self, cls: type[T]) -> list[T]:
        """Every aggregate of ``cls`` (people, change requests, incidents), from an index of
        the ledger's creation events kept in this process: each call reads only the
        notifications recorded since the previous one (reports use the projections)."""
        with self._index_guard:
            start = self._index_next
            while True:
                page = self.app.recorder.select_notifications(start=start, limit=1000)
                for n in page:
                    if n.originator_version != 1:
                        continue
                    # Topics are "<prefix>:<Class>.<Event>".
                    name, _, what = n.topic.rpartition(":")[2].rpartition(".")
                    if what in _CREATIONS:
                        self._index.setdefault(name, []).append(UUID(str(n.originator_id)))
                if page:
                    start = page[-1].id + 1
                    self._index_next = start
                if len(page) < 1000:
                    break
            ids = list(self._index.get(cls.__name__, ()))
        result = []
        for aggregate_id in ids:
            item: Any = self.app.repository.get(aggregate_id)
            if isinstance(item, cls):
                result.append(item)
        return result

    # -- writing ----------------------------------------------------------------------------

    def lock(self, key: str) -> threading.Lock:
        """The lock of ``key`` (a district code, or another key a use case names)."""
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def person_lock(self, pid: UUID) -> threading.Lock:
        """The one lock of a person's own record (contact reads, the second factor)."""
        return self.lock(f"persona:{pid}")

    def save(self, *aggregates: Any) -> None:
        """Save atomically; another writer first is :class:`ConflictError` (nothing saved)."""
        try:
            self.app.save(*aggregates)
        except IntegrityError:
            raise ConflictError("ledger") from None


def bootstrap_ledger(
    app: CustodiaApplication, username: str, sealed: str, key: str, at: datetime
) -> bool:
    """``custodia init`` on an empty ledger: the first coadministrator and the 33 districts,
    in one atomic save. False if the ledger already has them (idempotent)."""
    try:
        app.repository.get(person_id(username))
        return False
    except AggregateNotFoundError:
        pass
    first = Person.bootstrap(username, personal_data=sealed, personal_data_key=key, at=at)
    districts = [District.register(str(code), by=first, at=at) for code in DistrictId.all()]
    try:
        app.save(first, *districts)
    except IntegrityError:
        return False
    return True
