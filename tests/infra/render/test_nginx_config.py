"""nginx.conf: accepted by `nginx -t` for every stack in both worlds, and wired from the spec."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from infra.render.nginx import (
    TEMP_PATHS,
    GatewayAddresses,
    GatewayPorts,
    make_writable_dirs,
    render_nginx_conf,
)
from infra.spec import PlatformSpec

from .conftest import require_tool


def nginx_test(conf: str, base: Path) -> subprocess.CompletedProcess[str]:
    path = base / "nginx.conf"
    path.write_text(conf)
    return subprocess.run(
        [require_tool("nginx"), "-t", "-c", str(path), "-p", str(base)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def local_addrs(spec: PlatformSpec, base: Path, tls: tuple[Path, Path]) -> GatewayAddresses:
    ports = {svc.name: 19000 + i for i, svc in enumerate(spec.services)}
    return GatewayAddresses.for_local(
        spec,
        base,
        GatewayPorts(18080, 18443),
        ports,
        user="root" if os.geteuid() == 0 else None,
        tls_cert=tls[0],
        tls_key=tls[1],
    )


def test_local_variant_passes_nginx_t(spec: PlatformSpec, tmp_path: Path, tls_files) -> None:
    addrs = local_addrs(spec, tmp_path, tls_files)
    make_writable_dirs(addrs)
    result = nginx_test(render_nginx_conf(spec, addrs), tmp_path)
    assert result.returncode == 0, result.stderr


def test_kubernetes_variant_passes_nginx_t(spec: PlatformSpec, tmp_path: Path, tls_files) -> None:
    # Cluster DNS names cannot resolve here: only the addresses change, every directive is the real one.
    k8s = GatewayAddresses.for_kubernetes(spec)
    addrs = dataclasses.replace(
        k8s,
        upstreams={name: f"127.0.0.1:{19000 + i}" for i, name in enumerate(sorted(k8s.upstreams))},
        tls_cert=str(tls_files[0]),
        tls_key=str(tls_files[1]),
        pid_path=str(tmp_path / "nginx.pid"),
        temp_dir=str(tmp_path / "temp"),
        cache_dir=str(tmp_path / "cache" / "api"),
    )
    make_writable_dirs(addrs)
    result = nginx_test(render_nginx_conf(spec, addrs), tmp_path)
    assert result.returncode == 0, result.stderr


def test_nginx_t_rejects_a_broken_config(spec: PlatformSpec, tmp_path: Path, tls_files) -> None:
    addrs = local_addrs(spec, tmp_path, tls_files)
    make_writable_dirs(addrs)
    broken = render_nginx_conf(spec, addrs).replace("limit_req_status 429;", "limit_req_status 4299;")
    assert nginx_test(broken, tmp_path).returncode != 0


def test_kubernetes_upstreams_are_cluster_service_names(spec: PlatformSpec) -> None:
    conf = render_nginx_conf(spec, GatewayAddresses.for_kubernetes(spec))
    ns = spec.config.namespace
    for svc in spec.services:
        assert f"server {svc.name}.{ns}.svc.cluster.local:{svc.manifest.port} " in conf


def test_kubernetes_paths_are_writable_emptydirs(spec: PlatformSpec) -> None:
    addrs = GatewayAddresses.for_kubernetes(spec)
    conf = render_nginx_conf(spec, addrs)
    assert "listen 8080 default_server;" in conf
    assert "listen 8443 ssl http2 default_server;" in conf
    assert "ssl_certificate /etc/nginx/tls/tls.crt;" in conf
    for name in TEMP_PATHS:
        assert f"{name}_temp_path /tmp/{name};" in conf
    # Exactly the gateway's two emptyDir mounts: nothing nginx needs lies deeper inside them.
    assert set(addrs.writable_dirs) == {"/tmp", "/var/cache/nginx"}


def test_every_route_is_proxied_without_stripping(spec: PlatformSpec) -> None:
    conf = render_nginx_conf(spec, GatewayAddresses.for_kubernetes(spec))
    for svc in spec.services:
        route = svc.manifest.route
        assert f"location ^~ {route}/ {{" in conf
        assert f"location = {route} {{" in conf
    # proxy_pass without a URI part forwards the full original path (services and the web app).
    assert all(
        line.strip().endswith(("_svc;", "upstream_web;"))
        for line in conf.splitlines()
        if "proxy_pass" in line
    )


def test_websocket_upgrade_only_on_websocket_routes(specs) -> None:
    spec = specs["dev"]
    conf = render_nginx_conf(spec, GatewayAddresses.for_kubernetes(spec))
    blocks = conf.split("location ^~ ")[1:]
    for block in blocks:
        route = block.split("/ {", 1)[0]
        if route in ("/api", "/_next/static"):
            continue  # the JSON 404 for unknown API paths; the web app's assets
        owner = next(s for s in spec.services if s.manifest.route == route)
        assert ("$connection_upgrade" in block.split("location")[0]) == owner.manifest.gateway.websocket


def test_cors_allowlist_has_exactly_the_stack_origins(spec: PlatformSpec) -> None:
    conf = render_nginx_conf(spec, GatewayAddresses.for_kubernetes(spec))
    allowed = [
        line.split('"')[1]
        for line in conf.splitlines()
        if line.strip().startswith('"http') and line.strip().endswith('" allowed;')
    ]
    assert sorted(allowed) == sorted(spec.config.gateway.cors_origins)
    assert "Access-Control-Allow-Origin *" not in conf


def test_rendering_is_deterministic(spec: PlatformSpec) -> None:
    addrs = GatewayAddresses.for_kubernetes(spec)
    assert render_nginx_conf(spec, addrs) == render_nginx_conf(spec, addrs)


@pytest.mark.parametrize("stack", ["dev"])
def test_local_routes_only_started_services(specs, stack: str, tmp_path: Path) -> None:
    spec = specs[stack]
    addrs = GatewayAddresses.for_local(spec, tmp_path, (1, 2), {"auth-svc": 9001})
    conf = render_nginx_conf(spec, addrs)
    assert "location ^~ /api/auth/" in conf
    assert "location ^~ /api/chat/" not in conf
