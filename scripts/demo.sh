#!/usr/bin/env bash
# The main job on the embedded default, in a throw-away home.
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/custodia demo "$@"
