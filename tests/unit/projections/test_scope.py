"""Who may see which district (issue 17: one rule, in :mod:`projections.scope`), per role.

The roles are as the ledger keeps them (``Person.roles``: role -> district or ``None``). The
same functions decide the service's lists (``custody.app.custodia``), the notices outbox, the
report scope the service gives a caller, and the district a report shows.
"""

from __future__ import annotations

import pytest

from projections.errors import ReportScopeError
from projections.reports import ReportFilter, check_scope
from projections.scope import (
    Scope,
    may_request,
    may_see_district,
    scope_of,
    sees_every_district,
    visible_district,
)

COADMIN = {"coadministrador": None}
SECRETARIA = {"secretaria": None}
TITULAR_05 = {"titular": "DD05"}
ADMIN_05 = {"administrador": "DD05"}
ADMIN_NONE = {"administrador": None}


@pytest.mark.parametrize("roles", [COADMIN, SECRETARIA, {"secretaria": None, "titular": "DD05"}])
def test_coadministrators_and_the_secretariat_see_every_district(
    roles: dict[str, str | None],
) -> None:
    """Coadministrators (6.VI) and the Secretaría Ejecutiva (8.C) see every district, and get the
    widest report scope even when they hold a district role too."""
    assert sees_every_district(roles)
    assert all(may_see_district(roles, f"DD{n:02d}") for n in range(1, 34))
    scope = scope_of(roles)
    assert scope is not None
    assert scope.district is None
    assert visible_district(scope, None) is None
    assert visible_district(scope, "DD07") == "DD07"


def test_a_titular_sees_their_own_district_only() -> None:
    """A titular sees DD05's rows, not DD07's; their report scope is DD05 whatever they ask."""
    assert not sees_every_district(TITULAR_05)
    assert may_see_district(TITULAR_05, "DD05")
    assert not may_see_district(TITULAR_05, "DD07")
    scope = scope_of(TITULAR_05)
    assert scope == Scope("titular", "DD05")
    assert may_request(scope, "DD05")
    assert may_request(scope, None)
    assert not may_request(scope, "DD07")
    assert visible_district(scope, None) == "DD05"


def test_an_administrator_reports_on_their_own_district() -> None:
    """An administrator's report scope is their district; another district is refused."""
    scope = scope_of(ADMIN_05)
    assert scope == Scope("administrador", "DD05")
    assert not sees_every_district(ADMIN_05)
    with pytest.raises(ReportScopeError):
        check_scope("rotaciones", scope, ReportFilter(district="DD07"))
    assert check_scope("rotaciones", scope, ReportFilter()) == ("rotaciones", "DD05")


def test_an_administrator_sees_only_the_district_they_belong_to_or_hold() -> None:
    """6.IX: an administrator is shown their own district's accounts and change requests (the
    district of their role, or the one whose accounts they hold now), never another's."""
    assert may_see_district(ADMIN_05, "DD05")
    assert not may_see_district(ADMIN_05, "DD07")
    assert not may_see_district(ADMIN_NONE, "DD07")
    assert may_see_district(ADMIN_NONE, "DD07", holds=True)
    assert may_see_district(ADMIN_05, "DD07", holds=True)


def test_no_scope_without_a_district_for_a_district_role() -> None:
    """An administrator not yet assigned a district, or a person with no role, has no report
    scope (the service answers ScopeError); a district-bound Scope needs its district."""
    assert scope_of(ADMIN_NONE) is None
    assert scope_of({}) is None
    assert not sees_every_district({})
    assert not may_see_district({}, "DD05")
    with pytest.raises(ReportScopeError):
        Scope("titular")


def test_reports_keep_each_role_to_its_kinds() -> None:
    """Which reports each role sees stays with the reports: an administrator gets no exposure
    report, a titular does (of their district)."""
    with pytest.raises(ReportScopeError):
        check_scope("exposicion", Scope("administrador", "DD05"), ReportFilter())
    assert check_scope("exposicion", Scope("titular", "DD05"), ReportFilter()) == (
        "exposicion",
        "DD05",
    )
