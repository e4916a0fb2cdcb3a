"""The web view served for real (uvicorn on a free loopback port, in a thread) over the
service world of :mod:`tests.e2e.conftest`, and an HTTP client that logs people in."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from cli.web.app import create_app
from cli.web.backend import ServiceBackend
from cli.web.sessions import LoginThrottle, SessionStore
from tests.e2e.conftest import SERVICE_PASSWORD, ServiceWorld
from tests.support.cluster import TlsFiles

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebServer:
    url: str
    backend: ServiceBackend
    throttle: LoginThrottle
    store: SessionStore
    tls: TlsFiles | None = None

    def client(self) -> httpx.Client:
        verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls else True
        )
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=60, verify=verify)

    @contextmanager
    def logged_in(self, user: str) -> Iterator[httpx.Client]:
        """A client with ``user`` logged in through the login form."""
        with self.client() as client:
            response = login(client, user, SERVICE_PASSWORD.format(user))
            assert response.status_code == 303, response.text
            yield client


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: httpx.Client, user: str, password: str, code: str = "") -> httpx.Response:
    form = client.get("/ingresar")
    assert form.status_code == 200
    return client.post(
        "/ingresar",
        data={
            "usuario": user,
            "contrasena": password,
            "codigo": code,
            "csrf": csrf_of(form.text),
            "siguiente": "/",
        },
    )


@contextmanager
def serving(
    world: ServiceWorld, throttle: LoginThrottle | None = None, tls: TlsFiles | None = None
) -> Iterator[WebServer]:
    """``custodia web``'s application for ``world`` (over TLS with ``tls``), until the block
    ends."""
    backend = ServiceBackend(world.settings)
    limiter = throttle or LoginThrottle()
    store = SessionStore()
    port = free_port()
    config = uvicorn.Config(
        create_app(backend, throttle=limiter, sessions=store),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web view did not start")
        time.sleep(0.05)
    try:
        scheme = "https" if tls else "http"
        yield WebServer(f"{scheme}://127.0.0.1:{port}", backend, limiter, store, tls)
    finally:
        server.should_exit = True
        thread.join(20)


def notified_incident(world: ServiceWorld, kind: str) -> str:
    """An incident on DD05-x reported by bety and notified by ana: awaiting the Secretaría."""
    reported = world.call(
        "bety",
        "incidentes.reportar",
        {"cuenta": "DD05-x", "tipo": kind, "descripcion": "Publicación no autorizada"},
    )
    incident = str(reported["incidente"])
    world.call("ana", "incidentes.notificar", {"incidente": incident, "oficio": "UTCSyD/1/26"})
    return incident
