"""The rules a read is judged by (8.A, 8.B): the policy in force (the policy file plus the
IECM's non-working days recorded in the ledger) and the devices registered per district.

Used by :class:`~custody.app.custodia.Custodia` before every read and by the controls' use cases
(:mod:`custody.app.controls`); it needs only the application's repository and the policy, so it
imports neither of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from weakref import WeakKeyDictionary

from eventsourcing.application import AggregateNotFoundError, Application

from events.domain import Policy
from events.domain.controls import (
    DeviceNotRegisteredForDistrictError,
    DeviceRegistry,
    WorkingCalendar,
)

A = TypeVar("A")


class Loader(Protocol):
    def together(self, *loads: Callable[[], Any]) -> list[Any]: ...


class RulesHost(Protocol):
    """What the rules read: the event-sourced application (loaded through its ledger helper,
    :meth:`custody.app.ledger.Ledger.together`) and the policy in force."""

    @property
    def app(self) -> Application[Any]: ...

    @property
    def ledger(self) -> Loader: ...

    policy: Policy


def load(custodia: RulesHost, cls: type[A], aggregate_id: Any) -> A | None:
    if not _may_exist(custodia.app, aggregate_id):
        return None
    try:
        found: Any = custodia.app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, cls) else None


def _may_exist(app: Application[Any], aggregate_id: Any) -> bool:
    """Whether the aggregate may exist: held in the cache, or with a record in the store. The
    rules' aggregates (the calendar, the device registry) are never made where the IECM uses
    neither: one read says so (its last record, none) instead of the library's two (its
    snapshot, then its events) before every reveal (issue 21)."""
    cache = app.repository.cache
    if cache is not None:
        try:
            cache.get(aggregate_id)
            return True
        except KeyError:
            pass
    last = getattr(app.recorder, "select_last_record_events", None)
    return last is None or bool(last(aggregate_id))


def registry(custodia: RulesHost) -> DeviceRegistry | None:
    return load(custodia, DeviceRegistry, DeviceRegistry.create_id())


def calendar(custodia: RulesHost) -> WorkingCalendar | None:
    return load(custodia, WorkingCalendar, WorkingCalendar.create_id())


# The policy file's rules of each Custodia, before the ledger's calendar is merged in.
_FILE_POLICIES: WeakKeyDictionary[RulesHost, Policy] = WeakKeyDictionary()


def file_policy(custodia: RulesHost) -> Policy:
    return _FILE_POLICIES.setdefault(custodia, custodia.policy)


def policy_now(custodia: RulesHost) -> Policy:
    """The file's policy plus the calendar recorded in the ledger (8.A): the rules in force.

    It also becomes ``custodia.policy``, so every use case of this process (rotation deadlines
    in business days, among them) counts the IECM's recorded non-working days: at once in the
    process that recorded them, within a periodic pass in any other."""
    return _policy_with(custodia, calendar(custodia))


def _policy_with(custodia: RulesHost, found: WorkingCalendar | None) -> Policy:
    base = file_policy(custodia)
    current = found.apply_to(base) if found is not None else base
    custodia.policy = current
    return current


def read_rules(
    custodia: RulesHost, district: str, device: str | None
) -> tuple[Policy, frozenset[str]]:
    """What a read of ``district``'s credentials is judged by: the policy in force and the
    devices registered for the district. With ``[equipos] exigir_registrado``, a read from
    any other device is refused here, before anything is asked of OpenBao (8.B)."""
    # Both read at once (issue 21: two ledger reads in flight, not one after the other).
    in_force, found = custodia.ledger.together(
        lambda: calendar(custodia), lambda: registry(custodia)
    )
    return rules_from(custodia, district, device, in_force, found)


def refused_before_openbao(custodia: RulesHost) -> bool:
    """Whether a read may be refused by the rules (``[equipos] exigir_registrado`` in the policy
    file; the ledger's calendar never changes it): then :func:`read_rules` must run before
    OpenBao is asked anything; otherwise the rules may be read alongside the read's other
    loads (:func:`rules_from`)."""
    return file_policy(custodia).require_registered_device


def rules_from(
    custodia: RulesHost,
    district: str,
    device: str | None,
    in_force: WorkingCalendar | None,
    found: DeviceRegistry | None,
) -> tuple[Policy, frozenset[str]]:
    """:func:`read_rules` on a calendar and a device registry already loaded."""
    policy = _policy_with(custodia, in_force)
    devices = found.devices_of(district) if found is not None else frozenset()
    if policy.require_registered_device and (device is None or device.strip() not in devices):
        raise DeviceNotRegisteredForDistrictError(device, district)
    return policy, devices
