"""hvac's HTTP transport: HTTP/1.1 written and read directly on kept-alive sockets, instead
of a ``requests.Session``.

hvac sends every request through ``session.request(method, url, headers=..., json=...,
params=..., timeout=..., allow_redirects=...)`` and reads ``status_code``, ``ok``, ``headers``,
``text``, ``content`` and ``json()`` of the answer. :class:`Transport` is that much of a
session. The command service makes several OpenBao calls per command on two cores: requests'
own work per call (settings, hooks, cookies, a prepared request) was about half the client's
CPU per call (``bench/bench_custody.py``), and ``http.client`` with urllib3 under it still
about 0.35 ms; written and read here (:class:`_Wire`), a call costs about 0.13 ms of the
caller's CPU, all of :class:`custody.vault.client.VaultClient` included (issue 21, measured on
a dev OpenBao). :meth:`Transport.send` writes a request and returns (its answer is read later,
from any thread: the calls of one command are served at once); :meth:`Transport.request` is
``send`` and its answer.

Header names and values are checked for line breaks before anything is written (no request
can be smuggled in a token). A chunked answer, an answer without a length (read to the end of
the connection), informational answers, a connection the server closed while it was idle and
a body cut short are handled as urllib3 handles them. TLS verifies as urllib3 did: the
system's CAs, a CA bundle's, or none when told so.

Failures are raised as the ``requests`` exceptions hvac's users expect (``ConnectionError``,
``ConnectTimeout``, ``ReadTimeout``, ``SSLError``), with a urllib3 error as their argument
where ``requests`` has one: :mod:`custody.vault.client` tells from it whether a request was
never sent. Redirects (a standby that redirects instead of forwarding) are followed, keeping
the method and body on a 307/308, as ``requests`` does.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin

import requests
import urllib3
from urllib3._collections import HTTPHeaderDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
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
        # Connections of requests sent with :meth:`send`, idle, per (scheme, host, port).
        self._idle: dict[tuple[str, str, int | None], list[_Wire]] = {}
        self._contexts: dict[bool | str, ssl.SSLContext] = {}
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
            idle, self._idle = self._idle, {}  # made under the old setting
            self._contexts = {}
            self._verify = value
        for conns in idle.values():
            for conn in conns:
                conn.close()

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
        """hvac's ``session.request``: :meth:`send`, then its answer (redirects followed, at
        most ``MAX_REDIRECTS``, unless ``allow_redirects`` is false)."""
        return self.send(method, url, headers, json, params, timeout).result(
            MAX_REDIRECTS if allow_redirects else 0
        )

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
        request = _request_bytes(method.upper(), parts.request_uri, origin, sent, body)
        conn = self._connection(origin, timeout)
        try:
            conn.sock.sendall(request)
        except OSError as exc:
            conn.close()
            raise requests.exceptions.ConnectionError(exc) from None
        return Pending(self, origin, conn, method, url, sent, json, timeout)

    def _connection(self, origin: tuple[str, str, int | None], timeout: float | None) -> _Wire:
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                conn = idle.pop()
                if conn.usable():  # not closed by the server meanwhile
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()
            verify = self._verify
            context = self._contexts.get(verify) if origin[0] == "https" else None
        if origin[0] == "https" and context is None:
            context = _tls_context(verify)
            with self._lock:
                self._contexts[verify] = context
        return _Wire.open(origin, timeout, context)

    def idle_connections(self) -> int:
        """Connections of sent requests kept for the next ones (a diagnostic)."""
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def _release(self, origin: tuple[str, str, int | None], conn: _Wire) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < POOL_SIZE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
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
        conn: _Wire,
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

    def result(self, redirects: int = MAX_REDIRECTS) -> Response:
        """The answer; up to ``redirects`` redirects followed (method and body kept on a
        307/308, as ``requests`` does), the last one returned as it is. Raises the
        ``requests`` exception of a failure (a timeout: the request may have been done)."""
        with self._lock:
            if self._outcome is None:
                self._outcome = self._read(redirects)
            outcome = self._outcome
        if isinstance(outcome, requests.RequestException):
            raise outcome
        return outcome

    def _read(self, redirects: int) -> Response | requests.RequestException:
        conn = self._conn
        method, url, headers, json, timeout = self._request
        try:
            answer = conn.read_response(method.upper())
        except TimeoutError as exc:
            conn.close()
            return requests.exceptions.ReadTimeout(exc)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            return requests.exceptions.ConnectionError(exc)
        response = Response(answer.status, answer.data, answer.headers, answer.reason, url)
        if answer.keep_alive:
            self._transport._release(self._origin, conn)
        else:
            conn.close()
        if answer.status in REDIRECTS and answer.headers.get("Location") and redirects > 0:
            follow = "GET" if answer.status == 303 else method
            location = urljoin(url, answer.headers["Location"])
            try:
                return self._transport.send(
                    follow,
                    location,
                    headers=headers,
                    json=None if follow == "GET" and method != "GET" else json,
                    timeout=timeout,
                ).result(redirects - 1)
            except requests.RequestException as exc:
                return exc
        return response


class _Answer:
    __slots__ = ("data", "headers", "keep_alive", "reason", "status")

    def __init__(
        self, status: int, reason: str, headers: HTTPHeaderDict, data: bytes, keep_alive: bool
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.data = data
        self.keep_alive = keep_alive


_MAX_LINE = 65536
_MAX_HEADERS = 100
_FORBIDDEN = ("\r", "\n", "\x00")


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """As urllib3 verifies: the system's CAs, a CA bundle's, or (``False``) none."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _request_bytes(
    method: str,
    target: str,
    origin: tuple[str, str, int | None],
    headers: Mapping[str, str],
    body: bytes | None,
) -> bytes:
    """The request as written on the wire; a name or value with a line break is refused
    before anything is written (as ``http.client`` refuses it, without echoing the value:
    it may be a token)."""
    scheme, host, port = origin
    default = 443 if scheme == "https" else 80
    authority = host if port in (None, default) else f"{host}:{port}"
    if "[" not in authority and host.count(":") > 1:  # an IPv6 literal
        authority = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    if any(c in f"{method}{target}{authority}" for c in (*_FORBIDDEN, " ", "\t")):
        raise ValueError("invalid HTTP request line (space or line break)")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        text = f"{name}{value}"
        if any(c in text for c in _FORBIDDEN) or ":" in name or not name.strip():
            raise ValueError("invalid HTTP header (line break or bad name)")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Wire:
    """One kept-alive HTTP/1.1 connection, written and read directly (see the module)."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    @classmethod
    def open(
        cls,
        origin: tuple[str, str, int | None],
        timeout: float | None,
        context: ssl.SSLContext | None,
    ) -> _Wire:
        """A new connection; one that cannot be made raises what urllib3 raised (the request
        was never sent: :func:`custody.vault.client._never_sent`)."""
        scheme, host, port = origin
        address = (host, port or (443 if scheme == "https" else 80))
        try:
            sock = socket.create_connection(address, timeout=timeout)
        except TimeoutError:
            reason = ConnectTimeoutError(f"connection to {host} timed out")
            raise requests.exceptions.ConnectTimeout(reason) from None
        except OSError as exc:
            failed = NewConnectionError(None, f"{type(exc).__name__}")  # type: ignore[arg-type]
            raise requests.exceptions.ConnectionError(failed) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            try:
                sock = context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                sock.close()
                raise requests.exceptions.SSLError(Urllib3SSLError(type(exc).__name__)) from None
            except OSError as exc:
                sock.close()
                failed = NewConnectionError(None, f"{type(exc).__name__}")  # type: ignore[arg-type]
                raise requests.exceptions.ConnectionError(failed) from None
        return cls(sock)

    def usable(self) -> bool:
        """Idle and still open: nothing to read (a server that closed it makes it readable)."""
        try:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                return False
            # poll, not select: a busy service's descriptors go past select's 1024.
            waiting = select.poll()
            waiting.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return not waiting.poll(0)
        except (OSError, ValueError):
            return False

    def read_response(self, method: str) -> _Answer:
        """The answer to the request just written (informational answers skipped)."""
        while True:
            status, reason, version = self._status_line()
            headers = self._headers()
            if not 100 <= status < 200:
                break
        connection = (headers.get("Connection") or "").lower()
        keep_alive = version == "HTTP/1.1" and "close" not in connection
        if method == "HEAD" or status in (204, 304):
            return _Answer(status, reason, headers, b"", keep_alive)
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            return _Answer(status, reason, headers, self._chunked(), keep_alive)
        length = headers.get("Content-Length")
        if length is None:
            return _Answer(status, reason, headers, self.reader.read(), False)  # to the end
        size = int(length)
        if size < 0:
            raise ValueError("negative Content-Length")
        data = self.reader.read(size)
        if len(data) != size:
            raise http.client.IncompleteRead(data, size - len(data))
        return _Answer(status, reason, headers, data, keep_alive)

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _status_line(self) -> tuple[int, str, str]:
        line = self._line()
        if not line:
            raise http.client.RemoteDisconnected("closed without an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1")[:40])
        return int(code), reason, version

    def _headers(self) -> HTTPHeaderDict:
        headers = HTTPHeaderDict()
        for _ in range(_MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise http.client.HTTPException("malformed header line")
            headers.add(name.strip(), value.strip())
        raise http.client.HTTPException("too many headers")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            size = int(size_line, 16)
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            chunk = self.reader.read(size)
            if len(chunk) != size:
                raise http.client.IncompleteRead(chunk, size - len(chunk))
            parts.append(chunk)
            self._line()  # the CRLF after the chunk

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


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
