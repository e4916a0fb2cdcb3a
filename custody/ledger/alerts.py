"""The ledger follower's alerts become incidents (issue 16): the service watches them.

The follower runs in the read side, which never writes the ledger; when it refuses to sign (the
ledger is not a consistent extension of the head anchored in OpenBao) it leaves a create-only
alert under ``<kv>/data/bitacora/alertas/`` (:mod:`custody.ledger.anchor`). The command service,
the only ledger writer, reads that folder with its own token (``custodia-servicio`` may read
and list there, nothing more) every ``poll_seconds`` and records each alert as the
institution's incident (:meth:`custody.app.custodia.Custodia.record_ledger_tampering`), for the
Secretaría Ejecutiva.

Exactly one incident per alert: the incident's id derives from the alert's key, so an alert
read again — after a restart, or by another service instance — records nothing more (the
ledger's optimistic concurrency settles a race between instances). Alerts already recorded in
this process are not read again.

For ``custodia estado``, what was seen is written (:mod:`custody.app.ledger_status`) to
``<home>/run/bitacora.json``: how many alerts, the last one, the incidents, and ``integra``
(no alert whose incident is still open). Nothing there is secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from custody.app.ledger_status import status_path, write_status
from custody.config import ALERT_POLL_SECONDS
from custody.ledger.anchor import FollowerAlert, read_alerts
from custody.ledger.names import LedgerNames
from custody.vault.client import VaultClient

__all__ = ["DEFAULT_POLL_SECONDS", "AlertWatcher", "recorder", "start_alert_watcher"]

log = structlog.get_logger("custodia.bitacora.alertas")

#: Well within the 60 s the Secretaría Ejecutiva is promised (issue 16).
DEFAULT_POLL_SECONDS = ALERT_POLL_SECONDS

Record = Callable[[FollowerAlert], tuple[UUID, bool]]
Status = Callable[[UUID], str | None]


def _diverged_at(alert: FollowerAlert) -> datetime:
    try:
        when = datetime.fromisoformat(alert.when)
    except ValueError:
        return datetime.now(UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def recorder(custodia: Any) -> Record:
    """:data:`Record` on the service's application (:class:`custody.app.custodia.Custodia`)."""

    def record(alert: FollowerAlert) -> tuple[UUID, bool]:
        result: tuple[UUID, bool] = custodia.record_ledger_tampering(
            alert_id=alert.id,
            divergence=alert.kind,
            entry=alert.entry,
            anchored_size=alert.anchored_size,
            anchored_root=alert.anchored_root,
            observed_size=alert.observed_size,
            observed_root=alert.observed_root,
            diverged_at=_diverged_at(alert),
        )
        return result

    return record


class AlertWatcher:
    """Reads the follower's alerts and records one incident each (module docstring).
    :meth:`poll` does one pass (tests drive it); :meth:`start` runs it in a thread."""

    def __init__(
        self,
        client: VaultClient,
        names: LedgerNames,
        record: Record,
        status_file: Path | None = None,
        *,
        incident_status: Status | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self._client = client
        self.names = names
        self._record = record
        self._incident_status = incident_status
        self.status_file = status_file
        self.poll_seconds = poll_seconds
        self._seen: dict[str, tuple[FollowerAlert, UUID]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="custodia-alertas", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # OpenBao or NATS unavailable: the next pass retries
                log.warning("bitacora_alertas_fallo", error=type(exc).__name__)
            self._stop.wait(self.poll_seconds)

    def poll(self) -> int:
        """Record every alert not recorded yet; the number of incidents this pass opened."""
        opened = 0
        for alert in read_alerts(self._client, self.names, skip=frozenset(self._seen)):
            incident_id, new = self._record(alert)
            self._seen[alert.id] = (alert, incident_id)
            opened += int(new)
            log.error(
                "bitacora_alterada",
                alerta=alert.id,
                tipo=alert.kind,
                entrada=alert.entry,
                incidente=str(incident_id),
                nuevo=new,
            )
        self._write_status()
        return opened

    def status(self) -> dict[str, Any]:
        """What ``custodia estado`` shows under ``bitacora``."""
        alerts = sorted(self._seen.values(), key=lambda item: item[0].when)
        open_ones = []
        for _, incident_id in alerts:
            state = self._incident_status(incident_id) if self._incident_status else None
            if state not in ("cerrado", "descartado"):
                open_ones.append(str(incident_id))
        last = alerts[-1] if alerts else None
        return {
            "integra": not open_ones,
            "alertas": len(alerts),
            "incidentes_abiertos": open_ones,
            "ultima_alerta": (
                {
                    "alerta": last[0].id,
                    "fecha": last[0].when,
                    "tipo": last[0].kind,
                    "entrada": last[0].entry,
                    "tamano_anclado": last[0].anchored_size,
                    "tamano_observado": last[0].observed_size,
                    "incidente": str(last[1]),
                }
                if last is not None
                else None
            ),
            "revisado": datetime.now(UTC).isoformat(),
        }

    def _write_status(self) -> None:
        if self.status_file is not None:
            write_status(self.status_file, self.status())


def start_alert_watcher(services: Any, settings: Any) -> AlertWatcher | None:
    """Start watching the follower's alerts with the service's token (None if it cannot)."""
    try:
        from custody.config import ServiceTimings

        watcher = AlertWatcher(
            services.vault,
            LedgerNames.for_app("custodia", ""),
            recorder(services.custodia),
            status_path(Path(settings.home)),
            incident_status=services.custodia.incident_status,
            poll_seconds=ServiceTimings.from_env().alert_poll_seconds,
        )
        watcher.start()
    except Exception:
        log.exception("bitacora_alertas_no_iniciadas")
        return None
    return watcher
