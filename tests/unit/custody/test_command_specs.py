"""One spec per command (issue 17): the service derives its checks from
:mod:`custody.service.spec`, and the command line reads the specs without the application."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from custody.app.custodia import Custodia
from custody.service import server
from custody.service.commands import (
    UnknownArgumentError,
    bind,
    build_handlers,
    handler_tables,
)
from custody.service.protocol import ProtocolError, subject_for
from custody.service.server import Call, Caller
from custody.service.spec import COMMANDS, READ_ONLY, CommandSpec, registry
from custody.vault.client import VaultClient
from custody.vault.sealed_args import SealedArgumentError
from events.errors import ConfigurationError

# Bound by the composition root (custody.runner.serve): they need the read side.
READ_SIDE = {"reporte", "bitacora.estado", "avisos.lista"}
# Never called by these tests: the application and OpenBao are not reached.
NO_APP = cast(Custodia, object())
NO_VAULT = cast(VaultClient, object())


def _call(command: str, args: dict[str, Any], reply_key: str | None = None) -> Call:
    caller = Caller("ana", "e1", ("custodia-persona",), token="t")
    return Call(command, caller, args, "req-00000001", reply_key, datetime.now(UTC))


def _echo(call: Call) -> Any:
    return dict(call.args)


def _all_echo() -> dict[str, server.Handler]:
    return dict.fromkeys(COMMANDS, _echo)


def test_every_spec_has_one_handler_and_every_handler_a_spec() -> None:
    """The handler tables and the read side's three cover exactly the declared commands, each
    once; the service builds (and would refuse to start otherwise)."""
    names: list[str] = []
    for table in handler_tables(NO_APP):
        names.extend(table)
    assert len(names) == len(set(names))
    assert set(names) | READ_SIDE == set(COMMANDS)
    extra = dict.fromkeys(READ_SIDE, _echo)
    assert set(build_handlers(NO_APP, NO_VAULT, extra)) == set(COMMANDS)


def test_a_missing_or_undeclared_handler_stops_the_service_from_starting() -> None:
    """A spec without a handler, or a handler without a spec, is refused when binding."""
    handlers = _all_echo()
    del handlers["sesion.quien"]
    with pytest.raises(ConfigurationError, match=r"sesion\.quien"):
        bind(handlers, NO_VAULT)
    with pytest.raises(ConfigurationError, match=r"prueba\.nueva"):
        bind({**_all_echo(), "prueba.nueva": _echo}, NO_VAULT)
    with pytest.raises(ConfigurationError, match="handled twice"):
        build_handlers(NO_APP, NO_VAULT, {"sesion.quien": _echo, **dict.fromkeys(READ_SIDE, _echo)})


def test_arguments_a_spec_does_not_list_are_refused_before_the_handler() -> None:
    """An argument outside the spec is refused naming it; the handler never runs."""
    ran: list[str] = []

    def handler(call: Call) -> Any:
        ran.append(call.command)

    bound = bind({**_all_echo(), "cuentas.lista": handler}, NO_VAULT)
    with pytest.raises(UnknownArgumentError) as refused:
        bound["cuentas.lista"](_call("cuentas.lista", {"distrito": "DD05", "distritto": "x"}))
    assert refused.value.names == ["distritto"]
    assert ran == []
    bound["cuentas.lista"](_call("cuentas.lista", {"distrito": "DD05"}))
    assert ran == ["cuentas.lista"]


def test_a_sealed_argument_sent_in_the_clear_is_refused_before_the_handler() -> None:
    """``personas.alta --contrasena`` in the clear: refused by the opening step its spec adds
    (before OpenBao is asked anything, and before the handler)."""
    bound = bind(_all_echo(), NO_VAULT)
    with pytest.raises(SealedArgumentError):
        bound["personas.alta"](_call("personas.alta", {"usuario": "luis", "contrasena": "x"}))


def test_a_sealed_reply_needs_a_valid_reply_key_and_overlapping_ones_are_marked() -> None:
    """Commands whose reply is sealed refuse a request without a usable reply key before they
    run; the ``overlapping`` ones carry the server's claim-overlapping mark; no other does."""
    bound = bind(_all_echo(), NO_VAULT)
    for name, spec in COMMANDS.items():
        if spec.sealed_reply:
            with pytest.raises(ProtocolError):
                bound[name](_call(name, {}, reply_key=None))
        assert getattr(bound[name], "claim_overlapping", False) is spec.overlapping, name
    assert {n for n, s in COMMANDS.items() if s.sealed_reply} == {
        "rotar.iniciar",
        "revelar",
        "codigo",
        "personas.contacto",
        "segundo_factor.inscribir",
        "personas.restablecer_factor",
        "personas.segundo_factor",
    }


