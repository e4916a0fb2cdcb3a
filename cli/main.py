"""Entry point of the ``custodia`` console script: run the app, speak Spanish on every error."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from cli.messages import EXIT_USAGE, describe, file_problem


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``custodia``; any Custodia error becomes a Spanish message and a non-zero exit.

    Everything it creates (and the servers it starts create) is its owner's alone: the home
    holds the projections (incident details, who read which account when) and the logs, which
    other local users must not read."""
    os.umask(0o077)
    leave(run(list(sys.argv[1:] if argv is None else argv)))


def leave(code: int) -> NoReturn:
    """End the process with ``code`` once the command is done, without tearing the interpreter
    down object by object (what mypy's ``hard_exit`` does too): that teardown frees memory the
    operating system takes back at once anyway, and costs a one-record command (``sesion
    quien``) a tenth of its time.

    Only when nothing else needs the exit: the output is flushed and the logs shut down first;
    with another thread alive, an exit hook beyond the logs' own, or an output that cannot be
    flushed, the process exits the usual way (``sys.exit``)."""
    import atexit
    import logging
    import threading

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    hooks = getattr(atexit, "_ncallbacks", None)
    expected = 1 if "logging" in sys.modules else 0  # logging registers its shutdown at import
    if threading.active_count() != 1 or hooks is None or hooks() != expected:
        sys.exit(code)
    logging.shutdown()
    os._exit(code)


def run(args: list[str]) -> int:
    """Run the command line with ``args``; return the exit code."""
    from typer._click import exceptions as click_exceptions  # here: the handling stays cheap
    from typer.exceptions import Abort, Exit

    import cli.app

    cli.app.HELP_ONLY = any(arg in ("-h", "--help") for arg in args)
    from events.errors import CustodiaError

    command = cli.app.command_for(args)
    try:
        result = command.main(args=args, prog_name="custodia", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        return 0
    except click_exceptions.UsageError as exc:
        from cli.spanish import translate_usage_error

        path = exc.ctx.command_path if exc.ctx is not None else "custodia"
        _error(
            f"{translate_usage_error(exc.format_message())}\n"
            f"Consulte «{path} --help» para ver la ayuda."
        )
        return EXIT_USAGE
    except click_exceptions.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except (Abort, KeyboardInterrupt, EOFError):
        _error("Operación cancelada.")
        return 130
    except Exit as exc:
        return int(exc.exit_code or 0)
    except CustodiaError as exc:
        code, message = describe(exc)
        _error(message)
        return code
    except OSError as exc:
        if exc.filename is None:  # not a file the user named (a socket, say): not ours to word
            raise
        _error(file_problem(exc))
        return EXIT_USAGE
    if isinstance(result, int):
        return result
    return 0


def _error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
