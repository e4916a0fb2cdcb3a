"""``custodia web``: the web view for those who review (the Secretaría Ejecutiva, titulares,
auditors), served by uvicorn; a client of ``custodia servicio`` like the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.spanish import App

PuertoOption = Annotated[
    int, typer.Option("--puerto", min=1, max=65535, help="Puerto TCP donde escuchar.")
]
DireccionOption = Annotated[
    str,
    typer.Option(
        "--direccion",
        help="Dirección donde escuchar (127.0.0.1: solo este equipo; detrás de un proxy TLS).",
    ),
]
CertOption = Annotated[
    Path | None,
    typer.Option(
        "--certificado",
        help="Certificado TLS (PEM) para servir HTTPS directamente; con --clave.",
        exists=True,
        dir_okay=False,
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--clave", help="Clave privada TLS (PEM) del certificado.", exists=True, dir_okay=False
    ),
]


def register(app: App) -> None:
    app.command("web")(web)


def web(
    puerto: PuertoOption = 8080,
    direccion: DireccionOption = "127.0.0.1",
    certificado: CertOption = None,
    clave: KeyOption = None,
) -> None:
    """Sirve la vista web (solo lectura, más el enterado de la Secretaría Ejecutiva) para la
    Secretaría Ejecutiva, titulares y auditoría: /ingresar, /, /incidentes, /cumplimiento,
    /obligaciones, /exposicion, /cambios, /lecturas, /historial, /bitacora; cada página también
    en JSON con ?formato=json. Nunca muestra contraseñas, códigos ni semillas.

    Ejemplo: [cyan]custodia web --puerto 8080[/cyan] y abra http://127.0.0.1:8080/ingresar
    """
    if (certificado is None) != (clave is None):
        raise typer.BadParameter("--certificado y --clave van juntos.")
    import uvicorn

    from cli.web.app import create_app
    from cli.web.backend import ServiceBackend
    from custody.config import Settings

    application = create_app(ServiceBackend(Settings.from_env()))
    scheme = "https" if certificado else "http"
    typer.echo(f"Vista web de Custodia en {scheme}://{direccion}:{puerto}/ (Ctrl-C para salir)")
    uvicorn.run(
        application,
        host=direccion,
        port=puerto,
        ssl_certfile=str(certificado) if certificado else None,
        ssl_keyfile=str(clave) if clave else None,
        log_level="warning",
        server_header=False,
    )
