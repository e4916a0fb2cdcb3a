"""hvac and transport failures leave ``custody.vault.client`` as Custodia errors carrying facts
only.
District used: DD13. The sealed case runs on a server of its own, started and sealed here.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from custody.errors import (
    VaultCasConflictError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    VaultSealedError,
    VaultTokenInvalidError,
    VaultUnreachableError,
)
from custody.stack.servers import free_port, start_bao_dev
from custody.vault.client import VaultClient
from custody.vault.credentials import Credentials
from custody.vault.transport import Transport
from tests.integration.custody.helpers import MakeUser, User, new_event_id

pytestmark = pytest.mark.integration


def test_permission_denied(service_client: VaultClient, make_user: MakeUser) -> None:
    """A 403 becomes VaultPermissionDeniedError naming the operation, path and account."""
    nobody = make_user("err-nobody")
    with pytest.raises(VaultPermissionDeniedError) as denied:
        service_client.with_token(nobody.token).read(
            "custodia/data/cuentas/DD13/x", operation="reveal", account="DD13-x"
        )
    error = denied.value
    assert (error.operation, error.path, error.account, error.status) == (
        "reveal",
        "custodia/data/cuentas/DD13/x",
        "DD13-x",
        403,
    )
    assert error.__context__ is None
    assert error.__cause__ is None
    assert nobody.token not in str(error)
    assert nobody.token not in repr(error)


def test_unreachable() -> None:
    """Nothing listening: VaultUnreachableError with the address, not a requests exception."""
    addr = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(VaultUnreachableError) as unreachable:
        VaultClient(addr, "any-token", timeout=2).read("sys/health", operation="health")
    assert unreachable.value.addr == addr
    assert unreachable.value.reason == "ConnectionError"
    assert unreachable.value.__context__ is None


def test_revoked_and_unknown_tokens(service_client: VaultClient, make_user: MakeUser) -> None:
    """lookup_self refuses a revoked token, an unknown one and no token (VaultTokenInvalidError)."""
    user = make_user("err-revoked")
    token = user.login()
    client = service_client.with_token(token)
    assert client.lookup_self().username == user.username
    client.revoke_self()
    for bad in (
        client,
        service_client.with_token("s.not-a-token"),
        service_client.with_token(None),
    ):
        with pytest.raises(VaultTokenInvalidError):
            bad.lookup_self()


def test_a_client_without_a_token_is_anonymous_whatever_the_environment(
    service_client: VaultClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A client made without a token sends none, even when whoever runs the process has an
    OpenBao token in VAULT_TOKEN or ~/.vault-token (which hvac would pick up by itself): the
    service's token set there is not used by an anonymous client, and OpenBao refuses it."""
    assert service_client.token
    monkeypatch.setenv("VAULT_TOKEN", service_client.token)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text(service_client.token)
    anonymous = service_client.with_token(None)
    with pytest.raises(VaultTokenInvalidError):
        anonymous.lookup_self()
    for client in (anonymous, VaultClient(service_client.addr, verify=service_client.verify)):
        with pytest.raises(VaultPermissionDeniedError):
            client.request("GET", "auth/token/lookup-self", operation="lookup-self")
    own = service_client.request("GET", "auth/token/lookup-self", operation="lookup-self")
    assert own is not None
    assert own["data"]["id"] == service_client.token


def test_wrong_password_login(service_client: VaultClient, make_user: MakeUser) -> None:
    """A wrong userpass password is a permission error that never contains the password."""
    user = make_user("err-login")
    with pytest.raises(VaultPermissionDeniedError) as denied:
        service_client.with_token(None).login_userpass(user.username, "Wrong-password-123")
    assert "Wrong-password-123" not in str(denied.value)


def test_cas_conflict(credentials: Credentials, coadmin: User) -> None:
    """A second staging while one is open is a CAS conflict on the staged path, expecting 0."""
    event = new_event_id()
    base = credentials.current_version("DD13-x")
    credentials.stage(coadmin.token, "DD13-x", "First-staged-pw", event, base, staged_by="t")
    with pytest.raises(VaultCasConflictError) as conflict:
        credentials.stage(coadmin.token, "DD13-x", "Second-staged-pw", "other", base, staged_by="t")
    assert conflict.value.path == "custodia/data/preparadas/DD13/x"
    assert conflict.value.expected_version == 0
    assert "Second-staged-pw" not in str(conflict.value)
    credentials.abandon(coadmin.token, "DD13-x", event)


