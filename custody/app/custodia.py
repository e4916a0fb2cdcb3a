"""The ``custodia`` eventsourcing application and the application services on top of it.

:class:`CustodiaApplication` is a plain ``eventsourcing`` ``Application`` (named ``custodia``:
stream ``custodia-events``) holding the domain aggregates. :class:`Custodia` is the service
layer: each method is one use case, taking plain values and the acting user name, loading the
aggregates, calling the domain, and keeping OpenBao in step with the ledger in the order defined
in :mod:`custody.vault.credentials` and :mod:`custody.app.access` (revoke before recording, grant
after).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from custody.app.access import Access
from custody.app.accounts import Accounts
from custody.app.base import (
    REQUEST_NAMESPACE,
    Actor,
    PersonAlreadyRegisteredError,
    ScopeError,
    channel_from,
)
from custody.app.change_requests import ChangeRequests
from custody.app.ledger import (
    ConflictError,
    CustodiaApplication,
    Ledger,
    NotFoundError,
    PersonNotRegisteredError,
    bootstrap_ledger,
)
from custody.app.people import People
from custody.app.ports import CredentialStore, PersonalDataStore
from events.domain import (
    DistrictId,
    Incident,
    Person,
    Policy,
    ValidationError,
    parse_account_id,
    parse_district_id,
)
from events.domain.incident import LEDGER_DIVERGENCES
from events.domain.official_channel import OfficialChannel
from projections.scope import sees_every_district

__all__ = [
    "REQUEST_NAMESPACE",
    "Actor",
    "ConflictError",
    "Custodia",
    "CustodiaApplication",
    "NotFoundError",
    "PersonAlreadyRegisteredError",
    "PersonNotRegisteredError",
    "ScopeError",
    "bootstrap_ledger",
    "channel_from",
    "ledger_incident_id",
]

log = structlog.get_logger("custodia.app")

#: Namespace of the ids of the incidents opened for the ledger follower's alerts (issue 16).
LEDGER_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/bitacora/alertas")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def ledger_incident_id(alert_id: str) -> UUID:
    """The id of the incident recording the ledger follower's alert ``alert_id``."""
    return uuid5(LEDGER_ALERT_NAMESPACE, alert_id)


T = TypeVar("T")
RequestT = TypeVar("RequestT")


