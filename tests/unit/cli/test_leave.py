"""``custodia`` ends its process without the interpreter's teardown (cli.main.leave), and loses
nothing by it: the output and the logs are complete, the exit code is the command's, and an exit
hook or a thread still running makes it exit the usual way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_buffered_output_and_the_exit_code_survive() -> None:
    """Into a pipe (block-buffered), everything printed arrives, both streams, and the code is
    the one given."""
    done = _python(
        "from cli.main import leave\n"
        "import sys\n"
        "print('línea ' * 2000)\n"
        "print('aviso', file=sys.stderr)\n"
        "leave(3)\n"
    )
    assert done.returncode == 3
    assert done.stdout == "línea " * 2000 + "\n"
    assert done.stderr == "aviso\n"


def test_log_files_are_flushed(tmp_path: Path) -> None:
    """A record written through a logging file handler is in the file after the exit."""
    log = tmp_path / "custodia.log"
    done = _python(
        "import logging\n"
        f"logging.basicConfig(filename={str(log)!r}, level=logging.INFO)\n"
        "logging.getLogger('x').info('registro final')\n"
        "from cli.main import leave\n"
        "leave(0)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "registro final" in log.read_text()


def test_an_exit_hook_still_runs() -> None:
    """Someone registered an exit hook (a temporary directory's clean-up, say): the process
    exits the usual way and the hook runs."""
    done = _python(
        "import atexit\n"
        "from cli.main import leave\n"
        "atexit.register(lambda: print('gancho'))\n"
        "leave(4)\n"
    )
    assert (done.returncode, done.stdout) == (4, "gancho\n")


def test_a_running_thread_is_waited_for() -> None:
    """A thread still working when the command returns finishes before the process ends."""
    done = _python(
        "import threading, time\n"
        "from cli.main import leave\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('hilo'))).start()\n"
        "leave(5)\n"
    )
    assert (done.returncode, done.stdout) == (5, "hilo\n")
