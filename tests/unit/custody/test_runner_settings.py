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


def test_vault_addr_may_list_the_members_of_a_cluster() -> None:
    from custody.config import Settings

    settings = Settings.from_env(
        {"CUSTODIA_VAULT_ADDR": "https://bao-1:8200/, https://bao-2:8200,https://bao-3:8200"}
    )
    assert settings.vault_addr == "https://bao-1:8200,https://bao-2:8200,https://bao-3:8200"


def test_every_listed_vault_addr_is_checked() -> None:
    from custody.config import Settings
    from events.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Settings.from_env({"CUSTODIA_VAULT_ADDR": "https://bao-1:8200,bao-2:8200"})
