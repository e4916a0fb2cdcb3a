"""The command line speaks Spanish, starts light, and never shows a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import messages
from cli.main import run
from custody.stack.embedded import CorruptKeyFileError, HomeNotWritableError
from custody.stack.servers import PortInUseError
from events.errors import ConfigurationError, CustodiaError, EventStoreError, VaultError


def test_help_is_spanish(capsys: pytest.CaptureFixture[str]) -> None:
    """``custodia --help`` shows Spanish panel titles, usage and help-option text."""
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Uso: custodia" in out
    assert "Opciones" in out
    assert "Comandos" in out
    assert "Muestra esta ayuda y termina." in out
    for english in ("Usage:", "Show this message", "Options ", "Commands "):
        assert english not in out


def test_help_does_not_import_heavy_libraries() -> None:
    """``--help`` keeps hvac, nats, eventsourcing, cryptography and structlog out of the process."""
    code = (
        "import sys\n"
        "from cli.main import run\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    run(['--help'])\n"
        "heavy = ('hvac', 'nats', 'eventsourcing', 'cryptography', 'structlog')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_usage_error_is_spanish_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown option is reported in Spanish with exit code 2 and a pointer to --help."""
    assert run(["estado", "--no-existe"]) == 2
    err = capsys.readouterr().err
    assert "No existe la opción --no-existe." in err
    assert "custodia estado --help" in err


def test_a_misspelt_option_is_answered_in_spanish_with_the_options_that_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """click lists the options close to a misspelt one in English ("Possible options"): said
    in Spanish, the options kept."""
    assert run(["sesion", "contrasena", "--password-stdn"]) == 2
    err = capsys.readouterr().err
    assert "No existe la opción --password-stdn." in err
    assert "--password-stdin" in err
    assert "Possible" not in err
    assert "Did you mean" not in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reporte", "inexistente"], "No existe el comando «inexistente». ¿Quiso decir «"),
        (["bitacora", "prueba", "--evento", "abc"], "--evento: debe ser un número entero."),
        (["personas", "importar", "--archivo", "/no/existe.csv"], "«/no/existe.csv»: no existe"),
        (["personas", "importar", "--archivo", "/"], "«/»: es una carpeta"),
        (["reporte", "cumplimiento", "--salida", "/"], "«/» es una carpeta; indique un archivo."),
    ],
)
def test_mistyped_commands_and_files_are_told_in_spanish(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What click and typer say in English (a command suggestion, a typed option, a path that
    is a folder) reaches the user in Spanish, exit 2, before anything is asked of a server."""
    assert run(args) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    for english in ("No such", "Did you mean", "Input should", "Invalid value", " is a "):
        assert english not in err, err


def test_a_file_not_in_utf8_gets_a_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A latin-1 CSV (a common spreadsheet export): told how to save it."""
    latin1 = tmp_path / "movimientos.csv"
    latin1.write_bytes("movimiento,usuario\nalta,josé\n".encode("latin-1"))
    assert run(["personas", "importar", "--archivo", str(latin1)]) == 2
    assert "guárdelo como «CSV UTF-8»" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code", "fragment"),
    [
        (HomeNotWritableError(__import__("pathlib").Path("/x"), "Permission denied"), 7, "/x"),
        (CorruptKeyFileError(__import__("pathlib").Path("/k"), "missing"), 7, "no existe"),
        (PortInUseError(4222, "NATS"), 7, "El puerto 4222 para NATS"),
        (ConfigurationError("CUSTODIA_NATS_URL", "bad"), 7, "CUSTODIA_NATS_URL"),
        (EventStoreError("boom"), 6, "bitácora"),
        (VaultError("boom"), 6, "OpenBao"),
        (CustodiaError("boom"), 1, "no se pudo completar"),
    ],
)
def test_every_error_has_a_spanish_message(error: Exception, code: int, fragment: str) -> None:
    """Each error class maps to its exit code and a Spanish message naming the facts."""
    got_code, text = messages.describe(error)
    assert got_code == code
    assert fragment in text
    assert "boom" not in text  # internal English detail is not shown to users


