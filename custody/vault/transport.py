"""hvac's HTTP transport, on urllib3 directly instead of a ``requests.Session``.

hvac sends every request through ``session.request(method, url, headers=..., json=...,
params=..., timeout=..., allow_redirects=...)`` and reads ``status_code``, ``ok``, ``headers``,
``text``, ``content`` and ``json()`` of the answer. :class:`Transport` is that much of a
session, on a urllib3 pool (which ``requests`` itself uses underneath): the command service
makes several OpenBao calls per command on two cores, and requests' own work per call (merging
settings, hooks, cookies, building a prepared request, a response object) was about half the
client's CPU time per call (``bench/bench_custody.py``).

Failures are raised as the ``requests`` exceptions hvac's users expect (``ConnectionError``,
``ConnectTimeout``, ``ReadTimeout``, ``SSLError``), with the urllib3 error as their argument,
as ``requests`` does: :mod:`custody.vault.client` tells from it whether a request was never sent.
Redirects (a standby that redirects instead of forwarding) are followed, keeping the method and
body on a 307/308, as ``requests`` does.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

# Connections kept per OpenBao member: one per thread that may call at once (the service's
# command workers and the threads its commands send calls ahead on).
POOL_SIZE = 32
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Response:
    """What hvac and :mod:`custody.vault.client` read of an answer."""

    __slots__ = ("content", "headers", "reason", "status_code", "url")

    def __init__(self, status: int, content: bytes, headers: Any, reason: str | None, url: str):
        self.status_code = status
        self.content = content
        self.headers = headers  # urllib3's HTTPHeaderDict: case-insensitive
        self.reason = reason
        self.url = url

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:  # never the body: it may hold a secret
        return f"<Response [{self.status_code}]>"


class Transport:
    """A ``requests.Session`` stand-in for hvac (see the module's docstring). Thread-safe."""

    def __init__(self, verify: bool | str = True) -> None:
        self.cert: Any = None  # hvac reads these three of a session it is given
        self.proxies: dict[str, str] = {}
        self.trust_env = False
        self._lock = threading.Lock()
        self._verify: bool | str = True
        self._pool = self._make_pool(verify)
        # Connections of requests sent with :meth:`send`, idle, per (scheme, host, port).
        self._idle: dict[tuple[str, str, int | None], list[Any]] = {}
        self._verify = verify

    @property
    def verify(self) -> bool | str:
        """``True`` (the system's CAs), ``False`` (no verification) or a CA bundle's path."""
        return self._verify

    @verify.setter
    def verify(self, value: bool | str) -> None:
        if value == self._verify:
            return
        with self._lock:
            old, self._pool = self._pool, self._make_pool(value)
            idle, self._idle = self._idle, {}  # made under the old setting
            self._verify = value
        old.clear()
        for conns in idle.values():
            for conn in conns:
                conn.close()

    @staticmethod
    def _make_pool(verify: bool | str) -> urllib3.PoolManager:
        if verify is False:
            return urllib3.PoolManager(maxsize=POOL_SIZE, cert_reqs="CERT_NONE")
        if isinstance(verify, str):
            return urllib3.PoolManager(
                maxsize=POOL_SIZE, cert_reqs="CERT_REQUIRED", ca_certs=verify
            )
        return urllib3.PoolManager(maxsize=POOL_SIZE, cert_reqs="CERT_REQUIRED")

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **unused: Any,  # cert, verify, proxies: hvac passes the session's own back
    ) -> Response:
        url, sent, body = _prepare(url, headers, json, params)
        retries = urllib3.Retry(
            total=None,
            connect=0,
            read=0,
            status=0,
            other=0,
            redirect=MAX_REDIRECTS if allow_redirects else 0,
            raise_on_redirect=False,
            raise_on_status=False,
        )
        try:
            answer = self._pool.request(
                method.upper(),
                url,
                body=body,
                headers=sent,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=retries,
                redirect=allow_redirects,
            )
        except MaxRetryError as exc:
            raise _requests_error(exc.reason, exc) from None
        except HTTPError as exc:
            raise _requests_error(exc, exc) from None
        return Response(answer.status, answer.data, answer.headers, answer.reason, url)

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Pending:
        """Write a request on a connection of its own and return at once; its answer is read
        by :meth:`Pending.result` (in any thread). Several requests sent one after the other
        from one thread are served at the same time, with no thread of their own to wake: on
        a busy interpreter a worker thread started late (the GIL), and a command's calls with
        it. A request that cannot connect raises here (it was never sent)."""
        url, sent, body = _prepare(url, headers, json, params)
        parts = urllib3.util.parse_url(url)
        origin = (parts.scheme or "http", parts.host or "", parts.port)
        target = parts.request_uri
        conn = self._connection(origin, timeout)
        try:
            conn.request(method.upper(), target, body=body, headers=sent)
        except HTTPError as exc:
            conn.close()
            raise _requests_error(exc, exc) from None
        except OSError as exc:
            conn.close()
            raise requests.exceptions.ConnectionError(exc) from None
        return Pending(self, origin, conn, method, url, sent, json, timeout)

    def _connection(self, origin: tuple[str, str, int | None], timeout: float | None) -> Any:
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                conn = idle.pop()
                if conn.is_connected:  # not closed by the server meanwhile
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn
                conn.close()
            verify = self._verify
        scheme, host, port = origin
        if scheme == "https":
            return HTTPSConnection(
                host,
                port,
                timeout=timeout,
                cert_reqs="CERT_NONE" if verify is False else "CERT_REQUIRED",
                ca_certs=verify if isinstance(verify, str) else None,
            )
        return HTTPConnection(host, port, timeout=timeout)

    def idle_connections(self) -> int:
        """Connections of sent requests kept for the next ones (a diagnostic)."""
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def _release(self, origin: tuple[str, str, int | None], conn: Any) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < POOL_SIZE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        self._pool.clear()
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


