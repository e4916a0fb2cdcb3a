"""Custodia's application services: :class:`Custodia`, the one object the command service and
the tests call, putting together the use cases of each area over one ledger helper.

Each use case takes plain values and the acting person, loads the aggregates, calls the domain,
and keeps OpenBao in step with the ledger in the order defined in
:mod:`custody.vault.credentials` and :mod:`custody.app.access` (revoke before recording, grant
after). The areas, each a class in its own module:

- :mod:`custody.app.people`: registration, ``sesion quien``, the list of people (issue 18);
- :mod:`custody.app.leavers`: a role revoked, a departure, an erasure (6.X; 9.IV, 9.XX);
- :mod:`custody.app.designations`: titulares, administrators and absences (6.VII, 6.X), over
  :mod:`custody.app.holders` (designation is access: 6.IX, 6.X);
- :mod:`custody.app.accounts`: an account registered, the list (10.I–VIII);
- :mod:`custody.app.credential_use`: rotation, reads, TOTP (6.IX, 6.X; 8.A, 8.B);
- :mod:`custody.app.change_requests`: change requests (6.XI, 11.1);
- :mod:`custody.app.incidents`: incidents (8.C, 9.XVIII);
- :mod:`custody.app.reconcile`: reconciliation of the ledger and OpenBao (6.XII, 11.8).

All of them share :class:`custody.app.base.UseCases` (the collaborators, declared once) and go
to the ledger through :class:`custody.app.ledger.Ledger` (load, lock, save, index). The names
other modules import from here (the errors, :class:`Actor` …) are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from custody.app.access import Access
from custody.app.accounts import Accounts
from custody.app.base import (
    REQUEST_NAMESPACE,
    Actor,
    PersonAlreadyRegisteredError,
    ScopeError,
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
from custody.app.reconcile import Reconciliation
from events.domain import Policy

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
    "ledger_incident_id",
]


class Custodia(People, Accounts, ChangeRequests, Incidents, Reconciliation):
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
        # A staged credential younger than this may be a rotation in flight: reconciliation
        # leaves it alone (custody.app.reconcile).
        self.reconcile_grace = timedelta(seconds=60)
        self.ledger = Ledger(app)
