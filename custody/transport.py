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
as ``requests`` does: :mod:`custody.vault` tells from it whether a request was never sent.
Redirects (a standby that redirects instead of forwarding) are followed, keeping the method and
body on a 307/308, as ``requests`` does.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
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


class Response:
    """What hvac and :mod:`custody.vault` read of an answer."""

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
            self._verify = value
        old.clear()

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
        sent = dict(headers or {})
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
            if query:
                url = f"{url}{'&' if '?' in url else '?'}{query}"
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

    def close(self) -> None:
        self._pool.clear()


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
