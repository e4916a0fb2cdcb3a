"""Spanish (es-MX) for the parts of the help and usage errors that typer/click print in English.

typer ships its own copy of click with hard-coded English strings, so they are translated here:
panel titles, the help option, ``Usage:`` and the usage errors a user can meet.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.core

HELP_OPTION_TEXT = "Muestra esta ayuda y termina."

_rich_in_spanish = False


def _spanish_rich_help() -> None:
    """Translate typer's rich help (panel titles, defaults, ``Uso:``), once, when help is first
    formatted: typer.rich_utils imports rich and markdown-it, which a command that runs does not
    need (issue 17, the thin client)."""
    global _rich_in_spanish
    if _rich_in_spanish:
        return
    import typer.rich_utils as rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = "Argumentos"
    rich_utils.OPTIONS_PANEL_TITLE = "Opciones"
    rich_utils.COMMANDS_PANEL_TITLE = "Comandos"
    rich_utils.DEFAULT_STRING = "[predeterminado: {}]"
    rich_utils.ENVVAR_STRING = "[variable de entorno: {}]"
    rich_utils.REQUIRED_LONG_STRING = "[obligatorio]"
    rich_utils.DEPRECATED_STRING = "(obsoleto) "
    rich_utils.OptionHighlighter.highlights = [
        *rich_utils.OptionHighlighter.highlights[:-1],
        r"(?P<usage>Uso: )",
    ]
    rich_utils.highlighter = rich_utils.OptionHighlighter()
    _rich_in_spanish = True


_COMPLETION_HELP = {
    "install_completion": "Instala el autocompletado para el intérprete de comandos actual.",
    "show_completion": "Muestra el script de autocompletado, para copiarlo o adaptarlo.",
}


def _spanish_usage(text: str) -> str:
    return (
        text.replace("Usage:", "Uso:", 1)
        .replace("[OPTIONS]", "[OPCIONES]")
        .replace("COMMAND [ARGS]...", "COMANDO [ARGUMENTOS]...")
    )


def _translate_params(command: Any) -> None:
    for param in getattr(command, "params", []):
        if param.name in _COMPLETION_HELP:
            param.help = _COMPLETION_HELP[param.name]
            _absent_is_false(param)


def _absent_is_false(flag: Any) -> None:
    """An absent help or completion flag is ``False``, not ``None``. typer sends every value
    that is not already a bool through its pydantic coercion: with ``None`` there, merely
    running a command imported pydantic and built a validator, more than a data command's
    whole round trip (issue 17, the thin client). The flags' callbacks treat both alike."""
    if flag.default is None:
        flag.default = False


