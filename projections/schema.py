"""The read model's tables: one SQLite database, beside eventsourcing's ``tracking`` table.

Every table is a pure function of the ledger's events up to the tracked position, so that a
rebuild from zero yields the same rows (:func:`projections.runner.rebuild`). Instants are stored
in UTC as fixed-width ISO 8601 text (``2025-03-03T16:00:00.000000+00:00``), which sorts in time
order.

Personal data (8.D; 9.IV, 9.XX): no table holds a name, an e-mail or the sealed ciphertext of a
person, only the person's id. When a person's data is erased, every column that names them is
rewritten to an alias (``suprimida-N``, N counting erasures in ledger order) and their rows in
``people``, ``person_roles`` and ``person_devices`` are deleted.
"""

from __future__ import annotations

from typing import Final

from projections.contact_reads import (
    CONTACT_PERSON_COLUMNS,
    CONTACT_STATEMENTS,
    CONTACT_TABLE_KEYS,
)
from projections.controls import CONTROL_PERSON_COLUMNS, CONTROL_STATEMENTS, CONTROL_TABLE_KEYS

__all__ = [
    "CREATE_STATEMENTS",
    "ERASED_PREFIX",
    "INDEX_STATEMENTS",
    "PERSON_COLUMNS",
    "TABLE_KEYS",
    "TABLE_STATEMENTS",
    "VIEW_TABLES",
]

ERASED_PREFIX: Final = "suprimida-"

