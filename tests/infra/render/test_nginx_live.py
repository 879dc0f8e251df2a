"""Live traffic through the rendered gateway: nginx (local variant) in front of a tiny upstream."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
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
from infra.render.nginx import GatewayAddresses, GatewayPorts, make_writable_dirs, render_nginx_conf
from infra.spec import PlatformSpec, RateLimit

from .conftest import require_tool

ALLOWED = "http://localhost:3000"  # in dev's corsOrigins
#: Plays the in-cluster Ingress controller: its X-Forwarded-For is trusted (``set_real_ip_from``).
TRUSTED_PROXY = "127.0.0.250"
RPS, BURST = 5, 10
_source = itertools.count(10)


class Upstream(BaseHTTPRequestHandler):
    """Answers JSON describing what it received; counts hits per path; sends a CORS `*` to be hidden."""

    protocol_version = "HTTP/1.1"
    hits: Counter[str] = Counter()
    last_request_id: dict[str, str] = {}

    def _answer(self, body: dict) -> None:
        data = json.dumps({**body, "pad": "x" * 2000}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        Upstream.hits[self.path] += 1
        Upstream.last_request_id[self.path] = self.headers.get("X-Request-ID", "")
        self._answer({"path": self.path, "hits": Upstream.hits[self.path]})

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(size)
        self._answer({"path": self.path, "received": size})

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Gateway:
    http: int
    https: int
    base: Path

    def client(self, source: str | None = None, **kwargs) -> httpx.Client:
        """A client from its own loopback source address, so each test has its own rate-limit bucket."""
        address = source or f"127.0.0.{next(_source)}"
        transport = httpx.HTTPTransport(local_address=address, verify=False)
        return httpx.Client(transport=transport, timeout=10, **kwargs)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.https}{path}"


def _live_spec(spec: PlatformSpec) -> PlatformSpec:
    gateway = spec.config.gateway.model_copy(update={"rate_limit": RateLimit(rps=RPS, burst=BURST)})
    return spec.model_copy(update={"config": spec.config.model_copy(update={"gateway": gateway})})


@pytest.fixture(scope="module")
def gateway(specs, tls_files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    spec = _live_spec(specs["dev"])
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = tmp_path_factory.mktemp("gateway")
    ports = GatewayPorts(free_port(), free_port())
    addrs = GatewayAddresses.for_local(
        spec,
        base,
        ports,
        {svc.name: server.server_address[1] for svc in spec.services},
        user="root" if os.geteuid() == 0 else None,
        tls_cert=tls_files[0],
        tls_key=tls_files[1],
    )
    addrs = dataclasses.replace(addrs, trusted_proxies=(f"{TRUSTED_PROXY}/32",))
    make_writable_dirs(addrs)
    conf = base / "nginx.conf"
    conf.write_text(render_nginx_conf(spec, addrs))
    proc = subprocess.Popen(
        [require_tool("nginx"), "-c", str(conf), "-p", str(base), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not (port_accepts(ports.http) and port_accepts(ports.https)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    try:
        yield Gateway(ports.http, ports.https, base)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()


def test_gateway_healthz_answers_on_plain_http(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(f"http://localhost:{gateway.http}/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_plain_http_redirects_to_https(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(f"http://localhost:{gateway.http}/api/marketplace/listings?q=1")
    assert r.status_code == 308
    assert r.headers["location"] == f"https://localhost:{gateway.https}/api/marketplace/listings?q=1"


def test_https_responses_carry_hsts_and_security_headers(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/x"))
    assert r.status_code == 200
    assert r.headers["strict-transport-security"].startswith("max-age=63072000")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["server"] == "nginx"  # server_tokens off: no version


def test_route_prefix_reaches_upstream_unstripped(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/chat/rooms/7"))
    assert r.json()["path"] == "/api/chat/rooms/7"


def test_client_request_id_is_passed_through_and_echoed(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/rid"), headers={"X-Request-ID": "req-abc.123"})
    assert r.headers["x-request-id"] == "req-abc.123"
    assert Upstream.last_request_id["/api/payments/rid"] == "req-abc.123"


def test_unsafe_request_id_is_replaced_by_a_generated_one(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/rid2"), headers={"X-Request-ID": 'bad" id'})
    generated = r.headers["x-request-id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert Upstream.last_request_id["/api/payments/rid2"] == generated


def test_unknown_path_is_json_404(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/nope"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_rate_limit_answers_json_429(gateway: Gateway) -> None:
    with gateway.client() as c:
        statuses = [c.get(gateway.url("/api/payments/rl")) for _ in range(BURST + 15)]
    codes = [r.status_code for r in statuses]
    assert codes[: BURST + 1] == [200] * (BURST + 1)
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, codes
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_route_body_limit_answers_json_413(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.post(gateway.url("/api/auth/login"), content=b"x" * 100_000)  # auth-svc: body_limit 64k
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_global_body_limit_allows_what_the_route_limit_refuses(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.post(gateway.url("/api/marketplace/listings"), content=b"x" * 100_000)  # global 1m
    assert (r.status_code, r.json()["received"]) == (200, 100_000)


def test_global_body_limit_answers_413(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.post(gateway.url("/api/marketplace/listings"), content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413


def test_cors_preflight_from_allowed_origin_is_204(gateway: Gateway) -> None:
    headers = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    with gateway.client() as c:
        r = c.options(gateway.url("/api/marketplace/listings"), headers=headers)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in r.headers["access-control-allow-methods"]


def test_cors_preflight_from_other_origin_is_refused(gateway: Gateway) -> None:
    headers = {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
    with gateway.client() as c:
        r = c.options(gateway.url("/api/marketplace/listings"), headers=headers)
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers


def test_cors_simple_request_from_other_origin_gets_no_allow_origin(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/cors"), headers={"Origin": "https://evil.example.com"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers  # the upstream's `*` is hidden


def test_cors_simple_request_from_allowed_origin_is_allowed(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/cors"), headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers.get_list("access-control-allow-origin") == [ALLOWED]


def test_json_responses_are_gzipped(gateway: Gateway) -> None:
    with gateway.client() as c:
        r = c.get(gateway.url("/api/payments/gz"), headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["path"] == "/api/payments/gz"


def test_cache_route_serves_second_get_from_cache(gateway: Gateway) -> None:
    with gateway.client() as c:
        first = c.get(gateway.url("/api/marketplace/listings/1"))
        second = c.get(gateway.url("/api/marketplace/listings/1"))
    assert first.headers["x-cache-status"] == "MISS"
    assert second.headers["x-cache-status"] == "HIT"
    assert Upstream.hits["/api/marketplace/listings/1"] == 1


def test_cache_is_bypassed_for_authenticated_requests(gateway: Gateway) -> None:
    with gateway.client() as c:
        for _ in range(2):
            r = c.get(gateway.url("/api/marketplace/mine"), headers={"Authorization": "Bearer t"})
    assert r.headers["x-cache-status"] == "BYPASS"
    assert Upstream.hits["/api/marketplace/mine"] == 2


def test_non_cache_route_is_not_cached(gateway: Gateway) -> None:
    with gateway.client() as c:
        c.get(gateway.url("/api/payments/nc"))
        r = c.get(gateway.url("/api/payments/nc"))
    assert "x-cache-status" not in r.headers
    assert Upstream.hits["/api/payments/nc"] == 2


def test_access_log_is_json_with_request_id_and_upstream_time(gateway: Gateway) -> None:
    with gateway.client() as c:
        c.get(gateway.url("/api/payments/logged"), headers={"X-Request-ID": "log-me-1"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = (gateway.base / "logs" / "access.log").read_text().splitlines()
        entries = [json.loads(line) for line in lines]
        found = [e for e in entries if e["request_id"] == "log-me-1"]
        if found:
            break
        time.sleep(0.05)
    entry = found[0]
    assert (entry["status"], entry["uri"]) == (200, "/api/payments/logged")
    assert float(entry["upstream_response_time"]) >= 0


def _logged(gateway: Gateway, request_id: str) -> dict:
    """The access-log entry of *request_id* (waits up to 5 s for nginx to write it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = (gateway.base / "logs" / "access.log").read_text().splitlines()
        found = [entry for line in lines if (entry := json.loads(line))["request_id"] == request_id]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no access-log entry for {request_id}")


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("token=eyJ.secret.sig", "token=[redacted]"),
        ("limit=1&access_token=eyJ.secret.sig&x=2", "limit=1&access_token=[redacted]&x=2"),
        ("TOKEN=eyJ.secret.sig&refresh_token=eyJ.secret.sig", "TOKEN=[redacted]&refresh_token=[redacted]"),
        ("q=lamp&limit=1", "q=lamp&limit=1"),
        ("jwt=a.secret&token=b.secret&id_token=c.secret&access_token=d.secret", "[redacted]"),
    ],
)
def test_tokens_in_urls_never_reach_the_access_log(gateway: Gateway, query: str, logged: str) -> None:
    """Issue 11, item 9: a token in a query string (an old WebSocket client) was logged verbatim."""
    rid = f"redact-{abs(hash(query))}"
    with gateway.client() as c:
        c.get(gateway.url(f"/api/payments/redact?{query}"), headers={"X-Request-ID": rid})
    entry = _logged(gateway, rid)
    assert "secret" not in json.dumps(entry)
    assert entry["uri"] == f"/api/payments/redact?{logged}"


