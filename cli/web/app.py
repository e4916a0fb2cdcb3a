"""The web view: a Starlette application over :class:`cli.web.backend.Backend`.

Every page is one or a few commands to ``custodia servicio`` sent as the logged-in person, so
the scope is the service's (a titular sees their own district, as on the command line). Every
page is also JSON with ``?formato=json``, with the keys of the command line's ``--json``.
Works without JavaScript (there is none): plain links and forms.

Who could abuse it, and what stops them:

- someone who steals the cookie: it is HttpOnly (no script reads it), SameSite=Strict, Secure
  over TLS, random (256 bits), and dies with the person's OpenBao token or at ``/salir``;
- a page elsewhere that posts a form here (CSRF): every form carries the session's CSRF token
  (the login form a token of its own, double-submitted with a cookie), compared in constant
  time; SameSite=Strict on top;
- someone guessing passwords: each failure, per user name and per client address, slows the
  next attempt down (:class:`cli.web.sessions.LoginThrottle`), and OpenBao's own MFA limits apply;
- framing and injected content: ``Content-Security-Policy`` without scripts, ``frame-ancestors
  'none'``, templates autoescaped; the report HTML embedded comes from our own renderer;
- a redirect to elsewhere after login: ``siguiente`` is honoured only as a local path.

There is no reveal: no command that answers a credential, a 2FA code or a seed is ever sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli.web.backend import Backend
from cli.web.sessions import LoginThrottle, SessionStore, WebSession

__all__ = ["PAGES", "create_app"]

COOKIE = "custodia_sesion"
T = TypeVar("T")
LOGIN_CSRF_COOKIE = "custodia_ingreso"
MEXICO_CITY = ZoneInfo("America/Mexico_City")
TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

# Report pages: path -> (report kind of ``custodia reporte``, title in the menu)
REPORT_PAGES: dict[str, tuple[str, str]] = {
    "/cumplimiento": ("cumplimiento", "Cumplimiento"),
    "/obligaciones": ("rotaciones", "Obligaciones"),
    "/exposicion": ("exposicion", "Exposición"),
    "/cambios": ("cambios", "Cambios"),
    "/lecturas": ("lecturas", "Lecturas"),
}
PAGES: dict[str, str] = {
    "/": "Resumen",
    "/incidentes": "Incidentes",
    **{path: title for path, (_, title) in REPORT_PAGES.items()},
    "/historial": "Historial",
    "/bitacora": "Bitácora",
}
# Commands the web view may send: read-only ones, and the acknowledgement. Never a reveal.
ALLOWED_COMMANDS = frozenset(
    {
        "reporte",
        "historial",
        "bitacora.estado",
        "bitacora.exportar",
        "sesion.quien",
        "incidentes.enterado",
    }
)
# Who may download the export bundle: the roles ``bitacora exportar`` serves (CLI.md); the
# service decides, this only hides a link that would be refused.
EXPORT_ROLES = frozenset({"coadministrador", "secretaria"})
BUNDLE_NAME = "custodia-bitacora.jsonl.gz"
KEY_NAME = "custodia-bitacora-clave.json"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_DISTRICT = re.compile(r"^(?:[Dd][Dd])?0?([1-9]|[12][0-9]|3[0-3])$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PageError(Exception):
    """A page could not be shown: the Spanish message and the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _when(value: Any) -> str:
    """An ISO instant in Mexico City time, as people read it ("06/12/2026 11:05")."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%d/%m/%Y")
    return moment.astimezone(MEXICO_CITY).strftime("%d/%m/%Y %H:%M")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hora"] = _when
    env.globals["PAGES"] = PAGES
    return env


def _district(value: str | None) -> str | None:
    if not value:
        return None
    match = _DISTRICT.match(value.strip())
    if not match:
        raise PageError(400, f"«{value[:20]}» no es un distrito (DD01 … DD33).")
    return f"DD{int(match.group(1)):02d}"


def _day(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if not _DAY.match(value) or not _valid_date(value):
        raise PageError(400, f"La fecha de «{name}» debe ser AAAA-MM-DD.")
    return value


def _valid_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _report_body(document: str) -> str:
    """The body of a report rendered by :func:`projections.html.render_html` (our own,
    escaped output), without its title: the page has its own."""
    start = document.find("<body>")
    end = document.rfind("</body>")
    body = document[start + len("<body>") : end] if start >= 0 and end > start else ""
    return re.sub(r"^<h1>.*?</h1>", "", body, count=1, flags=re.S)


def create_app(
    backend: Backend,
    *,
    throttle: LoginThrottle | None = None,
    sessions: SessionStore | None = None,
) -> Starlette:
    """The web view's ASGI application."""
    env = _environment()
    sessions = sessions if sessions is not None else SessionStore()
    limiter = throttle or LoginThrottle()

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = context.get("sesion")
        html = env.get_template(template).render(
            ruta=request.url.path, csrf=session.csrf if session else "", **context
        )
        return HTMLResponse(html, status_code=status)

    def wants_json(request: Request) -> bool:
        return request.query_params.get("formato") == "json"

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def current(request: Request) -> WebSession | None:
        return sessions.get(request.cookies.get(COOKIE))

    async def revoke_retired() -> None:
        """Revokes in OpenBao the tokens of sessions the store ended (idle, a person's oldest
        past their limit): no token outlives its session."""
        for retired in sessions.retired():
            await backend.logout(retired.identity)

    def error_page(request: Request, session: WebSession | None, error: PageError) -> Response:
        if wants_json(request):
            return JSONResponse({"error": error.message}, status_code=error.status)
        return render(request, "error.html", error.status, sesion=session, mensaje=error.message)

    async def send(session: WebSession, command: str, args: dict[str, Any]) -> Any:
        if command not in ALLOWED_COMMANDS:  # a programming error, never a user's choice
            raise PageError(500, "Operación no disponible en la vista web.")
        try:
            return await backend.call(session.identity, command, args)
        except Exception as exc:
            raise _page_error(exc) from None

    def page(
        handler: Callable[[Request, WebSession], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page behind the login: without a live session, to ``/ingresar``."""

        async def endpoint(request: Request) -> Response:
            session = current(request)
            if session is None:
                await revoke_retired()  # this one, if it ended idle
                if wants_json(request):
                    return JSONResponse({"error": "Inicie sesión."}, status_code=401)
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                response = RedirectResponse(
                    f"/ingresar?siguiente={_quote(target)}", status_code=303
                )
                response.delete_cookie(COOKIE)
                return response
            try:
                return await handler(request, session)
            except PageError as error:
                return error_page(request, session, error)

        return endpoint

    async def report(session: WebSession, kind: str, request: Request, fmt: str) -> Any:
        args: dict[str, Any] = {
            "tipo": kind,
            "formato": fmt,
            "distrito": _district(request.query_params.get("distrito")),
            "desde": _day(request.query_params.get("desde"), "desde"),
            "hasta": _day(request.query_params.get("hasta"), "hasta"),
        }
        data = await send(session, "reporte", args)
        content = str(data["contenido"])
        return json.loads(content) if fmt == "json" else content

    # -- pages ------------------------------------------------------------------------------

    async def visible(session: WebSession, kind: str, request: Request) -> list[Any] | None:
        """A report the person's role may see; None where the service refuses it (403): the
        summary shows the sections of their role only."""
        try:
            rows: list[Any] = await report(session, kind, request, "json")
        except PageError as error:
            if error.status != 403:
                raise
            return None
        return rows

    async def resumen(request: Request, session: WebSession) -> Response:
        incidents = await visible(session, "incidentes", request)
        obligations = await visible(session, "rotaciones", request)
        compliance = await visible(session, "cumplimiento", request)
        ledger = await send(session, "bitacora.estado", {})
        summary = {
            "incidentes_abiertos": None
            if incidents is None
            else [i for i in incidents if _open_incident(i)],
            "obligaciones_vencidas": None
            if obligations is None
            else [o for o in obligations if o.get("estado") == "vencida"],
            "distritos_no_cumplen": None
            if compliance is None
            else [c for c in compliance if c.get("veredicto") == "no_cumple"],
            "bitacora": ledger,
        }
        if wants_json(request):
            return JSONResponse(summary)
        return render(request, "resumen.html", sesion=session, **summary)

    async def incidentes(request: Request, session: WebSession) -> Response:
        rows = await report(session, "incidentes", request, "json")
        if wants_json(request):
            return JSONResponse(rows)
        document = await report(session, "incidentes", request, "html")
        who = await send(session, "sesion.quien", {})
        return render(
            request,
            "incidentes.html",
            sesion=session,
            incidentes=rows,
            cuerpo=_report_body(document),
            puede_enterarse="secretaria" in _roles(who),
            aviso=request.query_params.get("aviso"),
        )

    async def enterado(request: Request, session: WebSession) -> Response:
        form = await request.form()
        if not session.csrf_ok(_text(form.get("csrf"))):
            raise PageError(403, "El formulario caducó o no es de esta sesión; recargue la página.")
        incident = request.path_params["incidente"]
        medidas = (_text(form.get("medidas")) or "").strip() or None
        if medidas is not None and len(medidas) > 2000:
            raise PageError(400, "Las medidas no pueden pasar de 2000 caracteres.")
        await send(session, "incidentes.enterado", {"incidente": incident, "medidas": medidas})
        if wants_json(request):
            return JSONResponse({"incidente": incident, "enterado": True})
        return RedirectResponse("/incidentes?aviso=enterado", status_code=303)

    def report_page(kind: str, title: str) -> Callable[[Request, WebSession], Awaitable[Response]]:
        async def handler(request: Request, session: WebSession) -> Response:
            if wants_json(request):
                return JSONResponse(await report(session, kind, request, "json"))
            document = await report(session, kind, request, "html")
            return render(
                request,
                "reporte.html",
                sesion=session,
                titulo=title,
                cuerpo=_report_body(document),
                distrito=request.query_params.get("distrito") or "",
            )

        return handler

    async def historial(request: Request, session: WebSession) -> Response:
        distrito = _district(request.query_params.get("distrito"))
        fecha = _day(request.query_params.get("fecha"), "fecha")
        rows: list[dict[str, Any]] = []
        if distrito:
            rows = await send(session, "historial", {"distrito": distrito, "fecha": fecha})
        if wants_json(request):
            if not distrito:
                raise PageError(400, "Indique el distrito (?distrito=DD05).")
            return JSONResponse(rows)
        return render(
            request,
            "historial.html",
            sesion=session,
            filas=rows,
            distrito=distrito or "",
            fecha=fecha or "",
        )

    async def bitacora(request: Request, session: WebSession) -> Response:
        status = await send(session, "bitacora.estado", {})
        if wants_json(request):
            return JSONResponse(status)
        who = await send(session, "sesion.quien", {})
        return render(
            request,
            "bitacora.html",
            sesion=session,
            estado=status,
            puede_exportar=bool(EXPORT_ROLES & _roles(who)),
            paquete=BUNDLE_NAME,
            clave=KEY_NAME,
        )

    async def paquete(request: Request, session: WebSession) -> Response:
        """The export bundle of ``custodia bitacora exportar``, from the service's pages
        (:mod:`custody.service.web_commands`), written by the same writer."""
        pages: list[dict[str, Any]] = []
        args: dict[str, Any] = {}
        while True:
            page_data = await send(session, "bitacora.exportar", args)
            pages.append(page_data)
            if page_data["siguiente_punto"] is None and page_data["siguiente_evento"] is None:
                break
            next_note, next_event = page_data["siguiente_punto"], page_data["siguiente_evento"]
            following = {
                "hasta": page_data["hasta"],
                "puntos": page_data["puntos"],
                "punto": page_data["puntos"] if next_note is None else next_note,
                "evento": page_data["hasta"] + 1 if next_event is None else next_event,
            }
            if following == args:  # no progress: never loop on a confused answer
                raise PageError(502, "El servicio no pudo exportar la bitácora.")
            args = following
        body = await anyio.to_thread.run_sync(_bundle_bytes, pages)
        return Response(
            body,
            media_type="application/gzip",
            headers={"Content-Disposition": f'attachment; filename="{BUNDLE_NAME}"'},
        )

    async def clave_publica(request: Request, session: WebSession) -> Response:
        status = await send(session, "bitacora.estado", {})
        keyring = status.get("clave_publica")
        if not keyring:
            raise PageError(404, "La clave pública de la bitácora aún no está disponible.")
        return Response(
            json.dumps(keyring, indent=2, ensure_ascii=False) + "\n",
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{KEY_NAME}"'},
        )

    # -- login and logout -------------------------------------------------------------------

    async def ingresar(request: Request) -> Response:
        siguiente = _local(request.query_params.get("siguiente"))
        if request.method == "GET":
            if current(request) is not None:
                return RedirectResponse(siguiente, status_code=303)
            return login_form(request, siguiente)
        form = await request.form()
        usuario = (_text(form.get("usuario")) or "").strip()
        contrasena = _text(form.get("contrasena")) or ""
        codigo = (_text(form.get("codigo")) or "").strip() or None
        siguiente = _local(_text(form.get("siguiente")))
        presented = _text(form.get("csrf"))
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not presented or not expected or not _same(presented, expected):
            return login_form(
                request, siguiente, 403, "El formulario caducó; vuelva a intentarlo.", usuario
            )
        if not usuario or not contrasena:
            return login_form(
                request, siguiente, 400, "Escriba su usuario y su contraseña.", usuario
            )
        identity, error = await throttled(
            request, usuario, lambda: backend.login(usuario, contrasena, codigo)
        )
        if error is not None:
            return login_form(request, siguiente, error.status, error.message, usuario)
        assert identity is not None  # no error: the login's identity
        session = sessions.open(identity)
        await revoke_retired()
        response = RedirectResponse(siguiente, status_code=303)
        response.set_cookie(
            COOKIE,
            session.sid,
            httponly=True,
            secure=secure(request),
            samesite="strict",
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ingresar")
        return response

    def login_form(
        request: Request,
        siguiente: str,
        status: int = 200,
        mensaje: str | None = None,
        usuario: str = "",
    ) -> Response:
        import secrets

        token = secrets.token_urlsafe(32)
        response = render(
            request,
            "ingresar.html",
            status,
            sesion=None,
            token_ingreso=token,
            siguiente=siguiente,
            mensaje=mensaje,
            usuario=usuario,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            secure=secure(request),
            samesite="strict",
            path="/ingresar",
        )
        return response

    async def throttled(
        request: Request,
        user: str,
        attempt: Callable[[], Awaitable[T]],
        wrong: str | None = None,
    ) -> tuple[T | None, PageError | None]:
        """``attempt`` (a login to OpenBao as ``user``) through the login throttle: its result,
        or the page's error. A refused password counts as a failure (said ``wrong``, when
        given); past the throttle's limit OpenBao is not asked (429)."""
        address = request.client.host if request.client else "?"
        async with limiter.gate(user):
            if limiter.exhausted(user):
                return None, PageError(429, TOO_MANY_ATTEMPTS)
            wait = limiter.delay(user, address)
            if wait:
                await anyio.sleep(wait)
            try:
                result = await attempt()
            except Exception as exc:
                refusal = _login_refusal(exc)
                if refusal is None:
                    return None, _page_error(exc)
                counts, message = refusal
                if counts:
                    limiter.failed(user, address)
                return None, PageError(401, (wrong or message) if counts else message)
            limiter.succeeded(user)
            return result, None

    async def contrasena(request: Request, session: WebSession) -> Response:
        """Change one's own password (``custodia sesion contrasena``): the current one (and the
        second factor's code) proves it is the person, not whoever found the session open.
        Failed attempts count as failed logins (the same throttle: no lockout in OpenBao)."""
        if request.method == "GET":
            return render(request, "contrasena.html", sesion=session)
        form = await request.form()
        if not session.csrf_ok(_text(form.get("csrf"))):
            raise PageError(403, "El formulario caducó o no es de esta sesión; recargue la página.")
        actual = _text(form.get("actual")) or ""
        nueva = _text(form.get("nueva")) or ""
        codigo = (_text(form.get("codigo")) or "").strip() or None

        def again(status: int, message: str) -> Response:
            return render(request, "contrasena.html", status, sesion=session, mensaje=message)

        if not actual or not nueva:
            return again(400, "Escriba su contraseña actual y la nueva.")
        if nueva != (_text(form.get("confirmacion")) or ""):
            return again(400, "La contraseña nueva y su confirmación no coinciden.")
        _, error = await throttled(
            request,
            session.identity.username,
            lambda: backend.change_password(session.identity, actual, nueva, codigo),
            wrong="La contraseña actual o el código no son correctos.",
        )
        if error is not None:
            return again(error.status, error.message)
        return render(request, "contrasena.html", sesion=session, cambiada=True)

    async def salir(request: Request) -> Response:
        session = current(request)
        if request.method == "POST" and session is not None:
            form = await request.form()
            if not session.csrf_ok(_text(form.get("csrf"))):
                return error_page(
                    request, session, PageError(403, "El formulario caducó; recargue la página.")
                )
            sessions.close(session.sid)
            await backend.logout(session.identity)
            await revoke_retired()
        elif request.method == "GET" and session is not None:
            return render(request, "salir.html", sesion=session)
        response = RedirectResponse("/ingresar", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["nombre"]
        if name == "reporte.css":
            from projections.html import CSS

            return Response(CSS, media_type="text/css")
        if name != "custodia.css":
            return Response("", status_code=404)
        return Response((STATIC / "custodia.css").read_text(), media_type="text/css")

    routes = [
        Route("/ingresar", ingresar, methods=["GET", "POST"]),
        Route("/salir", salir, methods=["GET", "POST"]),
        Route("/contrasena", page(contrasena), methods=["GET", "POST"]),
        Route("/estatico/{nombre}", static),
        Route("/", page(resumen)),
        Route("/incidentes", page(incidentes)),
        Route("/incidentes/{incidente}/enterado", page(enterado), methods=["POST"]),
        Route("/historial", page(historial)),
        Route("/bitacora", page(bitacora)),
        Route("/bitacora/clave-publica.json", page(clave_publica)),
        Route("/bitacora/paquete.jsonl.gz", page(paquete)),
        *(
            Route(path, page(report_page(kind, title)))
            for path, (kind, title) in REPORT_PAGES.items()
        ),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SecurityHeaders), Middleware(SmallForms)]
    )


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and HSTS over TLS) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if tls:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, sending)


