"""Reads the ledger says were delivered, for the load tests' exactly-once checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from events.domain import District


def delivered_reads(events: Iterable[Any]) -> Counter[str]:
    """Password and code reads by purpose, less those voided afterwards.

    The service may record a read while its wrapped read is still on its way; if that read then
    fails, a ``ReadVoided`` for the same reader, account and version follows it (the caller was
    told it failed). Such a read was not delivered: it counts as no read here.
    """
    reads: Counter[str] = Counter()
    last: dict[tuple[Any, str, int | None, Any], str] = {}
    for event in events:
        if isinstance(event, District.CredentialRead):
            key = (event.originator_id, event.account, event.version, event.by)
            reads[event.purpose] += 1
            last[key] = event.purpose
        elif isinstance(event, District.ReadVoided):
            key = (event.originator_id, event.account, event.version, event.by)
            purpose = last.pop(key)
            reads[purpose] -= 1
            if reads[purpose] == 0:
                del reads[purpose]
    return reads
