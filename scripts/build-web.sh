#!/usr/bin/env bash
# Build the web app (next build, standalone output) when its build is missing or older than any of
# its sources; otherwise do nothing. scripts/up.sh and scripts/test.sh call it after the bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
server=frontend/.next/standalone/server.js
if [ -f "$server" ] && [ -z "$(find frontend \( -path frontend/node_modules -o -path frontend/.next \) \
    -prune -o -type f -newer "$server" -print -quit)" ]; then
    exit 0
fi
echo "[build-web] building the web app (next build, standalone output)" >&2
cd frontend
PATH="$PWD/../.tools/node/bin:$PATH" NEXT_TELEMETRY_DISABLED=1 npm run build
