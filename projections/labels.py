"""Spanish words and dates shared by the report renderers (text, CSV and HTML)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from events.domain import Policy

MESES: Final = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")

ESTADOS: Final = {
    "abierta": "abierta",
    "vencida": "VENCIDA",
    "cumplida": "cumplida",
    "cumplida_tarde": "cumplida tarde",
    "retirada": "retirada",
}


def fecha(value: datetime | None, policy: Policy) -> str:
    """``03/03/2025 10:00`` in the policy's time zone; an em dash for nothing."""
    if value is None:
        return "—"
    return policy.local(value).strftime("%d/%m/%Y %H:%M")
