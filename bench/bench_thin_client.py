"""How thin the client is (issue 17), each figure against its baseline in the same run.

- ``custodia --help`` against the ``--help`` of a bare typer app (two commands, rich help as
  typer renders it by default). Goal: <= 1.3x.
- ``custodia sesion quien``, a real round trip to ``custodia servicio`` (a fresh home with
  ``custodia init``, the service and embedded NATS and OpenBao, started as ``bench_service.py``
  does; ana logged in), against ``python -c "import nats, typer"``. Goal: <= 1.5x.
- for context: ``python -c pass``, ``custodia sesion quien --json`` (no rich rendering) and
  ``custodia cuentas lista --json`` (its absent ``--distrito`` makes typer import pydantic).

Each sample is a new process, wall time, with bytecode caches written (as pip writes them when
it installs the wheel; ``PYTHONDONTWRITEBYTECODE`` is dropped for the measured processes). The
commands are interleaved (one sample of each per round), so a noisy neighbour on a shared
machine weighs on a figure and on its baseline alike; medians are reported. Stops everything
it started.

``--compare DIR`` also measures ``sesion quien`` run from another checkout of the repository
(``git archive <commit> cli custody events projections | tar -x -C DIR``) against this one, both
started the same way (the source directory put first on the path, the editable install's finder
left out), in the same rounds: a before/after figure from one run, on the same service.

Run: ``.venv/bin/python bench/bench_thin_client.py [--runs 30] [--compare DIR]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_service import CUSTODIA, PASSWORD, world
from custody.bootstrap import resolve
from custody.config import Settings
from custody.vault import session

IMPORT_NATS_TYPER = 'python -c "import nats, typer"'
BARE_TYPER_APP = '''
import typer

app = typer.Typer()


@app.command()
def hola(nombre: str = typer.Option("mundo", help="A quién saludar.")) -> None:
    """Saluda."""
    print(f"Hola, {nombre}")


@app.command()
def adios() -> None:
    """Se despide."""


app()
'''


def from_checkout(python: str, checkout: Path, *args: str) -> list[str]:
    """``custodia *args`` run from the sources in ``checkout`` (not the editable install)."""
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in repr(f)]\n"
        f"sys.path.insert(0, {str(checkout)!r})\n"
        "from cli.main import main\n"
        "main()\n"
    )
    return [python, "-c", code, *args]


def _once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def measure(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """The median wall time (ms) of each command, sampled in interleaved rounds."""
    for argv in commands.values():  # warm the page cache and the .pyc files
        _once(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(_once(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def verdict(name: str, figure: float, base: float, goal: float) -> None:
    ratio = figure / base
    mark = "ok" if ratio <= goal else "OVER"
    print(f"  {name:<46} {figure:7.1f} / {base:7.1f} ms = {ratio:4.2f}x  (goal <= {goal}x) {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--compare", type=Path, help="another checkout's sources (before)")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-typer-") as scratch, world() as home:
        bare = Path(scratch) / "bare_typer_app.py"
        bare.write_text(BARE_TYPER_APP)
        settings = Settings.from_env({"CUSTODIA_HOME": str(home)})
        vault_addr = resolve(settings, "cliente").vault_addr
        session.login(vault_addr, "ana", PASSWORD, home / "sesion.json")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIA_")}
        env["CUSTODIA_HOME"] = str(home)
        env["COLUMNS"] = "100"
        # Bytecode is cached, as in an installed wheel (pip compiles it at install): otherwise
        # every run compiles Custodia's modules anew, and none of the baselines' libraries.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        here = Path(__file__).resolve().parent.parent
        compare = (
            {
                "sesion quien from this checkout": from_checkout(python, here, "sesion", "quien"),
                f"sesion quien from {args.compare}": from_checkout(
                    python, args.compare, "sesion", "quien"
                ),
            }
            if args.compare
            else {}
        )
        figures = measure(
            {
                **compare,
                "python -c pass": [python, "-c", "pass"],
                "bare typer app --help": [python, str(bare), "--help"],
                "custodia --help": [CUSTODIA, "--help"],
                IMPORT_NATS_TYPER: [python, "-c", "import nats, typer"],
                "custodia sesion quien": [CUSTODIA, "sesion", "quien"],
                "custodia sesion quien --json": [CUSTODIA, "sesion", "quien", "--json"],
                "custodia cuentas lista --json": [CUSTODIA, "cuentas", "lista", "--json"],
            },
            env,
            args.runs,
        )
    load = os.getloadavg()[0]
    print(f"Medians of {args.runs} interleaved runs (load {load:.2f} on {os.cpu_count()} CPUs):")
    for name, value in figures.items():
        print(f"  {name:<46} {value:7.1f} ms")
    print("Ratios:")
    verdict(
        "custodia --help / bare typer app --help",
        figures["custodia --help"],
        figures["bare typer app --help"],
        1.3,
    )
    verdict(
        'custodia sesion quien / python -c "import nats, typer"',
        figures["custodia sesion quien"],
        figures[IMPORT_NATS_TYPER],
        1.5,
    )
    nats_typer = figures[IMPORT_NATS_TYPER]
    for name in ("custodia sesion quien --json", "custodia cuentas lista --json", *compare):
        print(f"  (context) {name} / import nats, typer: {figures[name] / nats_typer:.2f}x")


if __name__ == "__main__":
    main()
