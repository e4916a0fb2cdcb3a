"""``custodia demo``: the main job on the embedded default, in a throw-away home.

Every step runs the real ``custodia`` executable as the person it belongs to (own session),
against a real ``custodia servicio`` on the embedded NATS and OpenBao, exactly as users do. The
run ends with nothing left running and nothing written outside its temporary home.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.spanish import App
from custody import config

PEOPLE = {
    # user: (role, district, name)
    "luis": ("titular", "DD05", "Luis Pérez Gómez"),
    "bety": ("administrador", "DD05", "Beatriz Ramírez"),
    "carlos": ("administrador", "DD05", "Carlos Núñez"),
    "marta": ("titular", "DD12", "Marta Solís"),
    "dani": ("administrador", "DD12", "Daniela Ortiz"),
    "sofia": ("secretaria", None, "Sofía Herrera"),
}


def register(app: App) -> None:
    app.command("demo")(demo)


class DemoError(Exception):
    """A step of the demo did not turn out as the story says."""


class Story:
    """Runs the steps, narrates them in Spanish (or collects them for ``--json``)."""

    def __init__(self, home: Path, quiet: bool) -> None:
        self.home = home
        self.quiet = quiet
        self.steps: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(config.PREFIX)}
        self.env[config.HOME.key] = str(home)
        self.exe = str(Path(sys.executable).parent / "custodia")
        self.passwords = {user: f"{user}-{os.urandom(9).hex()}" for user in ("ana", *PEOPLE)}

    def say(self, text: str) -> None:
        if not self.quiet:
            typer.echo(text)

    def step(self, name: str, action: Callable[[], str | None]) -> None:
        start = time.monotonic()
        try:
            detail = action()
        except Exception as exc:
            self.steps.append({"paso": name, "ok": False, "error": str(exc)[:300]})
            self.say(f"  ✗ {name}: {exc}")
            raise
        entry: dict[str, Any] = {
            "paso": name,
            "ok": True,
            "segundos": round(time.monotonic() - start, 2),
        }
        if detail:
            entry["detalle"] = detail
        self.steps.append(entry)
        self.say(f"  ✓ {name}" + (f" — {detail}" if detail else ""))

    def run(
        self, user: str | None, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if user:
            env[config.SESION.key] = str(self.home / f"sesion-{user}.json")
        return subprocess.run(
            [self.exe, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, user: str | None, *args: str, stdin: str | None = None) -> Any:
        result = self.run(user, *args, "--json", stdin=stdin)
        if result.returncode != 0:
            raise DemoError(f"{' '.join(args[:2])}: {result.stderr.strip()}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    def refused(self, user: str, *args: str, code: int | None = None) -> str:
        """The refusal's message; ``code``: the exit status it must have (any but 0 if None)."""
        result = self.run(user, *args)
        if result.returncode == 0 or (code is not None and result.returncode != code):
            raise DemoError(f"{' '.join(args[:2])}: expected refusal, exit {result.returncode}")
        return result.stderr.strip().removeprefix("Error: ")

    def login(self, user: str) -> None:
        """``sesion iniciar``; people who can read credentials use OpenBao's second factor: at
        their first login the demo takes the otpauth URI shown once, as an authenticator app
        would, and logs in with its current code (issue 18)."""
        args = ("sesion", "iniciar", "--usuario", user, "--password-stdin", "--json")
        result = self.run(user, *args, stdin=self.passwords[user] + "\n")
        if result.returncode != 0:
            raise DemoError(result.stderr.strip())
        answer = json.loads(result.stdout)
        if answer.get("otpauth"):
            code = totp_now(str(answer["otpauth"]))
            result = self.run(user, *args, "--codigo", code, stdin=self.passwords[user] + "\n")
            if result.returncode != 0:
                raise DemoError(result.stderr.strip())


