"""Files under ``CUSTODIA_HOME/secrets``: written whole or not at all, readable by their owner only.

Every key, token and password file of the data directory goes through :func:`write_secret`, so
none is ever left half-written (a crash leaves the old file or the new one) or momentarily
readable by others (mode 0600 from creation, directory 0700).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically and durably (the directory is made
    0700 if missing)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def write_secret_json(path: Path, data: Any) -> None:
    """:func:`write_secret` of ``data`` as JSON."""
    write_secret(path, json.dumps(data))
