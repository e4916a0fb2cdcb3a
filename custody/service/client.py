"""The client side of the command protocol: one request to ``custodia servicio`` over NATS.

A request whose reply is lost is retried with the same request id (the service makes retries
safe); sensitive reply fields are opened with the request's ephemeral key.

The person's session token does not cross NATS: each request is sent (NATS connect and request
header) with a *request token* made for it from the session token (custody.vault.session): a TTL of
seconds, the uses the request needs, unable to make tokens, revoked once the reply is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from custody.bootstrap import Endpoints
from custody.service import protocol
from custody.service.spec import spec_of
from events.errors import CustodiaError, InfrastructureError

CONNECT_TIMEOUT = 3  # seconds per attempt to reach one NATS server
# Uses of a request token: per attempt (a connection checked by the auth callout, and the
# service's check of a request that writes), one to revoke it at the end, and what the command
# does in OpenBao with the caller's token (measured on the e2e world, December 2026: 1 to 6 uses
# per command in all, auth included — rotar iniciar/confirmar 6, reconciliar 5 — so 8 leaves
# room for one more check per command, e.g. sys/capabilities-self).
USES_PER_ATTEMPT = 2
HANDLER_USES = 8
HANDLER_USES_BY_COMMAND: dict[str, int] = {}


class ServiceUnavailableError(InfrastructureError):
    """``custodia servicio`` did not answer (not running, or NATS unreachable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_remote(error: CustodiaError) -> protocol.RemoteError:
    """A local failure in the shape the service would have answered it."""
    return protocol.RemoteError(
        type(error).__name__, protocol.error_attrs(error), protocol.error_chain(error)
    )


def _not_authenticated() -> protocol.RemoteError:
    """What the service answers to a token it does not accept: the NATS server (through the auth
    callout) refused the connection for the same reason."""
    return protocol.RemoteError("NotAuthenticatedError", {"reason": "invalid"})


class CommandClient:
    """Sends commands as the person holding ``token``.

    With a token and no NATS password in ``endpoints`` (every person's case), the token is also
    the NATS credential: the server's auth callout checks it with OpenBao and lets the
    connection send commands and read ``_INBOX.<username>.>`` only (custody.service.callout).
    ``username`` is the token's owner (looked up in OpenBao when not given)."""

    def __init__(
        self,
        endpoints: Endpoints,
        token: str | None,
        *,
        timeout: float = 15.0,
        username: str | None = None,
        first_login: bool = False,
    ) -> None:
        self.endpoints = endpoints
        self._token = token
        self.timeout = timeout
        self.username = username
        # Issue 18: ``token`` is a first-login token of ``username`` (no policy: it makes no
        # request token and is sent as is; the service revokes it once used).
        self.first_login = first_login
        self.retries = 0  # requests sent again (same request id) by this client, in total

    def __repr__(self) -> str:
        return f"CommandClient({self.endpoints.nats_url!r})"

    def call(self, command: str, args: dict[str, Any] | None = None, *, retries: int = 2) -> Any:
        """Send ``command`` and return its reply data (sealed fields opened)."""
        return asyncio.run(self._call(command, dict(args or {}), retries))

    def _person_options(self, token: str | None) -> dict[str, Any]:
        """The connection options of a person: ``token`` (their request token) and their own
        inbox prefix."""
        options = self.endpoints.nats_options()
        if not token or "user" in options or "user_credentials" in options:
            return options
        from custody.service.permissions import (
            first_login_name,
            inbox_prefix,  # not nats_callout: the service side logs
        )

        if self.username is None:
            self.username = self._owner()
        name = first_login_name(self.username) if self.first_login else self.username
        return {**options, "token": token, "inbox_prefix": inbox_prefix(name)}

    def _request_token(self, command: str, retries: int) -> str:
        """A request token for one call of ``command`` (custody.vault.session.request_token)."""
        from custody.vault.session import request_token

        assert self._token is not None
        uses = (retries + 1) * USES_PER_ATTEMPT + 1
        uses += HANDLER_USES_BY_COMMAND.get(command, HANDLER_USES)
        ttl = int(self.timeout * (retries + 1)) + 15
        try:
            return request_token(
                self.endpoints.vault_addr,
                self._token,
                uses=uses,
                ttl=ttl,
                verify=self.endpoints.vault_verify,
            )
        except CustodiaError as exc:
            # Refused: a revoked or expired session says so as the service would; a session
            # OpenBao accepts that may not make request tokens, as OpenBao refused it.
            refusal = self._refusal()
            if refusal.remote_type == "ServiceUnavailableError":
                raise _as_remote(exc) from None
            raise refusal from None

    def _forget(self, token: str) -> None:
        from custody.vault.session import forget_request_token

        forget_request_token(self.endpoints.vault_addr, token, verify=self.endpoints.vault_verify)

    def _owner(self) -> str:
        from custody.errors import VaultTokenInvalidError
        from custody.vault.client import VaultClient

        assert self._token is not None
        vault = VaultClient(self.endpoints.vault_addr, None, verify=self.endpoints.vault_verify)
        try:
            owner = vault.with_token(self._token).own_login_name()
        except VaultTokenInvalidError:
            raise _not_authenticated() from None
        except InfrastructureError as exc:  # OpenBao sealed or down: said as the service says it
            raise _as_remote(exc) from None
        if not owner:
            raise _not_authenticated()
        return str(owner)

    def _seal(self, command: str, request_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """``args`` with the command's password arguments sealed by OpenBao with this client's
        token, bound to ``request_id`` (custody.vault.sealed_args)."""
        spec = spec_of(command)
        if spec is None or not spec.sealed:
            return args  # most commands: neither the domain nor hvac is imported
        from custody.vault.client import VaultClient
        from custody.vault.sealed_args import seal_arguments

        vault = VaultClient(
            self.endpoints.vault_addr, self._token, verify=self.endpoints.vault_verify
        )
        try:
            return seal_arguments(vault, command, request_id, args)
        except CustodiaError as exc:  # e.g. not a coadministrator: said as the service says it
            raise _as_remote(exc) from None

    def _refusal(self) -> protocol.RemoteError:
        """Why NATS refused this person's connection: the auth callout could not accept the
        token. Asked of OpenBao itself, so a sealed or unreachable OpenBao is not reported as an
        invalid session; a token OpenBao still accepts means the callout (the service) failed."""
        from custody.errors import VaultTokenInvalidError
        from custody.vault.client import VaultClient

        assert self._token is not None
        vault = VaultClient(self.endpoints.vault_addr, None, verify=self.endpoints.vault_verify)
        try:
            vault.lookup_self(self._token)
        except VaultTokenInvalidError:
            return _not_authenticated()
        except InfrastructureError as exc:
            return _as_remote(exc)
        except CustodiaError:
            return _not_authenticated()
        return protocol.RemoteError(
            "ServiceUnavailableError",
            {"reason": "nats: authorization refused"},
            ["ServiceUnavailableError", "InfrastructureError", "CustodiaError"],
        )

    async def _call(self, command: str, args: dict[str, Any], retries: int) -> Any:
        headers = {protocol.REQUEST_ID_HEADER: str(uuid.uuid4())}
        # A reply key only for a command whose reply is sealed (its spec says so; an unknown
        # name gets one too): the others' replies carry nothing sealed, and the key pair costs
        # a command line the import of cryptography.
        spec = spec_of(command)
        key = protocol.ReplyKey.generate() if spec is None or spec.sealed_reply else None
        if key is not None:
            headers[protocol.REPLY_KEY_HEADER] = key.public_b64()
        token: str | None = None
        if self._token and self.first_login:
            token = self._token
            headers[protocol.TOKEN_HEADER] = token
        elif self._token:
            # Sealing (with the session token, to OpenBao only) and the request token at once.
            pending = asyncio.gather(
                asyncio.to_thread(self._seal, command, headers[protocol.REQUEST_ID_HEADER], args),
                asyncio.to_thread(self._request_token, command, retries),
            )
            # While OpenBao makes the request token (a round trip the worker threads wait on),
            # this thread imports the NATS client it needs next: the two overlap.
            await asyncio.sleep(0)  # the threads start
            _import_nats()
            sealed, token = await pending
            args = sealed
            headers[protocol.TOKEN_HEADER] = token
        forgotten: list[bool] = []

        async def forget() -> None:
            """Revoke the request token (once), alongside closing the connection."""
            if token is not None and not forgotten and not self.first_login:
                forgotten.append(True)
                await asyncio.to_thread(self._forget, token)

        try:
            return await self._send(command, args, headers, key, token, retries, forget)
        finally:
            await forget()

    async def _send(
        self,
        command: str,
        args: dict[str, Any],
        headers: dict[str, str],
        key: protocol.ReplyKey | None,
        token: str | None,
        retries: int,
        forget: Callable[[], Awaitable[None]],
    ) -> Any:
        import nats
        from nats.errors import ConnectionClosedError, NoRespondersError
        from nats.errors import Error as NatsError
        from nats.errors import TimeoutError as NatsTimeoutError

        payload = protocol.encode(args)
        options = await asyncio.to_thread(self._person_options, token)

        async def connect() -> tuple[Any, asyncio.Event]:
            """A connection, and the event set when it closes."""
            lost = asyncio.Event()

            async def on_closed() -> None:
                lost.set()

            async def on_error(exc: Exception) -> None:
                """nats-py would log each failed attempt with a traceback; the caller gets
                one :class:`ServiceUnavailableError` instead."""

            try:
                # Every listed server is tried twice, 0.25 s apart, then the call fails
                # (nats-py's ``max_reconnect_attempts=0`` would retry forever: a CLI hung on
                # an unreachable NATS).
                nc = await nats.connect(
                    **options,
                    allow_reconnect=False,
                    connect_timeout=CONNECT_TIMEOUT,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.25,
                    closed_cb=on_closed,
                    error_cb=on_error,
                )
            except (TimeoutError, OSError, NatsError) as exc:
                if "authorization violation" in str(exc).lower() and "token" in options:
                    raise await asyncio.get_running_loop().run_in_executor(
                        None, self._refusal
                    ) from None
                raise ServiceUnavailableError(f"nats: {type(exc).__name__}") from None
            return nc, lost

        async def request(nc: Any, lost: asyncio.Event) -> Any:
            """The reply, or ``ConnectionClosedError`` as soon as the connection is lost.

            nats-py leaves a request pending on a closed connection until its timeout: the
            reply can no longer arrive, so waiting would only delay the retry (up to
            ``timeout``) on another member."""
            sent = asyncio.ensure_future(
                nc.request(
                    protocol.subject_for(command), payload, timeout=self.timeout, headers=headers
                )
            )
            closing = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({sent, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
            if not sent.done():
                sent.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sent
                raise ConnectionClosedError
            return sent.result()

        async def first_connect() -> tuple[Any, asyncio.Event]:
            """A connection; while the service is (re)starting its auth callout does not answer
            yet and NATS refuses a valid token: tried again, like a request with no responders."""
            for attempt in range(retries + 1):
                try:
                    return await connect()
                except protocol.RemoteError as exc:
                    if exc.remote_type != "ServiceUnavailableError" or attempt == retries:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise AssertionError("unreachable")

        nc, lost = await first_connect()
        try:
            for attempt in range(retries + 1):
                self.retries += attempt > 0
                try:
                    if nc.is_closed:
                        # The server we were connected to went away (a cluster member died):
                        # another member, the same request id (the service dedupes retries).
                        nc, lost = await connect()
                    msg = await request(nc, lost)
                    break
                except NoRespondersError:
                    if attempt == retries:
                        raise ServiceUnavailableError("no responders") from None
                    await asyncio.sleep(0.5 * (attempt + 1))
                except (TimeoutError, NatsTimeoutError):
                    # The same request id again: the service answers a retry without redoing it.
                    if attempt == retries:
                        raise ServiceUnavailableError("timeout") from None
                except (OSError, NatsError) as exc:  # connection lost mid-request (or before)
                    if attempt == retries:
                        raise ServiceUnavailableError(f"nats: {type(exc).__name__}") from None
                    await asyncio.sleep(0.2 * (attempt + 1))
        finally:
            await asyncio.gather(nc.close(), forget())
        return _open_sealed(protocol.decode_reply(msg.data), key)


def _import_nats() -> None:
    import nats  # noqa: F401  # imported ahead: see CommandClient._call


def _open_sealed(value: Any, key: protocol.ReplyKey | None) -> Any:
    if isinstance(value, dict):
        if set(value) == {"sealed"}:
            if key is None:  # sealed to a key this request did not send: nobody's
                raise protocol.ProtocolError("sealed reply field cannot be opened")
            return key.open(value)
        return {k: _open_sealed(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_sealed(v, key) for v in value]
    return value
