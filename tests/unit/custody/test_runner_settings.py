"""Service settings read from the environment."""

from __future__ import annotations

import pytest

from custody.runner import ADVANCE_SECONDS, advance_seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ADVANCE_SECONDS), ("5", 5.0), ("0.5", 0.5), ("0", ADVANCE_SECONDS),
     ("-3", ADVANCE_SECONDS), ("treinta", ADVANCE_SECONDS)],
)  # fmt: skip
def test_advance_interval(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float
) -> None:
    if value is None:
        monkeypatch.delenv("CUSTODIA_AVANCE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("CUSTODIA_AVANCE_SECONDS", value)
    assert advance_seconds() == expected
