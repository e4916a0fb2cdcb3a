"""The client side of the command protocol: one request to ``custodia servicio`` over NATS.

A request whose reply is lost is retried with the same request id (the service makes retries
safe); sensitive reply fields are opened with the request's ephemeral key.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from events.errors import InfrastructureError

from . import protocol
from .bootstrap import Endpoints

CONNECT_TIMEOUT = 3  # seconds per attempt to reach one NATS server


class ServiceUnavailableError(InfrastructureError):
    """``custodia servicio`` did not answer (not running, or NATS unreachable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CommandClient:
    """Sends commands as the person holding ``token``."""

    def __init__(self, endpoints: Endpoints, token: str | None, *, timeout: float = 15.0) -> None:
        self.endpoints = endpoints
        self._token = token
        self.timeout = timeout
        self.retries = 0  # requests sent again (same request id) by this client, in total

    def __repr__(self) -> str:
        return f"CommandClient({self.endpoints.nats_url!r})"

    def call(self, command: str, args: dict[str, Any] | None = None, *, retries: int = 2) -> Any:
        """Send ``command`` and return its reply data (sealed fields opened)."""
        return asyncio.run(self._call(command, dict(args or {}), retries))

    async def _call(self, command: str, args: dict[str, Any], retries: int) -> Any:
        import nats
        from nats.errors import ConnectionClosedError, NoRespondersError
        from nats.errors import Error as NatsError
        from nats.errors import TimeoutError as NatsTimeoutError

        key = protocol.ReplyKey.generate()
        headers = {
            protocol.REQUEST_ID_HEADER: str(uuid.uuid4()),
            protocol.REPLY_KEY_HEADER: key.public_b64(),
        }
        if self._token:
            headers[protocol.TOKEN_HEADER] = self._token
        payload = protocol.encode(args)

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
                    **self.endpoints.nats_options(),  # type: ignore[arg-type]
                    allow_reconnect=False,
                    connect_timeout=CONNECT_TIMEOUT,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.25,
                    closed_cb=on_closed,
                    error_cb=on_error,
                )
            except (TimeoutError, OSError, NatsError) as exc:
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

        nc, lost = await connect()
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
            await nc.close()
        return _open_sealed(protocol.decode_reply(msg.data), key)


def _open_sealed(value: Any, key: protocol.ReplyKey) -> Any:
    if isinstance(value, dict):
        if set(value) == {"sealed"}:
            return key.open(value)
        return {k: _open_sealed(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_sealed(v, key) for v in value]
    return value