def _headers_upstream_sees(gateway: Gateway, headers: dict[str, str], source: str | None = None) -> dict:
    """Request headers (lowercase names) the upstream receives for one GET through the gateway."""
    seen: dict[str, str] = {}
    original = Upstream.do_GET

    def capture(handler: Upstream) -> None:
        seen.update({k.lower(): v for k, v in handler.headers.items()})
        original(handler)

    Upstream.do_GET = capture  # type: ignore[method-assign]
    try:
        with gateway.client(source) as c:
            assert c.get(gateway.url("/api/payments/fwd"), headers=headers).status_code == 200
    finally:
        Upstream.do_GET = original  # type: ignore[method-assign]
    return seen


def test_upstream_receives_forwarding_headers(gateway: Gateway) -> None:
    seen = _headers_upstream_sees(gateway, {"Accept-Encoding": "gzip"})
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"].startswith("127.0.0.")
    assert seen.get("accept-encoding", "") == ""
    assert "connection" not in seen  # cleared, so the upstream keepalive pool is used


def test_spoofed_x_forwarded_for_is_replaced_by_the_client_address(gateway: Gateway) -> None:
    # Services trust X-Forwarded-For for the login limiter: a client must not choose its address.
    client = f"127.0.0.{next(_source)}"
    seen = _headers_upstream_sees(gateway, {"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"}, client)
    assert (seen["x-forwarded-for"], seen["x-real-ip"]) == (client, client)


