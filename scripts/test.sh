#!/usr/bin/env bash
# The whole test suite: install, lint, type-check, tests (unit, integration on real servers, e2e).
source "$(dirname "$0")/_venv.sh"
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
