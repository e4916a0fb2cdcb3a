"""Who may see which district: the one rule, for the service's use cases and the reports.

A person's roles are the ledger's (``Person.roles``: role -> district, or ``None`` for the
roles that have none). What each role may see (the README's summary of roles):

- ``coadministrador`` (UTCSyD): every district; it administers every account (6.VI, 6.IX);
- ``secretaria`` (Secretaría Ejecutiva): every district, to review incidents, reports and the
  ledger (8.C, 9.XVIII); it never reads credentials (that is OpenBao's policies, not this rule)
  and changes nothing (the commands it may send are few: the service's command table);
- ``titular``: their own district (6.I, 6.VII, 6.X);
- ``administrador``: their own district (6.IX): the district of their role, and the district
  whose accounts they hold now (designated, or substitute during an absence). An administrator of
  another district, or of none yet, is shown nothing of it.

Credentials are not this module's business: who may *read* a password is decided by OpenBao
(policies and identity groups), never here. This decides which rows of the ledger a person is
shown. It lives in ``projections`` so that the reports can use it without the Vault side, and
the service (``custody.app``) uses the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from events.domain import DistrictId
from projections.errors import ReportScopeError

__all__ = [
    "DISTRICT_BOUND",
    "EVERY_DISTRICT",
    "Role",
    "Scope",
    "may_request",
    "may_see_district",
    "scope_of",
    "sees_every_district",
    "visible_district",
]

Role = Literal["coadministrador", "secretaria", "titular", "administrador"]
Roles = Mapping[str, str | None]

# Most privileged first: a person with several roles gets the widest scope.
EVERY_DISTRICT: Final[tuple[Role, ...]] = ("coadministrador", "secretaria")
DISTRICT_BOUND: Final[tuple[Role, ...]] = ("titular", "administrador")


def sees_every_district(roles: Roles) -> bool:
    """Coadministrators (6.VI) and the Secretaría Ejecutiva (8.C, 9.XVIII) see every district:
    the people list, the incident ledger, the notices outbox, every district's history."""
    return any(role in roles for role in EVERY_DISTRICT)


def may_see_district(roles: Roles, district: str, *, holds: bool = False) -> bool:
    """Whether a person with ``roles`` is shown ``district``'s accounts and change requests;
    ``holds``: the person holds the district's accounts now (the ledger's current holder)."""
    if sees_every_district(roles):
        return True
    if roles.get("titular") == district:
        return True
    if "administrador" in roles:
        return roles.get("administrador") == district or holds
    return False


@dataclass(frozen=True)
class Scope:
    """Who is looking at a report: their role and, for a titular or an administrator, their
    district."""

    role: Role
    district: str | None = None

    def __post_init__(self) -> None:
        if self.role in DISTRICT_BOUND and self.district is None:
            raise ReportScopeError(self.role, "reportes", None)
        if self.district is not None:
            object.__setattr__(self, "district", str(DistrictId.parse(self.district)))


def scope_of(roles: Roles) -> Scope | None:
    """A person's report scope from their roles, most privileged first; ``None`` for someone
    with no role that sees reports (a district-bound role without a district)."""
    for role in EVERY_DISTRICT:
        if role in roles:
            return Scope(role)
    for role in DISTRICT_BOUND:
        district = roles.get(role)
        if district:
            return Scope(role, district)
    return None


def may_request(scope: Scope, district: str | None) -> bool:
    """Whether ``scope`` may ask for ``district`` (``None``: no district named)."""
    return district is None or scope.role not in DISTRICT_BOUND or district == scope.district


def visible_district(scope: Scope, requested: str | None) -> str | None:
    """The district ``scope`` is shown when asking for ``requested``: a district-bound viewer
    always their own; the others what they asked for (``None``: every district)."""
    return scope.district if scope.role in DISTRICT_BOUND else requested
