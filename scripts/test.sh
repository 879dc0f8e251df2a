#!/usr/bin/env bash
# The whole test suite: installs what is missing (and builds the web app when stale), then runs pytest
# over every test folder.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/build-web.sh  # the browser tests drive the production build through the gateway
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
