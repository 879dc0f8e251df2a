"""The web app behind the rendered gateway: pages with a nonce CSP, immutable static assets, the
internal API listener. Live nginx (local variant) in front of a small upstream that plays the app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from infra.local.ports import free_port, port_accepts
from infra.render.nginx import (
    WEB_STATIC_CACHE_CONTROL,
    GatewayAddresses,
    GatewayPorts,
    make_writable_dirs,
    render_nginx_conf,
)

from .conftest import require_tool

NONCE = re.compile(r"'nonce-([0-9a-f]{32})'")


class App(BaseHTTPRequestHandler):
    """Answers like a Next.js server: HTML naming the nonce it was given (and setting its own CSP and
    caching headers, which the gateway must replace), JavaScript under /_next/static/, JSON for /api."""

    protocol_version = "HTTP/1.1"
    hits: Counter[str] = Counter()
    received: dict[str, dict[str, str]] = {}

    def do_GET(self) -> None:
        App.hits[self.path] += 1
        App.received[self.path] = dict(self.headers.items())
        if self.path.startswith("/_next/static/"):
            body, kind = b"export const x = 1;\n" * 200, "application/javascript"
        elif self.path.startswith("/api/"):
            body, kind = json.dumps({"path": self.path}).encode(), "application/json"
        else:
            nonce = self.headers.get("X-Nonce", "")
            page = f'<script nonce="{nonce}">1</script>{"<p>x</p>" * 100}'
            body = f"<!doctype html><html><body>{page}</body></html>".encode()
            kind = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "script-src * 'unsafe-eval'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Gateway:
    https: int
    internal: int

    def client(self) -> httpx.Client:
        return httpx.Client(verify=False, timeout=10)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.https}{path}"


@pytest.fixture(scope="module")
def gateway(specs, tls_files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    spec = specs["dev"]
    assert spec.web is not None
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = tmp_path_factory.mktemp("web-gateway")
    ports = GatewayPorts(free_port(), free_port())
    internal = free_port()
    upstream = server.server_address[1]
    addrs = GatewayAddresses.for_local(
        spec,
        base,
        ports,
        {"auth-svc": upstream, spec.web.name: upstream},
        user="root" if os.geteuid() == 0 else None,
        tls_cert=tls_files[0],
        tls_key=tls_files[1],
        internal_port=internal,
    )
    make_writable_dirs(addrs)
    conf = base / "nginx.conf"
    conf.write_text(render_nginx_conf(spec, addrs))
    proc = subprocess.Popen(
        [require_tool("nginx"), "-c", str(conf), "-p", str(base), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not all(port_accepts(p) for p in (ports.http, ports.https, internal)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    try:
        yield Gateway(ports.https, internal)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()


def test_pages_go_to_the_web_app(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get(gateway.url("/listings/42?q=lamp"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert App.hits["/listings/42?q=lamp"] == 1


def test_page_csp_has_a_nonce_and_no_unsafe_eval(gateway: Gateway) -> None:
    with gateway.client() as client:
        policy = client.get(gateway.url("/")).headers["content-security-policy"]
    assert "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy
    assert NONCE.search(policy), policy
    assert "style-src 'self' 'nonce-" in policy
    assert "script-src 'self' 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy


def test_the_app_gets_the_same_nonce_the_browser_does(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get(gateway.url("/same-nonce"))
    nonce = NONCE.search(response.headers["content-security-policy"]).group(1)  # type: ignore[union-attr]
    received = App.received["/same-nonce"]
    assert received["X-Nonce"] == nonce
    assert NONCE.search(received["Content-Security-Policy"]).group(1) == nonce  # type: ignore[union-attr]
    assert f'nonce="{nonce}"' in response.text


def test_every_page_gets_a_fresh_nonce_the_client_cannot_choose(gateway: Gateway) -> None:
    with gateway.client() as client:
        chosen = "0123456789abcdef0123456789abcdef"
        policies = [
            client.get(gateway.url("/"), headers={"X-Request-ID": chosen}).headers["content-security-policy"]
            for _ in range(3)
        ]
    nonces = {NONCE.search(p).group(1) for p in policies}  # type: ignore[union-attr]
    assert len(nonces) == 3
    assert chosen not in nonces


def test_the_app_sees_the_host_with_its_port_for_its_origin_check(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.get(gateway.url("/host"))
    received = App.received["/host"]
    assert received["Host"] == received["X-Forwarded-Host"] == f"localhost:{gateway.https}"


def test_the_apps_own_csp_is_replaced(gateway: Gateway) -> None:
    with gateway.client() as client:
        headers = client.get(gateway.url("/own-csp")).headers
    assert headers.get_list("content-security-policy") == [headers["content-security-policy"]]
    assert "script-src *" not in headers["content-security-policy"]


def test_static_assets_are_immutable_compressed_and_cached(gateway: Gateway) -> None:
    path = "/_next/static/chunks/main-abc123.js"
    with gateway.client() as client:
        first = client.get(gateway.url(path), headers={"Accept-Encoding": "gzip"})
        second = client.get(gateway.url(path), headers={"Accept-Encoding": "gzip"})
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-control"] == WEB_STATIC_CACHE_CONTROL
    assert first.headers["content-encoding"] == "gzip"
    assert second.headers["x-cache-status"] == "HIT"
    assert App.hits[path] == 1
    assert App.received[path].get("Accept-Encoding", "") == ""  # the gateway compresses


def test_pages_are_compressed(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get(gateway.url("/gz"), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers.get("cache-control") == "no-store"  # pages keep the app's own caching


def test_unknown_api_paths_stay_json_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get(gateway.url("/api/nope"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "/api/nope" not in App.hits


def test_service_routes_still_win_over_the_app(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get(gateway.url("/api/auth/ping"))
    assert response.json() == {"path": "/api/auth/ping"}
    assert "nonce-" not in response.headers["content-security-policy"]


def test_internal_listener_serves_api_routes_over_plain_http(gateway: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        response = client.get(f"http://127.0.0.1:{gateway.internal}/api/auth/internal")
        page = client.get(f"http://127.0.0.1:{gateway.internal}/")
    assert response.status_code == 200
    assert response.json() == {"path": "/api/auth/internal"}
    assert page.status_code == 404  # no pages, no redirect: the API only


def test_internal_listener_trusts_the_apps_forwarded_client(gateway: Gateway) -> None:
    with httpx.Client(timeout=10) as client:
        client.get(
            f"http://127.0.0.1:{gateway.internal}/api/auth/forwarded",
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
    assert App.received["/api/auth/forwarded"]["X-Forwarded-For"] == "203.0.113.7"


def test_dev_variant_allows_eval_and_hot_reload(specs, tls_files, tmp_path: Path) -> None:
    spec = specs["dev"]
    assert spec.web is not None
    kwargs = {
        "tls_cert": tls_files[0],
        "tls_key": tls_files[1],
        "user": "root" if os.geteuid() == 0 else None,
    }
    prod = GatewayAddresses.for_local(spec, tmp_path, (18080, 18443), {spec.web.name: 3}, **kwargs)
    dev = GatewayAddresses.for_local(
        spec, tmp_path, (18080, 18443), {spec.web.name: 3}, web_dev=True, internal_port=18081, **kwargs
    )
    assert "unsafe-eval" not in render_nginx_conf(spec, prod)
    dev_conf = render_nginx_conf(spec, dev)
    assert "'unsafe-eval'" in dev_conf
    pages = [b for b in dev_conf.split("location / {")[1:] if "X-Nonce" in b.split("}")[0]]
    assert pages
    assert all("proxy_set_header Upgrade $http_upgrade;" in b.split("}")[0] for b in pages)
    static = dev_conf.split("location ^~ /_next/static/ {")[1].split("}")[0]
    assert "immutable" not in static  # next dev rebuilds chunks under the same names
    assert "proxy_cache " not in static
    make_writable_dirs(dev)
    (tmp_path / "nginx.conf").write_text(dev_conf)
    checked = subprocess.run(
        [require_tool("nginx"), "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_apps_metrics_path_is_never_public(specs, tmp_path: Path) -> None:
    spec = specs["dev"]
    assert spec.web is not None
    manifest = spec.web.manifest.model_copy(update={"metrics": "/metrics"})
    spec = spec.model_copy(update={"web_apps": (spec.web.model_copy(update={"manifest": manifest}),)})
    conf = render_nginx_conf(spec, GatewayAddresses.for_local(spec, tmp_path, (1, 2), {"web": 3}))
    blocks = conf.split("location = /metrics {")[1:]
    assert len(blocks) == 1  # the HTTPS server's; plain HTTP redirects everything
    assert all(b.split("}")[0].strip() == "return 404;" for b in blocks)
