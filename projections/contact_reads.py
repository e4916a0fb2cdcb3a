"""Reads of staff contact data (issue 18; 6.VII, 6.VIII, R9): who read whose name, e-mail and
phone, when and why, as the ledger's ``Person.ContactRead`` events record it (never the data).

One table and its handler, merged into :mod:`.schema` and the reports projection; the rows join
``reporte lecturas`` (:func:`contact_read_rows`), which the Secretaría Ejecutiva reviews. Both
person columns are rewritten to an alias when either person's data is erased (9.XX).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from events.domain import Person
from projections.handler import Handler

__all__ = [
    "CONTACT_HANDLERS",
    "CONTACT_PERSON_COLUMNS",
    "CONTACT_STATEMENTS",
    "CONTACT_TABLE_KEYS",
    "ContactReadRow",
    "contact_read_rows",
]

CONTACT_STATEMENTS: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS contact_reads (
        position INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        reader_id TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        purpose TEXT NOT NULL
    )""",
)

CONTACT_TABLE_KEYS: Final[dict[str, str]] = {"contact_reads": "position"}

CONTACT_PERSON_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("contact_reads", "reader_id"),
    ("contact_reads", "subject_id"),
)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _contact_read(c: Any, e: Any, position: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO contact_reads VALUES (?, ?, ?, ?, ?)",
        (position, _stamp(e.timestamp), str(e.by), str(e.originator_id), e.purpose),
    )


CONTACT_HANDLERS: Final[dict[type, Handler]] = {Person.ContactRead: _contact_read}


ContactReadRow = tuple[datetime, str, str, str]  # at, reader id, subject id, purpose


def contact_read_rows(conn: Any) -> list[ContactReadRow]:
    """Every recorded read of contact data, in ledger order."""
    return [
        (datetime.fromisoformat(str(r[0])), str(r[1]), str(r[2]), str(r[3]))
        for r in conn.execute(
            "SELECT at, reader_id, subject_id, purpose FROM contact_reads ORDER BY position"
        )
    ]