def test_instants_are_shown_in_mexico_city_time_spanish_style() -> None:
    """Tables show ISO instants in Mexico City time with Spanish month names; JSON keeps ISO."""
    from cli.remote import spanish_datetime

    assert spanish_datetime("2026-11-28T05:16:00+00:00") == "27 nov 2026 23:16"
    assert spanish_datetime("2026-07-01T18:00:00Z") == "1 jul 2026 12:00"
    assert spanish_datetime("DD05-x") is None
    assert spanish_datetime("2026-11-28T05:16:00") is None  # naive: not an instant


def test_a_rebuild_that_did_not_finish_is_told_in_spanish() -> None:
    """What stopped the rebuild is said (it is Spanish already), with the reassurance that the
    projections in use were not touched; exit code 7, as for a halted rebuild."""
    import cli.reporte_cmds  # noqa: F401 - registers the reports' messages
    from projections.errors import RebuildFailedError

    code, text = messages.describe(
        RebuildFailedError("el proceso lector terminó antes del final (estado -9)")
    )
    assert code == 7
    assert "La reconstrucción de las proyecciones no terminó" in text
    assert "terminó antes del final (estado -9)" in text
    assert "no se modificaron" in text


MARKUP = "[/b][link=https://evil.example]x[/link]"


def test_tables_show_values_as_written_never_as_markup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing's values come from the ledger and from people (an oficio number, a device
    id): rich markup in them is shown as written. Read as markup, ``[/b]`` would make rich raise
    (the listing would fail for everyone, for good) and ``[link=…]`` would plant a link."""
    from cli.personas_cmds import _table
    from cli.remote import show

    monkeypatch.setenv("COLUMNS", "200")
    show([{"equipo": MARKUP, "nota": None}], False, f"Equipos {MARKUP}")
    _table([{"usuario": MARKUP, "rol": "titular", "distrito": "DD05"}], f"Altas {MARKUP}")
    out = capsys.readouterr().out
    assert out.count(MARKUP) == 4  # two titles, two cells
    assert "\x1b]8;" not in out  # no terminal hyperlink


def test_status_shows_the_home_path_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``custodia estado`` titles its table with the home's path: brackets in it are shown."""
    home = tmp_path / "[/b]custodia"
    monkeypatch.setenv("CUSTODIA_HOME", str(home))
    assert run(["estado"]) == 0
    out = "".join(capsys.readouterr().out.split())  # the title wraps at 80 columns
    assert f"Custodiaen{home}" in out
    assert "Custodianoestáinicializadoaquí" in out  # a home never initialized says so


def test_every_refused_transition_is_told_with_a_spanish_verb() -> None:
    """Each action the domain can refuse for the state it is in (``_require_status(…,
    "apply")``, ``InvalidTransitionError(…, "notify")``) reads as a Spanish verb: never «No se
    puede apply en estado «solicitada»»."""
    import re
    import uuid

    import events.domain
    from events.domain.errors import InvalidTransitionError

    source = "".join(path.read_text() for path in Path(events.domain.__file__).parent.glob("*.py"))
    actions = set(re.findall(r'_require_(?:status|pending)\((?:"\w+", )?"(\w+)"\)', source))
    actions |= set(re.findall(r'InvalidTransitionError\([^()]*"(\w+)"\)', source))
    assert {"apply", "approve", "notify", "acknowledge"} <= actions
    for action in actions:
        _, text = messages.describe(
            InvalidTransitionError("change_request", uuid.uuid4(), "solicitada", action)
        )
        assert f" {action} " not in text or action in ("aprobar", "rechazar"), text
        assert text.startswith("No se puede "), text


