#!/usr/bin/env bash
# Bring the whole platform up locally: installs what is missing, builds the web app when its build is
# missing or older than its sources, then `platform dev up`.
# Extra arguments go to `platform dev up` (e.g. scripts/up.sh --reload: `next dev`, no build needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
server=frontend/.next/standalone/server.js
if [[ " $* " != *" --reload "* ]] && {
    [ ! -f "$server" ] ||
        [ -n "$(find frontend \( -path frontend/node_modules -o -path frontend/.next \) -prune -o \
            -type f -newer "$server" -print -quit)" ]
}; then
    echo "[up] building the web app (next build, standalone output)" >&2
    (cd frontend && PATH="$PWD/../.tools/node/bin:$PATH" NEXT_TELEMETRY_DISABLED=1 npm run build)
fi
exec .venv/bin/platform dev up "$@"
