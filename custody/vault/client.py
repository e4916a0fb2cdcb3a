"""The one door to OpenBao/Vault: an hvac client whose every request is translated at the boundary.

Everything in ``custody`` that talks to the secrets server goes through :class:`VaultClient`, and
every failure leaves it as a Custodia error (:mod:`custody.errors`), built *outside* the ``except``
block so that no hvac or requests exception (with its URL, body or server text) travels along as
``__context__`` (STYLE 6: translate foreign errors once, at the adapter; 8.D, 11.7: no secret in
an error).

One client holds one token. :meth:`VaultClient.with_token` makes a sibling for another token
(a caller's own token, a wrapping token) sharing the same HTTP transport, which is cheap (~25 µs).
hvac sends through a :class:`~custody.vault.transport.Transport` (urllib3, no ``requests`` session
work per call); it does not consult the environment: no proxy or netrc lookups, and a CA
bundle must be passed explicitly as ``verify``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import hvac
import requests
import structlog
from hvac import exceptions as hvac_exceptions

from custody.errors import (
    LoginRefusedError,
    OwnPasswordDeniedError,
    SecondFactorRefusedError,
    SecondFactorRequiredError,
    VaultCasConflictError,
    VaultInvalidRequestError,
    VaultNotFoundError,
    VaultPermissionDeniedError,
    VaultSealedError,
    VaultServerError,
    VaultTokenInvalidError,
    VaultUnavailableError,
    VaultUnreachableError,
    WrappingTokenInvalidError,
)
from custody.vault.transport import Transport
from events.domain.ids import Username
from events.errors import VaultError

log = structlog.get_logger()
T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
_MAX_REASON = 300


@dataclass(frozen=True)
class Mounts:
    """Where Custodia's engines live. The policy templates are rendered with these names."""

    kv: str = "custodia"
    totp: str = "custodia-totp"
    transit: str = "custodia-transit"
    userpass: str = "userpass"
    # Issue 18, the second factor: logins used only to enrol one's TOTP factor. Their tokens
    # hold no policy at all; the service enrols the token's own person (custody.app.second_factor).
    first_login: str = "userpass-primer-ingreso"


@dataclass(frozen=True)
class TokenInfo:
    """What the server says about a token (``auth/token/lookup-self``); never the token itself."""

    entity_id: str | None
    display_name: str
    username: str | None
    policies: tuple[str, ...]
    identity_policies: tuple[str, ...]
    expire_time: datetime | None
    ttl: int
    renewable: bool
    accessor: str = field(repr=False, default="")
    # How the token was made: ``auth/userpass/login/<user>`` for a login, ``auth/token/create/
    # <role>`` for a child token (custody.vault.session.request_token).
    path: str = ""
    num_uses: int = 0
    # Issue 18: the user a token of the first-login mount (Mounts.first_login) was issued to,
    # read from the token's path (OpenBao's own); such a token names no person (username None).
    first_login_user: str | None = None
    # When OpenBao issued the token (``issue_time``).
    issued_at: datetime | None = None

    @property
    def child(self) -> bool:
        """Made by another token (``auth/token/create…``), not by a login."""
        return self.path.startswith("auth/token/")


