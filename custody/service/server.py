"""``custodia servicio``: the command service, the only writer of the ledger.

A NATS micro service (discovery, stats and the standard error headers come with it). Every
request on ``custodia.cmd.<command>`` is authenticated by the caller's own OpenBao/Vault token
(checked with the server; a success is reused for at most ``TOKEN_CACHE_SECONDS`` by commands
that only read, never by one that writes: a revoked token writes nothing), mapped to a person and
roles, handed to the command's handler (synchronous application code, run on a worker thread),
and answered. Several instances may run at once: they share a queue group, and optimistic
concurrency in the event store keeps them correct.

Every request produces exactly one canonical log line: who, command, district/account, outcome,
duration. Never a secret: arguments are not logged, only the facts named below.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from custody.service import protocol
from custody.service.permissions import (
    FIRST_LOGIN_COMMAND,
    INBOX_PREFIX,
    first_login_name,
    inbox_prefix,
)
from custody.service.permissions import IDEMPOTENCY_BUCKET as IDEMPOTENCY_BUCKET
from custody.service.spec import CALLER_AUTHORIZED
from custody.service.spec import READ_ONLY as READ_ONLY  # change nothing: no idempotency record
from events.errors import ConfigurationError, CustodiaError, InfrastructureError

TOKEN_CACHE_SECONDS = 5.0
IDEMPOTENCY_TTL = 24 * 3600.0
PENDING = b"\x00pending"  # + b" " + the micro-service id of the instance that claimed it
# How long a retry waits for the instance named in a pending claim to answer a PING.
OWNER_PING_S = 1.0
# How long a request waits for the idempotency bucket while its stream elects a leader.
CLAIM_PATIENCE_S = 20.0
LOGGED_ARGS = ("distrito", "cuenta", "solicitud", "incidente", "persona", "usuario")


class NotAuthenticatedError(CustodiaError):
    """The request carries no token, or the token is unknown, expired or revoked."""

    def __init__(self, reason: str = "missing") -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownCommandError(CustodiaError):
    """No handler for the requested command."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        self.command = command


class RequestInProgressError(CustodiaError):
    """A request with this id is still being processed (a retry arrived too early)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class RequestAbandonedError(CustodiaError):
    """The instance that took this request stopped before answering (it is no longer running):
    the command may or may not have been done. Final: a retry gets this answer again."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class ClaimUnavailableError(InfrastructureError):
    """The request id could not be claimed (NATS unavailable): nothing was done; retry."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class InternalError(CustodiaError):
    """An unexpected failure in the service; details are in the service's log only."""


class ClaimNotGrantedError(Exception):
    """Raised by :meth:`Call.proceed` when the request id could not be claimed (a retry of a
    request that is done or in progress): the handler stops before its first side effect, and
    the caller gets the claim's answer instead."""


def _nothing() -> None:
    return None


def _abandon(gate: _Gate, work: asyncio.Future[Any]) -> None:
    """Stop a handler whose request was not claimed: it stops at ``proceed()``, before any side
    effect; nobody waits for it (it may be queued behind the original request's lock)."""
    gate.refuse()
    work.add_done_callback(lambda done: done.cancelled() or done.exception())


def claim_overlapping(handler: Handler) -> Handler:
    """Mark ``handler`` as one that calls :meth:`Call.proceed` before its first side effect:
    the service then runs it while the request id is being claimed, instead of after."""

    def overlapping(call: Call) -> Any:
        return handler(call)

    overlapping.claim_overlapping = True  # type: ignore[attr-defined]
    return overlapping


class _Gate:
    """Where a handler running alongside its claim waits before its first side effect."""

    def __init__(self) -> None:
        self._decided: Future[None] = Future()

    def grant(self) -> None:
        if not self._decided.done():
            self._decided.set_result(None)

    def refuse(self) -> None:
        if not self._decided.done():
            self._decided.set_exception(ClaimNotGrantedError())

    def wait(self) -> None:
        self._decided.result()


