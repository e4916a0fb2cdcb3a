"""Settings in one place (issue 17): every ``CUSTODIA_*`` variable is read by
``custody/config.py`` and documented once, in the README table rendered from it.

The checks parse the product's modules with :mod:`ast`: a module other than ``custody/config.py``
that names a ``CUSTODIA_`` variable in code (a string that is exactly such a name, an f-string
that starts with the prefix, the bare prefix) or reads the environment by key
(``os.environ.get``, ``os.environ[...]``, ``os.getenv``) fails the test. Docstrings and messages
that merely mention a variable are prose, not reads.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from custody import config
from custody.config import NoticeSettings, ServiceTimings, Settings
from events.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("events", "projections", "custody", "cli")
CONFIG = ROOT / "custody" / "config.py"
NAME = re.compile(r"CUSTODIA_[A-Z0-9_]+")
# A whole name in prose: not part of a longer word (click's ``_CUSTODIA_COMPLETE``) nor the head
# of a name built at run time (``CUSTODIA_NATS_{user}_PASSWORD``).
MENTION = re.compile(r"(?<![A-Za-z0-9_])CUSTODIA_[A-Z0-9_]+(?![A-Za-z0-9_{<[])")
# Variables of nats-server's own configuration (deploy/nats/accounts.conf), expanded by
# nats-server from its environment: no Custodia process reads them.
NATS_SERVER_VARIABLE = re.compile(r"CUSTODIA_NATS_(?:[A-Z]+_PASSWORD|CALLOUT_ISSUER)")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def environment_reads(path: Path) -> list[str]:
    """Where ``path`` names a ``CUSTODIA_`` variable in code or reads the environment by key."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = _docstrings(tree)
    inside_fstring = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found: list[str] = []
    for node in ast.walk(tree):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        where = f"{shown}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings or id(node) in inside_fstring:
                continue
            if NAME.fullmatch(node.value) or node.value == config.PREFIX:
                found.append(f"{where} names {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and str(head.value).startswith(config.PREFIX):
                found.append(f"{where} builds a {config.PREFIX}… name")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and (
                (func.attr == "get" and _is_os_environ(func.value))
                or (
                    func.attr == "getenv"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "os"
                )
            ):
                found.append(f"{where} reads the environment")
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_os_environ(node.value)
        ):
            found.append(f"{where} reads the environment")
    return found