def test_not_found(credentials: Credentials, coadmin: User) -> None:
    """Revealing an account with no credential is VaultNotFoundError with the account."""
    with pytest.raises(VaultNotFoundError) as missing:
        credentials.read_current_wrapped(coadmin.token, "DD13-mastodon")
    assert missing.value.account == "DD13-mastodon"


def test_invalid_request_reason_only_without_secret_body(service_client: VaultClient) -> None:
    """A 400 carries the server's reason, unless the request body held a secret."""
    with pytest.raises(VaultInvalidRequestError) as plain:
        service_client.write(
            "custodia-transit/decrypt/pii-nobody-x",
            {"ciphertext": "vault:v1:bm90LWEtY2lwaGVydGV4dA=="},
            operation="open",
        )
    assert plain.value.reason
    with pytest.raises(VaultInvalidRequestError) as secret:
        service_client.write(
            "custodia-transit/decrypt/pii-nobody-x",
            {"ciphertext": "vault:v1:bm90LWEtY2lwaGVydGV4dA=="},
            operation="open",
            secret_body=True,
        )
    assert secret.value.reason is None


def test_sealed(tmp_path: Path) -> None:
    """A sealed server answers every request with VaultSealedError (own server, sealed here)."""
    server = start_bao_dev(tmp_path / "sealed")
    try:
        assert server.root_token
        root = VaultClient(server.addr, server.root_token)
        assert root.lookup_self().policies == ("root",)
        root.request("PUT", "sys/seal", operation="seal")
        with pytest.raises(VaultSealedError) as sealed:
            root.read("secret/data/anything", operation="reveal")
        assert sealed.value.addr == server.addr
        with pytest.raises(VaultSealedError):
            root.lookup_self()
    finally:
        server.stop()


def test_lookup_of_a_caller_token(service_client: VaultClient, make_user: MakeUser) -> None:
    """The service looks up a caller's token with its own client: user name, entity, expiry."""
    user = make_user("err-lookup")
    info = service_client.lookup_self(user.token)
    assert info.username == user.username
    assert info.entity_id
    assert info.expire_time is not None
    assert info.ttl > 0
    assert user.token not in repr(info)


def test_members_of_a_cluster_are_tried_in_turn(service_client: VaultClient) -> None:
    """``CUSTODIA_VAULT_ADDR`` may list an HA cluster's members: a member that cannot be
    reached is passed over (the request was never sent), the client and the clients made from
    it stay on the member that answered; with every member down, the last one is named."""
    dead = f"http://127.0.0.1:{free_port()}"
    live = service_client.members.current
    client = VaultClient(f"{dead},{live}", service_client.token, timeout=2)
    assert client.lookup_self().policies
    assert client.members.current == live
    caller = client.with_token(service_client.token)
    assert caller.members is client.members
    assert caller.lookup_self().policies  # straight to the member that answered

    other = f"http://127.0.0.1:{free_port({int(dead.rsplit(':', 1)[1])})}"
    with pytest.raises(VaultUnreachableError) as unreachable:
        VaultClient(f"{dead},{other}", "any-token", timeout=2).read("sys/health", operation="x")
    assert unreachable.value.addr == other


def test_a_request_that_reached_a_member_is_not_sent_to_another(
    service_client: VaultClient, make_user: MakeUser
) -> None:
    """A refusal (or any answer) from the member in use is the answer: no other is asked."""
    live = service_client.members.current
    nobody = make_user("err-members").login()
    dead = f"http://127.0.0.1:{free_port()}"
    client = VaultClient(f"{live},{dead}", nobody, timeout=2)
    with pytest.raises(VaultPermissionDeniedError):
        client.read("custodia/data/cuentas/DD01/x", operation="reveal")
    assert client.members.current == live