def test_trusted_proxy_address_resolves_to_the_client_and_drops_spoofed_hops(gateway: Gateway) -> None:
    # As in the cluster: the Ingress controller appends the real client; what the client sent is dropped.
    seen = _headers_upstream_sees(gateway, {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}, TRUSTED_PROXY)
    assert (seen["x-forwarded-for"], seen["x-real-ip"]) == ("203.0.113.7", "203.0.113.7")


def _raw(gateway: Gateway, payload: bytes, source: str) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes over TLS; return (status, headers, body) of the answer."""
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", gateway.https), timeout=10, source_address=(source, 0)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/2.5\r\nHost: localhost\r\n\r\n", 505, "http_version_not_supported"),
        (b"TRACE /api/payments/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 405, None),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nCookie: " + b"c" * 20000 + b"\r\n\r\n", 400, None),
        (b"POST /api/payments/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501, None),
    ],
)
def test_every_gateway_error_has_the_services_shape_and_a_request_id(
    gateway: Gateway, payload: bytes, status: int, code: str | None
) -> None:
    got, headers, body = _raw(gateway, payload, f"127.0.0.{next(_source)}")
    assert got == status
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["request_id"] == headers["x-request-id"]
    if code:
        assert error["code"] == code


def test_a_slow_handshake_flood_from_one_client_does_not_lock_out_others(gateway: Gateway) -> None:
    """1,500 connections from one address that stop half way through the TLS ClientHello (nginx
    cannot reclaim a connection mid-handshake, unlike one idly waiting for a request); another
    client is still served, at once."""
    import asyncio

    flood = 1500
    # A TLS record header announcing a 512-byte handshake message, then only its first bytes.
    partial_hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])

    async def half_open(writers: list[asyncio.StreamWriter]) -> None:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", gateway.https, local_addr=("127.0.0.200", 0)), 10
            )
        except (OSError, TimeoutError):
            return
        writer.write(partial_hello)
        writers.append(writer)

    async def scenario() -> tuple[int | None, float, int]:
        writers: list[asyncio.StreamWriter] = []
        for start in range(0, flood, 100):
            await asyncio.gather(*(half_open(writers) for _ in range(start, min(flood, start + 100))))
        await asyncio.sleep(0.5)  # let nginx take them all in
        held = len(writers)

        def other_client() -> tuple[int | None, float]:
            began = time.monotonic()
            try:
                with gateway.client(source="127.0.0.201") as c:
                    status = c.get(gateway.url("/api/payments/during-flood"), timeout=8).status_code
            except httpx.HTTPError:
                status = None
            return status, time.monotonic() - began

        status, took = await asyncio.to_thread(other_client)
        for writer in writers:
            writer.transport.abort()
        return status, took, held

    status, took, held = asyncio.run(scenario())
    assert held == flood  # the flood really holds its connections open
    assert status == 200
    assert took < 5