class Pending:
    """A request sent by :meth:`Transport.send`; :meth:`result` reads its answer (once)."""

    def __init__(
        self,
        transport: Transport,
        origin: tuple[str, str, int | None],
        conn: Any,
        method: str,
        url: str,
        headers: dict[str, str],
        json: Any,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._conn = conn
        self._request = (method, url, headers, json, timeout)
        self._lock = threading.Lock()
        self._outcome: Response | requests.RequestException | None = None

    def result(self) -> Response:
        """The answer; a redirect is followed as :meth:`Transport.request` follows it. Raises
        the ``requests`` exception of a failure (a timeout: the request may have been done)."""
        with self._lock:
            if self._outcome is None:
                self._outcome = self._read()
            outcome = self._outcome
        if isinstance(outcome, requests.RequestException):
            raise outcome
        return outcome

    def _read(self) -> Response | requests.RequestException:
        conn = self._conn
        method, url, headers, json, timeout = self._request
        try:
            answer = conn.getresponse()
        except HTTPError as exc:
            conn.close()
            return _requests_error(exc, exc)
        except TimeoutError as exc:
            conn.close()
            return requests.exceptions.ReadTimeout(exc)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return requests.exceptions.ConnectionError(exc)
        if answer.status in REDIRECTS and answer.headers.get("Location"):
            conn.close()
            follow = "GET" if answer.status == 303 else method
            location = urljoin(url, answer.headers["Location"])
            try:
                return self._transport.request(
                    follow,
                    location,
                    headers=headers,
                    json=None if follow == "GET" and method != "GET" else json,
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                return exc
        response = Response(answer.status, answer.data, answer.headers, answer.reason, url)
        if conn.is_connected:
            self._transport._release(self._origin, conn)
        else:
            conn.close()
        return response


def _prepare(
    url: str, headers: Mapping[str, str] | None, json: Any, params: Mapping[str, Any] | None
) -> tuple[str, dict[str, str], bytes | None]:
    """The URL with its query, the headers and the body of a request, as ``requests`` makes
    them."""
    sent = dict(headers or {})
    body: bytes | None = None
    if json is not None:
        body = jsonlib.dumps(json, allow_nan=False).encode()
        sent["Content-Type"] = "application/json"
    if params:
        query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query}"
    return url, sent, body


def _requests_error(reason: Any, error: HTTPError) -> requests.RequestException:
    """The ``requests`` exception ``requests`` raises for ``reason``, carrying ``error``."""
    # NewConnectionError is a ConnectTimeoutError too (urllib3's history): tested first.
    if isinstance(reason, NewConnectionError):
        return requests.exceptions.ConnectionError(error)
    if isinstance(reason, ConnectTimeoutError):
        return requests.exceptions.ConnectTimeout(error)
    if isinstance(reason, ReadTimeoutError):
        return requests.exceptions.ReadTimeout(error)
    if isinstance(reason, Urllib3SSLError):
        return requests.exceptions.SSLError(error)
    return requests.exceptions.ConnectionError(error)
