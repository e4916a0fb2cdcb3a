"""``sesion iniciar`` with OpenBao's login second factor, and its first-login enrolment (issue 18,
see custody.app.second_factor): thin, the work is OpenBao's and the service's."""

from __future__ import annotations

import io
import sys
from typing import Any

import structlog
import typer

log = structlog.get_logger()


# Said at a first login: whoever registered the person knows the initial password.
_CHANGE_IT = (
    "Cambie su contraseña inicial con «custodia sesion contrasena»: quien le dio el acceso "
    "también la conoce."
)


def qr_text(uri: str) -> str:
    """The otpauth URI as a QR code drawn with block characters (for a terminal)."""
    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def login_or_enrol(username: str, password: str, code: str | None, json_output: bool) -> None:
    """Log in; when OpenBao asks for a code and there is none, enrol the factor at a first
    login (the otpauth URI shown once). After a login with a code, the service is told, so
    the first login goes and the enrolment is recorded."""
    from cli.output import print_json
    from cli.remote import settings
    from custody.bootstrap import resolve
    from custody.errors import SecondFactorRequiredError, VaultPermissionDeniedError
    from custody.vault import session as sessions

    current = settings()
    endpoints = resolve(current, "cliente")
    path = sessions.session_path(current)
    code = code.strip() if code else None
    try:
        opened = sessions.login(
            endpoints.vault_addr,
            username,
            password,
            path,
            verify=endpoints.vault_verify,
            code=code,
        )
    except (SecondFactorRequiredError, VaultPermissionDeniedError) as refused:
        # A first login: the initial password (alta), or the first-login password a
        # coadministrator gave after a reset (then the usual password is refused above).
        uri = None if code else _enrol(endpoints, username, password)
        if uri is None:
            raise
        same_password = isinstance(refused, SecondFactorRequiredError)
        if json_output:
            print_json({"usuario": username, "otpauth": uri, "sesion_iniciada": False})
            return
        typer.echo(
            "Primer ingreso: registre su segundo factor en su aplicación autenticadora "
            "(se muestra una sola vez)."
        )
        if sys.stdout.isatty():
            typer.echo(qr_text(uri))
        typer.echo(f"  {uri}")
        if same_password and sys.stdin.isatty():
            entered = typer.prompt("Código de seis dígitos de su aplicación").strip()
            opened = sessions.login(
                endpoints.vault_addr,
                username,
                password,
                path,
                verify=endpoints.vault_verify,
                code=entered,
            )
            _confirm()
            typer.echo(f"Segundo factor registrado. Sesión iniciada como {opened.username}.")
            typer.echo(_CHANGE_IT)
            return
        typer.echo(
            "Después inicie sesión con «custodia sesion iniciar --usuario "
            f"{username} --codigo NNNNNN» y el código que muestre su aplicación."
        )
        typer.echo(_CHANGE_IT)
        return
    if code:
        _confirm()
    if json_output:
        print_json({"usuario": opened.username, "sesion_iniciada": True})
        return
    typer.echo(f"Sesión iniciada como {opened.username}.")


def _enrol(endpoints: Any, username: str, password: str) -> str | None:
    """A first login: log in on the first-login mount (a token that can do nothing in OpenBao)
    and ask the service to enrol the factor of that login's own person; the otpauth URI (sealed
    to this call's reply key), or None when there is no first login (none made, or gone after
    the enrolment) or nothing new to show (enrolled already)."""
    from custody.service.client import CommandClient
    from custody.vault.client import VaultClient
    from events.domain import Username
    from events.errors import CustodiaError, VaultError

    name = str(Username.parse(username))
    anonymous = VaultClient(endpoints.vault_addr, None, verify=endpoints.vault_verify)
    try:
        token = anonymous.login_userpass(name, password, mount=anonymous.mounts.first_login)
    except VaultError:
        return None
    try:
        data = CommandClient(endpoints, token, username=name, first_login=True).call(
            "segundo_factor.inscribir"
        )
    except CustodiaError as exc:
        log.info("segundo_factor.inscripcion_omitida", error=type(exc).__name__)
        return None
    uri = (data or {}).get("otpauth") if isinstance(data, dict) else None
    return str(uri) if uri else None


def _confirm() -> None:
    """Tell the service a login with a code worked: it deletes the person's first login and
    records the enrolment once. Not the login's business if it cannot (no enforcement here,
    the service down): the first login can enrol nothing once the factor exists."""
    from cli.remote import call
    from events.errors import CustodiaError

    try:
        call("segundo_factor.confirmar")
    except CustodiaError as exc:
        log.info("segundo_factor.confirmacion_omitida", error=type(exc).__name__)


def change_password(
    username: str | None, password_stdin: bool, code: str | None, json_output: bool
) -> None:
    """``sesion contrasena``: the current password (and the second factor's code when OpenBao
    asks for it) and the new one, from a hidden prompt or two lines of standard input."""
    from cli.output import ask_secret, print_json
    from cli.remote import settings
    from custody.bootstrap import resolve
    from custody.errors import SecondFactorRequiredError
    from custody.vault import session as sessions
    from events.domain import Username

    current_settings = settings()
    name = str(Username.parse(username or _session_user(sessions.session_path(current_settings))))
    if password_stdin:
        current = sys.stdin.readline().rstrip("\n")
        new = sys.stdin.readline().rstrip("\n")
    else:
        current = ask_secret("Contraseña actual")
        new = ask_secret("Contraseña nueva", confirm=True)
    if not current:
        from events.domain import ValidationError

        raise ValidationError("contrasena", "empty")
    sessions.check_new_password(current, new)
    endpoints = resolve(current_settings, "cliente")
    code = code.strip() if code else None

    def change(code: str | None) -> None:
        sessions.change_password(
            endpoints.vault_addr, name, current, new, verify=endpoints.vault_verify, code=code
        )

    try:
        change(code)
    except SecondFactorRequiredError:
        if code or not sys.stdin.isatty():
            raise
        change(typer.prompt("Código de seis dígitos de su aplicación").strip())
    if json_output:
        print_json({"usuario": name, "contrasena_cambiada": True})
        return
    still = _open_session_of(sessions.session_path(current_settings), name)
    typer.echo(
        f"Contraseña de {name} cambiada. Úsela desde su próximo inicio de sesión"
        + ("; la sesión abierta sigue vigente." if still else ".")
    )


def _open_session_of(path: Any, name: str) -> bool:
    """Whether the saved session is ``name``'s and has not expired."""
    from custody.vault import session as sessions
    from events.errors import CustodiaError

    try:
        return sessions.load(path).username == name
    except CustodiaError:
        return False


def _session_user(path: Any) -> str:
    """The user of the saved session (expired or not); with none, a usage error (exit 2)
    asking for ``--usuario``."""
    from typer._click.exceptions import UsageError

    from custody.vault import session as sessions

    try:
        return sessions.load(path).username
    except sessions.SessionExpiredError as expired:
        return expired.username
    except sessions.NoSessionError:
        raise UsageError("No hay sesión abierta: indique su usuario con --usuario.") from None
