#!/usr/bin/env bash
# The whole test suite: install, lint, type-check, tests (unit, integration on real servers, e2e).
source "$(dirname "$0")/_venv.sh"
# The HTML report is checked in a real headless browser (Debian's chromium), installed when
# missing and possible (root with apt-get, as on CI); otherwise that one test is skipped.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== chromium (Debian) para la prueba del reporte HTML"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "chromium no disponible: la prueba del HTML se omitirá"
fi
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