CREATE_STATEMENTS: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS people (
        person_id TEXT PRIMARY KEY,
        registered_at TEXT NOT NULL,
        username TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS person_roles (
        person_id TEXT NOT NULL,
        role TEXT NOT NULL,
        district TEXT,
        since TEXT NOT NULL,
        PRIMARY KEY (person_id, role)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS person_devices (
        person_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        since TEXT NOT NULL,
        PRIMARY KEY (person_id, device_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS erased_people (
        alias TEXT PRIMARY KEY,
        erased_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS districts (
        code TEXT PRIMARY KEY,
        registered_at TEXT NOT NULL,
        titular_id TEXT,
        titular_since TEXT,
        administrator_id TEXT,
        administrator_since TEXT,
        holder_id TEXT,
        holder_since TEXT,
        holder_cause TEXT,
        absence_reason TEXT,
        absence_substitute_id TEXT,
        absence_starts_on TEXT,
        absence_ends_on TEXT,
        absence_in_course INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS accounts (
        account TEXT PRIMARY KEY,
        district TEXT NOT NULL,
        platform TEXT NOT NULL,
        handle TEXT NOT NULL,
        email TEXT NOT NULL,
        public INTEGER NOT NULL,
        direct_messages INTEGER NOT NULL,
        violations TEXT NOT NULL,
        existing INTEGER NOT NULL,
        registered_at TEXT NOT NULL,
        closed_at TEXT,
        current_version INTEGER,
        current_since TEXT,
        staged_version INTEGER,
        staged_since TEXT,
        totp_registered INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS exposure (
        account TEXT NOT NULL,
        version INTEGER NOT NULL,
        person_id TEXT NOT NULL,
        first_seen_at TEXT NOT NULL,
        how TEXT NOT NULL,
        PRIMARY KEY (account, version, person_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS exposure_person ON exposure (person_id)",
    """CREATE TABLE IF NOT EXISTS obligations (
        obligation_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        district TEXT NOT NULL,
        account TEXT NOT NULL,
        cause TEXT NOT NULL,
        outgoing_holder_id TEXT,
        incoming_holder_id TEXT,
        opened_at TEXT NOT NULL,
        deadline TEXT NOT NULL,
        closed_at TEXT,
        closed_by TEXT,
        closed_by_version INTEGER,
        withdrawn_at TEXT,
        withdrawn_reason TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS obligations_district ON obligations (district, position)",
    """CREATE TABLE IF NOT EXISTS reads (
        position INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        district TEXT NOT NULL,
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER,
        reader_id TEXT NOT NULL,
        reader_role TEXT NOT NULL,
        purpose TEXT NOT NULL,
        device_id TEXT,
        registered_device INTEGER NOT NULL,
        outside_working_hours INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS reads_reader ON reads (reader_id)",
    """CREATE INDEX IF NOT EXISTS reads_flagged ON reads (district, position)
        WHERE outside_working_hours = 1 OR registered_device = 0""",
    # Reads recorded while the wrapped read was on its way, which then never arrived (the
    # secrets server refused or failed it): the read stays listed (an attempt, and exposure
    # is counted conservatively); this says the credential was not handed over.
    """CREATE TABLE IF NOT EXISTS voided_reads (
        position INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        district TEXT NOT NULL,
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER,
        reader_id TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS change_requests (
        request_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        district TEXT NOT NULL,
        account TEXT NOT NULL,
        field TEXT NOT NULL,
        detail TEXT NOT NULL,
        channel_kind TEXT NOT NULL,
        channel_reference TEXT NOT NULL,
        channel_date TEXT,
        status TEXT NOT NULL,
        filed_at TEXT NOT NULL,
        filed_by TEXT NOT NULL,
        decided_at TEXT,
        decided_by TEXT,
        decision_reason TEXT,
        applied_at TEXT,
        applied_by TEXT,
        rotation_version INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS incidents (
        incident_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        district TEXT NOT NULL,
        account TEXT NOT NULL,
        incident_type TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL,
        reported_at TEXT NOT NULL,
        reported_by TEXT NOT NULL,
        notify_by TEXT NOT NULL,
        notified_at TEXT,
        notified_on_time INTEGER,
        notified_channel TEXT,
        contained_at TEXT,
        rotation_version INTEGER,
        closed_at TEXT
    ) WITHOUT ROWID""",
    # Issue 19: the steps an incident gained later (a table of its own, so that a view made
    # before it gets it by CREATE IF NOT EXISTS). ``acknowledged_by``: the secretaria.
    """CREATE TABLE IF NOT EXISTS incident_steps (
        incident_id TEXT PRIMARY KEY,
        detected_at TEXT,
        acknowledged_at TEXT,
        acknowledged_by TEXT,
        measures TEXT,
        dismissed_at TEXT,
        dismissed_by TEXT,
        dismiss_reason TEXT
    ) WITHOUT ROWID""",
    # 6.VII: UTCSyD acted in a titular's stead (issue 18); flagged in the compliance report.
    """CREATE TABLE IF NOT EXISTS authority_exceptions (
        position INTEGER PRIMARY KEY,
        district TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        channel TEXT,
        by_id TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    # A poison event or an invalid message: recorded, never silently skipped.
    """CREATE TABLE IF NOT EXISTS projection_errors (
        ref TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        notification_id INTEGER,
        stream_seq INTEGER,
        topic TEXT,
        originator_id TEXT,
        originator_version INTEGER,
        reason TEXT NOT NULL,
        action TEXT NOT NULL
    ) WITHOUT ROWID""",
    *CONTROL_STATEMENTS,  # issue 19: devices, calendar, policies, recertification
    *CONTACT_STATEMENTS,  # issue 18: reads of contact data
)

# The secondary indexes (none unique): a rebuild creates them once its tables are filled.
INDEX_STATEMENTS: Final = tuple(s for s in CREATE_STATEMENTS if s.startswith("CREATE INDEX"))
TABLE_STATEMENTS: Final = tuple(s for s in CREATE_STATEMENTS if s not in INDEX_STATEMENTS)

# Every view table, with the columns that order its rows (for dumps and comparisons).
TABLE_KEYS: Final[dict[str, str]] = {
    "people": "person_id",
    "person_roles": "person_id, role",
    "person_devices": "person_id, device_id",
    "erased_people": "alias",
    "districts": "code",
    "accounts": "account",
    "exposure": "account, version, person_id",
    "obligations": "obligation_id",
    "reads": "position",
    "voided_reads": "position",
    "change_requests": "request_id",
    "incidents": "incident_id",
    "incident_steps": "incident_id",
    "authority_exceptions": "position",
    "projection_errors": "ref",
    **CONTROL_TABLE_KEYS,
    **CONTACT_TABLE_KEYS,
}
VIEW_TABLES: Final = tuple(TABLE_KEYS)

# Columns that name a person, rewritten to an alias when the person's data is erased.
PERSON_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("districts", "titular_id"),
    ("districts", "administrator_id"),
    ("districts", "holder_id"),
    ("districts", "absence_substitute_id"),
    ("obligations", "outgoing_holder_id"),
    ("obligations", "incoming_holder_id"),
    ("obligations", "closed_by"),
    ("exposure", "person_id"),
    ("reads", "reader_id"),
    ("change_requests", "filed_by"),
    ("change_requests", "decided_by"),
    ("change_requests", "applied_by"),
    ("incidents", "reported_by"),
    ("incident_steps", "acknowledged_by"),
    ("incident_steps", "dismissed_by"),
    ("authority_exceptions", "by_id"),
    *CONTROL_PERSON_COLUMNS,
    *CONTACT_PERSON_COLUMNS,
)
