"""Where the servers are and with which credentials: one place that wires it for every process.

Embedded default (no ``CUSTODIA_NATS_URL`` / ``CUSTODIA_VAULT_ADDR``): addresses come from the
supervisor's ``stack.json``; each NATS identity's password from its own file,
``secrets/nats-<user>.json`` (a process reads only the files of the identities it acts as); the
administrative
OpenBao token is the embedded root token (``init`` only) and the service token is kept in
``secrets/servicio-token`` (both 0600). External servers: ``CUSTODIA_NATS_URL`` (+
``CUSTODIA_NATS_CREDS``, or ``CUSTODIA_NATS_USER``/``CUSTODIA_NATS_PASSWORD``; the service's
identities ``servicio``/``escritor`` and ``init``'s ``administrador`` come from their own
``secrets/nats-<user>.json`` in ``CUSTODIA_HOME`` when present), ``CUSTODIA_VAULT_ADDR``
(+ ``CUSTODIA_VAULT_TOKEN`` for ``init`` and ``servicio`` only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from custody import config
from custody.config import Settings
from custody.service import permissions as nats_auth
from custody.stack import record
from custody.stack.record import StackInfo, StackNotRunningError
from custody.stack.secret_files import write_secret
from events.errors import ConfigurationError

if TYPE_CHECKING:
    from custody.stack.embedded import EmbeddedStack

NatsRole = Literal[
    "servicio", "escritor", "administrador", "cliente", "verificador", "autenticador"
]
SERVICE_TOKEN_FILE = "servicio-token"  # noqa: S105  # a file name
# Identities of the service's machine (and ``init``): with external servers, taken from their
# own file in ``CUSTODIA_HOME/secrets`` when there is one.
SERVICE_ROLES = frozenset({"servicio", "escritor", "administrador", "autenticador"})
CALLOUT_SEED_FILE = "nats-emisor.seed"


@dataclass(frozen=True)
class Endpoints:
    """How to reach NATS and OpenBao, as one of the NATS users."""

    nats_url: str
    vault_addr: str
    nats_user: str | None = None
    nats_password: str | None = field(default=None, repr=False)
    nats_creds: Path | None = None
    embedded_nats: bool = False
    embedded_vault: bool = False
    nats_ca: Path | None = None
    vault_ca: Path | None = None
    replicas: int = 1

    @property
    def nats_servers(self) -> list[str]:
        """``CUSTODIA_NATS_URL`` may list every node of a cluster, comma-separated."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def vault_verify(self) -> bool | str:
        return str(self.vault_ca) if self.vault_ca else True

    def nats_options(self) -> dict[str, object]:
        """Keyword arguments for ``nats.connect`` (credentials included)."""
        options: dict[str, object] = {"servers": self.nats_servers}
        if self.nats_ca is not None:
            import ssl

            options["tls"] = ssl.create_default_context(cafile=str(self.nats_ca))
        if self.nats_creds is not None:
            options["user_credentials"] = str(self.nats_creds)
        elif self.nats_user is not None:
            options["user"] = self.nats_user
            options["password"] = self.nats_password
        return options

    def nats_env(self) -> dict[str, str]:
        """Environment for ``eventsourcing``'s JetStream persistence module."""
        env = {
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": self.nats_url,
            "NATS_REPLICAS": str(self.replicas),
        }
        if self.nats_ca is not None:
            env["NATS_TLS_CA"] = str(self.nats_ca)
        if self.nats_creds is not None:
            env["NATS_CREDS"] = str(self.nats_creds)
        elif self.nats_user is not None and self.nats_password is not None:
            env["NATS_USER"] = self.nats_user
            env["NATS_PASSWORD"] = self.nats_password
        # eventsourcing reads ``CUSTODIA_<KEY>`` (the application's name) before ``<KEY>``, and
        # from the process environment too: pin this identity under both names, so that a
        # ``CUSTODIA_NATS_USER`` meant for another process does not replace it.
        for variable in (config.NATS_CREDS, config.NATS_USER, config.NATS_PASSWORD):
            env[variable.key] = env.get(variable.name, "")
        return env


def resolve(settings: Settings, role: NatsRole, *, start: bool = False) -> Endpoints:
    """The endpoints for ``role``; with ``start`` the embedded servers are started if needed."""
    info: StackInfo | None = None
    if settings.embedded_nats or settings.embedded_vault:
        # Reading stack.json needs none of the supervisor (a command line's path: its NATS,
        # HTTP, TLS and subprocess machinery is imported only to start the servers).
        info = _supervisor(settings).start() if start else record.running(settings.home)
        if info is None:
            raise StackNotRunningError(settings.home)
    if settings.nats_url:
        nats_url, creds = settings.nats_url, settings.nats_creds
        user, password = settings.nats_user, settings.nats_password
        own = nats_auth.user_file(settings.home / "secrets", role)
        if role in SERVICE_ROLES and own.exists():
            user, password, creds = role, nats_auth.load_user(own, role).password, None
    else:
        assert info is not None
        nats_url, user, password, creds = info.nats_url, None, None, None
        if role != "cliente":
            user, password = role, _supervisor(settings).nats_user(role).password
    if role == "cliente":
        # A person has no NATS password: their OpenBao token is their NATS credential (the
        # auth callout checks it, custody.service.callout); see custody.service.client.
        user, password, creds = None, None, None
    vault_addr = settings.vault_addr or (info.vault_addr if info else "")
    return Endpoints(
        nats_url=nats_url,
        vault_addr=vault_addr,
        nats_user=user,
        nats_password=password,
        nats_creds=creds,
        embedded_nats=settings.embedded_nats,
        embedded_vault=settings.embedded_vault,
        nats_ca=settings.nats_ca,
        vault_ca=settings.vault_ca,
        replicas=settings.replicas,
    )


def _supervisor(settings: Settings) -> EmbeddedStack:
    """The embedded stack's supervisor (custody.stack.embedded), imported when first needed."""
    from custody.stack.embedded import EmbeddedStack

    return EmbeddedStack(settings.home)


def callout_seed(settings: Settings) -> str:
    """The auth callout's issuer seed: ``secrets/nats-emisor.seed`` of ``CUSTODIA_HOME`` (the
    embedded stack makes it; with external servers, the deployment puts it there)."""
    path = settings.home / "secrets" / CALLOUT_SEED_FILE
    try:
        seed = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigurationError(str(path), "missing: the NATS auth callout needs it") from None
    if not seed.startswith("SA"):
        raise ConfigurationError(str(path), "not an account nkey seed")
    return seed


def admin_token(settings: Settings) -> str | None:
    """The administrative OpenBao token for ``init``: CUSTODIA_VAULT_TOKEN, or the embedded
    root token until the first ``init`` revokes it (then None)."""
    if settings.vault_token:
        return settings.vault_token
    if settings.embedded_vault:
        return _supervisor(settings).vault_keys().root_token
    raise ConfigurationError(config.VAULT_TOKEN.key, "required with an external OpenBao/Vault")


def service_token(settings: Settings) -> str:
    """The token ``custodia servicio`` acts with (least privilege, created by ``init``)."""
    path = settings.home / "secrets" / SERVICE_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        if settings.vault_token:
            return settings.vault_token
        raise ConfigurationError(str(path), "missing: run «custodia init» first") from None
    if not token:
        raise ConfigurationError(str(path), "empty")
    return token


def save_service_token(settings: Settings, token: str) -> None:
    write_secret(settings.home / "secrets" / SERVICE_TOKEN_FILE, token)
