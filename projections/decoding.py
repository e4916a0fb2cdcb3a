"""A faster reading of stored event state: the same objects as eventsourcing's ``JSONTranscoder``.

Decoding a stored event's JSON was the largest single cost of a rebuild: the standard library's
decoder calls a Python ``object_hook`` for every object, and each ``uuid_hex`` value becomes a new
``UUID`` through its slow constructor. :class:`FastJSONTranscoder` reads the JSON with ``msgspec``
(when installed; the standard library's scanner otherwise), then turns ``{"_type_", "_data_"}``
objects into values bottom-up, exactly as the hook would, with the same registered transcodings.
UUIDs, being immutable, are shared between events that name the same one.

Anything unusual (a number or string ``msgspec`` refuses, an unknown type name, a value a
transcoding rejects) is decoded again by ``JSONTranscoder.decode`` itself, so results and errors
are the library's. Encoding is the library's, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from json.scanner import make_scanner
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex

try:
    from msgspec.json import Decoder as MsgspecDecoder
except ImportError:  # pragma: no cover - msgspec is a development extra
    MsgspecDecoder = None  # type: ignore[assignment,misc]

__all__ = ["FastJSONTranscoder"]

_UUIDS_CACHED = 10_000


class FastJSONTranscoder(JSONTranscoder):
    """``JSONTranscoder`` with a faster :meth:`decode` giving equal results (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._uuids: dict[str, UUID] = {}
        parse: Callable[[bytes], Any] | None = None
        if MsgspecDecoder is not None:
            parse = MsgspecDecoder().decode
        self._parse = parse
        # Without msgspec: the standard scanner with a hook that takes the same shortcuts.
        scanner: Any = json.JSONDecoder(object_hook=self._hook)
        self._scan: Callable[[str, int], tuple[Any, int]] = make_scanner(scanner)

    @classmethod
    def like(cls, transcoder: JSONTranscoder) -> FastJSONTranscoder:
        """A fast transcoder with ``transcoder``'s registered transcodings."""
        fast = cls()
        fast.types = dict(transcoder.types)
        fast.names = dict(transcoder.names)
        return fast

    def decode(self, data: bytes) -> Any:
        try:
            if self._parse is not None:
                obj = self._parse(data)
                if type(obj) is dict:
                    return self._revive_dict(obj)
                if type(obj) is list:
                    return self._revive_list(obj)
                return obj
            text = data.decode("utf8")
            obj, end = self._scan(text, 0)
            if end == len(text):
                return obj
        except Exception:  # noqa: S110 - the library decodes it again, and raises its own error
            pass
        return super().decode(data)

    def _value(self, name: Any, data: Any) -> Any:
        """The value of a ``{"_type_": name, "_data_": data}`` object (``data`` revived)."""
        transcoding = self.names[name]
        if type(data) is str:
            kind = type(transcoding)
            if kind is DatetimeAsISO:
                return datetime.fromisoformat(data)
            if kind is UUIDAsHex:
                uuid = self._uuids.get(data)
                if uuid is None:
                    if len(self._uuids) >= _UUIDS_CACHED:
                        self._uuids.clear()
                    uuid = self._uuids[data] = UUID(data)
                return uuid
        return transcoding.decode(data)

    def _revive_dict(self, d: dict[str, Any]) -> Any:
        for key, value in d.items():
            kind = type(value)
            if kind is dict:
                if len(value) == 2 and "_type_" in value:
                    data = value.get("_data_")
                    if type(data) is str:
                        # The usual case, inline: an instant or a UUID.
                        transcoding = self.names[value["_type_"]]
                        if type(transcoding) is DatetimeAsISO:
                            d[key] = datetime.fromisoformat(data)
                            continue
                        uuid = self._uuids.get(data)
                        if uuid is not None and type(transcoding) is UUIDAsHex:
                            d[key] = uuid
                            continue
                        d[key] = self._value(value["_type_"], data)
                        continue
                d[key] = self._revive_dict(value)
            elif kind is list:
                d[key] = self._revive_list(value)
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            return self._value(d["_type_"], d["_data_"])
        return d

    def _revive_list(self, items: list[Any]) -> list[Any]:
        for i, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                items[i] = self._revive_dict(value)
            elif kind is list:
                items[i] = self._revive_list(value)
        return items

    def _hook(self, d: dict[str, Any]) -> Any:
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            return self._value(d["_type_"], d["_data_"])
        return d
