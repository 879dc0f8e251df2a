#!/usr/bin/env bash
# Bring the whole platform up locally: installs what is missing, then `platform dev up`.
# Extra arguments go to `platform dev up` (e.g. scripts/up.sh --reload).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/platform dev up "$@"