@dataclass(frozen=True)
class Caller:
    """An authenticated person, as the service sees them for one request."""

    username: str
    entity_id: str
    policies: tuple[str, ...]
    token: str = field(repr=False)
    expires_at: datetime | None = None
    # Issue 18: a token of the first-login mount, issued to ``username``: it may send
    # FIRST_LOGIN_COMMAND and nothing else (its NATS identity: permissions.first_login_name).
    first_login: bool = False


class Authenticator(Protocol):
    """Checks a token with the server; raises :class:`NotAuthenticatedError` if it is not valid."""

    def authenticate(self, token: str) -> Caller: ...


class CachedAuthenticator:
    """Caches successful authentications for at most ``ttl`` seconds (revocation bound)."""

    def __init__(self, inner: Authenticator, ttl: float = TOKEN_CACHE_SECONDS) -> None:
        if ttl > TOKEN_CACHE_SECONDS:
            raise ValueError("the token cache bound is 5 seconds")
        self.inner = inner
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Caller | None:
        """The caller for ``token`` if it was checked less than ``ttl`` seconds ago (no I/O)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        # A cached token past its own expiry time is not used: it is checked again (refused).
        if hit and now - hit[0] < self.ttl and not _expired(hit[1]):
            return hit[1]
        return None

    def authenticate(self, token: str) -> Caller:
        hit = self.cached(token)
        if hit is not None:
            return hit
        return self.fresh(token)

    def fresh(self, token: str) -> Caller:
        """Check ``token`` with the server now (never from the cache), and remember it."""
        now = time.monotonic()
        caller = self.inner.authenticate(token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, caller)
        return caller


def _expired(caller: Caller) -> bool:
    return caller.expires_at is not None and caller.expires_at <= datetime.now(UTC)


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it."""

    command: str
    caller: Caller
    args: Mapping[str, Any]
    request_id: str
    reply_key: str | None
    received_at: datetime
    # Called by a handler marked with :func:`claim_overlapping` before its first side effect;
    # raises :class:`ClaimNotGrantedError` if the request is a retry (see ``_run``).
    proceed: Callable[[], None] = field(default=_nothing, repr=False, compare=False)

    def seal(self, value: Any) -> dict[str, str]:
        """Seal a sensitive value for the caller (see :mod:`custody.service.protocol`)."""
        if not self.reply_key:
            raise protocol.ProtocolError("this command needs a reply key")
        return protocol.seal(value, self.reply_key)


Handler = Callable[[Call], Any]


def answerable(reply: str | None) -> bool:
    """Whether the service may answer to ``reply``: only an inbox subject."""
    return (
        bool(reply) and str(reply).startswith(INBOX_PREFIX) and len(str(reply)) > len(INBOX_PREFIX)
    )


def _named_person(error: CustodiaError, caller: str | None) -> CustodiaError:
    """An unregistered person who is not the caller is someone the command names: not found
    (exit 4), not a refusal of the caller (exit 3)."""
    from custody.app.ledger import PersonNotFoundError, PersonNotRegisteredError

    if (
        type(error) is PersonNotRegisteredError
        and caller is not None
        and error.username.lower() != caller.lower()
    ):
        return PersonNotFoundError(error.username)
    return error


def _log_drop(what: str, reply: str | None) -> None:
    # The subject is logged cut short: it is attacker-chosen text.
    structlog.get_logger("custodia.servicio").warning(
        "respuesta_rechazada", comando=what, respuesta=str(reply or "")[:80]
    )


def idempotency_bucket_config(replicas: int) -> Any:
    """The idempotency bucket, as ``custodia init`` creates it."""
    from nats.js.api import KeyValueConfig, StorageType

    return KeyValueConfig(
        bucket=IDEMPOTENCY_BUCKET,
        ttl=IDEMPOTENCY_TTL,
        history=1,
        storage=StorageType.FILE,
        replicas=replicas,
    )