TOO_MANY_ATTEMPTS = (
    "Demasiados intentos fallidos con este usuario: la vista web no lo intentará de nuevo por "
    "15 minutos (así OpenBao no bloquea su acceso). Puede entrar por la línea de órdenes, o "
    "avisar a la UTCSyD si no fue usted."
)

# Every form of this application is a few fields (the largest, the measures of an
# acknowledgement, 2,000 characters): a request body beyond this is not one of them.
FORM_LIMIT = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class SmallForms:
    """A request with a body reaches the application only as a small URL-encoded form, read
    whole here first. Anything else is refused before it is read: no upload is spooled to
    disk (a multipart body would be, before any login or CSRF check) and no memory is held
    for a body that cannot be a form of this application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        length = headers.get("content-length")
        if kind and kind != FORM_TYPE:
            await _refuse(scope, receive, send, 415, "Solo se aceptan formularios de esta página.")
            return
        if length is not None and (not length.isdigit() or int(length) > FORM_LIMIT):
            await _refuse(scope, receive, send, 413, "El formulario es demasiado grande.")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > FORM_LIMIT:
                await _refuse(scope, receive, send, 413, "El formulario es demasiado grande.")
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    response = PlainTextResponse(text, status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)


# -- helpers ----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


def _local(target: str | None) -> str:
    """Only a path of this site (``/…``, never ``//host`` or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _roles(who: Any) -> set[str]:
    roles = who.get("roles") if isinstance(who, dict) else None
    found: set[str] = set()
    for role in roles or []:
        found.add(str(role.get("rol") if isinstance(role, dict) else role))
    return found


def _bundle_bytes(pages: list[dict[str, Any]]) -> bytes:
    """The bundle file (gzip'd JSON lines) of the service's export pages."""
    import base64
    import tempfile

    from events.checkpoint import PublicKeyring
    from events.ledger_verify import write_bundle

    first = pages[0]
    notes = [base64.b64decode(n) for p in pages for n in p["puntos_de_control"]]
    events = ((int(seq), base64.b64decode(leaf)) for p in pages for seq, leaf in p["eventos"])
    with tempfile.TemporaryDirectory(prefix="custodia-web-") as tmp:
        path = Path(tmp) / BUNDLE_NAME
        write_bundle(
            path,
            origin=str(first["origen"]),
            keyring=PublicKeyring.from_json(first["clave_publica"]),
            checkpoints=notes,
            events=events,
            last_sequence=int(first["hasta"]),
        )
        return path.read_bytes()


def _open_incident(row: dict[str, Any]) -> bool:
    return row.get("estado") not in ("cerrado", "descartado") and not row.get("cerrado")


def _named(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is (or, from the service, stands for) the error class ``name``."""
    names = getattr(exc, "remote_chain", None) or [c.__name__ for c in type(exc).__mro__]
    return name in names


def _login_refusal(exc: BaseException) -> tuple[bool, str] | None:
    """What the login form says when OpenBao refused the login, and whether it counts as a
    failure for the throttle (None: not a refusal, e.g. OpenBao unreachable, or a login that
    may not change its own password)."""
    if _named(exc, "OwnPasswordDeniedError"):
        return None
    if _named(exc, "SecondFactorRequiredError"):  # the password was right
        return False, "OpenBao exige su segundo factor: escriba el código de seis dígitos."
    if _named(exc, "SecondFactorRefusedError"):
        return True, "OpenBao rechazó el código (incorrecto o ya usado); espere el siguiente."
    if _page_error(exc).status in (401, 403):
        return True, "Usuario, contraseña o código incorrectos."
    return None


def _page_error(exc: BaseException) -> PageError:
    """A Spanish message and an HTTP status for whatever the service or OpenBao answered."""
    from cli.messages import (
        EXIT_CONFIG,
        EXIT_CONFLICT,
        EXIT_DENIED,
        EXIT_NOT_FOUND,
        EXIT_UNAVAILABLE,
        EXIT_USAGE,
        describe,
    )

    if isinstance(exc, PageError):
        return exc
    import cli.reporte_cmds  # noqa: F401  (registers the reports' messages on import)

    code, message = describe(exc)
    status = {
        EXIT_USAGE: 400,
        EXIT_DENIED: 403,
        EXIT_NOT_FOUND: 404,
        EXIT_CONFLICT: 409,
        EXIT_UNAVAILABLE: 503,
        EXIT_CONFIG: 503,
    }.get(code, 422)
    return PageError(status, message)
