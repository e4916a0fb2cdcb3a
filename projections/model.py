"""The view's rows as typed values, read from the projection database.

:func:`read_view` is the only code that reads the view's tables for reports; the report builders
(:mod:`projections.reports`) are pure functions of the :class:`ViewData` it returns. Instants
come back as UTC ``datetime`` values.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from projections.errors import ProjectionDatabaseError

__all__ = [
    "AccountRow",
    "DistrictRow",
    "ErrorRow",
    "ExposureRow",
    "IncidentRow",
    "ObligationRow",
    "ReadRow",
    "RequestRow",
    "RoleRow",
    "ViewData",
    "open_database",
    "read_view",
]


@dataclass(frozen=True)
class DistrictRow:
    code: str
    registered_at: datetime
    titular_id: str | None
    titular_since: datetime | None
    administrator_id: str | None
    administrator_since: datetime | None
    holder_id: str | None
    holder_since: datetime | None
    holder_cause: str | None
    absence_reason: str | None
    absence_substitute_id: str | None
    absence_starts_on: str | None
    absence_ends_on: str | None
    absence_in_course: int | None


@dataclass(frozen=True)
class AccountRow:
    account: str
    district: str
    platform: str
    handle: str
    email: str
    public: int
    direct_messages: int
    violations: list[str]
    existing: int
    registered_at: datetime
    closed_at: datetime | None
    current_version: int | None
    current_since: datetime | None
    staged_version: int | None
    staged_since: datetime | None
    totp_registered: int


@dataclass(frozen=True)
class ExposureRow:
    account: str
    version: int
    person_id: str
    first_seen_at: datetime
    how: str


@dataclass(frozen=True)
class ObligationRow:
    obligation_id: str
    position: int
    district: str
    account: str
    cause: str
    outgoing_holder_id: str | None
    incoming_holder_id: str | None
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None
    closed_by_version: int | None
    withdrawn_at: datetime | None
    withdrawn_reason: str | None


@dataclass(frozen=True)
class ReadRow:
    position: int
    at: datetime
    district: str
    account: str
    kind: str
    version: int | None
    reader_id: str
    reader_role: str
    purpose: str
    device_id: str | None
    registered_device: int
    outside_working_hours: int
    # Why the credential was not handed over after all (``voided_reads``), or None.
    voided_reason: str | None = None


@dataclass(frozen=True)
class RequestRow:
    request_id: str
    position: int
    district: str
    account: str
    field: str
    detail: str
    channel_kind: str
    channel_reference: str
    channel_date: str | None
    status: str
    filed_at: datetime
    filed_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    applied_at: datetime | None
    applied_by: str | None
    rotation_version: int | None


@dataclass(frozen=True)
class ExceptionRow:
    """6.VII: UTCSyD acted in the titular's stead, with a reason and a vía oficial."""

    position: int
    district: str
    action: str
    reason: str
    channel: str | None
    by_id: str
    at: datetime


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    position: int
    district: str
    account: str
    incident_type: str
    description: str
    status: str
    reported_at: datetime
    reported_by: str
    notify_by: datetime
    notified_at: datetime | None
    notified_on_time: int | None
    notified_channel: str | None
    contained_at: datetime | None
    rotation_version: int | None
    closed_at: datetime | None
    # incident_steps (issue 19): null for an incident the view recorded before that table.
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    measures: str | None = None
    dismissed_at: datetime | None = None
    dismiss_reason: str | None = None


@dataclass(frozen=True)
class RoleRow:
    person_id: str
    role: str
    district: str | None
    since: datetime


@dataclass(frozen=True)
class ErrorRow:
    ref: str
    kind: str
    notification_id: int | None
    stream_seq: int | None
    topic: str | None
    originator_id: str | None
    originator_version: int | None
    reason: str
    action: str


@dataclass(frozen=True)
class ViewData:
    """What the reports read: rows of one district, or of all when ``district`` is None."""

    district: str | None
    position: int
    districts: list[DistrictRow] = field(default_factory=list)
    accounts: list[AccountRow] = field(default_factory=list)
    exposure: list[ExposureRow] = field(default_factory=list)
    obligations: list[ObligationRow] = field(default_factory=list)
    reads: list[ReadRow] = field(default_factory=list)
    requests: list[RequestRow] = field(default_factory=list)
    incidents: list[IncidentRow] = field(default_factory=list)
    exceptions: list[ExceptionRow] = field(default_factory=list)
    roles: list[RoleRow] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)


R = TypeVar("R")

_INSTANT_COLUMNS = frozenset({"deadline", "notify_by", "at", "since"})


def _instant(name: str) -> bool:
    return name in _INSTANT_COLUMNS or name.endswith(("_at", "_since"))


def _rows(cursor: sqlite3.Cursor, cls: type[R], sql: str, params: tuple[Any, ...]) -> list[R]:
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    instants = [_instant(n) for n in names]
    out: list[R] = []
    for row in cursor.execute(sql, params):
        values: dict[str, Any] = {}
        for name, instant, value in zip(names, instants, row, strict=True):
            if instant and value is not None:
                value = datetime.fromisoformat(value)
            elif name == "violations":
                value = json.loads(value)
            values[name] = value
        out.append(cls(**values))
    return out


