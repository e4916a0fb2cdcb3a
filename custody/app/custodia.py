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
from uuid import uuid5

import structlog

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
from custody.app.incidents import Incidents, ledger_incident_id
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
    Person,
    Policy,
    parse_account_id,
)

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

T = TypeVar("T")
RequestT = TypeVar("RequestT")


class Custodia(People, Accounts, ChangeRequests, Incidents):
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
