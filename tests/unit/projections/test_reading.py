"""The frames between a rebuild's reading process and its writer (``projections.reading``)."""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.persistence import Notification

from projections.projection import FAST_KINDS
from projections.reading import _read, _write, encode_page


def notification(position: int) -> Notification:
    return Notification(
        id=position, originator_id=uuid4(), originator_version=position, topic="t", state=b"{}"
    )


def test_an_event_whose_parameters_cannot_travel_goes_the_usual_way() -> None:
    """An integer beyond 64 bits (a forged version, say) cannot be sent as a parameter: that
    event alone is sent with its stored parts, to be mapped and handled (or recorded as
    poison) by the writer; its neighbours keep their parameters."""
    page = [notification(1), notification(2), notification(3)]
    kind = FAST_KINDS[0]
    params: dict[int, Any] = {1: (kind, ("a", 1)), 2: (kind, ("b", 2**70)), 3: None}
    kinds = {kind: 0}
    frame = encode_page(page, lambda n: params[n.id], kinds, msgspec.msgpack.Encoder().encode)
    what, items = msgspec.msgpack.decode(frame)
    assert what == "page"
    assert items[0] == [1, 0, ["a", 1]]
    assert [item[:2] for item in items[1:]] == [[2, -1], [3, -1]]
    originator = page[1].originator_id
    assert isinstance(originator, UUID)
    assert items[1] == [2, -1, originator.bytes, 2, "t", b"{}"]


def test_frames_are_whole_or_an_error() -> None:
    stream = io.BytesIO()
    _write(stream, b"hola")
    _write(stream, b"")
    whole = stream.getvalue()
    reader = io.BytesIO(whole)
    assert _read(reader) == b"hola"
    assert _read(reader) == b""
    assert _read(reader) is None
    for cut in (2, 6):  # in the length, in the body
        with pytest.raises(EOFError):
            _read(io.BytesIO(whole[:cut]))
    with pytest.raises(EOFError):  # a length no frame has: not a gigabyte read into memory
        _read(io.BytesIO((1 << 31).to_bytes(4, "big") + b"x"))
