"""What a projection's event handler is: ``handler(cursor, event, notification id)`` writes the
event's rows with the cursor of the view's current batch (:class:`projections.view.ReportsView`).

A module of its own: the handlers' modules (``projections.controls``, ``projections.contact_reads``)
are imported by the schema, which the view imports."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

# The event is each handler's own type (a union where one handler serves several): the
# table that maps an event class to its handler cannot say which, hence Any here.
Handler = Callable[[sqlite3.Cursor, Any, int], None]
