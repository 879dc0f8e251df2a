"""Defect A2: nginx resolves its upstream hosts at start and exits with "host not found" while a
service's Service does not exist yet. The gateway must depend on every Service it proxies to."""

from __future__ import annotations

import re

import pytest

from infra.spec import load_spec
from tests.infra.deploy.conftest import find, logical_name, registration

UPSTREAM_SERVER = re.compile(r"^\s*server\s+([^\s:;]+)", re.MULTILINE)


def upstream_hosts(conf: str) -> set[str]:
    """Host names of the ``server`` lines inside ``upstream`` blocks."""
    hosts = set()
    for block in re.findall(r"upstream\s+\S+\s*\{(.*?)\}", conf, re.DOTALL):
        hosts |= set(UPSTREAM_SERVER.findall(block))
    return hosts


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_gateway_depends_on_every_service_it_proxies_to(stacks, stack) -> None:
    rendered = stacks[stack]
    namespace = load_spec(stack).config.namespace
    conf = find(rendered.manifests, "ConfigMap", "gateway-config")["data"]["nginx.conf"]
    hosts = upstream_hosts(conf)
    spec = load_spec(stack)
    assert len(hosts) == len(spec.services) + len(spec.web_apps)
    gateway = registration(rendered, logical_name(rendered, "Deployment", "gateway"))
    for host in sorted(hosts):
        service, ns = host.split(".")[:2]
        assert ns == namespace
        assert logical_name(rendered, "Service", service) in gateway.dependencies, host
