"""The projections' errors (under :class:`~events.errors.CustodiaError`).

::

    CustodiaError
    └── ProjectionsError
        ├── ProjectionHaltedError       a poison event stopped the projection (policy "detener")
        ├── ProjectionDatabaseError     the projection database is missing or unusable
        ├── RebuildFailedError          a rebuild stopped half-way (the view is as it was)
        ├── ReportScopeError            the viewer may not see this report or district
        └── UnknownReportError          no report of that kind
"""

from __future__ import annotations

from events.errors import CustodiaError

__all__ = [
    "ProjectionDatabaseError",
    "ProjectionHaltedError",
    "ProjectionsError",
    "RebuildFailedError",
    "ReportScopeError",
    "UnknownReportError",
]


class ProjectionsError(CustodiaError):
    """Base of the read models' and reports' errors."""


class ProjectionHaltedError(ProjectionsError):
    """A poison event (or invalid message) was recorded and the policy says to stop there."""

    def __init__(self, kind: str, position: str, reason: str) -> None:
        super().__init__(f"{kind} at {position}: {reason}")
        self.kind = kind
        self.position = position
        self.reason = reason


class ProjectionDatabaseError(ProjectionsError):
    """The projection database at ``path`` cannot be used (``problem`` says why)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RebuildFailedError(ProjectionsError):
    """A rebuild stopped half-way (``problem`` says why, in Spanish: it is shown as is); the
    view it was to replace is as it was."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class ReportScopeError(ProjectionsError):
    """The viewer's role does not give access to ``report`` (for ``district``, if given)."""

    def __init__(self, role: str, report: str, district: str | None) -> None:
        super().__init__(f"{role} may not see {report}" + (f" of {district}" if district else ""))
        self.role = role
        self.report = report
        self.district = district


class UnknownReportError(ProjectionsError):
    """There is no report called ``report``."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report