@contextlib.contextmanager
def open_database(path: Path) -> Iterator[sqlite3.Connection]:
    """The projection database at ``path``, read-only."""
    if not path.is_file():
        raise ProjectionDatabaseError(str(path), "missing")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as error:
        raise ProjectionDatabaseError(str(path), str(error)) from None
    try:
        yield conn
    finally:
        conn.close()


_PARTS = (
    "districts",
    "accounts",
    "exposure",
    "obligations",
    "reads",
    "requests",
    "incidents",
    "exceptions",
)

# part -> (row class, SELECT without WHERE, column naming the district, ORDER BY); constants only.
_QUERIES: dict[str, tuple[type[Any], str, str, str]] = {
    "districts": (DistrictRow, "SELECT * FROM districts", "code", "code"),
    "accounts": (AccountRow, "SELECT * FROM accounts", "district", "account"),
    "exposure": (
        ExposureRow,
        "SELECT e.* FROM exposure e JOIN accounts a ON a.account = e.account",
        "a.district",
        "e.account, e.version, e.first_seen_at, e.person_id",
    ),
    "obligations": (
        ObligationRow,
        "SELECT * FROM obligations",
        "district",
        "district, position, account",
    ),
    "reads": (ReadRow, "SELECT *, NULL FROM reads", "district", "position"),
    "requests": (RequestRow, "SELECT * FROM change_requests", "district", "position"),
    "incidents": (
        IncidentRow,
        "SELECT incidents.*, s.detected_at, s.acknowledged_at, s.measures, s.dismissed_at,"
        " s.dismiss_reason FROM incidents LEFT JOIN incident_steps AS s USING (incident_id)",
        "district",
        "position",
    ),
    "exceptions": (
        ExceptionRow,
        "SELECT * FROM authority_exceptions",
        "district",
        "position",
    ),
}
_FLAGGED = "(outside_working_hours = 1 OR registered_device = 0)"


def _query(part: str, district: str | None, flagged_only: bool) -> tuple[str, tuple[Any, ...]]:
    _, select, column, order = _QUERIES[part]
    conditions = [f"{column} = ?"] if district else []
    if part == "reads" and flagged_only:
        conditions.append(_FLAGGED)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{select}{where} ORDER BY {order}", (district,) if district else ()


# A voided read is the last read before it by the same person, of the same account, kind and
# version (the service records the void right after the read, under the district's lock).
_VOIDS = "SELECT position, district, account, kind, version, reader_id, reason FROM voided_reads"
_VOIDED_READ = (
    "SELECT *, NULL FROM reads WHERE reader_id = ? AND account = ? AND kind = ?"
    " AND version IS ? AND position < ? ORDER BY position DESC LIMIT 1"
)


def _with_voids(
    cursor: sqlite3.Cursor, reads: list[ReadRow], district: str | None
) -> list[ReadRow]:
    """``reads`` with each voided read marked (and added, if the list holds flagged reads
    only: a read that never delivered anything is a finding of its own). Voids are rare: one
    indexed lookup each."""
    where = " WHERE district = ?" if district else ""
    voids = cursor.execute(
        f"{_VOIDS}{where} ORDER BY position", (district,) if district else ()
    ).fetchall()
    if not voids:
        return reads
    reasons: dict[int, str] = {}
    found: dict[int, ReadRow] = {}
    for position, _, account, kind, version, reader_id, reason in voids:
        for read in _rows(
            cursor, ReadRow, _VOIDED_READ, (reader_id, account, kind, version, position)
        ):
            reasons[read.position] = reason
            found[read.position] = read
    listed = {r.position for r in reads}
    marked = [replace(r, voided_reason=reasons.get(r.position)) for r in reads]
    marked.extend(
        replace(read, voided_reason=reasons[p]) for p, read in found.items() if p not in listed
    )
    marked.sort(key=lambda r: r.position)
    return marked


def read_view(
    conn: sqlite3.Connection,
    district: str | None,
    parts: frozenset[str] = frozenset(_PARTS),
    *,
    flagged_reads_only: bool = True,
) -> ViewData:
    """Reads ``parts`` of the view (of ``district``, or all) in one read transaction. Reads are
    only the flagged ones (8.A, 8.B) unless ``flagged_reads_only`` is false."""
    wanted = set(parts)
    if "exposure" in wanted:
        wanted |= {"accounts"}
    try:
        cursor = conn.cursor()
        cursor.execute("BEGIN")
        try:
            cursor.execute(
                "SELECT notification_id FROM tracking WHERE application_name = ?", ("custodia",)
            )
            found = cursor.fetchone()
            data = ViewData(district=district, position=found[0] if found else 0)
            for part in _PARTS:
                if part in wanted:
                    sql, params = _query(part, district, flagged_reads_only)
                    getattr(data, part).extend(_rows(cursor, _QUERIES[part][0], sql, params))
            if "reads" in wanted:
                data.reads[:] = _with_voids(cursor, data.reads, district)
            if "districts" in wanted:
                data.roles.extend(
                    _rows(cursor, RoleRow, "SELECT * FROM person_roles ORDER BY person_id", ())
                )
            data.errors.extend(
                _rows(cursor, ErrorRow, "SELECT * FROM projection_errors ORDER BY ref", ())
            )
        finally:
            cursor.execute("ROLLBACK")
    except sqlite3.Error as error:
        raise ProjectionDatabaseError("proyecciones", str(error)) from None
    return data
