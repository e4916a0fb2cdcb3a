"""The infrastructure factory: configuration from the environment, streams, recorders."""

from __future__ import annotations

import logging
import re
import threading

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from events.errors import ConfigurationError
from events.jetstream.connection import Connection, NatsSettings
from events.jetstream.errors import StreamConfigError
from events.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from events.jetstream.streams import EventStream

logger = logging.getLogger("events.jetstream")

_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


class Factory(InfrastructureFactory[JetStreamTrackingRecorder]):
    """Recorders on NATS JetStream, selected with ``PERSISTENCE_MODULE=events.jetstream``.

    Each variable may be prefixed with the application's name (``BANKACCOUNTS_NATS_URL``).
    """

    NATS_URL = "NATS_URL"  # required; several servers separated by commas
    NATS_CREDS = "NATS_CREDS"  # a .creds file (JWT + nkey seed)
    NATS_NKEY_SEED = "NATS_NKEY_SEED"  # a file holding an nkey seed
    NATS_TOKEN = "NATS_TOKEN"  # noqa: S105 - the variable's name, not a secret
    NATS_USER = "NATS_USER"
    NATS_PASSWORD = "NATS_PASSWORD"  # noqa: S105 - the variable's name, not a secret
    NATS_TLS_CA = "NATS_TLS_CA"  # CA bundle file
    NATS_TLS_CERT = "NATS_TLS_CERT"  # client certificate file (mutual TLS)
    NATS_TLS_KEY = "NATS_TLS_KEY"  # its private key file
    NATS_TLS_HOSTNAME = "NATS_TLS_HOSTNAME"  # name to verify when the URL has an address
    NATS_CONNECT_TIMEOUT = "NATS_CONNECT_TIMEOUT"  # seconds (default 5)
    NATS_TIMEOUT = "NATS_TIMEOUT"  # seconds an operation may take, reconnection included (10)
    NATS_NAMESPACE = "NATS_NAMESPACE"  # optional prefix of stream names and subjects
    NATS_REPLICAS = "NATS_REPLICAS"  # stream replicas (default 1; 3 in a cluster)
    NATS_STORAGE = "NATS_STORAGE"  # "file" (default) or "memory"
    CREATE_TABLE = "CREATE_TABLE"  # create missing streams (default yes)

    aggregate_recorder_class = JetStreamAggregateRecorder
    application_recorder_class = JetStreamApplicationRecorder
    tracking_recorder_class = JetStreamTrackingRecorder
    process_recorder_class = JetStreamProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.settings = self._nats_settings()
        self.replicas = self._int(self.NATS_REPLICAS, 1, minimum=1)
        storage = self.env.get(self.NATS_STORAGE, "file").lower()
        if storage not in ("file", "memory"):
            raise ConfigurationError(self.NATS_STORAGE, f"'file' or 'memory', not {storage!r}")
        self.storage = StorageType(storage)
        self.namespace = self.env.get(self.NATS_NAMESPACE, "")
        if self.namespace and not _TOKEN.fullmatch(self.namespace):
            raise ConfigurationError(self.NATS_NAMESPACE, "letters, digits, '_' and '-' only")
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------------

    def _nats_settings(self) -> NatsSettings:
        url = self.env.get(self.NATS_URL)
        if not url:
            keys = " or ".join(self.env.create_keys(self.NATS_URL))
            raise ConfigurationError(self.NATS_URL, f"not set (looked for {keys})")
        servers = tuple(u.strip() for u in url.split(",") if u.strip())
        return NatsSettings(
            servers=servers,
            creds_file=self.env.get(self.NATS_CREDS) or None,
            nkey_seed_file=self.env.get(self.NATS_NKEY_SEED) or None,
            token=self.env.get(self.NATS_TOKEN) or None,
            user=self.env.get(self.NATS_USER) or None,
            password=self.env.get(self.NATS_PASSWORD) or None,
            tls_ca_file=self.env.get(self.NATS_TLS_CA) or None,
            tls_cert_file=self.env.get(self.NATS_TLS_CERT) or None,
            tls_key_file=self.env.get(self.NATS_TLS_KEY) or None,
            tls_hostname=self.env.get(self.NATS_TLS_HOSTNAME) or None,
            connect_timeout=self._float(self.NATS_CONNECT_TIMEOUT, 5.0),
            timeout=self._float(self.NATS_TIMEOUT, 10.0),
        )

    def _float(self, key: str, default: float) -> float:
        raw = self.env.get(key)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(key, f"not a number: {raw!r}") from None
        if value <= 0:
            raise ConfigurationError(key, "must be positive")
        return value

    def _int(self, key: str, default: int, minimum: int) -> int:
        raw = self.env.get(key)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(key, f"not an integer: {raw!r}") from None
        if value < minimum:
            raise ConfigurationError(key, f"must be at least {minimum}")
        return value

    def _create_streams(self) -> bool:
        return strtobool(self.env.get(self.CREATE_TABLE, "yes"))

    # -- connection and streams ------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        """The factory's connection, opened on first use (raises if NATS is unreachable)."""
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = Connection(self.settings)
            return self._connection

    def _names(self, purpose: str) -> tuple[str, str]:
        app = self.env.name
        if not app or not _TOKEN.fullmatch(app):
            raise ConfigurationError(
                "application name", f"{app!r}: letters, digits, '_' and '-' only, not empty"
            )
        if self.namespace:
            return f"{self.namespace}-{app}-{purpose}", f"{self.namespace}.{app}"
        return f"{app}-{purpose}", app

    def stream(self, purpose: str = "events") -> EventStream:
        """The stream of this application for ``purpose`` ("events" holds the numbered log)."""
        if not _TOKEN.fullmatch(purpose):
            raise ConfigurationError("purpose", f"{purpose!r}: letters, digits, '_' and '-' only")
        conn = self.connection
        name, prefix = self._names(purpose)
        stream = conn.shared(
            f"stream:{name}",
            lambda: EventStream(
                conn,
                name=name,
                prefix=prefix,
                purpose=purpose,
                numbered=purpose == "events",
                timeout=self.settings.timeout,
            ),
        )
        if self._create_streams() and conn.mark_ensured(name):
            try:
                actual = conn.run(conn.ensure_stream(self.stream_config(stream), create=True))
                self._check_config(stream, actual)
            except BaseException:
                conn.unmark_ensured(name)
                raise
        return stream

    def stream_config(self, stream: EventStream) -> StreamConfig:
        """How a stream is created: file storage, nothing ever discarded or deleted silently."""
        log = stream.numbered
        return StreamConfig(
            name=stream.name,
            description=f"Custodia {stream.purpose} of {stream.prefix}",
            subjects=stream.subjects,
            retention=RetentionPolicy.LIMITS,
            # A full stream refuses writes rather than dropping its oldest events.
            discard=DiscardPolicy.NEW,
            storage=self.storage,
            num_replicas=self.replicas,
            allow_direct=True,
            allow_atomic=True,
            # The log is append-only through the API (an operator with admin rights can still
            # edit the stream's configuration: tamper evidence is the Merkle layer's job).
            deny_delete=log,
            deny_purge=log,
            allow_rollup_hdrs=False,
        )

    def _check_config(self, stream: EventStream, actual: StreamConfig) -> None:
        problems = []
        if not actual.allow_direct:
            problems.append("allow_direct is off")
        if not actual.allow_atomic:
            problems.append("allow_atomic is off")
        if sorted(actual.subjects or []) != sorted(stream.subjects):
            problems.append(f"subjects are {actual.subjects}, expected {stream.subjects}")
        if problems:
            raise StreamConfigError(f"stream {stream.name}: " + "; ".join(problems))
        if actual.storage != self.storage or actual.num_replicas != self.replicas:
            logger.warning(
                "stream %s has storage %s and %s replicas (configured: %s, %s)",
                stream.name,
                actual.storage,
                actual.num_replicas,
                self.storage,
                self.replicas,
            )

    # -- recorders ------------------------------------------------------------------------------

    def aggregate_recorder(self, purpose: str = "events") -> JetStreamAggregateRecorder:
        return self.aggregate_recorder_class(self.stream(purpose))

    def application_recorder(self) -> JetStreamApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else self.application_recorder_class
        assert issubclass(cls, JetStreamApplicationRecorder)
        return cls(self.stream())

    def tracking_recorder(
        self, tracking_recorder_class: type[JetStreamTrackingRecorder] | None = None
    ) -> JetStreamTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else None
        cls = tracking_recorder_class or self.tracking_recorder_class
        assert issubclass(cls, JetStreamTrackingRecorder)
        return cls(self.stream())

    def process_recorder(self) -> JetStreamProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else self.process_recorder_class
        assert issubclass(cls, JetStreamProcessRecorder)
        return cls(self.stream())

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
