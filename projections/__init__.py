"""Read models and compliance reports, built only from recorded events (never live Vault state).

Entry points for the service and the command line:

- :func:`start_projections` (``custodia servicio``): the report projection following the
  ledger's ``subscribe()`` into an SQLite view; :class:`ProjectionService` waits, reports
  errors, stops.
- :func:`rebuild`: the view again from the first event, with a progress hook (read a page at a
  time in a forked process, written in this one, without the runner; the same tables).
- :func:`load_report` (with :class:`Scope` and :class:`ReportFilter`): a report, scope checked
  first; :func:`render` turns it into ``tabla``, ``json``, ``csv`` or ``html``.

Modules: :mod:`.schema` (tables), :mod:`.view` (tracking recorder + batches),
:mod:`.projection` (event handlers, poison events), :mod:`.decoding` (faster reading of event
state, same domain events), :mod:`.fastrows` (a rebuild's shortcut from stored state to rows for
nearly every event), :mod:`.reading` (a rebuild's reading process), :mod:`.runner`,
:mod:`.model` (typed rows), :mod:`.reports` (pure builders), :mod:`.render` and :mod:`.html`,
:mod:`.business_time`, :mod:`.names`, :mod:`.errors`.
"""

from projections.errors import (
    ProjectionDatabaseError,
    ProjectionHaltedError,
    ProjectionsError,
    ReportScopeError,
    UnknownReportError,
)
from projections.names import PersonNames
from projections.render import FORMATS, render
from projections.reports import REPORT_KINDS, Report, ReportFilter, Scope, load_report
from projections.runner import ProjectionService, RebuildResult, rebuild, start_projections

__all__ = [
    "FORMATS",
    "REPORT_KINDS",
    "PersonNames",
    "ProjectionDatabaseError",
    "ProjectionHaltedError",
    "ProjectionService",
    "ProjectionsError",
    "RebuildResult",
    "Report",
    "ReportFilter",
    "ReportScopeError",
    "Scope",
    "UnknownReportError",
    "load_report",
    "rebuild",
    "render",
    "start_projections",
]