class _Silent:
    """A member that accepts connections and never answers (hung)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.addr = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def _call(client: VaultClient, way: str, method: str, path: str, **kwargs: Any) -> Any:
    """One request, made whole (``request``) or sent and read later (``send``)."""
    if way == "request":
        return client.request(method, path, **kwargs)
    return client.send(method, path, **kwargs).result()


WAYS = pytest.mark.parametrize("way", ["request", "send"])


@WAYS
@pytest.mark.usefixtures("layout")
def test_a_member_that_never_answers_times_out_and_is_not_passed_over(
    root_client: VaultClient, way: str
) -> None:
    """The request reached the hung member (it may be carried out): the client reports it
    unreachable after its timeout and does not send it to the next member."""
    hung = _Silent()
    try:
        live = root_client.members.current
        client = VaultClient(f"{hung.addr},{live}", root_client.token, timeout=0.5)
        with pytest.raises(VaultUnreachableError) as unreachable:
            _call(
                client,
                way,
                "POST",
                "custodia/data/cuentas/DD13/timeout",
                json={"data": {"password": "Never-sent-twice-1"}},
                operation="stage",
            )
        assert unreachable.value.reason == "ReadTimeout"
        assert unreachable.value.__context__ is None
        assert "Never-sent-twice-1" not in str(unreachable.value)
        assert client.members.current == hung.addr
        with pytest.raises(VaultNotFoundError):  # nothing was written through the live member
            root_client.read("custodia/data/cuentas/DD13/timeout", operation="check")
    finally:
        hung.close()


@WAYS
@pytest.mark.usefixtures("layout")
def test_a_redirect_is_followed_with_its_method_and_body(
    root_client: VaultClient, way: str
) -> None:
    """A standby that redirects (307) instead of forwarding: the write lands on the member it
    names, method, body and token kept, as with requests."""
    live = root_client.members.current
    seen: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.command)
            self.send_response(307)
            self.send_header("Location", live + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return None

    standby = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=standby.serve_forever, daemon=True).start()
    try:
        client = VaultClient(
            f"http://127.0.0.1:{standby.server_address[1]}", root_client.token, timeout=3
        )
        path = f"custodia/data/cuentas/DD13/redirect-{uuid.uuid4().hex[:8]}"
        data = {"data": {"password": "Redirected-pw-1"}, "options": {"cas": 0}}
        _call(client, way, "POST", path, json=data, operation="t")
        body = _call(client, way, "GET", path, operation="t")
        assert body["data"]["data"] == {"password": "Redirected-pw-1"}
        assert seen == ["POST", "GET"]
    finally:
        standby.shutdown()
        standby.server_close()


def test_sent_requests_fail_over_and_answer_once(service_client: VaultClient) -> None:
    """``send``: a member that cannot be reached is passed over at once (nothing was sent);
    the answer is read once, and asking again gives the same answer or the same error."""
    dead = f"http://127.0.0.1:{free_port()}"
    live = service_client.members.current
    client = VaultClient(f"{dead},{live}", service_client.token, timeout=2)
    sent = client.send("GET", "auth/token/lookup-self", operation="lookup")
    assert client.members.current == live
    first = sent.result()
    assert first is not None
    assert sent.result() is first
    missing = client.send("GET", "custodia/metadata/cuentas/DD13/nobody", operation="x")
    with pytest.raises(VaultNotFoundError) as once:
        missing.result()
    with pytest.raises(VaultNotFoundError) as again:
        missing.result()
    assert again.value is once.value
    assert again.value.__context__ is None


def test_sent_requests_reuse_their_connections(service_client: VaultClient) -> None:
    """Connections of sent requests go back to the transport once their answer is read: many
    requests, a handful of connections (as many as were in flight at once)."""
    client = VaultClient(service_client.members.current, service_client.token)  # its own
    transport = client.session
    assert isinstance(transport, Transport)
    for _ in range(40):
        batch = [client.send("GET", "sys/health", operation="h") for _ in range(3)]
        for sent in batch:
            sent.result()
    assert transport.idle_connections() == 3
