"""NATS accounts, users and permissions: the trust boundary of the ledger, enforced by NATS.

Only ``custodia servicio`` writes events. Users' command lines may only send requests on the
command subjects and receive replies; the Secretaría Ejecutiva's verifier may read the event
streams but not write them. The embedded default runs with exactly this configuration
(rendered into ``CUSTODIA_HOME/nats/auth.conf``); ``deploy/nats/`` holds the clustered version.

Users and what they may do::

    servicio     publish: JetStream API, event subjects, service discovery; replies to requests
                 subscribe: command subjects, its inboxes, service discovery
    cliente      publish: command subjects, service discovery;  subscribe: inboxes
    verificador  publish: read-only JetStream API on the ledger streams; subscribe: inboxes
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .protocol import SUBJECT_PREFIX

ACCOUNT = "CUSTODIA"
USERS = ("servicio", "cliente", "verificador")
# The application's streams and subjects (events.jetstream naming for the app ``custodia``).
LEDGER_STREAMS = ["custodia-events", "custodia-checkpoints"]
EVENT_SUBJECTS = [
    "custodia.events.>",
    "custodia.tracking.>",
    "custodia.snapshots.>",
    "custodia.checkpoints.>",
]


@dataclass(frozen=True)
class NatsUser:
    """A NATS user name and password (embedded default; production uses creds files)."""

    user: str
    password: str

    def __repr__(self) -> str:
        return f"NatsUser({self.user!r}, <redactado>)"


def _list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def read_only_api(streams: list[str]) -> list[str]:
    """JetStream API subjects that read (never write) the given streams."""
    subjects = ["$JS.API.INFO"]
    for stream in streams:
        subjects += [
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        ]
    return subjects


def render_accounts(
    users: dict[str, NatsUser], ledger_streams: list[str], event_subjects: list[str]
) -> str:
    """The ``accounts`` block for ``nats.conf`` with the three users and their permissions."""
    commands = f"{SUBJECT_PREFIX}.>"
    service_pub = [
        "$JS.API.>",
        "$JS.ACK.>",
        "$JS.FC.>",
        "$SRV.>",
        "_INBOX.>",
        "$KV.custodia-solicitudes.>",
        *event_subjects,
    ]
    service_sub = [commands, "_INBOX.>", "$SRV.>"]
    client_pub = [commands, "$SRV.>"]
    verifier_pub = [*read_only_api(ledger_streams), "$JS.FC.>", "$JS.ACK.>"]
    return f"""
accounts {{
  {ACCOUNT}: {{
    jetstream: enabled
    users: [
      {{
        user: {json.dumps(users["servicio"].user)}
        password: {json.dumps(users["servicio"].password)}
        permissions: {{
          publish: {{ allow: {_list(service_pub)} }}
          subscribe: {{ allow: {_list(service_sub)} }}
          allow_responses: true
        }}
      }}
      {{
        user: {json.dumps(users["cliente"].user)}
        password: {json.dumps(users["cliente"].password)}
        permissions: {{
          publish: {{ allow: {_list(client_pub)}, deny: {_list(["$JS.>", *event_subjects])} }}
          subscribe: {{ allow: ["_INBOX.>"] }}
        }}
      }}
      {{
        user: {json.dumps(users["verificador"].user)}
        password: {json.dumps(users["verificador"].password)}
        permissions: {{
          publish: {{ allow: {_list(verifier_pub)}, deny: {_list(event_subjects)} }}
          subscribe: {{ allow: ["_INBOX.>"] }}
        }}
      }}
    ]
  }}
}}
"""


def generate_users() -> dict[str, NatsUser]:
    return {name: NatsUser(name, secrets.token_urlsafe(24)) for name in USERS}


def load_users(path: Path) -> dict[str, NatsUser]:
    data = json.loads(path.read_text())
    return {name: NatsUser(name, data[name]) for name in USERS}


def save_users(path: Path, users: dict[str, NatsUser]) -> None:
    """Write the users' passwords to ``path`` with mode 0600 (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({name: user.password for name, user in users.items()}, out)
    os.replace(tmp, path)
