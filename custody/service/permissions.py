"""NATS accounts, users and permissions: the trust boundary of the ledger, enforced by NATS.

Only ``custodia servicio`` writes events, and it does so with two identities: a **responder**
that answers commands and may publish only to inboxes (a requester cannot make it publish on a
ledger or KV subject by choosing the reply subject: no ``allow_responses``), and a **writer**
that appends to the ledger and the idempotency bucket but cannot create, change, purge or delete
a stream nor delete a message. Streams and buckets are made at ``custodia init`` by an
**administrative** identity that the running service never loads. People may only send
requests on the command subjects and receive their own replies; the Secretaría Ejecutiva's
verifier may read the ledger streams but not write, purge or delete them. The embedded default
runs with exactly this configuration (rendered into ``CUSTODIA_HOME/nats/auth.conf``);
``deploy/nats/`` holds the clustered version.

Users and what they may do::

    servicio       (responder) publish: inboxes only, and PING of its own service
                   subscribe: command subjects (queue group only), service discovery, its inboxes
    escritor       (writer) publish: event subjects, the idempotency bucket, read-only JetStream
                   API; never a stream create/update/delete/purge or a message delete
    administrador  every JetStream API of the account (``init``/upgrade only); $SRV discovery
    verificador    publish: read-only JetStream API on the ledger streams;  subscribe: its inboxes
    autenticador   (account AUTH) the auth callout, inside ``custodia servicio``

People have no password here: each connects with their OpenBao token, checked by the auth
callout (:mod:`custody.service.callout`), and may only send commands and read their own inbox.

Each identity's password lives in a file of its own (``secrets/nats-<user>.json``, mode 0600).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from custody.service.protocol import QUEUE_GROUP, SERVICE_NAME, SUBJECT_PREFIX

ACCOUNT = "CUSTODIA"
AUTH_ACCOUNT = "AUTH"
CALLOUT_USER = "autenticador"
USERS = ("servicio", "escritor", "administrador", "verificador", CALLOUT_USER)
# The application's streams and subjects (events.jetstream naming for the app ``custodia``).
LEDGER_STREAMS = ["custodia-events", "custodia-checkpoints"]
EVENT_SUBJECTS = [
    "custodia.events.>",
    "custodia.tracking.>",
    "custodia.snapshots.>",
    "custodia.checkpoints.>",
]
IDEMPOTENCY_BUCKET = "custodia-solicitudes"
# A reply subject the service answers to: an inbox, never a ledger or KV subject.
INBOX_PREFIX = "_INBOX."
_UNSAFE_IN_SUBJECT = re.compile(r"[*>\s]")


def subject_name(username: str) -> str:
    """``username`` as one subject token: a ``.`` becomes ``~`` (no user name holds one, so
    ``ana.lopez`` and ``analopez`` keep inboxes of their own); ``*``, ``>`` and white space,
    which no user name holds either, are dropped."""
    return _UNSAFE_IN_SUBJECT.sub("", username.replace(".", "~"))


# The only command a first-login token may send (custody.service.factor_commands): the
# service refuses any other from it, and NATS lets its connection publish nowhere else.
FIRST_LOGIN_COMMAND = "segundo_factor.inscribir"


def first_login_name(username: str) -> str:
    """The NATS name of ``username``'s first-login connection (issue 18): ``primer-ingreso+ana``.
    No user name holds a ``+``, so it is nobody's name and its inbox is nobody else's."""
    return f"primer-ingreso+{username}"


def inbox_prefix(username: str) -> str:
    """The inbox prefix of ``username``'s connections: ``_INBOX.<user>`` (the auth callout grants
    it; the client connects with it)."""
    return f"{INBOX_PREFIX}{subject_name(username)}"


# JetStream API calls that change or destroy a stream or its messages: refused to everybody but
# the administrative identity (a deny wins over any allow).
DESTRUCTIVE_API = [
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.SNAPSHOT.>",
    "$JS.API.STREAM.RESTORE.>",
    "$JS.API.STREAM.PEER.REMOVE.>",
    "$JS.API.STREAM.LEADER.STEPDOWN.>",
    "$JS.API.ACCOUNT.PURGE.>",
    "$JS.API.SERVER.>",
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


def writer_api() -> list[str]:
    """JetStream API subjects the writer needs: read any stream of the account (its own and the
    bucket's), read through consumers; writes go to the event and bucket subjects themselves."""
    return [
        "$JS.API.INFO",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.MSG.GET.*",
        "$JS.API.DIRECT.GET.>",
        "$JS.API.CONSUMER.CREATE.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.>",
        "$JS.API.CONSUMER.INFO.>",
        "$JS.API.CONSUMER.DELETE.>",
        "$JS.API.CONSUMER.MSG.NEXT.>",
        "$JS.ACK.>",
        "$JS.FC.>",
    ]


def _user(
    user: NatsUser,
    publish: list[str],
    subscribe: list[str],
    publish_deny: list[str] | None = None,
    subscribe_deny: list[str] | None = None,
) -> str:
    pub = f"allow: {_list(publish)}" + (f", deny: {_list(publish_deny)}" if publish_deny else "")
    sub = f"allow: {_list(subscribe)}" + (
        f", deny: {_list(subscribe_deny)}" if subscribe_deny else ""
    )
    return f"""      {{
        user: {json.dumps(user.user)}
        password: {json.dumps(user.password)}
        permissions: {{
          publish: {{ {pub} }}
          subscribe: {{ {sub} }}
        }}
      }}
"""


def render_accounts(
    users: dict[str, NatsUser], ledger_streams: list[str], event_subjects: list[str], issuer: str
) -> str:
    """The ``accounts`` and ``authorization`` blocks for ``nats.conf``: the service's users
    and their permissions, and the auth callout (``issuer``: its public account key) through
    which every person connects (custody.service.callout)."""
    commands = f"{SUBJECT_PREFIX}.>"
    bucket = f"$KV.{IDEMPOTENCY_BUCKET}.>"
    inboxes = f"{INBOX_PREFIX}>"
    # The service's and the verifier's own inboxes: nats-py's ``_INBOX.<nuid>`` and its request
    # replies ``_INBOX.<nuid>.<n>``. A person's replies come to ``_INBOX.<user>.<nuid>.<n>``
    # (four tokens): denied to every other identity (for a wildcard subscription such as
    # ``_INBOX.>``, the server drops those messages on delivery). A ``*`` in an allow list would
    # not do: the server lets ``_INBOX.>`` through an allowed ``_INBOX.*``.
    own_inboxes = [inboxes]
    others_inboxes = [f"{INBOX_PREFIX}*.*.*", f"{INBOX_PREFIX}*.*.*.>"]
    # The responder answers only to inboxes: no allow_responses (with it, a requester chooses
    # where the responder publishes, past any deny) and no right on the ledger or the bucket.
    responder_pub = [inboxes, f"$SRV.PING.{SERVICE_NAME}.*"]
    responder_pub_deny = ["$JS.>", "$KV.>", *event_subjects]
    responder_sub = [f"{commands} {QUEUE_GROUP}", "$SRV.>", *own_inboxes]
    writer_pub = [*writer_api(), bucket, *event_subjects]
    writer_pub_deny = [*DESTRUCTIVE_API, commands, "$SRV.>"]
    writer_sub = own_inboxes
    # The administrator may also ask the service's discovery ($SRV: up, endpoints, stats), and
    # publish to inboxes (bench/bench_service.py measures a stream publish there).
    admin_pub = [
        "$JS.API.>",
        "$JS.ACK.>",
        "$JS.FC.>",
        "$SRV.>",
        inboxes,
        bucket,
        *event_subjects,
    ]
    verifier_pub = [*read_only_api(ledger_streams), "$JS.FC.>", "$JS.ACK.>"]
    verifier_pub_deny = [*DESTRUCTIVE_API, "$KV.>", *event_subjects]
    blocks = [
        _user(users["servicio"], responder_pub, responder_sub, responder_pub_deny, others_inboxes),
        _user(
            users["escritor"],
            writer_pub,
            writer_sub,
            writer_pub_deny,
            [commands, "$SRV.>", *others_inboxes],
        ),
        _user(users["administrador"], admin_pub, own_inboxes, None, others_inboxes),
        _user(users["verificador"], verifier_pub, own_inboxes, verifier_pub_deny, others_inboxes),
    ]
    service_users = [users[name].user for name in USERS]
    callout = users[CALLOUT_USER]
    return f"""
accounts {{
  {ACCOUNT}: {{
    jetstream: enabled
    users: [
{"".join(blocks)}    ]
  }}
  {AUTH_ACCOUNT}: {{
    users: [
      {{
        user: {json.dumps(callout.user)}
        password: {json.dumps(callout.password)}
      }}
    ]
  }}
}}
authorization {{
  auth_callout {{
    issuer: {json.dumps(issuer)}
    account: {AUTH_ACCOUNT}
    auth_users: {_list(service_users)}
  }}
}}
"""


def generate_users() -> dict[str, NatsUser]:
    return {name: NatsUser(name, secrets.token_urlsafe(24)) for name in USERS}


def user_file(secrets_dir: Path, name: str) -> Path:
    """Where one identity's password is kept: a file of its own."""
    return secrets_dir / f"nats-{name}.json"


def load_user(path: Path, name: str) -> NatsUser:
    data = json.loads(path.read_text())
    if data.get("user") != name or not isinstance(data.get("password"), str):
        raise ValueError(f"{path.name}: not the password of {name}")
    return NatsUser(name, data["password"])


def save_user(path: Path, user: NatsUser) -> None:
    """Write one user's password to ``path`` with mode 0600 (atomically)."""
    from custody.stack.secret_files import write_secret_json

    write_secret_json(path, {"user": user.user, "password": user.password})


def load_users(path: Path) -> dict[str, NatsUser]:
    """The former single file of every password (``secrets/nats-users.json``); read only to
    split it into one file per identity."""
    data = json.loads(path.read_text())
    return {name: NatsUser(name, data[name]) for name in USERS if name in data}
