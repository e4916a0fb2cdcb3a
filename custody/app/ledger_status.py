"""What the service last saw of the ledger's integrity, for ``custodia estado`` (issue 16).

The service's alert watcher (:mod:`custody.ledger.alerts`) writes it; ``estado`` reads it
without importing the ledger's machinery (NATS, eventsourcing): a small JSON file, written
atomically, mode 0600, under ``<home>/run/``. Nothing in it is secret (alert ids, sizes,
incident ids, times).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["STATUS_FILE", "read_status", "status_path", "write_status"]

STATUS_FILE = "bitacora.json"


def status_path(home: Path) -> Path:
    return Path(home) / "run" / STATUS_FILE


def read_status(home: Path) -> dict[str, Any] | None:
    """What the service last wrote (None if nothing yet, or unreadable)."""
    try:
        data = json.loads(status_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Atomically (temporary file, rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bitacora-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(status, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
