#!/usr/bin/env bash
# Deploy one stack from CI: select (or create) the stack, `platform check`, then `platform up --yes`
# (the real Pulumi CLI).
#
# Usage: .github/scripts/deploy-stack.sh <stack>
#
# Environment (set by .github/workflows/deploy.yml from secrets; never echoed):
#   PULUMI_ACCESS_TOKEN   Pulumi Cloud token (the CLI logs in with it)
#   KUBECONFIG_CONTENT    the kubeconfig file's content for the stack's cluster
#   REGISTRY_USERNAME, REGISTRY_PASSWORD
#                         optional: `docker login` to the stack's platform:registry host, where
#                         pulumi-docker pushes the service images
#   PULUMI_ORG            optional: default Pulumi Cloud organization for the bare stack name
#
# Credentials live in a private temporary directory (mode 0700, files 0600) that is deleted on exit.
set -euo pipefail

fail() {
    printf 'error: %s\nhint: %s\n' "$1" "$2" >&2
    exit 2
}

[ $# -eq 1 ] || fail "expected one argument, the stack name" "run: $0 <dev|staging|prod>"
stack=$1
cd "$(dirname "$0")/../.."

[ -f "stacks/Pulumi.$stack.yaml" ] ||
    fail "unknown stack '$stack': stacks/Pulumi.$stack.yaml does not exist" "pass dev, staging or prod"
[ -n "${PULUMI_ACCESS_TOKEN:-}" ] ||
    fail "PULUMI_ACCESS_TOKEN is empty" "add the repository secret PULUMI_ACCESS_TOKEN (docs/ci.md)"
[ -n "${KUBECONFIG_CONTENT:-}" ] ||
    fail "KUBECONFIG_CONTENT is empty" "add the secret KUBECONFIG to the GitHub environment '$stack' (docs/ci.md)"
platform=.venv/bin/platform
[ -x "$platform" ] || fail "$platform is not executable" "install the project first (scripts/bootstrap.sh)"

umask 077
secrets_dir=$(mktemp -d)
trap 'rm -rf "$secrets_dir"' EXIT

printf '%s\n' "$KUBECONFIG_CONTENT" >"$secrets_dir/kubeconfig"
unset KUBECONFIG_CONTENT
export KUBECONFIG="$secrets_dir/kubeconfig"
# docker login stores the credentials under DOCKER_CONFIG: keep them in the private dir too.
export DOCKER_CONFIG="$secrets_dir/docker"

if [ -n "${REGISTRY_USERNAME:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
    registry=$(.venv/bin/python -c \
        'import sys; from infra.spec import load_spec; print(load_spec(sys.argv[1]).config.registry)' "$stack")
    printf '%s' "$REGISTRY_PASSWORD" |
        docker login "${registry%%/*}" --username "$REGISTRY_USERNAME" --password-stdin
fi
unset REGISTRY_PASSWORD

if [ -n "${PULUMI_ORG:-}" ]; then
    pulumi org set-default "$PULUMI_ORG"
fi
# The first run on a fresh state backend has no stack yet; `pulumi up --stack` alone would fail.
pulumi stack select --create "$stack"

"$platform" check --stack "$stack"
"$platform" up --stack "$stack" --yes