def test_every_configuration_problem_is_told_in_spanish() -> None:
    """What a ConfigurationError says is wrong (the code's words, often English: "file not
    found", "must be a port number") reaches the operator in Spanish: every literal problem
    raised anywhere in the code, and the shapes of the computed ones."""
    import re

    root = Path(__file__).resolve().parents[3]
    raised = re.compile(r'ConfigurationError\(\s*[^,()]+,\s*"([^"{]*)"', re.S)
    problems = {
        problem
        for folder in ("cli", "custody", "events", "projections")
        for path in (root / folder).rglob("*.py")
        for problem in raised.findall(path.read_text())
    }
    assert {"file not found", "missing: run «custodia init» first"} <= problems
    english = re.compile(
        r"\b(must|not|missing|only|letters|file|empty|unknown|enabled|outside|required|"
        r"first|again|table|number|allowed|shorter|start|contain|needs|looked)\b"
    )
    computed = {
        "must be at least 2",
        "not a number: 'x'",
        "not an integer: 'x'",
        "not set (looked for CUSTODIA_NATS_URL)",
        "'file' or 'memory', not 'disk'",
        "4 outside the platform's 8..128",
        "must be int",
    }
    for problem in problems | computed:
        _, text = messages.describe(ConfigurationError("CUSTODIA_X", problem))
        said = re.sub(r"'[^']*'|«[^»]*»", "", text.split(": ", 1)[1])  # values as written
        assert not english.search(said), text


def test_roles_without_a_district_and_scopes_of_everything_read_plainly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``roles: coadministrador`` (not ``coadministrador=None``), and a scope refused for
    everything (``*``) says whose information it is, not «la información de *»."""
    from cli.remote import show
    from custody.app.custodia import ScopeError

    show({"roles": {"coadministrador": None, "titular": "DD05"}}, False)
    assert "roles: coadministrador, titular=DD05" in capsys.readouterr().out
    _, text = messages.describe(ScopeError("bety", "*"))
    assert "*" not in text
    assert "Secretaría Ejecutiva" in text


def test_a_password_is_never_asked_where_it_would_show(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for a password with an input that is not a terminal, Python would read it
    unhidden and warn in English that it may be echoed: the user is told to use
    ``--password-stdin`` instead, exit 2, and nothing is read."""
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("secreta\n"))
    assert run(["sesion", "iniciar", "--usuario", "ana"]) == 2
    captured = capsys.readouterr()
    assert "La entrada no es una terminal: dé la contraseña con --password-stdin." in captured.err
    assert "Warning" not in captured.err
    assert sys.stdin.read() == "secreta\n"  # not consumed


def test_de_el_is_contracted() -> None:
    """«el valor nuevo del teléfono», never «de el»."""
    import uuid

    from events.domain.errors import ChangeValueRequiredError

    _, text = messages.describe(ChangeValueRequiredError(uuid.uuid4(), "telefono"))
    assert "del teléfono" in text
    assert "de el" not in text


@pytest.mark.parametrize(
    ("field", "problem", "said"),
    [
        ("district", "a titular's role names their district", "una persona titular lleva"),
        ("nombre", "longer than 200 characters", "pasa de 200 caracteres"),
        ("motivo", "required", "falta o está vacío"),
    ],
)
def test_an_invalid_datum_says_what_is_wrong(field: str, problem: str, said: str) -> None:
    """Not only which datum (``Dato no válido: el distrito.``) but why, when the code says so
    in fixed words; and never the code's English."""
    from events.domain.errors import ValidationError

    _, text = messages.describe(ValidationError(field, problem))
    assert said in text
    assert problem not in text


def test_keys_read_as_spanish_words_in_tables(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON keys stay unaccented for scripts; a person reads «vía oficial», «versión»."""
    from cli.remote import show

    show({"via_oficial": "oficio X", "version": 2}, False)
    out = capsys.readouterr().out
    assert "vía oficial: oficio X" in out
    assert "versión: 2" in out
