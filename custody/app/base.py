"""What every group of use cases shares: the acting person (:class:`Actor`), the errors of the
application layer, and :class:`UseCases`, the typed base of the groups that
:class:`custody.app.custodia.Custodia` puts together (one :class:`~custody.app.ledger.Ledger`,
one OpenBao through its ports, the policy and the clock).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from custody.app.access import Access
from custody.app.ledger import CustodiaApplication, Ledger
from custody.app.ports import CredentialStore, PersonalDataStore
from events.domain import District, DistrictId, Person, Policy, parse_district_id
from events.errors import CustodiaError
from projections.scope import may_see_district

REQUEST_NAMESPACE = uuid5(NAMESPACE_URL, "https://custodia.iecm.mx/solicitudes")


class PersonAlreadyRegisteredError(CustodiaError):
    """The user name is registered already, with another role or district (or erased)."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


class ScopeError(CustodiaError):
    """The caller may not see or act on this district."""

    def __init__(self, username: str, district: str) -> None:
        super().__init__(f"{username} {district}")
        self.username = username
        self.district = district


@dataclass(frozen=True)
class Actor:
    """The authenticated person acting, as the application services see them."""

    username: str
    token: str
    # Called before the command's first side effect (the service settles the request's
    # idempotency claim there; see ``custody.service.server.claim_overlapping``).
    proceed: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)


class UseCases:
    """The collaborators of every use case, declared once; set by ``Custodia.__init__``."""

    app: CustodiaApplication
    ledger: Ledger
    access: Access
    credentials: CredentialStore
    pii: PersonalDataStore
    policy: Policy
    clock: Callable[[], datetime]
    password_rules: Mapping[str, Any] | None
    # A staged credential younger than this may be a rotation in flight: reconciliation
    # leaves it alone (custody.app.reconcile).
    reconcile_grace: timedelta

    # The ledger's loads, as the command service and the tests call them (custodia.person(…)).

    def person(self, username: str) -> Person:
        return self.ledger.person(username)

    def district(self, code: str | DistrictId) -> District:
        return self.ledger.district(code)

    def username_of(self, pid: UUID | None) -> str | None:
        return self.ledger.username_of(pid)

    def may_see_district(self, person: Person, code: str) -> bool:
        """The one rule (projections.scope); whether an administrator holds ``code``'s accounts
        is read from the ledger only when the rule needs it."""
        if may_see_district(person.roles, code):
            return True
        holds = (
            person.has_role("administrador", None)
            and self.ledger.district(parse_district_id(code)).holder_id == person.id
        )
        return may_see_district(person.roles, code, holds=holds)
