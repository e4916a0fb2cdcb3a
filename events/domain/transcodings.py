"""Transcodings for the domain's state, for snapshots.

Events need none: their payloads are str, int, bool, None, lists, dicts with string keys,
UTC datetimes and UUIDs, which eventsourcing's default ``JSONTranscoder`` handles. Snapshots copy
an aggregate's state, which holds the small dataclasses below and calendar dates; an application
that takes snapshots must call :func:`register_transcodings` from its own
``register_transcodings`` (calling it always is harmless).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from events.domain.district import Absence, Account, Designation, RotationObligation
from events.domain.official_channel import OfficialChannel

__all__ = ["register_transcodings"]


class DateAsISO(Transcoding):
    """A calendar date as ``AAAA-MM-DD``."""

    type = date
    name = "custodia.date"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """A dataclass as a dict of its fields (values are transcoded in turn)."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = f"custodia.{cls.__name__}"

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


_STATE_CLASSES = (Absence, Account, Designation, OfficialChannel, RotationObligation)


def register_transcodings(transcoder: JSONTranscoder) -> None:
    """Registers the transcodings the domain's state needs (dates and state dataclasses)."""
    transcoder.register(DateAsISO())
    for cls in _STATE_CLASSES:
        transcoder.register(DataclassAsDict(cls))
