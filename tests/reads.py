"""What the ledger says was delivered or staged, for the load tests' exactly-once checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from custody.app import UNSTAGED_REASON
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


def staged_rotations(events: Iterable[Any]) -> Counter[tuple[str, int]]:
    """``(account, version)`` of each "rotation started", less those undone at once because
    OpenBao refused to stage them (the service records the start while OpenBao's writes are on
    their way; the caller was told it failed)."""
    started: Counter[tuple[str, int]] = Counter()
    for event in events:
        if isinstance(event, District.RotationStarted):
            started[(event.account, event.version)] += 1
        elif isinstance(event, District.RotationAbandoned) and str(event.reason or "").startswith(
            UNSTAGED_REASON
        ):
            key = (event.account, event.version)
            started[key] -= 1
            if started[key] == 0:
                del started[key]
    return started