def new_session(*, trust_env: bool = False) -> requests.Session:
    """A ``requests`` session for a stock hvac client (benchmarks' baselines); ``trust_env=False``
    skips per-call proxy/netrc lookups. :class:`VaultClient` sends through a
    :class:`~custody.vault.transport.Transport` unless given a session."""
    session = requests.Session()
    session.trust_env = trust_env
    return session


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from OpenBao/Vault (nanoseconds allowed), or None if empty/absent."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match is not None and match.group(2):  # Python keeps microseconds only
        text = match.group(1) + match.group(2)[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_username(username: str) -> Username:
    """A user name safe to put in a Vault path, in the canonical form OpenBao stores, or
    :class:`~events.domain.errors.InvalidUsernameError`: the domain's one parser
    (:class:`events.domain.Username`), so the ledger and OpenBao accept the same names."""
    return Username(username)


class Members:
    """The address(es) of one OpenBao/Vault — several, comma-separated, for the members of an HA
    cluster — and the one in use, shared by a client and the clients made from it."""

    def __init__(self, addr: str) -> None:
        self.addrs = tuple(a.strip().rstrip("/") for a in addr.split(",") if a.strip())
        if not self.addrs:
            raise ValueError("no OpenBao address")
        self._current = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> str:
        return self.addrs[self._current]

    def failed(self, addr: str) -> None:
        """``addr`` could not be reached: the next member is tried from now on."""
        with self._lock:
            if self.addrs[self._current] == addr:
                self._current = (self._current + 1) % len(self.addrs)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely was not carried out (no connection could be made — to the
    member, or to the address a standby redirected it to), so sending it to another member
    cannot do it twice."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    # custody.vault.transport raises the cause itself; a requests session (tests, benchmarks)
    # wraps it in a MaxRetryError that names it as its ``reason``.
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


class Sent:
    """A request :meth:`VaultClient.send` wrote; :meth:`result` reads its answer once (from
    any thread; later calls return or raise the same)."""

    def __init__(self, answer: Callable[[], dict[str, Any] | None]) -> None:
        self._answer: Callable[[], dict[str, Any] | None] | None = answer
        self._lock = threading.Lock()
        self._body: dict[str, Any] | None = None
        self._error: VaultError | None = None

    @classmethod
    def made(cls, answer: Callable[[], dict[str, Any] | None]) -> Sent:
        """A request made whole at once (no transport to send it with), or refused."""
        sent = cls(answer)
        with contextlib.suppress(VaultError):
            sent.result()
        return sent

    def result(self) -> dict[str, Any] | None:
        with self._lock:
            if self._answer is not None:
                answer, self._answer = self._answer, None
                try:
                    self._body = answer()
                except VaultError as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._body


class VaultClient:
    """An OpenBao/Vault address and one token; all requests go through :meth:`request`.

    ``addr`` may list the members of an HA cluster, comma-separated: a request that cannot
    connect to one (it was never sent) goes to the next; any other failure is reported as is.
    """

    def __init__(
        self,
        addr: str,
        token: str | None = None,
        *,
        mounts: Mounts | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        session: requests.Session | Transport | None = None,
        members: Members | None = None,
    ) -> None:
        self.addr = addr.rstrip("/")
        self.members = members if members is not None else Members(self.addr)
        self.mounts = mounts or Mounts()
        self.timeout = timeout
        self.verify = verify
        self._token = token
        self._session = session if session is not None else Transport(verify)
        # hvac sends through this session: its ``verify`` is what applies (a private CA file).
        self._session.verify = verify
        # hvac's adapter alone (issue 21): a whole ``hvac.Client`` builds dozens of API objects,
        # and a client is made per caller token on every command (:meth:`with_token`). Made
        # here, not by hvac.Client, a client without a token is anonymous: hvac would take
        # VAULT_TOKEN or ~/.vault-token from whoever runs the process.
        self._adapter = hvac.adapters.JSONAdapter(
            base_uri=self.members.current,
            token=token,
            timeout=timeout,
            verify=verify,
            session=self._session,
        )
        self._hvac: hvac.Client | None = None

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"VaultClient(addr={self.addr!r}, token={'set' if self._token else 'none'})"

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def session(self) -> requests.Session | Transport:
        return self._session

    @property
    def hvac(self) -> Any:
        """An ``hvac.Client`` on this client's adapter, for benchmarks and tests; errors are NOT
        translated."""
        if self._hvac is None:
            made = hvac.Client(url=self._adapter.base_uri, session=self._session)
            made.adapter = self._adapter
            self._hvac = made
        return self._hvac

    def with_token(self, token: str | None) -> VaultClient:
        """A client for the same server and session, acting as ``token`` (None: anonymous)."""
        return VaultClient(
            self.addr,
            token,
            mounts=self.mounts,
            timeout=self.timeout,
            verify=self.verify,
            session=self._session,
            members=self.members,
        )

    # -- the boundary ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        account: str | None = None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        wrap_ttl: int | str | None = None,
        secret_body: bool = False,
    ) -> dict[str, Any] | None:
        """One HTTP request to ``/v1/<path>``; the decoded JSON body, or None when empty.

        ``operation`` and ``account`` name what is being done, for the error a failure becomes.
        ``secret_body=True`` marks a request carrying secret material: the server's error text is
        then left out of the error, in case it echoes the input.
        """
        kwargs: dict[str, Any] = {}
        if json is not None:
            kwargs["json"] = dict(json)
        if params:
            kwargs["params"] = dict(params)
        if wrap_ttl is not None:
            kwargs["wrap_ttl"] = f"{wrap_ttl}s" if isinstance(wrap_ttl, int) else wrap_ttl
        adapter = self._adapter

        def attempt(addr: str) -> tuple[Any, VaultError | None]:
            adapter.base_uri = addr
            try:
                return adapter.request(method, f"/v1/{path.lstrip('/')}", **kwargs), None
            except hvac_exceptions.VaultError as exc:
                return None, self._translate(
                    exc, method, path, operation, account, json, secret_body
                )

        outcome = self._on_members(operation, attempt)
        if isinstance(outcome, VaultUnreachableError):
            return self._answer(None, outcome, operation, path, account)
        return self._answer(*outcome, operation, path, account)

    def send(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        account: str | None = None,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        wrap_ttl: int | str | None = None,
        secret_body: bool = False,
    ) -> Sent:
        """:meth:`request`, returning as soon as the request is written: :meth:`Sent.result`
        reads the answer, and returns or raises what :meth:`request` would. Requests sent one
        after the other are served at the same time, without a thread each (see
        :meth:`custody.vault.transport.Transport.send`). Headers and errors are hvac's own, as in
        :meth:`request`. With a ``requests`` session instead of a transport, the request is
        made here, whole."""
        transport = self._session
        if not isinstance(transport, Transport):
            return Sent.made(
                lambda: self.request(
                    method,
                    path,
                    operation=operation,
                    account=account,
                    json=json,
                    params=params,
                    wrap_ttl=wrap_ttl,
                    secret_body=secret_body,
                )
            )
        adapter = self._adapter
        headers = {"X-Vault-Request": "true"} if adapter.request_header else {}
        if self._token:
            headers["X-Vault-Token"] = self._token
        if wrap_ttl is not None:
            headers["X-Vault-Wrap-TTL"] = f"{wrap_ttl}s" if isinstance(wrap_ttl, int) else wrap_ttl
        relative = "/v1/" + path.lstrip("/")
        while "//" in relative:  # as hvac's adapter does
            relative = relative.replace("//", "/")

        def attempt(addr: str) -> tuple[Any, str, str]:
            url = adapter.urljoin(addr, relative)
            pending = transport.send(
                method,
                url,
                headers=headers,
                json=dict(json) if json is not None else None,
                params=dict(params) if params else None,
                timeout=self.timeout,
            )
            return pending, url, addr

        outcome = self._on_members(operation, attempt)
        if isinstance(outcome, VaultUnreachableError):
            return Sent.made(partial(self._answer, None, outcome, operation, path, account))
        pending, url, addr = outcome

        def answer() -> dict[str, Any] | None:
            failure: VaultError | None = None
            response: Any = None
            try:
                response = pending.result()
                if not response.ok:
                    adapter._raise_for_error(method, url, response)  # hvac's own errors
            except hvac_exceptions.VaultError as exc:
                failure = self._translate(exc, method, path, operation, account, json, secret_body)
            except requests.RequestException as exc:
                failure = VaultUnreachableError(addr, operation, type(exc).__name__)
            return self._answer(response, failure, operation, path, account)

        return Sent(answer)

    def _on_members(self, operation: str, attempt: Callable[[str], T]) -> T | VaultUnreachableError:
        """``attempt(address)`` on the member in use. A member that could not be reached (the
        request was surely never sent) is passed over for the next one, which stays in use for
        this client and its siblings; any other failure is the answer. Returns what ``attempt``
        returns, or the unreachable error of the member tried last."""
        count = len(self.members.addrs)
        for tried in range(1, count + 1):
            addr = self.members.current
            try:
                return attempt(addr)
            except requests.RequestException as exc:
                if _never_sent(exc) and tried < count:
                    log.warning("vault.member.unreachable", addr=addr, operation=operation)
                    self.members.failed(addr)
                    continue
                return VaultUnreachableError(addr, operation, type(exc).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(
        self,
        response: Any,
        error: VaultError | None,
        operation: str,
        path: str,
        account: str | None,
    ) -> dict[str, Any] | None:
        if error is not None:
            # Raised here, outside the except block: no foreign exception rides along (8.D, 11.7).
            if not isinstance(error, VaultNotFoundError):  # absence is an answer, not a failure
                log.info(
                    "vault.request.refused",
                    operation=operation,
                    path=path,
                    account=account,
                    error=type(error).__name__,
                )
            raise error
        if isinstance(response, dict):
            return response
        if response is None or response.status_code == 204 or not response.content:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise VaultServerError(operation, path, response.status_code)
        return body

    def _translate(
        self,
        exc: Any,
        method: str,
        path: str,
        operation: str,
        account: str | None,
        body: Mapping[str, Any] | None,
        secret_body: bool,
    ) -> VaultError:
        errors = [str(e) for e in (getattr(exc, "errors", None) or []) if e]
        text = " ".join(errors).lower()
        if isinstance(exc, hvac_exceptions.Forbidden | hvac_exceptions.Unauthorized):
            if "invalid token" in text or "token is expired" in text:
                return VaultTokenInvalidError(operation)
            return VaultPermissionDeniedError(operation, path, account)
        if isinstance(exc, hvac_exceptions.InvalidPath):
            return VaultNotFoundError(operation, path, account)
        if isinstance(exc, hvac_exceptions.VaultDown):
            if "sealed" in text:
                return VaultSealedError(self.addr, operation)
            return VaultUnavailableError(self.addr, operation, 503)
        if isinstance(exc, hvac_exceptions.VaultNotInitialized):
            return VaultUnavailableError(self.addr, operation, 501)
        if isinstance(exc, hvac_exceptions.RateLimitExceeded):
            return VaultUnavailableError(self.addr, operation, 429)
        if isinstance(exc, hvac_exceptions.BadGateway):
            return VaultUnavailableError(self.addr, operation, 502)
        if isinstance(exc, hvac_exceptions.PreconditionFailed):
            return VaultUnavailableError(self.addr, operation, 412)
        if isinstance(exc, hvac_exceptions.InvalidRequest):
            if "check-and-set" in text:
                expected = None
                options = (body or {}).get("options")
                if isinstance(options, Mapping) and isinstance(options.get("cas"), int):
                    expected = int(options["cas"])
                return VaultCasConflictError(operation, path, account, expected)
            if "wrapping token is not valid" in text:
                return WrappingTokenInvalidError(operation, account)
            reason = None if secret_body else ("; ".join(errors)[:_MAX_REASON] or None)
            return VaultInvalidRequestError(operation, path, reason)
        if isinstance(exc, hvac_exceptions.InternalServerError):
            return VaultServerError(operation, path, 500)
        return VaultServerError(operation, path, None)

    # -- conveniences ----------------------------------------------------------------------

    def read(
        self,
        path: str,
        *,
        operation: str,
        account: str | None = None,
        params: Mapping[str, Any] | None = None,
        wrap_ttl: int | str | None = None,
    ) -> dict[str, Any]:
        """GET; :class:`VaultNotFoundError` when nothing is there."""
        body = self.request(
            "GET", path, operation=operation, account=account, params=params, wrap_ttl=wrap_ttl
        )
        if body is None:
            raise VaultNotFoundError(operation, path, account)
        return body

    def write(
        self,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        operation: str,
        account: str | None = None,
        secret_body: bool = False,
        wrap_ttl: int | str | None = None,
    ) -> dict[str, Any] | None:
        """POST ``data`` as JSON."""
        return self.request(
            "POST",
            path,
            operation=operation,
            account=account,
            json=data or {},
            secret_body=secret_body,
            wrap_ttl=wrap_ttl,
        )

    def delete(self, path: str, *, operation: str, account: str | None = None) -> None:
        """DELETE; a missing path is not an error (deleting is idempotent)."""
        try:
            self.request("DELETE", path, operation=operation, account=account)
        except VaultNotFoundError:
            return

    def list(self, path: str, *, operation: str) -> list[str]:
        """LIST (GET ``?list=true``); the keys, or an empty list when nothing is there."""
        try:
            body = self.request("GET", path, operation=operation, params={"list": "true"})
        except VaultNotFoundError:
            return []
        keys = ((body or {}).get("data") or {}).get("keys") or []
        return [str(k) for k in keys]

    # -- tokens ----------------------------------------------------------------------------

    def own_login_name(self) -> str | None:
        """The login name of this client's own token's person: its metadata's for a login's
        token; for a child (a session, custody.vault.session.session_token) the name of its
        entity's alias on the people's mount (OpenBao's default policy lets a token read its
        own entity). Only for a token's holder asking about itself: a child's metadata is its
        maker's choice, so the service never trusts it (:meth:`lookup_self` leaves it out)."""
        info = self.lookup_self()
        if info.username or not info.entity_id:
            return info.username
        try:
            body = self.read(f"identity/entity/id/{info.entity_id}", operation="lookup-self")
        except VaultError:
            return None
        entity = body.get("data") or {}
        mount = f"auth/{self.mounts.userpass}/"
        for alias in entity.get("aliases") or []:
            if alias.get("mount_path") == mount and alias.get("name"):
                return str(alias["name"])
        name = entity.get("name")
        return str(name) if name else None

    def lookup_self(self, caller_token: str | None = None) -> TokenInfo:
        """Who a token belongs to — ``caller_token``, else this client's own; revoked, expired or
        unknown tokens raise :class:`VaultTokenInvalidError`.

        The command service calls this with each caller's own token (issue 6), so a revoked token
        is refused by the server itself, not by a cache.
        """
        if caller_token is not None:
            return self.with_token(caller_token).lookup_self()
        if not self._token:
            raise VaultTokenInvalidError("lookup-self")
        try:
            body = self.read("auth/token/lookup-self", operation="lookup-self")
        except VaultPermissionDeniedError:
            # OpenBao answers 403 "permission denied" for revoked, expired and unknown tokens.
            body = None
        if body is None:
            raise VaultTokenInvalidError("lookup-self")
        return self._token_info(body)

    def lookup_token(self, token: str) -> TokenInfo:
        """What OpenBao says about ``token``, asked with this client's own token
        (``auth/token/lookup``: the service's, for a first-login token, which holds no policy
        and may not look itself up); an invalid token raises :class:`VaultTokenInvalidError`."""
        try:
            body = self.write("auth/token/lookup", {"token": token}, operation="lookup-token")
        except (VaultPermissionDeniedError, VaultInvalidRequestError):
            body = None
        if not body:
            raise VaultTokenInvalidError("lookup-token")
        return self._token_info(body)

    def _token_info(self, body: dict[str, Any]) -> TokenInfo:
        data = body.get("data") or {}
        meta = data.get("meta") or {}
        entity_id = data.get("entity_id") or None
        path = str(data.get("path") or "")
        username = meta.get("username") if isinstance(meta, dict) else None
        first_login_user: str | None = None
        first_login_path = f"auth/{self.mounts.first_login}/login/"
        if path.startswith(f"auth/{self.mounts.first_login}/"):
            # A first login (issue 18) may only enrol a second factor: it names nobody, so no
            # other command of the service is ever made for it (custody.service.commands). The
            # user it was issued to is in the path OpenBao recorded at the login.
            if path.startswith(first_login_path) and path.count("/") == 3:
                first_login_user = path[len(first_login_path) :] or None
            username = None
        elif path.startswith("auth/token/"):
            # A child token's metadata is whatever its creator asked for (a person could name
            # someone else): its owner is found by its entity's login (custody.service.commands),
            # and
            # no use of a use-limited token is spent here on reading the entity.
            username = None
        elif username is None and entity_id:
            # Not userpass (OIDC/JWT): the entity's name is the user name (custody.app.access).
            # The default policy lets a token read its own entity.
            try:
                entity = self.read(f"identity/entity/id/{entity_id}", operation="lookup-self")
                username = (entity.get("data") or {}).get("name")
            except VaultError:
                username = None
        return TokenInfo(
            entity_id=entity_id,
            display_name=str(data.get("display_name") or ""),
            username=str(username) if username else None,
            policies=tuple(sorted(data.get("policies") or ())),
            identity_policies=tuple(sorted(data.get("identity_policies") or ())),
            expire_time=parse_time(data.get("expire_time")),
            ttl=int(data.get("ttl") or 0),
            renewable=bool(data.get("renewable")),
            accessor=str(data.get("accessor") or ""),
            path=path,
            num_uses=int(data.get("num_uses") or 0),
            first_login_user=first_login_user,
            issued_at=parse_time(data.get("issue_time")),
        )

    def create_child_token(self, role: str, *, ttl: int, num_uses: int) -> str:
        """A child of this client's token made through the token role ``role`` (its bounds on
        TTL and uses are OpenBao's to enforce); a token that may not is refused by OpenBao."""
        body = self.write(
            f"auth/token/create/{role}",
            {"ttl": f"{ttl}s", "num_uses": num_uses, "renewable": False},
            operation="create-child-token",
        )
        token = ((body or {}).get("auth") or {}).get("client_token")
        if not token:
            raise VaultPermissionDeniedError("create-child-token", f"auth/token/create/{role}")
        return str(token)

    def renew_self(self, increment: str | None = None) -> int:
        """Renew this client's token; the new TTL in seconds."""
        body = self.write(
            "auth/token/renew-self",
            {"increment": increment} if increment else {},
            operation="renew-self",
        )
        return int(((body or {}).get("auth") or {}).get("lease_duration") or 0)

    def revoke_self(self) -> None:
        """Revoke this client's token (``custodia sesion cerrar``)."""
        self.write("auth/token/revoke-self", operation="revoke-self")

    def change_own_password(self, username: str, password: str) -> None:
        """Change this token's own userpass login's password (policy
        ``custodia-contrasena-propia``: OpenBao refuses any other login's, and any token but the
        login's own: :class:`OwnPasswordDeniedError`)."""
        name = Username.parse(username)
        path = f"auth/{self.mounts.userpass}/users/{name}/password"
        try:
            self.write(path, {"password": password}, operation="own-password", secret_body=True)
        except VaultPermissionDeniedError:
            raise OwnPasswordDeniedError(str(name), path) from None

    def login_userpass(
        self, username: str, password: str, *, mount: str | None = None, code: str | None = None
    ) -> str:
        """Log in with userpass; the new token. Wrong credentials: permission denied. The name
        as typed (``Luis``) is taken in the form OpenBao stores (``luis``), as OpenBao does.

        When OpenBao enforces login MFA on this person (TOTP), the login answers with an MFA
        requirement and no token: ``code`` then completes it (``sys/mfa/validate``); without one
        :class:`SecondFactorRequiredError`; a wrong or reused code is refused by OpenBao
        (:class:`SecondFactorRefusedError`)."""
        username = Username.parse(username)
        mount = mount or self.mounts.userpass
        try:
            body = self.write(
                f"auth/{mount}/login/{username}",
                {"password": password},
                operation="login",
                secret_body=True,
            )
        except VaultInvalidRequestError:
            # userpass answers 400 "invalid username or password" in some versions.
            body = None
        except VaultPermissionDeniedError:  # a wrong password, or a login locked out
            raise LoginRefusedError(username, f"auth/{mount}/login/{username}") from None
        auth = (body or {}).get("auth") or {}
        token = auth.get("client_token")
        requirement = auth.get("mfa_requirement")
        if not token and requirement:
            return self._second_factor(username, requirement, code)
        if not token:
            raise LoginRefusedError(username, f"auth/{mount}/login/{username}")
        return str(token)

    def _second_factor(self, username: str, requirement: dict[str, Any], code: str | None) -> str:
        """Complete a login OpenBao holds for its second factor: the TOTP ``code`` for every
        method it asks for (OpenBao decides whether it is right, and takes it once)."""
        if not code:
            raise SecondFactorRequiredError(username)
        methods = [
            str(method["id"])
            for constraint in (requirement.get("mfa_constraints") or {}).values()
            for method in (constraint.get("any") or [])[:1]
            if method.get("id")
        ]
        try:
            body = self.write(
                "sys/mfa/validate",
                {
                    "mfa_request_id": requirement.get("mfa_request_id"),
                    "mfa_payload": {method: [code] for method in methods},
                },
                operation="login-mfa",
                secret_body=True,
            )
        except (VaultPermissionDeniedError, VaultInvalidRequestError):
            raise SecondFactorRefusedError(username) from None
        token = ((body or {}).get("auth") or {}).get("client_token")
        if not token:
            raise SecondFactorRefusedError(username)
        return str(token)

    # -- the second factor (issue 18) ------------------------------------------------------

    def totp_admin_generate(self, method_id: str, entity_id: str) -> str | None:
        """OpenBao's ``admin-generate`` for ``entity_id`` on the TOTP login method: the otpauth
        URI, shown once; None when the entity already has a secret (OpenBao answers
        ``data: null`` and does not rotate it)."""
        body = self.write(
            "identity/mfa/method/totp/admin-generate",
            {"method_id": method_id, "entity_id": entity_id},
            operation="second-factor-enrol",
        )
        url = ((body or {}).get("data") or {}).get("url")
        return str(url) if url else None

    def revoke_token_accessor(self, accessor: str) -> None:
        """Revoke the token whose accessor is ``accessor`` (a used first-login token)."""
        self.write(
            "auth/token/revoke-accessor", {"accessor": accessor}, operation="revoke-accessor"
        )

    def totp_admin_destroy(self, method_id: str, entity_id: str) -> None:
        """Forget ``entity_id``'s TOTP secret (a lost factor, reset by a coadministrator)."""
        self.write(
            "identity/mfa/method/totp/admin-destroy",
            {"method_id": method_id, "entity_id": entity_id},
            operation="second-factor-reset",
        )
