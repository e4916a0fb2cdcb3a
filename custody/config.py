"""Custodia's configuration: an environment mapping with the ``CUSTODIA_`` prefix.

Every setting has a documented default (see README). Reading the environment happens once, in
:func:`Settings.from_env`; everything else receives a ``Settings`` value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from events.errors import ConfigurationError

PREFIX = "CUSTODIA_"


@dataclass(frozen=True)
class Settings:
    """Where Custodia keeps its data and which servers it talks to."""

    home: Path
    nats_url: str | None = None
    nats_creds: Path | None = None
    vault_addr: str | None = None
    vault_token: str | None = None
    policy_file: Path | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_ca: Path | None = None
    vault_ca: Path | None = None
    replicas: int = 1

    def __repr__(self) -> str:  # the admin token never reaches a log line
        return (
            f"Settings(home={self.home!s}, nats_url={self.nats_url}, vault_addr={self.vault_addr},"
            f" policy_file={self.policy_file})"
        )

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url is None

    @property
    def embedded_vault(self) -> bool:
        return self.vault_addr is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(PREFIX + name, "").strip()
            return value or None

        home_text = get("HOME")
        home = (
            Path(home_text).expanduser()
            if home_text
            else (Path(source.get("HOME", str(Path.home()))) / ".local" / "share" / "custodia")
        )
        nats_url = get("NATS_URL")
        if nats_url and not nats_url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ConfigurationError(PREFIX + "NATS_URL", "must start with nats:// or tls://")
        vault_addr = get("VAULT_ADDR")
        if vault_addr:
            # One address, or several separated by commas (members of an OpenBao HA cluster:
            # the client moves to the next when one cannot be reached).
            addrs = [a.strip().rstrip("/") for a in vault_addr.split(",")]
            if not all(a.startswith(("http://", "https://")) for a in addrs):
                raise ConfigurationError(
                    PREFIX + "VAULT_ADDR", "must start with http:// or https:// (each address)"
                )
            vault_addr = ",".join(addrs)
        creds = get("NATS_CREDS")
        if creds and not Path(creds).expanduser().is_file():
            raise ConfigurationError(PREFIX + "NATS_CREDS", "file not found")
        policy = get("POLITICA")
        if policy and not Path(policy).expanduser().is_file():
            raise ConfigurationError(PREFIX + "POLITICA", "file not found")
        replicas_text = get("NATS_REPLICAS") or "1"
        if replicas_text not in ("1", "3", "5"):
            raise ConfigurationError(PREFIX + "NATS_REPLICAS", "must be 1, 3 or 5")
        ca = get("NATS_CA")
        vault_ca = get("VAULT_CACERT")
        for name, value in (("NATS_CA", ca), ("VAULT_CACERT", vault_ca)):
            if value and not Path(value).expanduser().is_file():
                raise ConfigurationError(PREFIX + name, "file not found")
        return cls(
            nats_user=get("NATS_USER"),
            nats_password=get("NATS_PASSWORD"),
            nats_ca=Path(ca).expanduser() if ca else None,
            vault_ca=Path(vault_ca).expanduser() if vault_ca else None,
            replicas=int(replicas_text),
            home=home,
            nats_url=nats_url,
            nats_creds=Path(creds).expanduser() if creds else None,
            vault_addr=vault_addr.rstrip("/") if vault_addr else None,
            vault_token=get("VAULT_TOKEN"),
            policy_file=Path(policy).expanduser() if policy else None,
        )