class SpanishCommand(typer.core.TyperCommand):
    """A typer command whose generated help speaks Spanish."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
            _absent_is_false(option)
        return option

    def get_usage(self, ctx: Any) -> str:
        return _spanish_usage(super().get_usage(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _spanish_rich_help()
        super().format_help(ctx, formatter)


class SpanishGroup(typer.core.TyperGroup):
    """A typer group whose generated help speaks Spanish."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.help = HELP_OPTION_TEXT
            _absent_is_false(option)
        _translate_params(self)
        return option

    def get_usage(self, ctx: Any) -> str:
        return _spanish_usage(super().get_usage(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _spanish_rich_help()
        super().format_help(ctx, formatter)


F = TypeVar("F", bound=Callable[..., Any])


def reflow(doc: str) -> str:
    """A docstring as help text: paragraphs joined into single lines (the terminal wraps)."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(doc))
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class App(typer.Typer):
    """``typer.Typer`` whose groups and commands produce Spanish help."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", SpanishGroup)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("rich_markup_mode", "rich")
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", SpanishCommand)

        def decorate(function: F) -> F:
            options = dict(kwargs)
            if "help" not in options and function.__doc__:
                options["help"] = reflow(function.__doc__)
            registered: F = super(App, self).command(*args, **options)(function)
            return registered

        return decorate


_USAGE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Missing option '(?P<a>[^']+)'.*$"), "Falta la opción obligatoria {a}."),
    (re.compile(r"^Missing argument '(?P<a>[^']+)'.*$"), "Falta el argumento obligatorio {a}."),
    (
        re.compile(r"^No such option: (?P<a>\S+) \(Possible options: (?P<p>.+)\)$"),
        "No existe la opción {a}. ¿Quiso decir una de: {p}?",
    ),
    (
        re.compile(r"^No such option: (?P<a>\S+?) Did you mean (?P<b>.+)\?$"),
        "No existe la opción {a}. ¿Quiso decir {b}?",
    ),
    (re.compile(r"^No such option: (?P<a>\S+)$"), "No existe la opción {a}."),
    (
        re.compile(r"^No such command '(?P<a>[^']+)'\.? Did you mean '(?P<c>[^']+)'\?$"),
        "No existe el comando «{a}». ¿Quiso decir «{c}»?",
    ),
    (re.compile(r"^No such command '(?P<a>[^']+)'\.?$"), "No existe el comando «{a}»."),
    (re.compile(r"^Got unexpected extra arguments? \((?P<a>.*)\)$"), "Sobran argumentos: {a}."),
    (
        re.compile(r"^Option '(?P<a>[^']+)' requires an argument\.?$"),
        "La opción {a} requiere un valor.",
    ),
    (
        re.compile(r"^Option '(?P<a>[^']+)' does not take a value\.?$"),
        "La opción {a} no admite valor.",
    ),
    (
        re.compile(r"^Invalid value for '?(?P<a>[^':]+)'?: (?P<b>.*)$"),
        "Valor no válido para {a}: {b}",
    ),
    (re.compile(r"^Invalid value: (?P<b>.*)$"), "Valor no válido: {b}"),
    (re.compile(r"^Missing command\.?$"), "Falta el comando."),
]

_VALUE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^'?(?P<v>.*?)'? is not one of (?P<c>.*)\.$"), "«{v}» no es una de: {c}."),
    (re.compile(r"^'?(?P<v>.*?)'? is not a valid integer\.?$"), "«{v}» no es un número entero."),
    (
        re.compile(r"^'?(?P<v>.*?)'? does not match the format (?P<c>.*)\.?$"),
        "«{v}» no tiene el formato {c}.",
    ),
    (re.compile(r"^Value '?(?P<v>.*?)'? is not a valid (?P<c>.*)\.$"), "«{v}» no es válido."),
    # click.Path
    (
        re.compile(r"^(?i:file|directory|path) '(?P<v>.*)' is a directory\.$"),
        "«{v}» es una carpeta; indique un archivo.",
    ),
    (
        re.compile(r"^(?i:file|directory|path) '(?P<v>.*)' is a file\.$"),
        "«{v}» es un archivo; indique una carpeta.",
    ),
    (re.compile(r"^(?i:file|directory|path) '(?P<v>.*)' does not exist\.$"), "«{v}» no existe."),
    (
        re.compile(r"^(?i:file|directory|path) '(?P<v>.*)' is not readable\.$"),
        "«{v}» no se puede leer (permisos).",
    ),
    (
        re.compile(r"^(?i:file|directory|path) '(?P<v>.*)' is not writable\.$"),
        "«{v}» no se puede escribir (permisos).",
    ),
    # typer's own checks of typed options (pydantic's wording)
    (re.compile(r"^Input should be a valid integer\b.*$"), "debe ser un número entero."),
    (re.compile(r"^Input should be a valid number\b.*$"), "debe ser un número."),
    (re.compile(r"^Input should be a valid date\b.*$"), "debe ser una fecha (AAAA-MM-DD)."),
    (re.compile(r"^Input should be a valid (?P<c>\w+)\b.*$"), "no es un valor válido."),
]


def translate_usage_error(message: str) -> str:
    """A click/typer usage error message in Spanish (unknown messages pass through)."""
    message = message.strip()
    for pattern, template in _USAGE_PATTERNS:
        match = pattern.match(message)
        if match:
            parts = {k: (v or "") for k, v in match.groupdict().items()}
            if "b" in parts:
                parts["b"] = _translate_value(parts["b"])
            return template.format(**parts)
    return _translate_value(message)


def _translate_value(message: str) -> str:
    from cli.messages import translated

    return translated(_VALUE_PATTERNS, message.strip()) or message
