"""Holder changes: designation is access (6.IX, 6.X).

Whoever the ledger says holds a district's credentials (the administrator, or their substitute
during an absence) is the one member of the district's group in OpenBao. A change of holder
revokes the outgoing person in OpenBao before the ledger write and grants the incoming one
after (:meth:`custody.app.access.Access.designate`); due absence starts and returns are
recorded by :meth:`HolderChanges.advance_all`, which the service runs periodically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

from custody.app.base import UseCases
from events.domain import District, DistrictId

T = TypeVar("T")


class HolderChanges(UseCases):
    """Keeping OpenBao's district groups in step with who holds a district's credentials."""

    def _change_holder(self, district: District, save: Callable[[], T], at: datetime) -> T:
        """Save a district change; if it changes who holds the credentials, revoke the
        outgoing person in OpenBao before the ledger write and grant the incoming one after."""
        before = self.access.district_holders(district.code)
        incoming = self.ledger.username_of(district.holder_at(at))
        wanted = (incoming,) if incoming else ()
        if tuple(sorted(before)) == wanted:
            return save()
        return self.access.designate(district.code, incoming, save)  # type: ignore[return-value]

    def advance_all(self) -> list[str]:
        """Record due absence starts and returns for every district and sync OpenBao; the
        codes of districts whose holder changed (the service runs this periodically)."""
        changed = []
        for code in DistrictId.all():
            with self.ledger.lock(str(code)):
                district = self.ledger.district(code)
                now = self.clock()
                holder_before = district.holder_id
                district.advance(policy=self.policy, at=now)
                if district.pending_events or self.access.district_holders(str(code)) != (
                    (self.ledger.username_of(district.holder_at(now)),)
                    if district.holder_at(now)
                    else ()
                ):
                    self._change_holder(district, partial(self.ledger.save, district), now)
                    if district.holder_id != holder_before:
                        changed.append(str(code))
        return changed
