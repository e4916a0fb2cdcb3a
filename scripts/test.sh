#!/usr/bin/env bash
# The whole test suite: install, lint, type-check, tests (unit, integration on real servers, e2e).
# With CI=true a skipped test fails the run (tests/conftest.py) and hypothesis uses its ``ci``
# profile; HYPOTHESIS_PROFILE=deep runs the properties with more examples, by hand.
source "$(dirname "$0")/_venv.sh"
# The HTML report is checked in a real headless browser (Debian's chromium), installed when
# missing and possible (root with apt-get, as on CI). Without it that one test is skipped, which
# on CI fails the run: say so now rather than after the whole suite.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== chromium (Debian) para la prueba del reporte HTML"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "chromium no disponible: la prueba del HTML se omitirá"
fi
if [ "${CI:-}" = true ] && ! command -v chromium chromium-browser google-chrome >/dev/null 2>&1; then
  echo "CI: falta chromium; la prueba del reporte HTML no puede omitirse en CI" >&2
  exit 1
fi
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy --strict"; .venv/bin/mypy
# Two worker processes, each taking whole files (module fixtures and a file's order kept): the
# suite mostly waits on the servers it starts. ``-n 0`` after the script runs it in one process.
echo "== pytest"; .venv/bin/pytest -rs -n 2 --dist loadfile "$@"
