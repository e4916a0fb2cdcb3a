"""The OpenBao transport's own HTTP/1.1 wire (custody.vault.transport, issue 21): answers as a
server may shape them, and requests that must never be written. Against a scripted server on
a loopback socket (what OpenBao itself answers is covered by every other Vault-side test)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.errors import VaultUnreachableError
from custody.vault.client import VaultClient
from tests.support.cluster import make_test_pki

pytestmark = pytest.mark.integration


class Scripted:
    """Answers each request with the next scripted bytes; ``close_after`` closes the
    connection after that answer. Notes every connection and every request it read."""

    def __init__(
        self, answers: list[tuple[bytes, bool]], tls: ssl.SSLContext | None = None
    ) -> None:
        self.answers = list(answers)
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = threading.Semaphore(0)  # released as each connection is closed here
        self.sock = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.addr = f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._answer(conn)
        except (ssl.SSLError, OSError):
            pass  # a client that refused our certificate
        finally:
            conn.close()
            self.closed.release()

    def _answer(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buffer[:length])
            buffer = buffer[length:]
            answer, close = self.answers.pop(0)
            conn.sendall(answer)
            if close:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def make_server() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for server in made:
        server.close()


def _server(
    made: list[Scripted], answers: list[tuple[bytes, bool]], tls: ssl.SSLContext | None = None
) -> Scripted:
    server = Scripted(answers, tls)
    made.append(server)
    return server


JSON_OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'


def test_chunked_unsized_and_informational_answers_are_read_whole(
    make_server: list[Scripted],
) -> None:
    """A chunked answer (with a trailer), an answer after a 100 Continue, and one without a
    length that ends with the connection: each is read whole; the connection is kept for the
    next request while the server keeps it, and a new one is made after it closes."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;ext=1\r\n{"a":\r\n3\r\n 2}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    informational = b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_OK.replace(b"1}", b"3}")
    unsized = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"a": 4}'
    server = _server(
        make_server, [(chunked, False), (informational, False), (unsized, True), (JSON_OK, False)]
    )
    client = VaultClient(server.addr, "tok", timeout=5)
    answers = [client.send("GET", "x", operation="t").result() for _ in range(4)]
    assert answers == [{"a": 2}, {"a": 3}, {"a": 4}, {"a": 1}]
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_not_used(
    make_server: list[Scripted],
) -> None:
    """The server answers with a length, then closes the connection while it is idle in the
    pool: the next request goes on a new connection and is answered (never written into the
    closed one, which would lose it)."""
    server = _server(make_server, [(JSON_OK, True), (JSON_OK, False)])
    client = VaultClient(server.addr, "tok", timeout=5)
    assert client.send("GET", "x", operation="t").result() == {"a": 1}
    assert server.closed.acquire(timeout=10)  # closed by the server while idle in the pool
    assert client.send("POST", "y", json={"b": 2}, operation="t").result() == {"a": 1}
    assert server.connections == 2
    assert server.requests[1].startswith(b"POST /v1/y HTTP/1.1\r\n")
    assert server.requests[1].endswith(b'{"b": 2}')


def test_a_header_with_a_line_break_is_never_written(make_server: list[Scripted]) -> None:
    """A token carrying a line break (a second request or header smuggled in it) is refused
    before anything is written, and the error does not repeat the token; a path with a space or
    a line break never splits the request line or adds a header."""
    server = _server(make_server, [(JSON_OK, False)])
    smuggled = "s.tok\r\nX-Vault-Token: s.root\r\n\r\nGET /v1/sys/raw HTTP/1.1"
    for token in (smuggled, "s.tok\nX: y", "s.tok\x00"):
        with pytest.raises(ValueError, match="invalid HTTP header") as refused:
            VaultClient(server.addr, token, timeout=5).send("GET", "x", operation="t")
        assert token not in str(refused.value)
    assert server.requests == []
    # A path with a line break or a space is written percent-encoded: one request line of
    # three parts, and no header of its own.
    paths = ("x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /y", "x\ny", "a b")
    server.answers = [(JSON_OK, False)] * len(paths)
    client = VaultClient(server.addr, "tok", timeout=5)
    for path in paths:
        assert client.send("GET", path, operation="t").result() == {"a": 1}
    assert len(server.requests) == len(paths)  # each written once, percent-encoded
    for request in server.requests:
        head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert len(head[0].split(b" ")) == 3
        assert not any(line.lower().startswith(b"x-evil") for line in head)


def test_a_cut_answer_is_a_failure_not_a_short_body(make_server: list[Scripted]) -> None:
    """An answer whose body ends before its length (the connection cut) is an error (OpenBao
    unreachable), never a shorter body read as the answer."""
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"a": 1'
    server = _server(make_server, [(cut, True)])
    with pytest.raises(VaultUnreachableError):
        VaultClient(server.addr, "tok", timeout=5).send("GET", "x", operation="t").result()


def test_tls_is_verified_against_the_ca_given(make_server: list[Scripted], tmp_path: Path) -> None:
    """Over TLS the member's certificate is checked: with the CA bundle given (the cluster's
    own PKI) the answer is read; against the system's CAs the same member is refused
    (SSLError) and nothing is sent in the clear; without verification (an explicit choice) it
    is read again."""
    pki = make_test_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.cert), str(pki.key))
    server = _server(make_server, [(JSON_OK, False), (JSON_OK, False)], context)
    trusted = VaultClient(server.addr, "tok", timeout=5, verify=str(pki.ca))
    assert trusted.send("GET", "x", operation="t").result() == {"a": 1}
    with pytest.raises(VaultUnreachableError) as refused:
        VaultClient(server.addr, "tok", timeout=5).send("GET", "x", operation="t").result()
    assert refused.value.reason == "SSLError"
    unverified = VaultClient(server.addr, "tok", timeout=5, verify=False)
    assert unverified.send("GET", "x", operation="t").result() == {"a": 1}
    assert len(server.requests) == 2


def test_connections_are_kept_past_descriptor_1024(make_server: list[Scripted]) -> None:
    """In a busy process a connection's descriptor can be past 1024 (where ``select`` stops):
    it is still checked and kept for the next request, not replaced by a new one each time."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"this machine allows {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        server = _server(make_server, [(JSON_OK, False)] * 3)
        client = VaultClient(server.addr, "tok", timeout=5)
        for _ in range(3):
            assert client.send("GET", "x", operation="t").result() == {"a": 1}
        assert server.connections == 1
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
