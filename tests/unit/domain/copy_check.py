"""Checks that a copy of aggregate state is a faithful deep copy (used by the property tests)."""

from __future__ import annotations

from typing import Any

_IMMUTABLE = (str, int, float, bool, bytes, type(None))


def _walk(value: Any, seen: dict[int, Any]) -> None:
    """Every mutable object reachable from ``value``, by id."""
    if isinstance(value, _IMMUTABLE) or id(value) in seen:
        return
    if isinstance(value, dict):
        seen[id(value)] = value
        for k, v in value.items():
            _walk(k, seen)
            _walk(v, seen)
    elif isinstance(value, list | set):
        seen[id(value)] = value
        for v in value:
            _walk(v, seen)
    elif isinstance(value, tuple | frozenset):
        for v in value:
            _walk(v, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        seen[id(value)] = value
        _walk(vars(value), seen)


def assert_faithful_copy(original: Any, clone: Any) -> None:
    """``clone`` equals ``original``, shares none of its mutable objects (lists, dicts, sets,
    objects with a ``__dict__``) and has as many of them (aliases kept, not split)."""
    assert clone == original
    assert vars(clone) == vars(original)
    mine: dict[int, Any] = {}
    theirs: dict[int, Any] = {}
    _walk(vars(original), mine)
    _walk(vars(clone), theirs)
    shared = mine.keys() & theirs.keys()
    assert not shared, f"the copy shares mutable state: {[type(mine[k]) for k in shared]}"
    assert len(mine) == len(theirs), "the copy does not keep the original's aliases"
