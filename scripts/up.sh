#!/usr/bin/env bash
# Bring the whole platform up locally: installs what is missing, builds the web app when its build is
# stale, then `platform dev up`.
# Extra arguments go to `platform dev up` (e.g. scripts/up.sh --reload: services reload, `next dev`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [[ " $* " != *" --reload "* ]]; then
    bash scripts/build-web.sh
fi
exec .venv/bin/platform dev up "$@"