def totp_now(uri: str) -> str:
    """The current code of an otpauth URI (what the person's authenticator app shows)."""
    import base64
    from urllib.parse import parse_qs, urlparse

    from cryptography.hazmat.primitives.hashes import SHA1
    from cryptography.hazmat.primitives.twofactor.totp import TOTP

    secret = parse_qs(urlparse(uri).query)["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303  # RFC 6238
    return totp.generate(int(time.time())).decode()


def demo(
    json_output: Annotated[bool, typer.Option("--json", help="Resumen JSON al final.")] = False,
    conservar: Annotated[
        bool, typer.Option("--conservar", help="No borra el directorio temporal al terminar.")
    ] = False,
    web: Annotated[
        bool,
        typer.Option(
            "--web",
            help="Al terminar, deja la vista web en marcha (hasta Ctrl-C) para recorrerla.",
        ),
    ] = False,
) -> None:
    """Recorre Custodia de punta a punta sobre servidores embebidos en un directorio desechable.

    Arranca NATS y OpenBao propios, inicializa, arranca el servicio, da de alta a personas de
    cada rol y cuentas de varios distritos, y recorre una historia realista: designación,
    sustitución por vacaciones con rotación, lectura auditada de contraseña y código 2FA, una
    lectura rechazada, una solicitud de cambio aprobada y aplicada, un incidente notificado a la
    Secretaría Ejecutiva, contenido y cerrado; termina con la verificación de la bitácora. No
    deja procesos en ejecución ni archivos fuera de su directorio temporal.

    Ejemplo: [cyan]custodia demo --json[/cyan]
    """
    from cli.output import print_json

    home = Path(tempfile.mkdtemp(prefix="custodia-demo-"))
    story = Story(home, quiet=json_output)
    service: subprocess.Popen[bytes] | None = None
    verified = False
    ok = False
    story.say(f"Custodia — demostración en {home}\n")
    try:
        service = _walk(story)
        verified = True
        ok = True
        if web:
            _serve_web(story)
        else:
            story.say("\nPara recorrer la vista web con estos datos: custodia demo --web")
    except (DemoError, subprocess.TimeoutExpired, OSError, ValueError):
        ok = False
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(5)
        story.run(None, "detener")
        if not conservar:
            shutil.rmtree(home, ignore_errors=True)
    elapsed = round(time.monotonic() - story.started, 1)
    if json_output:
        print_json(
            {"ok": ok, "pasos": story.steps, "bitacora_verificada": verified, "segundos": elapsed}
        )
    else:
        story.say(f"\n{'Listo' if ok else 'La demostración falló'} en {elapsed:.1f} s.")
    if not ok:
        raise typer.Exit(1)


def _serve_web(story: Story) -> None:
    """``custodia web`` over this demo's home until Ctrl-C: its address and the demo's (throw-away)
    logins of the Secretaría Ejecutiva and a titular are printed."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    web = subprocess.Popen(
        [story.exe, "web", "--puerto", str(port)],
        env=story.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while web.poll() is None:  # printed only once it answers
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise DemoError("la vista web no arrancó") from None
                time.sleep(0.1)
        if web.poll() is not None:
            raise DemoError("la vista web no arrancó")
        typer.echo(
            f"\nVista web: http://127.0.0.1:{port}/ingresar (Ctrl-C para terminar)\n"
            f"  Secretaría Ejecutiva: sofia / {story.passwords['sofia']}\n"
            f"  Titular de DD05:      luis / {story.passwords['luis']}\n"
            "  (contraseñas de esta demostración desechable)"
        )
        web.wait()
    except KeyboardInterrupt:
        typer.echo("")
    finally:
        web.terminate()
        try:
            web.wait(10)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait(5)


def _walk(story: Story) -> subprocess.Popen[bytes]:
    s = story
    s.say("1. Instalación")
    s.step(
        "Inicializar: NATS JetStream y OpenBao embebidos, políticas y los 33 distritos",
        lambda: _init(s),
    )
    holder: dict[str, subprocess.Popen[bytes]] = {}
    s.step(
        "Arrancar el servicio de órdenes (único escritor de la bitácora)",
        lambda: _start_service(s, holder),
    )
    s.step("Iniciar sesión como coadministradora de la UTCSyD (ana)", lambda: s.login("ana"))

    s.say("\n2. Personas y cuentas")
    s.step(
        "Dar de alta a titulares, personas administradoras y a la Secretaría Ejecutiva",
        lambda: _people(s),
    )
    s.step("Registrar titulares de DD05 y DD12", lambda: _titulars(s))
    s.step("Registrar cuentas institucionales de DD05 y DD12 (10.I–VIII)", lambda: _accounts(s))
    s.step("Rechazar una cuenta con correo fuera de iecm.mx", lambda: _refused_account(s))
    s.step(
        "Registrar una cuenta preexistente que incumple (queda señalada)",
        lambda: _violating_account(s),
    )
    s.step("Generar y confirmar las contraseñas iniciales", lambda: _initial_rotations(s))

    s.say("\n3. Designación y sustitución (6.VII, 6.X)")
    s.step("El titular de DD05 designa a bety como administradora", lambda: _designate(s))
    s.step(
        "bety lee la contraseña de DD05-x (lectura registrada antes de mostrarse)",
        lambda: _reveal(s, "bety"),
    )
    s.step("El titular no puede leer credenciales (6.IX)", lambda: _titular_refused(s))
    s.step(
        "Vacaciones: carlos sustituye a bety; el acceso cambia de inmediato", lambda: _vacation(s)
    )
    s.step("bety, ya sin designación, es rechazada por OpenBao", lambda: _former_refused(s))
    s.step("La UTCSyD rota y confirma: se cierran las obligaciones", lambda: _rotate_all(s))
    s.step("carlos lee la contraseña nueva y obtiene un código 2FA", lambda: _substitute_reads(s))

    s.say("\n4. Cambios de configuración (6.XI, 11.1)")
    s.step(
        "Solicitud de cambio de teléfono con memorándum; aprobada y aplicada",
        lambda: _change_request(s),
    )

    s.say("\n5. Incidente (8.C, 9.XVIII)")
    s.step(
        "Cuenta intervenida: reporte, notificación a la Secretaría Ejecutiva, rotación, "
        "contención y cierre",
        lambda: _incident(s),
    )
    s.step("La Secretaría Ejecutiva revisa la bitácora de incidentes", lambda: _incident_ledger(s))

    s.say("\n6. Cumplimiento y bitácora")
    s.step("Estado de cumplimiento por cuenta", lambda: _compliance(s))
    s.step(
        "Verificar la bitácora completa contra sus puntos de control firmados", lambda: _verify(s)
    )
    return holder["service"]


def _init(s: Story) -> str:
    data = s.ok(
        None,
        "init",
        "--usuario",
        "ana",
        "--nombre",
        "Ana Torres",
        "--correo",
        "ana.torres@iecm.mx",
        "--password-stdin",
        stdin=s.passwords["ana"] + "\n",
    )
    return f"NATS {data['nats']['url']}, OpenBao {data['vault']['addr']}"


def _start_service(s: Story, holder: dict[str, subprocess.Popen[bytes]]) -> str:
    log = (s.home / "servicio.log").open("wb")
    env = dict(s.env)
    env[config.CHECKPOINT_SECONDS.key] = "1"
    service = subprocess.Popen([s.exe, "servicio"], env=env, stdout=log, stderr=log)
    holder["service"] = service
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"servicio_listo" in (s.home / "servicio.log").read_bytes():
            return f"pid {service.pid}"
        if service.poll() is not None:
            raise DemoError("the service exited")
        time.sleep(0.1)
    raise DemoError("the service did not start")


def _people(s: Story) -> str:
    for user, (role, district, name) in PEOPLE.items():
        args = [
            "personas",
            "alta",
            "--usuario",
            user,
            "--nombre",
            name,
            "--correo",
            f"{user}@iecm.mx",
            "--rol",
            role,
            "--password-stdin",
        ]
        if district:
            args += ["--distrito", district]
        s.ok("ana", *args, stdin=s.passwords[user] + "\n")
        s.login(user)
    return f"{len(PEOPLE)} personas con sesión propia"


def _titulars(s: Story) -> str:
    s.ok("ana", "titular", "--distrito", "DD05", "--persona", "luis")
    s.ok("ana", "titular", "--distrito", "DD12", "--persona", "marta")
    return "luis (DD05), marta (DD12)"


ACCOUNTS = [
    ("DD05", "x", "DD05IECM", "dd05.x@iecm.mx"),
    ("DD05", "facebook", "iecm.dd05", "dd05.fb@iecm.mx"),
    ("DD12", "x", "DD12IECM", "dd12.x@iecm.mx"),
    ("DD12", "instagram", "iecm.dd12", "dd12.ig@iecm.mx"),
]


def _accounts(s: Story) -> str:
    for district, platform, handle, email in ACCOUNTS:
        s.ok(
            "ana",
            "cuentas",
            "alta",
            "--distrito",
            district,
            "--plataforma",
            platform,
            "--usuario",
            handle,
            "--correo",
            email,
            "--telefono",
            "5554839400",
        )
    return ", ".join(f"{d}-{p}" for d, p, _, _ in ACCOUNTS)


def _refused_account(s: Story) -> str:
    return s.refused(
        "ana",
        "cuentas",
        "alta",
        "--distrito",
        "DD12",
        "--plataforma",
        "tiktok",
        "--usuario",
        "dd12tiktok",
        "--correo",
        "dd12.distrito@gmail.com",
    )


def _violating_account(s: Story) -> str:
    data = s.ok(
        "ana",
        "cuentas",
        "alta",
        "--distrito",
        "DD12",
        "--plataforma",
        "tiktok",
        "--usuario",
        "dd12tiktok",
        "--correo",
        "dd12.distrito@gmail.com",
        "--existente",
    )
    return "incumplimientos: " + ", ".join(data["violaciones"])


def _initial_rotations(s: Story) -> str:
    for district, platform, _, _ in ACCOUNTS:
        account = f"{district}-{platform}"
        s.ok("ana", "rotar", "iniciar", "--cuenta", account)
        s.ok("ana", "rotar", "confirmar", "--cuenta", account)
    return f"{len(ACCOUNTS)} cuentas con contraseña v1"


def _designate(s: Story) -> str:
    data = s.ok(
        "luis",
        "designar",
        "--distrito",
        "DD05",
        "--persona",
        "bety",
        "--oficio",
        "IECM/DD05/045/2026",
    )
    s.ok(
        "marta",
        "designar",
        "--distrito",
        "DD12",
        "--persona",
        "dani",
        "--correo-oficial",
        "titular.dd12@iecm.mx",
    )
    return f"obligaciones de rotación abiertas en DD05: {data['obligaciones_abiertas']}"


def _reveal(s: Story, user: str) -> str:
    data = s.ok(user, "revelar", "--cuenta", "DD05-x", "--motivo", "publicar la parrilla")
    return f"versión {data['version']} (la contraseña no se imprime en la demostración)"


def _titular_refused(s: Story) -> str:
    return s.refused("luis", "revelar", "--cuenta", "DD05-x", "--motivo", "revisar")


def _vacation(s: Story) -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("America/Mexico_City")).date()
    data = s.ok(
        "luis",
        "ausencia",
        "--distrito",
        "DD05",
        "--motivo",
        "vacaciones",
        "--desde",
        today.isoformat(),
        "--hasta",
        (today + timedelta(days=14)).isoformat(),
        "--sustituto",
        "carlos",
        "--memorandum",
        "IECM/DD05/050/2026",
    )
    return (
        f"credenciales en manos de {data['titular_de_credenciales']}; "
        f"obligaciones abiertas: {data['obligaciones_abiertas']}"
    )


def _former_refused(s: Story) -> str:
    """6.IX proved by the server, not by Custodia: the service refuses bety (exit 3), and
    OpenBao itself, asked directly with bety's own session token for the credential, answers
    403. The refusal shown is OpenBao's; the step fails if OpenBao would hand it over."""
    from cli.messages import EXIT_DENIED
    from custody.errors import VaultPermissionDeniedError
    from custody.vault import session as sessions
    from custody.vault.client import Mounts, VaultClient
    from custody.vault.layout import AccountRef

    s.refused("bety", "revelar", "--cuenta", "DD05-x", "--motivo", "sigo aquí", code=EXIT_DENIED)
    own = sessions.load(s.home / "sesion-bety.json")
    path = AccountRef.parse("DD05-x").data_path(Mounts())
    try:
        VaultClient(own.vault_addr, own.token).read(path, operation="read", account="DD05-x")
    except VaultPermissionDeniedError as refusal:
        return (
            f"OpenBao respondió {refusal.status} (permiso denegado) a la lectura de "
            f"{refusal.path} con la sesión de bety (6.IX)"
        )
    raise DemoError("OpenBao entregó la credencial de DD05-x a bety sin designación")


def _rotate_all(s: Story) -> str:
    accounts = s.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    rotated = []
    for account in accounts:
        if account["obligaciones_abiertas"]:
            s.ok("ana", "rotar", "iniciar", "--cuenta", account["cuenta"])
            s.ok("ana", "rotar", "confirmar", "--cuenta", account["cuenta"])
            rotated.append(account["cuenta"])
    after = s.ok("ana", "cuentas", "lista", "--distrito", "DD05")
    left = sum(a["obligaciones_abiertas"] for a in after)
    if left:
        raise DemoError(f"{left} obligations still open")
    return "rotadas: " + ", ".join(rotated)


def _substitute_reads(s: Story) -> str:
    data = s.ok("carlos", "revelar", "--cuenta", "DD05-x", "--motivo", "cubrir vacaciones")
    import base64

    seed = base64.b32encode(os.urandom(20)).decode().rstrip("=")
    uri = f"otpauth://totp/IECM:DD05IECM?secret={seed}&issuer=IECM&digits=6&period=30"
    s.ok("ana", "totp", "registrar", "--cuenta", "DD05-x", stdin=uri + "\n")
    code = s.ok("carlos", "codigo", "--cuenta", "DD05-x", "--motivo", "inicio de sesión")
    return f"versión {data['version']}; código 2FA de {len(code['codigo'])} dígitos"


def _change_request(s: Story) -> str:
    filed = s.ok(
        "carlos",
        "cambios",
        "solicitar",
        "--cuenta",
        "DD05-facebook",
        "--campo",
        "telefono",
        "--detalle",
        "5554839499",
        "--memorandum",
        "IECM/DD05/061/2026",
    )
    request = filed["solicitud"]
    s.ok("ana", "cambios", "aprobar", "--solicitud", request, "--motivo", "procede")
    applied = s.ok("ana", "cambios", "aplicar", "--solicitud", request, "--valor", "5554839499")
    return f"solicitud {request[:8]}… {applied['estado']}"


def _incident(s: Story) -> str:
    reported = s.ok(
        "dani",
        "incidentes",
        "reportar",
        "--cuenta",
        "DD12-x",
        "--tipo",
        "intervencion",
        "--descripcion",
        "publicaciones que nadie del distrito hizo",
    )
    incident = reported["incidente"]
    s.ok(
        "ana",
        "incidentes",
        "notificar",
        "--incidente",
        incident,
        "--oficio",
        "IECM/UTCSyD/310/2026",
    )
    s.ok("ana", "rotar", "iniciar", "--cuenta", "DD12-x")
    s.ok("ana", "rotar", "confirmar", "--cuenta", "DD12-x")
    s.ok(
        "ana",
        "incidentes",
        "contener",
        "--incidente",
        incident,
        "--detalle",
        "contraseña rotada y sesiones cerradas",
    )
    s.ok("ana", "incidentes", "cerrar", "--incidente", incident, "--detalle", "sin actividad ajena")
    return f"incidente {incident[:8]}… cerrado"


def _incident_ledger(s: Story) -> str:
    rows = s.ok("sofia", "incidentes", "bitacora")
    on_time = sum(1 for r in rows if r["notificado_a_tiempo"])
    return f"{len(rows)} incidente(s), {on_time} notificado(s) a tiempo"


def _compliance(s: Story) -> str:
    rows = s.ok("ana", "cuentas", "lista")
    if not s.quiet:
        result = s.run("ana", "cuentas", "lista")
        typer.echo(result.stdout.rstrip())
    violating = [r["cuenta"] for r in rows if r["violaciones"]]
    return f"{len(rows)} cuentas; con incumplimientos: {', '.join(violating) or 'ninguna'}"


def _verify(s: Story) -> str:
    deadline = time.monotonic() + 30
    while True:
        result = s.run("sofia", "bitacora", "verificar", "--json")
        if result.returncode not in (0, 1):
            raise DemoError(result.stderr.strip())
        data = json.loads(result.stdout)
        if not data["ok"]:
            raise DemoError("the ledger did not verify")
        if data.get("puntos_de_control", 0) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return f"{data['eventos']} entradas, {data['puntos_de_control']} puntos de control firmados"
