"""A faster reading of stored event state: the same objects as eventsourcing's ``JSONTranscoder``.

Decoding a stored event's JSON was the largest single cost of a rebuild: the standard library's
decoder calls a Python ``object_hook`` for every object, and each ``uuid_hex`` value becomes a new
``UUID`` through its slow constructor. :class:`FastJSONTranscoder` reads the JSON with ``msgspec``
(or, given no parser, the standard library's scanner with a hook taking the same shortcuts), then
turns ``{"_type_", "_data_"}`` objects into values bottom-up, exactly as the hook would, with the
same registered transcodings.
UUIDs, being immutable, are shared between events that name the same one.

Anything unusual (a number or string ``msgspec`` refuses, an unknown type name, a value a
transcoding rejects) is decoded again by ``JSONTranscoder.decode`` itself, so results and errors
are the library's. Encoding is the library's, unchanged.

:class:`TypedState` goes further for one event class: ``msgspec`` checks the state against the
class's fields as it reads it (no dict to walk afterwards), and only the fields declared as
``UUID`` or ``datetime`` are converted. It gives the state :meth:`FastJSONTranscoder.decode`
would, or ``None`` when the state is anything but exactly the fields with exactly their types
(the caller then decodes it as usual).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from datetime import datetime
from json.scanner import make_scanner
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex

__all__ = ["FastJSONTranscoder", "Tagged", "TypedState", "state_decoder"]

_UUIDS_CACHED = 10_000


class FastJSONTranscoder(JSONTranscoder):
    """``JSONTranscoder`` with a faster :meth:`decode` giving equal results (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._uuids: dict[str, UUID] = {}
        self._parse: Callable[[bytes], Any] | None = msgspec.json.Decoder().decode
        # Given no parser (_parse None): the standard scanner, with the same shortcuts.
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


class Tagged(msgspec.Struct, forbid_unknown_fields=True):
    """A transcoded value as stored: ``{"_type_": name, "_data_": text}``, nothing more."""

    type_: str = msgspec.field(name="_type_")
    data: str = msgspec.field(name="_data_")


_PLAIN: frozenset[Any] = frozenset({str, int, bool})
_ORIGINATOR: frozenset[str] = frozenset({"originator_id", "originator_version"})
# How a field's value as read becomes the transcoder's: kept as read, or converted.
_AS_READ, _UUID, _UUIDS, _DATETIME, _UNTAGGED = "", "uuid", "uuids", "datetime", "untagged"


class TypedState:
    """Reads the stored states of one event class (module docstring): ``decode(data)`` is
    the state as a dict without ``class_version``, or ``None``."""

    def __init__(self, cls: type[Any], transcoder: FastJSONTranscoder) -> None:
        self._transcoder = transcoder
        self._decode, self._class_version, converted = _layout(cls)
        conversions: dict[str, Callable[[Any], Any]] = {
            _UUID: self._uuid,
            _UUIDS: self._uuids,
            _DATETIME: self._datetime,
            _UNTAGGED: _untagged,
        }
        self._conversions = [(name, conversions[how]) for name, how in converted]

    @classmethod
    def of(cls, event_class: type[Any], transcoder: object) -> TypedState | None:
        """The reader of ``event_class``'s states, if ``transcoder`` is a
        :class:`FastJSONTranscoder` with the library's transcodings of UUIDs and instants
        and every field has a type this class reads; else ``None``."""
        if (
            type(transcoder) is not FastJSONTranscoder
            or type(transcoder.names.get(UUIDAsHex.name)) is not UUIDAsHex
            or type(transcoder.names.get(DatetimeAsISO.name)) is not DatetimeAsISO
        ):
            return None
        try:
            return cls(event_class, transcoder)
        except Exception:  # not a dataclass, an annotation it cannot resolve, a type it cannot read
            return None

    def decode(self, data: bytes) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = msgspec.structs.asdict(self._decode(data))
            if state.pop("class_version") != self._class_version:
                return None  # older (to upcast) or newer: as usual
            for name, conversion in self._conversions:
                value = state[name]
                if value is not None:
                    state[name] = conversion(value)
        except (msgspec.DecodeError, ValueError):
            return None
        return state

    def _uuid(self, value: Tagged) -> UUID:
        if value.type_ != UUIDAsHex.name:
            raise ValueError(value.type_)
        uuid = self._transcoder._uuids.get(value.data)
        if uuid is None:
            uuid = self._transcoder._value(value.type_, value.data)
        return uuid

    def _uuids(self, values: list[Tagged]) -> list[UUID]:
        return [self._uuid(value) for value in values]

    def _datetime(self, value: Tagged) -> datetime:
        if value.type_ != DatetimeAsISO.name:
            raise ValueError(value.type_)
        return datetime.fromisoformat(value.data)


def state_decoder(cls: type[Any]) -> tuple[Callable[[bytes], Any], int]:
    """A ``msgspec`` decoder of ``cls``'s stored states (as :class:`TypedState` reads them)
    into a struct of its fields, ``UUID`` and ``datetime`` ones as :class:`Tagged`, with a
    ``class_version`` (1 when absent); and the class's version. Raises ``TypeError`` (or
    ``NameError``) for a class whose fields it does not read."""
    decode, class_version, _ = _layout(cls)
    return decode, class_version


_Layout = tuple[Callable[[bytes], Any], int, tuple[tuple[str, str], ...]]
_LAYOUTS: dict[type[Any], _Layout] = {}


def _layout(cls: type[Any]) -> _Layout:
    """For :class:`TypedState`: a ``msgspec`` decoder of ``cls``'s stored states, its class
    version, and the fields whose values are converted, with how (made once per class).
    Raises ``TypeError`` (or ``NameError``) for a class it does not read."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _make_layout(cls)
    return layout


def _make_layout(cls: type[Any]) -> _Layout:
    hints = typing.get_type_hints(cls)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    converted: list[tuple[str, str]] = []
    for field in dataclasses.fields(cls):
        if field.name in _ORIGINATOR:
            continue
        if field.name == "class_version" or not field.init:
            raise TypeError(f"field {field.name} is not plain state")
        kind, how = _kind(hints[field.name])
        fields.append((field.name, kind))
        if how != _AS_READ:
            converted.append((field.name, how))
    fields.append(("class_version", int, 1))
    struct = msgspec.defstruct(f"{cls.__name__}State", fields, forbid_unknown_fields=True)
    class_version: int = getattr(cls, "class_version", 1)
    return msgspec.json.Decoder(struct).decode, class_version, tuple(converted)


def _kind(hint: Any) -> tuple[Any, str]:
    """The ``msgspec`` type of a field declared as ``hint``, and how its value is converted.
    Raises ``TypeError`` for a type it does not read."""
    if hint in _PLAIN:
        return hint, _AS_READ
    if hint is UUID:
        return Tagged, _UUID
    if hint is datetime:
        return Tagged, _DATETIME
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        kind, how = _kind(inner)
        return kind | None, how  # None is never converted
    if origin is list and len(args) == 1:
        if args[0] in _PLAIN:
            return hint, _AS_READ
        if args[0] is UUID:
            return list[Tagged], _UUIDS
    if origin is dict and len(args) == 2 and args[0] is str and _plain(args[1]):
        return hint, _UNTAGGED
    raise TypeError(f"{hint} is not read")


def _plain(hint: Any) -> bool:
    """Whether values declared as ``hint`` are read as they are: no object inside."""
    if hint in _PLAIN:
        return True
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return all(arg is type(None) or _plain(arg) for arg in args)
    return typing.get_origin(hint) is list and len(args) == 1 and args[0] in _PLAIN


def _untagged(value: dict[str, Any]) -> dict[str, Any]:
    """A dict field as read, unless the transcoder would have taken it for a transcoded value."""
    if len(value) == 2 and "_type_" in value and "_data_" in value:
        raise ValueError("a transcoded value")
    return value