@functools.cache
def _inbox_only_service() -> type:
    from nats.micro.service import Service

    class InboxOnlyService(Service):
        """A micro service whose discovery verbs ($SRV PING/INFO/STATS) answer only inboxes."""

        on_drop: Callable[[str, str | None], None] = staticmethod(_log_drop)

        async def _handle_ping_request(self, msg: Any) -> None:
            if answerable(msg.reply):
                await super()._handle_ping_request(msg)
            else:
                self.on_drop("$SRV.PING", msg.reply)

        async def _handle_info_request(self, msg: Any) -> None:
            if answerable(msg.reply):
                await super()._handle_info_request(msg)
            else:
                self.on_drop("$SRV.INFO", msg.reply)

        async def _handle_stats_request(self, msg: Any) -> None:
            if answerable(msg.reply):
                await super()._handle_stats_request(msg)
            else:
                self.on_drop("$SRV.STATS", msg.reply)

    return InboxOnlyService


def _make_micro_service(nc: Any, config: Any, on_drop: Callable[[str, str | None], None]) -> Any:
    service = _inbox_only_service()(nc, config)
    service.on_drop = on_drop
    return service


class CommandService:
    """Serves ``handlers`` on NATS until :meth:`stop` is called."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        authenticator: Authenticator,
        *,
        public: frozenset[str] = frozenset(),
        workers: int = 8,
        version: str = "0.1.0",
        replicas: int = 1,
        person_inboxes: bool = False,
    ) -> None:
        self.replicas = replicas
        # With per-person NATS identities (custody.service.callout): a request is answered only to
        # an inbox of the person whose token it carries, ``_INBOX.<user>.``.
        self.person_inboxes = person_inboxes
        self.handlers = dict(handlers)
        self.authenticator = authenticator
        self.public = public
        self.version = version
        self.log = structlog.get_logger("custodia.servicio")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="custodia-cmd")
        # Requests in progress: the micro framework hands an endpoint's requests over one at a
        # time (it awaits each), so each is served in a task of its own; past ``2 * workers``
        # in progress, new ones wait in NATS's pending queue (back-pressure).
        self._in_progress = asyncio.Semaphore(2 * workers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._service: Any = None
        self._kv: Any = None
        self._nc: Any = None
        # Requests and $SRV verbs dropped for a reply subject that is not an inbox, by command
        # (each is logged too: ``respuesta_rechazada``).
        self.dropped: Counter[str] = Counter()

    async def start(self, nc: Any, writer: Any = None) -> None:
        """Register the micro service and one endpoint per command on connection ``nc`` (the
        responder: it may publish only to inboxes); the idempotency bucket is written through
        ``writer`` (the ledger writer's connection; ``nc`` when not given). The bucket is made
        by ``custodia init`` (administrative identity); it is created here only when missing
        and the connection may (a server without the accounts of
        :mod:`custody.service.permissions`)."""
        from nats.js.errors import BucketNotFoundError
        from nats.micro.service import ServiceConfig

        self._nc = nc
        js = (writer or nc).jetstream()
        # Idempotency: one record per (caller, request id), kept a day (retries after a lost
        # reply get the recorded reply instead of a second execution).
        try:
            self._kv = await js.key_value(IDEMPOTENCY_BUCKET)
        except BucketNotFoundError:
            try:
                self._kv = await js.create_key_value(idempotency_bucket_config(self.replicas))
            except Exception:  # refused to this identity: only init's may create it
                raise ConfigurationError(
                    IDEMPOTENCY_BUCKET, "missing: run «custodia init» first"
                ) from None
        self._service = _make_micro_service(
            nc,
            ServiceConfig(
                name=protocol.SERVICE_NAME,
                version=self.version,
                description="Custodia: órdenes autenticadas sobre la bitácora",
                queue_group=protocol.QUEUE_GROUP,
            ),
            self._drop,
        )
        await self._service.start()
        for command in sorted(self.handlers):
            await self._service.add_endpoint(
                name=command.replace(".", "-"),
                subject=protocol.subject_for(command),
                handler=self._make_endpoint(command),
            )
        # Ready only once the server has every subscription: a request sent the moment this
        # returns must not find no responders (or be dropped unseen on an open server).
        await nc.flush()

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
        if self._tasks:  # let the requests in progress finish and answer
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _make_endpoint(self, command: str) -> Callable[[Any], Any]:
        serve = self._make_server(command)

        async def endpoint(request: Any) -> None:
            # A reply subject that is not an inbox is an attempt to make the service publish
            # somewhere else (a ledger or KV subject): nothing is run, nothing is answered.
            if not answerable(request._msg.reply):
                self._drop(command, request._msg.reply)
                return
            await self._in_progress.acquire()
            task = asyncio.create_task(serve(request))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return endpoint

    def _drop(self, what: str, reply: str | None) -> None:
        self.dropped[what] += 1
        _log_drop(what, reply)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_progress.release()
        if not task.cancelled() and task.exception() is not None:
            self.log.error("fallo_interno", error=type(task.exception()).__name__)

    def _make_server(self, command: str) -> Callable[[Any], Any]:
        async def endpoint(request: Any) -> None:
            started = time.perf_counter()
            headers = request.headers or {}
            outcome, data, error_type, attrs = "ok", None, None, {}
            chain: list[str] = []
            username = None
            args: Mapping[str, Any] = {}
            try:
                args = protocol.decode_args(request.data)
                request_id = headers.get(protocol.REQUEST_ID_HEADER)
                if not protocol.valid_request_id(request_id):
                    raise protocol.ProtocolError("missing or invalid request id")
                caller, recheck = await self._authenticate(
                    command, headers.get(protocol.TOKEN_HEADER)
                )
                username = caller.username
                if caller.first_login != (command == FIRST_LOGIN_COMMAND):
                    # A first login enrols a factor and does nothing else; no other token
                    # enrols one (issue 18).
                    raise NotAuthenticatedError("first-login")
                if not self._own_inbox(command, caller, request._msg.reply):
                    # Someone else's inbox: the answer would reach another person.
                    self._drop(command, request._msg.reply)
                    return
                call = Call(
                    command=command,
                    caller=caller,
                    args=args,
                    request_id=str(request_id),
                    reply_key=headers.get(protocol.REPLY_KEY_HEADER),
                    received_at=datetime.now(UTC),
                )
                replay, data = await self._run(command, call, recheck)
                if replay is not None:
                    await request.respond(replay)
                    self._log(command, username, "repetida", None, started, args)
                    return
            except CustodiaError as refused:
                exc = await self._dead_session(command, headers, refused)
                exc = _named_person(exc, username)
                outcome, error_type, attrs = (
                    "rechazada",
                    type(exc).__name__,
                    protocol.error_attrs(exc),
                )
                chain = protocol.error_chain(exc)
            except Exception:
                outcome, error_type, attrs = "error", "InternalError", {}
                self.log.exception("fallo_interno", comando=command)
            # The reply goes out first, then it is recorded for retries: a caller retries only
            # when no reply reached it, so recording first would only add to every command's
            # latency (a retry that races the record is told "in progress" and tries again).
            if error_type is None:
                body = protocol.ok_reply(data)
                await request.respond(body)
                await self._record(command, username, headers, body)
            else:
                body = protocol.error_reply(error_type, attrs, chain)
                await request.respond_error(
                    "403" if error_type == "NotAuthenticatedError" else "400",
                    error_type,
                    data=body,
                )
                if error_type != "RequestInProgressError":
                    await self._record(command, username, headers, body)
            self._log(command, username, outcome, error_type, started, args)

        return endpoint

    def _own_inbox(self, command: str, caller: Caller, reply: str | None) -> bool:
        if not self.person_inboxes or command in self.public:
            return True
        name = first_login_name(caller.username) if caller.first_login else caller.username
        return str(reply or "").startswith(inbox_prefix(name) + ".")

    def _log(
        self,
        command: str,
        username: str | None,
        outcome: str,
        error_type: str | None,
        started: float,
        args: Mapping[str, Any],
    ) -> None:
        self.log.info(
            "solicitud",
            comando=command,
            usuario=username,
            resultado=outcome,
            error=error_type,
            duracion_ms=round((time.perf_counter() - started) * 1000, 2),
            **{
                # "usuario" names the caller; a "usuario" argument (a person or a handle) is
                # logged as "arg_usuario" (a duplicate keyword would lose the line).
                ("arg_usuario" if k == "usuario" else k): str(args[k])[:64]
                for k in LOGGED_ARGS
                if isinstance(args, Mapping) and k in args
            },
        )

    async def _run(
        self, command: str, call: Call, recheck: asyncio.Future[Caller] | None = None
    ) -> tuple[bytes | None, Any]:
        """Claim the request id and run the handler: ``(recorded reply, None)`` for a retry of
        a request already done, else ``(None, the handler's result)``.

        A handler marked :func:`claim_overlapping` starts at once, alongside the claim (its
        reads need not wait for it) and waits in ``call.proceed()`` before its first side
        effect; if the claim is not granted it is stopped there, and its result or error is
        dropped for the claim's answer. Any other handler starts once the claim is granted.

        ``recheck``: the check with OpenBao of a token taken from the cache for a command that
        writes; it runs alongside the claim (and the reads), and no side effect happens before
        it succeeds (a revoked token raises :class:`NotAuthenticatedError` here).
        """
        handler = self.handlers[command]
        loop = asyncio.get_running_loop()
        if recheck is not None:
            recheck.add_done_callback(lambda done: done.cancelled() or done.exception())
        if not getattr(handler, "claim_overlapping", False) or command in READ_ONLY:
            replay = await self._claim(command, call.caller, call.request_id)
            if replay is not None:
                return replay, None
            if recheck is not None:
                await recheck
            return None, await loop.run_in_executor(self._pool, handler, call)
        gate = _Gate()
        work = loop.run_in_executor(self._pool, handler, replace(call, proceed=gate.wait))
        try:
            replay = await self._claim(command, call.caller, call.request_id)
            if replay is None and recheck is not None:
                await recheck
        except BaseException:
            _abandon(gate, work)
            raise
        if replay is not None:
            _abandon(gate, work)
            return replay, None
        gate.grant()
        return None, await work

    @staticmethod
    def _key(username: str, command: str, request_id: str) -> str:
        import hashlib

        text = f"{username}\x00{command}\x00{request_id}"
        return hashlib.sha256(text.encode()).hexdigest()

    async def _claim(self, command: str, caller: Caller, request_id: str) -> bytes | None:
        """Claim the request id for this caller; the recorded reply if it was already done."""
        if command in READ_ONLY or self._kv is None:
            return None
        from nats.errors import TimeoutError as NatsTimeoutError
        from nats.js.errors import KeyWrongLastSequenceError, NoStreamResponseError

        key = self._key(caller.username, command, request_id)
        claim = PENDING + b" " + str(self._service.id if self._service else "").encode()
        deadline = time.monotonic() + CLAIM_PATIENCE_S
        try:
            while True:
                try:
                    await self._kv.create(key, claim)
                    return None
                except (NoStreamResponseError, NatsTimeoutError, TimeoutError):
                    # The bucket's stream is electing a leader (a cluster member died): wait it
                    # out. A claim that landed unanswered makes the retry say "in progress".
                    if time.monotonic() > deadline:
                        raise ClaimUnavailableError(request_id) from None
                    await asyncio.sleep(0.25)
        except KeyWrongLastSequenceError:
            entry = await self._kv.get(key)
            value = bytes(entry.value or b"")
            if value.startswith(PENDING):
                if await self._owner_gone(value[len(PENDING) + 1 :].decode(errors="replace")):
                    raise RequestAbandonedError(request_id) from None
                raise RequestInProgressError(request_id) from None
            return value

    async def _owner_gone(self, owner: str) -> bool:
        """Whether the instance that claimed a request is gone: nobody answers a PING on its
        micro-service id (killed mid-command, its claim would say "in progress" for a day). An
        instance that answers late, or a claim without an owner, counts as still working."""
        if not owner.isalnum() or self._nc is None or owner == self._service.id:
            return False
        from nats.errors import NoRespondersError
        from nats.micro.service import ServiceVerb, control_subject

        subject = control_subject(ServiceVerb.PING, name=protocol.SERVICE_NAME, id=owner)
        try:
            await self._nc.request(subject, b"", timeout=OWNER_PING_S)
        except NoRespondersError:
            return True
        except Exception:
            return False
        return False

    async def _record(
        self, command: str, username: str | None, headers: Mapping[str, str], body: bytes
    ) -> None:
        if command in READ_ONLY or self._kv is None or username is None:
            return
        request_id = headers.get(protocol.REQUEST_ID_HEADER)
        if not request_id:
            return
        try:
            await self._kv.put(self._key(username, command, request_id), body)
        except Exception:
            # The command is done; only a retry's answer is affected (it will say "in progress").
            self.log.warning("idempotencia_no_registrada", comando=command)

    async def _dead_session(
        self, command: str, headers: Mapping[str, str], refused: CustodiaError
    ) -> CustodiaError:
        """``refused``, or :class:`NotAuthenticatedError` when a command that let OpenBao judge
        the caller's token itself (:data:`CALLER_AUTHORIZED`) was refused because that token is
        no longer valid: the caller is told the session ended, not that a permission is
        missing. Asked of OpenBao only on OpenBao's refusal of the caller, so a command that
        succeeds, or is refused for anything else, pays nothing."""
        from custody.errors import VaultPermissionDeniedError, VaultTokenInvalidError

        token = headers.get(protocol.TOKEN_HEADER)
        if (
            command not in CALLER_AUTHORIZED
            or not token
            or not isinstance(refused, VaultPermissionDeniedError | VaultTokenInvalidError)
            or not isinstance(self.authenticator, CachedAuthenticator)
        ):
            return refused
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self.authenticator.fresh, token)
        except NotAuthenticatedError as dead:
            return dead
        except Exception:  # OpenBao unreachable now: the first refusal stands
            return refused
        return refused

    async def _authenticate(
        self, command: str, token: str | None
    ) -> tuple[Caller, asyncio.Future[Caller] | None]:
        """The caller, and for a command that writes whose token came from the cache, the check
        with OpenBao still running (awaited before the first side effect, see :meth:`_run`): a
        command that writes is never served from the cache alone, so a token revoked a moment
        ago writes nothing (issue 16, finding 10). A command whose use case has OpenBao judge
        the caller's own token before its first side effect (:data:`CALLER_AUTHORIZED`: a
        reveal, a code, a rotation's start) needs no second look: OpenBao refuses a dead token
        there, and :meth:`_dead_session` says so."""
        if command in self.public:
            return Caller("anónimo", "", (), token=""), None
        if not token:
            raise NotAuthenticatedError("missing")
        loop = asyncio.get_running_loop()
        if isinstance(self.authenticator, CachedAuthenticator):
            hit = self.authenticator.cached(token)  # answered here: no hop to a thread
            if command not in READ_ONLY:
                if hit is None:
                    fresh = self.authenticator.fresh
                    return await loop.run_in_executor(self._pool, fresh, token), None
                if command in CALLER_AUTHORIZED:
                    return hit, None
                recheck = loop.run_in_executor(self._pool, self.authenticator.fresh, token)
                return hit, recheck
            if hit is not None:
                return hit, None
        return await loop.run_in_executor(self._pool, self.authenticator.authenticate, token), None
