"""``custodia bitacora``: verify, export, prove and witness the tamper-evident ledger.

Each command is a thin wrapper over a plain function (``run_*``) that takes explicit connection
settings; :func:`nats_target` is where they come from: the same settings as every other command
(``custody.config.Settings``, resolved by ``custody.bootstrap.resolve``). Offline
forms (``--paquete``, ``prueba --verificar``) never connect to anything.

An "evento #n" is ledger entry ``n``: the message with stream sequence ``n`` (one record of one
aggregate's events, or a tracking record). ``prueba --notificacion`` takes an eventsourcing
notification id instead and finds its entry.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import bitacora_messages
from cli.spanish import App

if TYPE_CHECKING:
    from custody.bootstrap import Endpoints
    from custody.ledger.anchor import AnchoredRecords
    from custody.ledger.audit import LedgerVerdict
    from custody.ledger.names import LedgerNames
    from events.checkpoint import PublicKeyring, SignedCheckpoint
    from events.jetstream.connection import Connection

bitacora_messages.register_all()

Progress = Callable[[int, int | None], None]

JsonOption = Annotated[bool, typer.Option("--json", help="Salida JSON para scripts.")]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--clave-publica",
        help=(
            "Clave pública de la bitácora obtenida por su cuenta (archivo de «custodia "
            "bitacora clave-publica»). Sin ella se usa la publicada en la propia bitácora o "
            "incluida en el paquete, que solo prueba consistencia interna."
        ),
        dir_okay=False,
    ),
]


def register(app: App) -> None:
    """Add the ``bitacora`` sub-app to the root app."""
    bitacora = App(
        name="bitacora",
        help=(
            "Bitácora a prueba de alteraciones: árbol de Merkle (RFC 9162) sobre todos los "
            "eventos y puntos de control firmados en OpenBao. Verifica, exporta, prueba la "
            "inclusión de un evento y lleva el registro del testigo (Secretaría Ejecutiva)."
        ),
    )
    bitacora.command("verificar")(verificar)
    bitacora.command("exportar")(exportar)
    bitacora.command("prueba")(prueba)
    bitacora.command("testigo")(registrar_testigo)
    bitacora.command("clave-publica")(clave_publica)
    app.add_typer(bitacora, name="bitacora")


# -- the seam: where the CLI finds NATS --------------------------------------------------------


def nats_target() -> Endpoints:
    """How to reach NATS as the read-only ``verificador`` user: the settings every command uses
    (``CUSTODIA_NATS_URL``, ``CUSTODIA_NATS_CREDS`` or ``CUSTODIA_NATS_USER``/``…_PASSWORD``,
    ``CUSTODIA_NATS_CA``; embedded: this ``CUSTODIA_HOME``'s servers), read in one place."""
    from custody.bootstrap import resolve
    from custody.config import Settings

    return resolve(Settings.from_env(), "verificador")


def ledger_names() -> LedgerNames:
    """The ledger's streams: the ones the service writes (no namespace)."""
    from custody.ledger.names import LedgerNames

    return LedgerNames.for_app("custodia", "")


@contextlib.contextmanager
def _connection(nats: Endpoints) -> Iterator[Connection]:
    from custody.ledger.nats_io import connect_to

    conn = connect_to(nats)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A rich progress bar on stderr when it is a terminal; otherwise a no-op callback."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_json(data: Any) -> None:
    from cli.output import print_json

    print_json(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _checkpoint_json(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "tamano": signed.size,
        "raiz": _b64(signed.root),
        "fecha": signed.timestamp.isoformat(),
        "clave": signed.note_name,
    }


def _fecha(signed: SignedCheckpoint) -> str:
    return signed.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _keyring(path: Path | None) -> PublicKeyring | None:
    if path is None:
        return None
    from custody.ledger.audit import load_keyring_file

    return load_keyring_file(path)


def _need_file(path: Path) -> None:
    if not path.is_file():
        from events.ledger_verify import BundleError

        raise BundleError(path, "missing")


# -- verificar ---------------------------------------------------------------------------------


def verificar(
    paquete: Annotated[
        Path | None,
        typer.Option(
            "--paquete",
            help="Verifica sin conexión un paquete de «custodia bitacora exportar».",
            dir_okay=False,
        ),
    ] = None,
    clave_publica: KeyOption = None,
    testigo_: Annotated[
        Path | None,
        typer.Option(
            "--testigo",
            help=(
                "Archivo del testigo («custodia bitacora testigo»): sus puntos de control "
                "también se comprueban, y su copia de los eventos señala el primero alterado."
            ),
            dir_okay=False,
        ),
    ] = None,
    referencia: Annotated[
        Path | None,
        typer.Option(
            "--referencia",
            help="Un paquete anterior, como copia de referencia para señalar el evento exacto.",
            dir_okay=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verifica toda la bitácora: cada evento presente, sin alterar y en orden, y coherente con
    cada punto de control firmado. Sale con código 1 si encuentra alteraciones, y con 8 si los
    últimos eventos de un paquete no están firmados (no prueban nada).

    Ejemplos: [cyan]custodia bitacora verificar[/cyan] ·
    [cyan]custodia bitacora verificar --paquete bitacora.jsonl.gz --clave-publica clave.json[/cyan]
    """
    if paquete is not None:
        code = run_verify_bundle(
            paquete,
            clave_publica=clave_publica,
            testigo=testigo_,
            referencia=referencia,
            json_output=json_output,
        )
    else:
        nats = nats_target()
        names = ledger_names()
        code = run_verify_online(
            nats,
            names=names,
            clave_publica=clave_publica,
            testigo=testigo_,
            referencia=referencia,
            json_output=json_output,
            anchored=anchored_records(names),
        )
    if code:
        raise typer.Exit(code)


def anchored_records(names: LedgerNames) -> AnchoredRecords | None:
    """The head and witnesses OpenBao keeps for the ledger, read with the person's own session
    token (Secretaría Ejecutiva, coadministrators); None without a session that may read them."""
    from cli import remote
    from custody.errors import VaultPermissionDeniedError, VaultTokenInvalidError
    from custody.ledger.anchor import read_anchored
    from custody.vault.client import VaultClient
    from custody.vault.session import NoSessionError, SessionExpiredError

    try:
        current = remote.session()
    except (NoSessionError, SessionExpiredError):
        return None
    client = VaultClient(current.vault_addr, current.token, verify=remote.vault_verify())
    try:
        return read_anchored(client, names)
    except (VaultPermissionDeniedError, VaultTokenInvalidError):
        return None


def _witness_and_reference(
    testigo: Path | None, referencia: Path | None, keyring: PublicKeyring | None, origin: str
) -> tuple[tuple[SignedCheckpoint, ...], bytes | None]:
    from custody.ledger.audit import load_reference, load_witness, reference_path
    from custody.ledger.errors import WitnessFileError
    from events.ledger_verify import Bundle

    checkpoints: tuple[SignedCheckpoint, ...] = ()
    reference: bytes | None = None
    if testigo is not None:
        if not testigo.is_file():
            raise WitnessFileError(testigo, "missing")
        if keyring is None:
            from custody.ledger.errors import NoCheckpointError

            raise NoCheckpointError("no keyring to check the witness with")
        checkpoints = load_witness(testigo, keyring, origin).checkpoints
        reference = load_reference(reference_path(testigo))
    if referencia is not None:
        _need_file(referencia)
        with Bundle(referencia) as earlier:
            reference = earlier.leaf_hashes()
    return checkpoints, reference


def run_verify_online(
    nats: Endpoints,
    *,
    names: LedgerNames,
    clave_publica: Path | None = None,
    testigo: Path | None = None,
    referencia: Path | None = None,
    json_output: bool = False,
    anchored: AnchoredRecords | None = None,
) -> int:
    """Verify the ledger on the server, and against ``anchored`` (the head and witnesses kept in
    OpenBao) if given; print the verdict; 0 if intact, 1 if altered."""
    from custody.ledger.audit import ledger_keyring, verify_online

    keyring = _keyring(clave_publica)
    with _connection(nats) as conn:
        witness_keyring = keyring or (ledger_keyring(conn, names) if testigo else None)
        witness, reference = _witness_and_reference(
            testigo, referencia, witness_keyring, names.origin
        )
        with progress_bar("Verificando la bitácora") as progress:
            verdict = verify_online(
                conn,
                names,
                keyring,
                witness_checkpoints=witness,
                reference_leaf_hashes=reference,
                anchored=anchored,
                progress=progress,
            )
    return render_verdict(verdict, json_output, online=True)


def run_verify_bundle(
    paquete: Path,
    *,
    clave_publica: Path | None = None,
    testigo: Path | None = None,
    referencia: Path | None = None,
    json_output: bool = False,
) -> int:
    """Verify a bundle offline (never connects); print the verdict; 0 if intact and signed to
    its end, 1 if altered, 8 if events at its end are covered by no signed checkpoint."""
    from custody.ledger.audit import verify_bundle_file
    from events.ledger_verify import Bundle

    _need_file(paquete)
    keyring = _keyring(clave_publica)
    with Bundle(paquete) as bundle:
        origin, bundled_keyring = bundle.origin, bundle.keyring
    witness, reference = _witness_and_reference(
        testigo, referencia, keyring or bundled_keyring, origin
    )
    with progress_bar("Verificando el paquete") as progress:
        verdict = verify_bundle_file(
            paquete,
            keyring,
            witness_checkpoints=witness,
            reference_leaf_hashes=reference,
            progress=progress,
        )
    return render_verdict(verdict, json_output, bundle=True)


def verdict_json(verdict: LedgerVerdict) -> dict[str, Any]:
    """The ``--json`` document of a verification (its keys are the command line's contract)."""
    report = verdict.report
    items = bitacora_messages.problem_items(verdict)
    first_event, first_checkpoint = bitacora_messages.first_bad(items)
    span = bitacora_messages.first_range(items)
    last = report.last_verified_checkpoint
    return {
        "ok": verdict.ok,
        "eventos": verdict.entries,
        "puntos_de_control": report.checkpoints_checked,
        "puntos_de_control_verificados": report.checkpoints_verified,
        "eventos_sin_punto_de_control": verdict.unsigned_entries if verdict.ok else None,
        "firmada_hasta": verdict.entries - verdict.unsigned_entries if verdict.ok else None,
        "ultimo_punto_de_control": _checkpoint_json(last) if last else None,
        "raiz": _b64(report.root),
        "clave_independiente": verdict.independent_key,
        "testigo": verdict.witness_checkpoints,
        "referencia": verdict.reference_entries,
        "openbao": (
            None
            if verdict.anchored_checkpoints is None
            else {
                "puntos_de_control": verdict.anchored_checkpoints,
                "tamano": verdict.anchored_size,
            }
        ),
        "alertas": [
            {"fecha": a.when, "tamano": a.size, "motivo": a.reason} for a in verdict.alerts
        ],
        "primer_evento": first_event,
        "primer_rango": list(span) if span else None,
        "primer_punto_de_control": first_checkpoint,
        "problemas": items,
        "problemas_omitidos": report.problems_omitted + verdict.record_problems_omitted,
    }


def render_verdict(
    verdict: LedgerVerdict, json_output: bool, *, online: bool = False, bundle: bool = False
) -> int:
    doc = verdict_json(verdict)
    code = 0 if verdict.ok else bitacora_messages.EXIT_TAMPERED
    # A bundle is a closed file: events at its end that no signed checkpoint covers prove
    # nothing (they may have been rewritten, with the checkpoints that covered them removed).
    unsigned = bool(bundle and verdict.ok and doc["eventos_sin_punto_de_control"])
    if unsigned:
        code = bitacora_messages.EXIT_UNSIGNED
    if json_output:
        _print_json(doc)
        return code
    if unsigned:
        signed = doc["eventos"] - doc["eventos_sin_punto_de_control"]
        typer.echo(
            f"SIN FIRMA AL FINAL: el paquete está íntegro hasta el evento {signed}, pero sus "
            f"{doc['eventos_sin_punto_de_control']} últimos eventos no están cubiertos por "
            "ningún punto de control firmado: nada prueba que no se alteraron. Pida un paquete "
            "exportado de nuevo, o compárelo con --testigo o --referencia."
        )
    elif verdict.ok:
        typer.echo(
            f"Bitácora íntegra: {doc['eventos']} eventos, "
            f"{doc['puntos_de_control_verificados']} puntos de control verificados."
        )
        if doc["eventos_sin_punto_de_control"]:
            typer.echo(
                f"  {doc['eventos_sin_punto_de_control']} eventos recientes aún no tienen punto "
                "de control: quedarán firmados en el próximo."
            )
        if not doc["puntos_de_control_verificados"] and doc["eventos"]:
            typer.echo("  Atención: no hay puntos de control firmados; nada está probado aún.")
    else:
        where = []
        if doc["primer_rango"] is not None:
            first, last = doc["primer_rango"]
            where.append(f"entre los eventos #{first} y #{last}")
        elif doc["primer_evento"] is not None:
            where.append(f"evento #{doc['primer_evento']}")
        if doc["primer_punto_de_control"] is not None:
            where.append(f"punto de control #{doc['primer_punto_de_control']}")
        count = len(doc["problemas"]) + doc["problemas_omitidos"]
        typer.echo(f"ALTERADA: {', '.join(where) or 'ver detalle'} ({count} problema(s)).")
        for item in doc["problemas"]:
            typer.echo(f"  • {item['detalle']}")
        if doc["problemas_omitidos"]:
            typer.echo(f"  … y {doc['problemas_omitidos']} problema(s) más.")
    if verdict.anchored_checkpoints is None:
        if online:
            typer.echo(
                "  Atención: sin una sesión de la Secretaría Ejecutiva o de coadministración no "
                "se comparó con la cabeza anclada ni con los testigos guardados en OpenBao."
            )
    else:
        typer.echo(
            f"  Comparada con OpenBao: {verdict.anchored_checkpoints} punto(s) de control "
            f"anclados; el mayor firma {verdict.anchored_size} eventos."
        )
    for alert in verdict.alerts:
        typer.echo(
            f"  Alerta: el {alert.when} el servicio se negó a firmar la bitácora "
            f"({alert.size} eventos leídos) porque no coincide con lo ya firmado "
            "(--json: «alertas», con el motivo)."
        )
    if not verdict.independent_key:
        typer.echo(
            "  Atención: se usó la clave pública de la propia bitácora; para una verificación "
            "independiente indique --clave-publica."
        )
    return code


# -- exportar ----------------------------------------------------------------------------------


def exportar(
    salida: Annotated[
        Path,
        typer.Option("--salida", help="Archivo del paquete (JSON líneas, gzip).", dir_okay=False),
    ],
    json_output: JsonOption = False,
) -> None:
    """Escribe un paquete autocontenido (eventos, puntos de control y clave pública) para
    verificar la bitácora sin conexión.

    Ejemplo: [cyan]custodia bitacora exportar --salida bitacora.jsonl.gz[/cyan]
    """
    nats = nats_target()
    run_export(nats, names=ledger_names(), salida=salida, json_output=json_output)


def run_export(
    nats: Endpoints,
    *,
    names: LedgerNames,
    salida: Path,
    json_output: bool = False,
) -> None:
    from custody.ledger.audit import export_bundle

    with (
        _connection(nats) as conn,
        progress_bar("Exportando la bitácora") as progress,
    ):
        result = export_bundle(conn, names, salida, progress=progress)
    if json_output:
        _print_json(
            {
                "paquete": str(result.path),
                "eventos": result.entries,
                "puntos_de_control": result.checkpoints,
                "ultimo_evento": result.last_sequence,
                "firmado_hasta": result.signed_to,
                "versiones_de_clave": list(result.key_versions),
            }
        )
        return
    typer.echo(
        f"Paquete escrito en {result.path}: {result.entries} eventos, "
        f"{result.checkpoints} puntos de control."
    )
    if result.signed_to < result.last_sequence:
        typer.echo(
            f"  Atención: el último punto de control firma {result.signed_to} eventos; los "
            f"{result.last_sequence - result.signed_to} siguientes aún no están firmados y el "
            "paquete no los prueba. ¿Está detenido el servicio? Exporte de nuevo cuando lo estén."
        )
    typer.echo(
        f"Verifíquelo sin conexión con: custodia bitacora verificar --paquete {result.path} "
        "--clave-publica CLAVE.json"
    )


# -- prueba ------------------------------------------------------------------------------------


def prueba(
    evento: Annotated[
        int | None,
        typer.Option("--evento", help="Número del evento en la bitácora (secuencia).", min=1),
    ] = None,
    notificacion: Annotated[
        int | None,
        typer.Option(
            "--notificacion", help="Id de notificación de un evento (se busca su registro).", min=1
        ),
    ] = None,
    salida: Annotated[
        Path | None,
        typer.Option("--salida", help="Guarda la prueba en este archivo JSON.", dir_okay=False),
    ] = None,
    verificar_: Annotated[
        Path | None,
        typer.Option(
            "--verificar",
            help="Verifica sin conexión una prueba guardada (requiere --clave-publica).",
            dir_okay=False,
        ),
    ] = None,
    clave_publica: KeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Prueba de inclusión: que un evento está en la bitácora firmada por el último punto de
    control, verificable sin conexión.

    Ejemplos: [cyan]custodia bitacora prueba --evento 57 --salida prueba.json[/cyan] ·
    [cyan]custodia bitacora prueba --verificar prueba.json --clave-publica clave.json[/cyan]
    """
    if verificar_ is not None:
        if clave_publica is None:
            raise typer.BadParameter(
                "para verificar una prueba indique la clave pública", param_hint="'--clave-publica'"
            )
        code = run_check_proof(verificar_, clave_publica=clave_publica, json_output=json_output)
        if code:
            raise typer.Exit(code)
        return
    if (evento is None) == (notificacion is None):
        raise typer.BadParameter("indique --evento o --notificacion (uno de los dos)")
    nats = nats_target()
    run_prove(
        nats,
        names=ledger_names(),
        evento=evento,
        notificacion=notificacion,
        salida=salida,
        clave_publica=clave_publica,
        json_output=json_output,
    )


def run_prove(
    nats: Endpoints,
    *,
    names: LedgerNames,
    evento: int | None = None,
    notificacion: int | None = None,
    salida: Path | None = None,
    clave_publica: Path | None = None,
    json_output: bool = False,
) -> None:
    from custody.ledger.audit import prove_entry

    keyring = _keyring(clave_publica)
    with (
        _connection(nats) as conn,
        progress_bar("Calculando la prueba") as progress,
    ):
        proof = prove_entry(
            conn, names, keyring, sequence=evento, notification=notificacion, progress=progress
        )
    text = proof.to_json()
    if salida is not None:
        salida.write_text(text + "\n", encoding="utf-8")
    if json_output:
        sys.stdout.write(text + "\n")
        return
    import json

    doc = json.loads(text)
    ids = doc["notificaciones"]
    held = f" (notificaciones {ids[0]}–{ids[1]})" if ids and ids[0] != ids[1] else ""
    held = f" (notificación {ids[0]})" if ids and ids[0] == ids[1] else held
    signed = proof.proof.checkpoint
    typer.echo(
        f"Prueba de inclusión del evento #{proof.sequence}{held} en el punto de control de "
        f"{signed.size} eventos firmado el {_fecha(signed)} con la clave {signed.note_name}."
    )
    if salida is not None:
        typer.echo(
            f"Guardada en {salida}; verifíquela sin conexión con: custodia bitacora prueba "
            f"--verificar {salida} --clave-publica CLAVE.json"
        )
    else:
        typer.echo("Use --salida ARCHIVO o --json para guardarla.")


def run_check_proof(path: Path, *, clave_publica: Path, json_output: bool = False) -> int:
    """Verify a saved proof offline; 0 if valid, 1 if not."""
    from cli.messages import describe
    from custody.ledger.audit import check_proof
    from events.merkle import InvalidProofError, LedgerError

    keyring = _keyring(clave_publica)
    assert keyring is not None
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        raise InvalidProofError("malformed event proof: unreadable file") from None
    try:
        check = check_proof(text, keyring)
    except LedgerError as exc:
        if not json_output:
            raise
        _print_json({"ok": False, "detalle": describe(exc)[1]})
        return bitacora_messages.EXIT_TAMPERED
    ids = [check.first_id, check.first_id + check.count - 1] if check.first_id else None
    if json_output:
        _print_json(
            {
                "ok": True,
                "evento": check.sequence,
                "notificacion": check.notification,
                "notificaciones": ids if check.count else None,
                "asunto": check.subject,
                "punto_de_control": _checkpoint_json(check.checkpoint),
            }
        )
        return 0
    typer.echo(
        f"Prueba válida: el evento #{check.sequence} ({check.subject}) está en la bitácora "
        f"firmada hasta el evento #{check.checkpoint.size} el {_fecha(check.checkpoint)} "
        f"con la clave {check.checkpoint.note_name}."
    )
    return 0


# -- testigo -----------------------------------------------------------------------------------


def registrar_testigo(
    archivo: Annotated[
        Path,
        typer.Option(
            "--archivo", help="Archivo del testigo (se crea la primera vez).", dir_okay=False
        ),
    ],
    paquete: Annotated[
        Path | None,
        typer.Option(
            "--paquete", help="Toma el último punto de control de un paquete, sin conexión."
        ),
    ] = None,
    clave_publica: KeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Registro del testigo (Secretaría Ejecutiva): guarda el último punto de control tras
    comprobar que es coherente con todos los que ya vio, y una copia de las huellas de los
    eventos (ARCHIVO.hojas) para señalar después el primero alterado. Un pasado reescrito o
    recortado se detecta aquí (código 1) y en «verificar --testigo».

    Ejemplo:
    [cyan]custodia bitacora testigo --archivo testigo.json --clave-publica clave.json[/cyan]
    """
    if paquete is not None:
        code = run_witness(
            archivo, paquete=paquete, clave_publica=clave_publica, json_output=json_output
        )
    else:
        nats = nats_target()
        code = run_witness(
            archivo,
            nats=nats,
            names=ledger_names(),
            clave_publica=clave_publica,
            json_output=json_output,
        )
    if code:
        raise typer.Exit(code)


def run_witness(
    archivo: Path,
    *,
    nats: Endpoints | None = None,
    names: LedgerNames | None = None,
    paquete: Path | None = None,
    clave_publica: Path | None = None,
    json_output: bool = False,
) -> int:
    """Observe the latest checkpoint (online, or from ``paquete``); 0 if consistent, 1 if not."""
    from cli.messages import describe
    from custody.ledger.audit import WitnessResult, observe_bundle, observe_online
    from custody.ledger.errors import LedgerDivergedError
    from events.ledger_verify import WitnessConflictError

    keyring = _keyring(clave_publica)
    result: WitnessResult
    try:
        with progress_bar("Comprobando la bitácora") as progress:
            if paquete is not None:
                _need_file(paquete)
                result = observe_bundle(paquete, archivo, keyring, progress=progress)
            else:
                assert nats is not None
                assert names is not None
                with _connection(nats) as conn:
                    result = observe_online(conn, archivo, names, keyring, progress=progress)
    except (WitnessConflictError, LedgerDivergedError) as exc:
        if not json_output:
            raise
        _print_json({"ok": False, "detalle": describe(exc)[1]})
        return bitacora_messages.EXIT_TAMPERED
    signed = result.checkpoint
    if json_output:
        _print_json(
            {
                "ok": True,
                "nuevo": result.added,
                "punto_de_control": _checkpoint_json(signed),
                "guardados": len(result.stored),
                "clave_independiente": result.independent_key,
            }
        )
        return 0
    what = "registrado" if result.added else "ya estaba registrado"
    typer.echo(
        f"Testigo al día: punto de control de {signed.size} eventos firmado el "
        f"{_fecha(signed)} {what}, coherente con todo lo visto; {archivo} guarda "
        f"{len(result.stored)} punto(s) de control."
    )
    if not result.independent_key:
        typer.echo(
            "  Atención: se usó la clave pública de la propia bitácora; indique --clave-publica."
        )
    return 0


# -- clave-publica -----------------------------------------------------------------------------


def clave_publica(
    salida: Annotated[
        Path | None,
        typer.Option("--salida", help="Guarda la clave en este archivo JSON.", dir_okay=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Muestra la clave pública con que se firman los puntos de control (todas sus versiones)
    y sus huellas, para compararlas por otro canal y usarlas con --clave-publica.

    Ejemplo: [cyan]custodia bitacora clave-publica --salida clave.json[/cyan]
    """
    nats = nats_target()
    run_public_key(nats, names=ledger_names(), salida=salida, json_output=json_output)


def run_public_key(
    nats: Endpoints,
    *,
    names: LedgerNames,
    salida: Path | None = None,
    json_output: bool = False,
) -> None:
    import json

    from custody.ledger.audit import ledger_keyring
    from custody.ledger.errors import NoCheckpointError

    with _connection(nats) as conn:
        keyring = ledger_keyring(conn, names)
    if keyring is None:
        raise NoCheckpointError("no keyring published")
    if salida is not None:
        salida.write_text(json.dumps(keyring.to_json(), indent=1) + "\n", encoding="utf-8")
    versions: list[dict[str, Any]] = []
    for version in keyring.versions:
        raw = keyring.raw_public_key(keyring.name, version)
        versions.append(
            {
                "version": version,
                "clave": _b64(raw),
                "huella": hashlib.sha256(raw).hexdigest(),
                "verificador_nota": keyring.note_verifier_key(version),
            }
        )
    if json_output:
        _print_json({"nombre": keyring.name, "versiones": versions})
        return
    typer.echo(f"Clave de la bitácora «{keyring.name}»:")
    for item in versions:
        huella = item["huella"]
        grouped = " ".join(huella[i : i + 4] for i in range(0, 32, 4))
        typer.echo(f"  v{item['version']}: huella SHA-256 {grouped}…")
    if salida is not None:
        typer.echo(
            f"Guardada en {salida}. Compare la huella por otro canal antes de confiar en ella."
        )