def test_the_server_and_the_sealer_read_the_specs() -> None:
    """READ_ONLY (no idempotency record) and the sealed arguments come from the specs; every
    name is a valid NATS command subject."""
    from custody.vault import sealed_args

    assert server.READ_ONLY == READ_ONLY == {n for n, s in COMMANDS.items() if s.read_only}
    assert dict(sealed_args.SEALED_ARGUMENTS) == {"personas.alta": frozenset({"contrasena"})}
    for name in COMMANDS:
        assert subject_for(name).endswith(name)


def test_a_spec_is_checked_when_declared() -> None:
    """A sealed argument the command does not take, a read-only command that seals or claims,
    and a name declared twice are programming errors caught at import."""
    with pytest.raises(ValueError, match="sealed"):
        CommandSpec("x.alta", {"a"}, sealed={"b"})
    with pytest.raises(ValueError, match="read-only"):
        CommandSpec("x.lista", read_only=True, overlapping=True)
    with pytest.raises(ValueError, match="twice"):
        registry(CommandSpec("x.a"), CommandSpec("x.a"))
    assert CommandSpec("x.a", {"b"}).arguments == frozenset({"b"})


def test_the_specs_and_the_client_import_neither_the_application_nor_openbao() -> None:
    """A fresh interpreter importing the spec registry and the command client loads none of
    the application, the domain, hvac, structlog, rich or cryptography (the thin client)."""
    heavy = [
        "hvac",
        "requests",
        "eventsourcing",
        "events.domain",
        "custody.app",
        "custody.vault.client",
        "structlog",
        "rich",
        "cryptography",
    ]
    code = (
        "import json, sys\n"
        "import custody.service.spec, custody.service.client\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def _cli_calls() -> list[tuple[str, int, str, set[str] | None]]:
    """Every ``call("command", {...})`` of the command line: (file, line, command, the argument
    names it sends; ``None`` when they are not a literal dict)."""
    import ast
    from pathlib import Path

    from custody.service.spec import CHANNEL

    found = []
    for path in sorted((Path(__file__).resolve().parents[3] / "cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else None
            first = node.args[0]
            if name != "call" or not isinstance(first, ast.Constant):
                continue
            names: set[str] | None = set()
            if len(node.args) > 1:
                given = node.args[1]
                if not isinstance(given, ast.Dict):
                    names = None
                else:
                    for key, value in zip(given.keys, given.values, strict=True):
                        if isinstance(key, ast.Constant):
                            assert names is not None
                            names.add(str(key.value))
                        elif "channel_args" in ast.unparse(value):
                            assert names is not None
                            names |= CHANNEL
                        else:
                            names = None
                            break
            found.append((path.name, node.lineno, str(first.value), names))
    return found


def test_every_command_the_cli_sends_is_declared_with_the_arguments_it_sends() -> None:
    """Each ``call("…", {...})`` in cli/ names a declared command and sends only arguments its
    spec takes (what the service would otherwise refuse as unknown)."""
    calls = _cli_calls()
    assert len(calls) > 40
    for where, line, command, names in calls:
        assert command in COMMANDS, f"{where}:{line} {command}"
        if names is not None:
            extra = names - COMMANDS[command].arguments
            assert not extra, f"{where}:{line} {command} sends {sorted(extra)}"