def product_modules() -> list[Path]:
    return [p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py")) if p != CONFIG]


def test_no_module_but_config_reads_a_custodia_variable() -> None:
    """Outside custody/config.py no product module names a CUSTODIA_ variable in code or reads
    the environment by key (passing the whole environment on to a child process is allowed)."""
    found = [read for path in product_modules() for read in environment_reads(path)]
    assert found == []


def test_the_check_sees_a_read(tmp_path: Path) -> None:
    """The scan is not vacuous: a module that reads ``CUSTODIA_X`` in any of the usual ways is
    reported, and one that only mentions it in a docstring or a message is not."""
    module = tmp_path / "probe.py"
    module.write_text(
        '"""Mentions CUSTODIA_HOME in prose."""\n'
        "import os\n"
        'A = os.environ.get("CUSTODIA_X")\n'
        'B = os.environ["HOME"]\n'
        'C = os.getenv("Y")\n'
        'D = f"CUSTODIA_{A}"\n'
        'E = {}.get("CUSTODIA_Z")\n'
        'F = "Apunte CUSTODIA_HOME a otro directorio"\n',
        encoding="utf-8",
    )
    found = sorted(f.partition(" ")[2] for f in environment_reads(module))
    assert found == [
        "builds a CUSTODIA_… name",
        "names 'CUSTODIA_X'",
        "names 'CUSTODIA_Z'",
        "reads the environment",
        "reads the environment",
        "reads the environment",
    ]


def test_readme_table_is_rendered_from_config() -> None:
    """The README's "Configuración" table is exactly ``python -m custody.config``'s output:
    the docs cannot drift from what the code reads."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert config.markdown_table() in readme


def test_every_variable_mentioned_anywhere_is_a_setting() -> None:
    """Every CUSTODIA_ name that the product's code, the README, docs/, deploy/ or scripts/
    mention is one of config.VARIABLES (nats-server's own deploy variables aside): no
    undocumented setting."""
    known = {v.key for v in config.VARIABLES}
    texts = [*product_modules(), ROOT / "README.md", ROOT / "Containerfile"]
    texts += sorted((ROOT / "docs").rglob("*.md"))
    texts += [p for top in ("deploy", "scripts") for p in sorted((ROOT / top).rglob("*"))]
    texts = [p for p in texts if p.is_file()]
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in texts
        for name in MENTION.findall(path.read_text(encoding="utf-8"))
        if name not in known and not NATS_SERVER_VARIABLE.fullmatch(name)
    }
    assert unknown == set()


def test_variables_are_unique_and_documented() -> None:
    """Each variable appears once in the registry, with a meaning and a default."""
    keys = [v.key for v in config.VARIABLES]
    assert len(keys) == len(set(keys))
    assert all(v.meaning and v.default for v in config.VARIABLES)


def test_defaults_without_any_variable(tmp_path: Path) -> None:
    """With no CUSTODIA_ variable: embedded servers, home under $HOME, one replica, the session
    in the home, free ports, WARNING logs, the built-in timings."""
    env = {"HOME": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.home == tmp_path / ".local" / "share" / "custodia"
    assert settings.embedded_nats
    assert settings.embedded_vault
    assert settings.replicas == 1
    assert config.session_file(settings.home, env) == settings.home / "sesion.json"
    assert config.fixed_port(config.NATS_PORT, env) is None
    assert config.log_level(env) == "WARNING"
    assert config.audit_log(env) is None
    assert ServiceTimings.from_env(env) == ServiceTimings()


def test_values_are_read_and_checked(tmp_path: Path) -> None:
    """Set variables reach the settings; a bad one is refused naming the variable."""
    env = {
        "CUSTODIA_HOME": str(tmp_path),
        "CUSTODIA_SESION": str(tmp_path / "s.json"),
        "CUSTODIA_NATS_PORT": "4333",
        "CUSTODIA_LOG_LEVEL": "debug",
        "CUSTODIA_CHECKPOINT_EVENTS": "7",
        "CUSTODIA_AVANCE_SECONDS": "-1",  # falls back to the default: the service keeps running
    }
    assert Settings.from_env(env).home == tmp_path
    assert config.session_file(tmp_path, env) == tmp_path / "s.json"
    assert config.fixed_port(config.NATS_PORT, env) == 4333
    assert config.log_level(env) == "DEBUG"
    timings = ServiceTimings.from_env(env)
    assert timings.checkpoint_events == 7
    assert timings.advance_seconds == config.ADVANCE_SECONDS
    readers: list[tuple[str, str, Callable[[dict[str, str]], object]]] = [
        ("CUSTODIA_VAULT_PORT", "ocho", lambda e: config.fixed_port(config.VAULT_PORT, e)),
        ("CUSTODIA_CHECKPOINT_EVENTS", "mil", ServiceTimings.from_env),
        ("CUSTODIA_POLITICA", str(tmp_path / "no-existe.toml"), Settings.from_env),
        ("CUSTODIA_NATS_REPLICAS", "2", Settings.from_env),
    ]
    for name, value, read in readers:
        with pytest.raises(ConfigurationError) as refused:
            read({name: value})
        assert refused.value.name == name
    with pytest.raises(ConfigurationError) as refused:
        NoticeSettings.from_env({"CUSTODIA_CORREO_TITULAR": "titular@iecm.mx"})
    assert refused.value.name == "CUSTODIA_CORREO_TITULAR"