class Custodia(People, Accounts, ChangeRequests):
    """Custodia's use cases (one per command of ``custodia --help``), on one application and
    one OpenBao."""

    def __init__(
        self,
        app: CustodiaApplication,
        access: Access,
        credentials: CredentialStore,
        pii: PersonalDataStore,
        policy: Policy,
        clock: Callable[[], datetime] | None = None,
        password_rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.password_rules = password_rules
        self.app = app
        self.access = access
        self.credentials = credentials
        self.pii = pii
        self.policy = policy
        self.clock = clock or (lambda: datetime.now(UTC))
        self.reconcile_grace = timedelta(seconds=60)
        self.ledger = Ledger(app)

    # -- incidents (8.C, 9.XVIII) -----------------------------------------------------------

    def _incident(self, identifier: str) -> Incident:
        return self.ledger.find(Incident, identifier, "incidente")

    def _incident_row(self, incident: Incident) -> dict[str, Any]:
        from custody.app.incidents import incident_row

        return incident_row(incident)

    def report_incident(
        self,
        actor: Actor,
        account: str,
        kind: str,
        description: str,
        request_id: str,
        detected_at: datetime | None = None,
    ) -> dict[str, Any]:
        account_id = parse_account_id(account)
        by = self.person(actor.username)
        district = self.district(account_id.district)
        incident = Incident.report(
            district,
            str(account_id),
            kind,
            description,
            by=by,
            policy=self.policy,
            at=self.clock(),
            incident_id=uuid5(REQUEST_NAMESPACE, request_id),
            detected_at=detected_at,
        )
        self.ledger.save(incident)
        return self._incident_row(incident)

    def notify_incident(
        self, actor: Actor, identifier: str, channel: OfficialChannel
    ) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.notify(channel=channel, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def contain_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        # The institution's incident (the ledger's) has no district: no rotation to check.
        district = self.district(incident.district) if incident.district else None
        incident.contain(district, detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def close_incident(self, actor: Actor, identifier: str, detail: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.close(detail, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def dismiss_incident(self, actor: Actor, identifier: str, reason: str) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.dismiss(reason, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def acknowledge_incident(
        self, actor: Actor, identifier: str, measures: str | None
    ) -> dict[str, Any]:
        by = self.person(actor.username)
        incident = self._incident(identifier)
        incident.acknowledge(measures, by=by, at=self.clock())
        self.ledger.save(incident)
        return self._incident_row(incident)

    def record_ledger_tampering(
        self,
        *,
        alert_id: str,
        divergence: str,
        entry: int | None,
        anchored_size: int,
        anchored_root: str | None,
        observed_size: int,
        observed_root: str | None,
        diverged_at: datetime,
    ) -> tuple[UUID, bool]:
        """Issue 16: the ledger follower's alert ``alert_id`` (it refused to sign a ledger that
        does not extend the head anchored in OpenBao) opens the institution's incident. Its id
        derives from the alert, so an alert read again (a restart, another instance) records
        nothing more: the id, and whether this call recorded it."""
        incident_id = ledger_incident_id(alert_id)
        try:
            self.app.repository.get(incident_id)
            return incident_id, False
        except AggregateNotFoundError:
            pass
        incident = Incident.ledger_tampering(
            incident_id=incident_id,
            divergence=divergence if divergence in LEDGER_DIVERGENCES else "otra",
            entry=entry,
            anchored_size=anchored_size,
            anchored_root=anchored_root,
            observed_size=observed_size,
            observed_root=observed_root,
            alert_id=alert_id,
            diverged_at=diverged_at,
            policy=self.policy,
            at=self.clock(),
        )
        try:
            self.app.save(incident)
        except IntegrityError:
            return incident_id, False  # another instance recorded it first
        return incident_id, True

    def incident_status(self, incident_id: UUID) -> str | None:
        """The state of an incident (``None`` if the ledger has no such incident)."""
        try:
            item: Any = self.app.repository.get(incident_id)
        except AggregateNotFoundError:
            return None
        return str(item.status) if isinstance(item, Incident) else None

    def list_incidents(
        self,
        actor: Actor,
        district: str | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The incident ledger; ``since``/``until`` bound when each was reported."""
        from custody.app.incidents import in_period

        by = self.person(actor.username)
        if not sees_every_district(by.roles):
            raise ScopeError(actor.username, district or "*")
        code = str(parse_district_id(district)) if district else None
        if since is not None and until is not None and since > until:
            raise ValidationError("hasta", "before desde")
        return [
            self._incident_row(i)
            for i in sorted(self.ledger.all_of(Incident), key=lambda i: i.reported_at)
            if (code is None or i.district == code) and in_period(i.reported_at, since, until)
        ]

    # -- reconciliation (ledger vs OpenBao) and erasure -------------------------------------

    def desired_state(self) -> Any:
        """The ledger's view of OpenBao, as :class:`custody.app.reconcile.DesiredState`."""
        from custody.app.reconcile import AccountState, DesiredState

        now = self.clock()
        holders: dict[str, str | None] = {}
        accounts: dict[str, AccountState] = {}
        for code in DistrictId.all():
            district = self.district(code)
            holders[str(code)] = self.username_of(district.holder_at(now))
            for acc in district.accounts.values():
                if acc.is_open:
                    accounts[acc.account_id] = AccountState(
                        current_version=acc.current_version or 0,
                        # The start event's rotation id; for a version 1 event (no id),
                        # the id that version derived for an account never abandoned.
                        open_rotation=(
                            (
                                acc.staged_rotation_id
                                or str(
                                    uuid5(
                                        REQUEST_NAMESPACE,
                                        f"{acc.account_id}:{acc.staged_version}",
                                    )
                                )
                            )
                            if acc.staged_version
                            else None
                        ),
                        staged_version=acc.staged_version,
                        staged_fingerprint=acc.staged_fingerprint,
                        totp_fingerprint=acc.totp_fingerprint or None,
                    )
        roles: dict[str, list[str]] = {"coadministrador": [], "titular": [], "secretaria": []}
        for person in self.ledger.all_of(Person):
            for role in person.roles:
                if role in roles and not person.erased:
                    roles[role].append(person.username)
        return DesiredState(holders=holders, accounts=accounts, roles=roles)

    def reconcile(self, actor: Actor, repair: bool) -> dict[str, Any]:
        """Compare OpenBao with the ledger; repair both sides (coadministrators only)."""
        from custody.app.reconcile import DriftKind, Reconciler
        from events.domain import require_coadministrator

        by = self.person(actor.username)
        require_coadministrator(by, "reconcile")
        # The service's own client; the role groups with the coadministrator's token.
        reconciler = Reconciler(
            self.access._client, role_token=actor.token, grace=self.reconcile_grace
        )
        report = reconciler.reconcile(self.desired_state(), repair=repair)
        repaired, pending = len(report.repaired), len(report.pending)
        if repair:
            # The ledger-side repair (custody.app.reconcile): a confirmation OpenBao has and the
            # ledger lacks (its write failed after OpenBao's) is recorded; the staged leftover
            # it leaves is then deleted by a second, OpenBao-side pass.
            recorded = [d for d in report.pending if d.kind == DriftKind.CONFIRMED_UNRECORDED]
            for drift in recorded:
                self._record_confirmation(by, drift.facts)
            if recorded:
                again = reconciler.reconcile(self.desired_state(), repair=True)
                repaired += len(recorded) + len(again.repaired)
                pending = len(again.pending)
        return {
            "diferencias": [
                {"tipo": d.kind, "objeto": d.subject, "esperado": d.expected, "actual": d.actual}
                for d in report.drifts
            ],
            "reparadas": repaired,
            "pendientes": pending,
        }

    def _record_confirmation(self, by: Person, facts: Mapping[str, str]) -> None:
        """Record a rotation confirmation found in OpenBao only (``confirmed_unrecorded``)."""
        account_id = parse_account_id(facts["account"])
        with self.ledger.lock(str(account_id.district)):
            district = self.district(account_id.district)
            district.confirm_rotation(
                str(account_id), version=int(facts["version"]), by=by, at=self.clock()
            )
            self.ledger.save(district)
