"""The ledger follower as ``custodia servicio`` runs it (in its read side, custody.stack.readside).

It signs with a token of its own (``secrets/firmante-token``, mode 0600, policy
``custodia-firmante``, created by ``custodia init``): sign with the ledger key, move the anchored
head (check-and-set), create witnesses. The service's token cannot sign (issue 16, finding 5).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

import structlog

from custody.config import ServiceTimings, Settings
from custody.ledger.anchor import VaultAnchor
from custody.ledger.follower import FollowerSettings, LedgerFollower
from custody.ledger.names import LedgerNames
from custody.ledger.transit_signer import TransitSigner
from custody.stack.secret_files import write_secret
from custody.vault.client import VaultClient
from custody.vault.layout import SIGNER_POLICY, create_service_token
from events.errors import ConfigurationError, CustodiaError
from events.jetstream.factory import Factory as JetStreamFactory

if TYPE_CHECKING:
    from custody.app.custodia import CustodiaApplication
    from custody.bootstrap import Endpoints


class FollowerServices(Protocol):
    """What the follower needs of the composition root's services (``custody.runner.Services``;
    named here, not imported: the composition root imports this module)."""

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def app(self) -> CustodiaApplication: ...


__all__ = ["SIGNER_TOKEN_FILE", "ensure_signer_token", "signer_token", "start_follower"]

log = structlog.get_logger()

SIGNER_TOKEN_FILE = "firmante-token"  # noqa: S105  # a file name
RENEW_SECONDS = 3600.0  # the token is periodic (24 h): renewed well within its period


def ensure_signer_token(settings: Settings, admin: VaultClient) -> bool:
    """``custodia init``: create the follower's token if it has none; True if created."""
    path = settings.home / "secrets" / SIGNER_TOKEN_FILE
    if path.exists():
        return False
    token = create_service_token(admin, policy=SIGNER_POLICY, display_name="custodia-firmante")
    write_secret(path, token)
    return True


def signer_token(settings: Settings) -> str:
    """The follower's own token; :class:`ConfigurationError` if ``init`` did not create it."""
    path = settings.home / "secrets" / SIGNER_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigurationError(str(path), "missing: run «custodia init» again") from None
    if not token:
        raise ConfigurationError(str(path), "empty")
    return token


def _keep_renewed(client: VaultClient, stop: threading.Event) -> None:
    while not stop.wait(RENEW_SECONDS):
        try:
            client.renew_self()
        except CustodiaError as exc:
            log.warning("ledger.signer.renew_failed", error=type(exc).__name__)


def start_follower(settings: Settings, services: FollowerServices) -> LedgerFollower | None:
    """Start the follower: signed checkpoints, anchored head and witnesses in OpenBao.

    Without its token (a home ``init`` did not prepare) nothing is signed and an error is
    logged; the read side's projections still run (``verificar`` shows the unsigned entries).
    """
    endpoints = services.endpoints
    try:
        token = signer_token(settings)
    except ConfigurationError as exc:
        log.error("ledger.follower.no_token", detail=str(exc))
        return None
    client = VaultClient(endpoints.vault_addr, token, verify=endpoints.vault_verify)
    names = LedgerNames.for_app("custodia", "")
    timings = ServiceTimings.from_env()
    follower_settings = FollowerSettings(
        every_events=timings.checkpoint_events,
        every_seconds=timings.checkpoint_seconds,
        quiet_seconds=timings.checkpoint_quiet_seconds,
        replicas=endpoints.replicas,
    )
    factory = services.app.factory
    assert isinstance(factory, JetStreamFactory)  # the ledger is in JetStream
    follower = LedgerFollower(
        factory.connection,
        TransitSigner(client),
        names,
        settings=follower_settings,
        anchor=VaultAnchor(client, names),
    )
    follower.start()
    # A daemon: it ends with the read side's process.
    threading.Thread(
        target=_keep_renewed,
        args=(client, threading.Event()),
        name="custodia-firmante-renew",
        daemon=True,
    ).start()
    return follower
