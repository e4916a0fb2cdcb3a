"""Wall time of ``custodia --help`` against ``python -c pass``, measured in the same run.

Usage: ``.venv/bin/python bench/bench_cli.py [--runs 20]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    custodia = str(Path(sys.executable).parent / "custodia")
    _time([custodia, "--help"], 2)  # warm the page cache and .pyc files
    base = _time([sys.executable, "-c", "pass"], args.runs)
    helps = _time([custodia, "--help"], args.runs)
    sub = _time([custodia, "rotar", "--help"], args.runs) if _has(custodia, "rotar") else None
    b, h = statistics.median(base), statistics.median(helps)
    print(f"python -c pass      median {b * 1000:7.1f} ms")
    print(f"custodia --help     median {h * 1000:7.1f} ms   ratio {h / b:5.1f}x")
    if sub:
        s = statistics.median(sub)
        print(f"custodia rotar -h   median {s * 1000:7.1f} ms   ratio {s / b:5.1f}x")


def _has(custodia: str, command: str) -> bool:
    result = subprocess.run([custodia, command, "--help"], capture_output=True, check=False)
    return result.returncode == 0


if __name__ == "__main__":
    main()
