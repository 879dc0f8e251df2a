"""The NGINX API gateway config (nginx 1.22 directives only).

What the rendered ``nginx.conf`` does, in request order:

- ``/healthz`` of the gateway itself answers 200 JSON on both listeners (never redirected).
- Plain HTTP answers ``308`` to HTTPS for everything else (when ``tls.enabled``).
- TLS 1.2/1.3 only, Mozilla "intermediate" AEAD ciphers, HSTS (two years, includeSubDomains).
- Path routing: ``<route>`` and ``<route>/...`` go to the service's upstream unchanged (nothing is
  stripped: a service serves its full route prefix). Anything else is a JSON 404.
- Rate limit per client address (``gateway.rateLimit``), answered ``429`` with a JSON body.
- Body size: global ``gateway.bodyLimit``, per-route ``gateway.body_limit``; ``413`` with a JSON body.
- CORS: the gateway is the single authority (upstream CORS headers are hidden). Origins come from
  ``gateway.corsOrigins`` through ``map $http_origin``; a preflight ``OPTIONS`` from an allowed
  origin gets ``204``, from any other origin ``403``. Never ``*``.
- Caching: only routes with ``gateway.cache``, only ``GET``/``HEAD``, ``200`` responses for
  ``cache_ttl``; ``X-Cache-Status`` reports HIT/MISS/BYPASS. **Requests carrying ``Authorization`` or
  ``Cookie`` bypass the cache and are never stored**: a per-user response must not be served to
  another user. Upstream ``Cache-Control: private/no-store`` and ``Set-Cookie`` are honoured too.
- Security headers on every response, ``server_tokens off``.
- Upstreams are ``keepalive`` pools (HTTP/1.1, ``Connection`` cleared). WebSocket upgrades are passed
  only on routes with ``gateway.websocket``.
- ``X-Forwarded-For``/``X-Real-IP`` upstream are the client address alone: ``$remote_addr``, which
  ``real_ip`` takes from ``X-Forwarded-For`` only when the connection comes from a trusted proxy
  (``GatewayAddresses.trusted_proxies``). Whatever a client puts in those headers is dropped.
- ``X-Request-ID``: the client's value when it is a safe token (``[A-Za-z0-9._:-]{1,128}``), else
  nginx's ``$request_id``; sent upstream, returned in the response, written to the JSON access log.
- Every answer nginx produces itself - 400, 403, 404, 405, 408, 411, 413, 414, 416, 429, a too-large
  header (494), plain HTTP on the TLS port (497), 500, 501, 502, 503, 504, 505 - is JSON in the
  services' error shape with ``X-Request-ID`` (``error_page`` to one internal location per status).
  Upstream answers pass through untouched (a service's own 503 + ``Retry-After`` included).
- Abuse shedding: at most :data:`PER_CLIENT_CONNECTIONS` requests in flight per client address
  (``limit_conn``, answered 429); headers (and the TLS handshake) must arrive within
  :data:`HEADER_TIMEOUT`, and timed-out connections are reset, not lingered; the worker connection
  budget (:data:`WORKER_CONNECTIONS`, with the file limit to match) is sized so a slow-header flood
  of a thousand connections from one client leaves room for everyone else.
- The web app (``frontend/service.yaml``, ``kind: web``), when the spec has one: ``/`` and every page
  go to it (unknown ``/api/...`` paths stay a JSON 404). Its HTML carries a Content-Security-Policy
  without ``'unsafe-eval'``: scripts need the per-request nonce ``$request_id`` (128 random bits from
  nginx, never the client's ``X-Request-ID``), sent to the app in the ``Content-Security-Policy`` and
  ``X-Nonce`` request headers (Next.js puts the request CSP's nonce on its own scripts) and to the
  browser in the response; the app's own CSP header is hidden. ``/_next/static/`` (content-hashed
  file names) is served ``public, max-age=31536000, immutable``, gzip-compressed and kept in the
  proxy cache. ``GatewayAddresses.web_dev`` (``platform dev up --reload``, ``next dev``) adds
  ``'unsafe-eval'`` and WebSocket upgrades for hot reloading.
- ``GatewayAddresses.internal_port``: a plain-HTTP listener for the web app's server-side calls
  (``API_BASE_URL``): the same ``/api`` routes and limits, no redirect, no TLS (in-cluster traffic
  that the NetworkPolicy admits only from the web app's pods).
- Tokens never reach the access log: the logged ``uri`` has the value of every ``token``,
  ``access_token``, ``refresh_token``, ``id_token`` or ``jwt`` query parameter replaced by
  ``[redacted]`` (the services accept tokens only in headers; this covers old or careless clients).

Upstream names are resolved when nginx loads its config; in Kubernetes they are Service names whose
ClusterIP is stable for the Service's life, so no runtime ``resolver`` is needed (and static upstreams
keep their keepalive pools). ``GatewayAddresses.resolver`` is emitted when set, for setups that want it.

Error bodies have the platform's error shape (the services' one):
``{"error": {"code": "...", "message": "...", "request_id": "..."}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.spec import PlatformSpec, ServiceSpec

#: Temp-path directives nginx needs writable (all five, or it falls back to compiled-in /var/lib paths).
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
#: Ciphers for TLS 1.2 (TLS 1.3 suites are fixed by OpenSSL): Mozilla "intermediate", AEAD only.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: The web app's pages: scripts and styles only from the app's origin or with the request's nonce
#: ('strict-dynamic' lets nonced scripts load the chunks they import); never 'unsafe-eval', never
#: 'unsafe-inline'. ``connect-src 'self'`` covers the same-origin WebSocket (CSP Level 3).
WEB_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-$request_id' 'strict-dynamic'; "
    "style-src 'self' 'nonce-$request_id'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: ``next dev`` evaluates modules (React Refresh) and injects style tags without a nonce: only for
#: ``GatewayAddresses.web_dev``.
WEB_DEV_CONTENT_SECURITY_POLICY = WEB_CONTENT_SECURITY_POLICY.replace(
    "'strict-dynamic'", "'strict-dynamic' 'unsafe-eval'"
).replace("style-src 'self' 'nonce-$request_id'", "style-src 'self' 'unsafe-inline'")
#: Next.js serves its build output under this prefix with content-hashed names: cacheable forever.
WEB_STATIC_PREFIX = "/_next/static/"
WEB_STATIC_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Content types gzip compresses (text/html always is): API JSON and the web app's assets.
GZIP_TYPES = (
    "application/json",
    "application/problem+json",
    "application/javascript",
    "text/javascript",
    "text/css",
    "text/plain",
    "image/svg+xml",
    "application/manifest+json",
    "text/x-component",
)
HSTS = "max-age=63072000; includeSubDomains"
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
#: Private ranges an in-cluster Ingress controller connects from; their X-Forwarded-For is trusted.
CLUSTER_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
#: Access-log fields nginx always fills with a number (written unquoted).
NUMERIC_LOG_FIELDS = frozenset({"status", "bytes_sent", "request_time"})
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
#: Query parameters whose values are credentials: redacted in the access log.
TOKEN_PARAMETERS = r"(?:access_|refresh_|id_)?token|jwt"
#: Maps that each redact one more token parameter (the last one not yet redacted); a URI with even
#: more is logged without its query string.
REDACTION_PASSES = 3
CACHE_ZONE = "api_cache"
#: Port of the internal API listener in the gateway pod (Service port name ``internal``).
INTERNAL_PORT = 8081
#: Request headers sent upstream on every route (Accept-Encoding cleared: the gateway compresses, and
#: cached bodies stay uncompressed so any client can be served from the cache). ``X-Forwarded-For`` is
#: exactly the client address (``$remote_addr``, after ``real_ip`` resolved trusted proxies), never the
#: client's own header appended to: services trust it for per-client limits such as login attempts.
PROXY_HEADERS = (
    ("Host", "$host"),
    ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$remote_addr"),
    ("X-Forwarded-Proto", "$scheme"),
    ("X-Forwarded-Host", "$host"),
    ("X-Request-ID", "$req_id"),
    ("Accept-Encoding", '""'),
)
RATE_ZONE = "per_client"
ACCESS_LOG_FIELDS = (
    ("time", "$time_iso8601"),
    ("level", "info"),
    ("service", "gateway"),
    ("request_id", "$req_id"),
    ("remote_addr", "$remote_addr"),
    ("method", "$request_method"),
    ("uri", "$log_uri"),
    ("status", "$status"),
    ("bytes_sent", "$body_bytes_sent"),
    ("request_time", "$request_time"),
    ("upstream_addr", "$upstream_addr"),
    ("upstream_status", "$upstream_status"),
    ("upstream_response_time", "$upstream_response_time"),
    ("cache_status", "$upstream_cache_status"),
    ("user_agent", "$http_user_agent"),
)


@dataclass(frozen=True)
class GatewayPorts:
    """Where the gateway listens: plain HTTP and HTTPS."""

    http: int
    https: int


@dataclass(frozen=True)
class GatewayAddresses:
    """Everything about the gateway that differs between Kubernetes and a local run."""

    upstreams: dict[str, str]
    """service name -> ``host:port`` of its upstream."""
    http_port: int
    https_port: int
    tls_cert: str
    tls_key: str
    pid_path: str
    temp_dir: str
    """The five ``*_temp_path`` directories are created under it."""
    cache_dir: str
    access_log: str
    error_log: str
    public_https_port: int = 443
    """Port in the HTTP->HTTPS redirect (443 is left out of the URL)."""
    listen_address: str = ""
    """Interface to bind; empty binds all (the pod), ``127.0.0.1`` for a local run."""
    resolver: str | None = None
    user: str | None = None
    """``user`` directive; only meaningful when the master runs as root (a local run as root)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses whose ``X-Forwarded-For`` gives the client address (for rate limiting)."""
    worker_processes: str = "auto"
    cache_max_size: str = "256m"
    extra_writable: tuple[str, ...] = field(default=())
    internal_port: int | None = None
    """Plain-HTTP listener with the API routes only, for the web app's server-side calls."""
    internal_trusted: tuple[str, ...] = ()
    """Addresses whose ``X-Forwarded-For`` the internal listener trusts (the web app's server)."""
    web_dev: bool = False
    """The web app runs ``next dev``: its CSP adds ``'unsafe-eval'``, pages may upgrade to WebSocket."""

    @classmethod
    def for_kubernetes(cls, spec: PlatformSpec) -> GatewayAddresses:
        """Service DNS upstreams, 8080/8443, TLS Secret mounted at /etc/nginx/tls.

        With ``readOnlyRootFilesystem`` every path nginx writes to sits directly in an emptyDir the
        Gateway component mounts from :attr:`writable_dirs`: ``/tmp`` (pid, the five temp paths, which
        nginx creates itself) and ``/var/cache/nginx`` (proxy cache). An emptyDir starts empty, so no
        path may need a directory *inside* a mount that nobody creates.
        """
        ns = spec.config.namespace
        return cls(
            upstreams={
                app.name: f"{app.name}.{ns}.svc.cluster.local:{app.manifest.port}"
                for app in (*spec.services, *spec.web_apps)
            },
            http_port=8080,
            https_port=8443,
            tls_cert="/etc/nginx/tls/tls.crt",
            tls_key="/etc/nginx/tls/tls.key",
            pid_path="/tmp/nginx.pid",
            temp_dir="/tmp",
            cache_dir="/var/cache/nginx/api",
            access_log="/dev/stdout",
            error_log="/dev/stderr",
            public_https_port=443,
            trusted_proxies=CLUSTER_PROXIES,
            internal_port=INTERNAL_PORT if spec.web_apps else None,
        )

    @classmethod
    def for_local(
        cls,
        spec: PlatformSpec,
        base_dir: Path | str,
        ports: GatewayPorts | tuple[int, int],
        service_ports: Mapping[str, int],
        *,
        host: str = "127.0.0.1",
        user: str | None = None,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
        internal_port: int | None = None,
        web_dev: bool = False,
    ) -> GatewayAddresses:
        """Native processes on *host*; every file under *base_dir* (certs default to ``base_dir/tls``).

        *service_ports* maps each service (and the web app) to its local port; those missing from it
        are not routed. *internal_port* opens the web app's plain-HTTP API listener on *host*.
        Pass ``user="root"`` when the runner is root and *base_dir* is not readable by ``nobody``.
        """
        base = Path(base_dir)
        http, https = (ports.http, ports.https) if isinstance(ports, GatewayPorts) else ports
        return cls(
            upstreams={
                app.name: f"{host}:{service_ports[app.name]}"
                for app in (*spec.services, *spec.web_apps)
                if app.name in service_ports
            },
            http_port=http,
            https_port=https,
            tls_cert=str(tls_cert or base / "tls" / "tls.crt"),
            tls_key=str(tls_key or base / "tls" / "tls.key"),
            pid_path=str(base / "nginx.pid"),
            temp_dir=str(base / "temp"),
            cache_dir=str(base / "cache"),
            access_log=str(base / "logs" / "access.log"),
            error_log=str(base / "logs" / "error.log"),
            public_https_port=https,
            listen_address=host,
            user=user,
            worker_processes="1",
            cache_max_size="64m",
            internal_port=internal_port,
            internal_trusted=(host,) if internal_port else (),
            web_dev=web_dev,
        )

    @property
    def writable_dirs(self) -> tuple[str, ...]:
        """Directories that must exist and be writable before nginx starts (log dirs included)."""
        dirs = {self.temp_dir, str(Path(self.cache_dir).parent), str(Path(self.pid_path).parent)}
        for log in (self.access_log, self.error_log):
            if not log.startswith("/dev/"):
                dirs.add(str(Path(log).parent))
        return tuple(sorted(dirs | set(self.extra_writable)))


def make_writable_dirs(addrs: GatewayAddresses) -> None:
    """Create :attr:`GatewayAddresses.writable_dirs` (nginx creates only the last path component)."""
    for directory in addrs.writable_dirs:
        Path(directory).mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- helpers


class _Block:
    """Tiny indented-text builder."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("    " * self.depth + text) if text else "")

    def open(self, head: str) -> None:
        self.line(head + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.line("}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _quote(value: str) -> str:
    """Single-quote a value for nginx (escape backslashes and single quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_error(code: str, message: str) -> str:
    # $req_id is regex-validated (or nginx-generated hex), so it is safe inside a JSON string.
    return _quote(f'{{"error":{{"code":"{code}","message":"{message}","request_id":"$req_id"}}}}')


def _listen(addrs: GatewayAddresses, port: int, extra: str = "") -> str:
    where = f"{addrs.listen_address}:{port}" if addrs.listen_address else str(port)
    return f"listen {where}{extra};"


def _upstream_name(service: str) -> str:
    return "upstream_" + re.sub(r"[^a-z0-9]", "_", service)


def _security_headers(b: _Block, *, hsts: bool, csp: str = f'"{CONTENT_SECURITY_POLICY}"') -> None:
    b.line("add_header X-Request-ID $req_id always;")
    b.line("add_header X-Content-Type-Options nosniff always;")
    b.line("add_header X-Frame-Options DENY always;")
    b.line("add_header Referrer-Policy no-referrer always;")
    b.line(f"add_header Content-Security-Policy {csp} always;")
    if hsts:
        b.line(f'add_header Strict-Transport-Security "{HSTS}" always;')


def _cors_headers(b: _Block) -> None:
    b.line("add_header Access-Control-Allow-Origin $cors_origin always;")
    b.line("add_header Access-Control-Allow-Credentials $cors_credentials always;")
    b.line("add_header Access-Control-Expose-Headers $cors_expose always;")
    b.line("add_header Vary Origin always;")


#: Statuses nginx answers itself: (status caught, status sent, code, message). 494 (header too large)
#: and 497 (plain HTTP on the TLS port) are nginx-internal and go out as 400.
GATEWAY_ERRORS = (
    (400, 400, "bad_request", "the request could not be parsed"),
    (403, 403, "forbidden", "forbidden"),
    (404, 404, "not_found", "no route for this path"),
    (405, 405, "method_not_allowed", "method not allowed"),
    (408, 408, "request_timeout", "the request was not received in time"),
    (411, 411, "length_required", "a Content-Length is required"),
    (413, 413, "payload_too_large", "request body exceeds the size limit"),
    (414, 414, "uri_too_long", "the request URI is too long"),
    (416, 416, "range_not_satisfiable", "the requested range cannot be served"),
    (429, 429, "rate_limited", "too many requests; slow down and retry"),
    (494, 400, "request_header_too_large", "a request header or cookie is too large"),
    (497, 400, "bad_request", "plain HTTP was sent to the HTTPS port"),
    (500, 500, "internal_error", "the gateway failed to handle the request"),
    (501, 501, "not_implemented", "the request uses a feature the gateway does not support"),
    (502, 502, "bad_gateway", "the upstream service is unavailable"),
    (503, 503, "service_unavailable", "the upstream service is unavailable"),
    (504, 504, "gateway_timeout", "the upstream service did not answer in time"),
    (505, 505, "http_version_not_supported", "HTTP version not supported"),
)
#: The gateway's abuse shedding (see the module docstring).
PER_CLIENT_CONNECTIONS = 256
HEADER_TIMEOUT = "10s"
WORKER_CONNECTIONS = 4096
CONN_ZONE = "per_client_conns"
#: Internal locations of the gateway's own error answers (unreachable from outside: ``internal``).
ERROR_PREFIX = "/.gateway-error/"


def _error_locations(b: _Block, *, hsts: bool) -> None:
    for caught, sent, code, message in GATEWAY_ERRORS:
        # An internal URI, not a named location: nginx cannot redirect a request without a URI
        # (a garbage request line) to a named location, and would answer 500 instead.
        b.open(f"location = {ERROR_PREFIX}{caught}")
        b.line("internal;")
        b.line("default_type application/json;")
        _security_headers(b, hsts=hsts)
        _cors_headers(b)
        if caught in (429, 503):
            b.line("add_header Retry-After 1 always;")
        b.line(f"return {sent} {_json_error(code, message)};")
        b.close()


def _healthz(b: _Block, *, hsts: bool) -> None:
    b.open("location = /healthz")
    b.line("access_log off;")
    b.line("default_type application/json;")
    _security_headers(b, hsts=hsts)
    b.line('return 200 \'{"status":"ok"}\';')
    b.close()


def _route_body(b: _Block, svc: ServiceSpec, *, hsts: bool, burst: int) -> None:
    gw = svc.manifest.gateway
    b.line(f"limit_req zone={RATE_ZONE} burst={burst} nodelay;")
    if gw.body_limit:
        b.line(f"client_max_body_size {gw.body_limit};")
    # Preflight: answered here, never forwarded.
    b.open("if ($cors_preflight = allowed)")
    _security_headers(b, hsts=hsts)
    _cors_headers(b)
    b.line(f'add_header Access-Control-Allow-Methods "{CORS_METHODS}" always;')
    b.line(f'add_header Access-Control-Allow-Headers "{CORS_HEADERS}" always;')
    b.line("add_header Access-Control-Max-Age 600 always;")
    b.line("return 204;")
    b.close()
    b.open("if ($cors_preflight = refused)")
    b.line("return 403 " + _json_error("cors_refused", "origin not allowed") + ";")
    b.close()
    b.line(f"proxy_pass http://{_upstream_name(svc.name)};")
    # proxy_set_header is not inherited into a block that sets any, so every header is set here.
    for header, value in PROXY_HEADERS:
        b.line(f"proxy_set_header {header} {value};")
    if gw.websocket:
        b.line("proxy_set_header Upgrade $http_upgrade;")
        b.line("proxy_set_header Connection $connection_upgrade;")
        b.line("proxy_read_timeout 3600s;")
        b.line("proxy_send_timeout 3600s;")
    else:
        b.line('proxy_set_header Connection "";')
    if gw.cache:
        b.line(f"proxy_cache {CACHE_ZONE};")
        b.line("proxy_cache_methods GET HEAD;")
        b.line(f"proxy_cache_valid 200 {gw.cache_ttl};")
        b.line('proxy_cache_key "$scheme$request_method$host$request_uri";')
        b.line("proxy_cache_bypass $cache_skip;")
        b.line("proxy_no_cache $cache_skip;")
        b.line("proxy_cache_lock on;")
        b.line("proxy_cache_use_stale error timeout updating http_502 http_503 http_504;")
        b.line("add_header X-Cache-Status $upstream_cache_status always;")
    _security_headers(b, hsts=hsts)
    _cors_headers(b)


#: The web app sees the host the browser used, port included (``$http_host``; HTTP/2's ``:authority``):
#: its CSRF check compares it with the ``Origin`` of every write, which carries the port.
WEB_HOST_HEADERS = {"Host": "$http_host", "X-Forwarded-Host": "$http_host"}


def _web_proxy(b: _Block, name: str) -> None:
    b.line(f"proxy_pass http://{_upstream_name(name)};")
    for header, value in PROXY_HEADERS:
        b.line(f"proxy_set_header {header} {WEB_HOST_HEADERS.get(header, value)};")


def _web_routes(b: _Block, spec: PlatformSpec, addrs: GatewayAddresses, *, hsts: bool) -> None:
    """The web app: its immutable build assets, then every other path (the pages)."""
    web = spec.web
    assert web is not None
    burst = spec.config.gateway.rate_limit.burst
    b.open(f"location ^~ {WEB_STATIC_PREFIX}")
    # A page loads a dozen chunks at once: a wider burst, and a cache hit costs the app nothing.
    b.line(f"limit_req zone={RATE_ZONE} burst={burst * 2} nodelay;")
    _web_proxy(b, web.name)
    b.line('proxy_set_header Connection "";')
    if addrs.web_dev:
        # ``next dev`` rebuilds chunks under the same names: neither cached nor immutable.
        _security_headers(b, hsts=hsts)
        b.close()
        _web_pages(b, spec, addrs, hsts=hsts)
        return
    b.line(f"proxy_cache {CACHE_ZONE};")
    b.line("proxy_cache_methods GET HEAD;")
    b.line("proxy_cache_valid 200 7d;")
    b.line('proxy_cache_key "web$request_method$request_uri";')
    b.line("proxy_cache_lock on;")
    b.line("proxy_cache_use_stale error timeout updating http_502 http_503 http_504;")
    b.line("proxy_hide_header Cache-Control;")
    b.line("proxy_hide_header Set-Cookie;")
    b.line("proxy_ignore_headers Set-Cookie Cache-Control Expires;")
    b.line(f'add_header Cache-Control "{WEB_STATIC_CACHE_CONTROL}" always;')
    b.line("add_header X-Cache-Status $upstream_cache_status always;")
    _security_headers(b, hsts=hsts)
    b.close()
    _web_pages(b, spec, addrs, hsts=hsts)


def _web_pages(b: _Block, spec: PlatformSpec, addrs: GatewayAddresses, *, hsts: bool) -> None:
    """Every path no service owns: the app's pages, route handlers and public files."""
    web = spec.web
    assert web is not None
    burst = spec.config.gateway.rate_limit.burst
    if web.manifest.metrics:
        # Prometheus scrapes the pod directly; the public never sees the app's metrics.
        b.open(f"location = {web.manifest.metrics}")
        b.line("return 404;")
        b.close()
    b.open("location /")
    b.line(f"limit_req zone={RATE_ZONE} burst={burst} nodelay;")
    _web_proxy(b, web.name)
    b.line("proxy_set_header Content-Security-Policy $web_csp;")
    b.line("proxy_set_header X-Nonce $request_id;")
    if addrs.web_dev:
        b.line("proxy_set_header Upgrade $http_upgrade;")
        b.line("proxy_set_header Connection $connection_upgrade;")
    else:
        b.line('proxy_set_header Connection "";')
    _security_headers(b, hsts=hsts, csp="$web_csp")
    b.close()


def _routes(b: _Block, spec: PlatformSpec, addrs: GatewayAddresses, *, hsts: bool, web: bool = True) -> None:
    burst = spec.config.gateway.rate_limit.burst
    for svc in sorted(spec.services, key=lambda s: s.manifest.route):
        if svc.name not in addrs.upstreams:
            continue
        route = svc.manifest.route
        for head in (f"location = {route}", f"location ^~ {route}/"):
            b.open(head)
            _route_body(b, svc, hsts=hsts, burst=burst)
            b.close()
    if web and spec.web is not None and spec.web.name in addrs.upstreams:
        # Unknown API paths stay the platform's JSON 404, never the app's HTML page.
        b.open("location ^~ /api/")
        b.line("return 404;")
        b.close()
        b.open("location = /api")
        b.line("return 404;")
        b.close()
        _web_routes(b, spec, addrs, hsts=hsts)
        return
    b.open("location /")
    b.line("return 404;")
    b.close()


def _server_common(b: _Block, *, hsts: bool) -> None:
    b.line("server_name _;")
    for caught, *_ in GATEWAY_ERRORS:
        b.line(f"error_page {caught} {ERROR_PREFIX}{caught};")
    b.line(f"limit_conn {CONN_ZONE} {PER_CLIENT_CONNECTIONS};")
    _healthz(b, hsts=hsts)
    _error_locations(b, hsts=hsts)


def _redaction_maps(b: _Block) -> None:
    """``$log_uri``: ``$request_uri`` with the values of token parameters redacted (see the module doc)."""
    b.line("# The logged URI: token query parameters redacted, one per map.")
    unredacted = rf"[?&](?:{TOKEN_PARAMETERS})=(?!\[redacted\])"
    source = "$request_uri"
    for n in range(1, REDACTION_PASSES + 1):
        b.open(f"map {source} $log_uri_{n}")
        b.line(f'"~*^(?<head{n}>.*{unredacted})[^&]*(?<tail{n}>.*)$" "${{head{n}}}[redacted]${{tail{n}}}";')
        b.line(f"default {source};")
        b.close()
        source = f"$log_uri_{n}"
    b.open(f"map {source} $log_uri")
    anywhere = rf"\?(?:.*&)?(?:{TOKEN_PARAMETERS})=(?!\[redacted\])"
    b.line(f'"~*^(?<path>[^?]*){anywhere}" "${{path}}?[redacted]";')
    b.line(f"default {source};")
    b.close()


def _http_context(b: _Block, spec: PlatformSpec, addrs: GatewayAddresses) -> None:
    gw = spec.config.gateway
    b.line("server_tokens off;")
    b.line("default_type application/json;")
    b.line("charset utf-8;")
    b.line("sendfile on;")
    b.line("tcp_nopush on;")
    b.line("keepalive_timeout 65s;")
    b.line("client_body_timeout 30s;")
    b.line(f"client_header_timeout {HEADER_TIMEOUT};")
    b.line("reset_timedout_connection on;")
    b.line("send_timeout 30s;")
    for name in TEMP_PATHS:
        b.line(f"{name}_temp_path {addrs.temp_dir}/{name};")
    b.line("")
    fields = ",".join(
        f'"{key}":{value}' if key in NUMERIC_LOG_FIELDS else f'"{key}":"{value}"'
        for key, value in ACCESS_LOG_FIELDS
    )
    _redaction_maps(b)
    b.line(f"log_format json_combined escape=json '{{{fields}}}';")
    b.line(f"access_log {addrs.access_log} json_combined;")
    if addrs.resolver:
        b.line(f"resolver {addrs.resolver} valid=30s;")
    for cidr in addrs.trusted_proxies:
        b.line(f"set_real_ip_from {cidr};")
    if addrs.trusted_proxies:
        b.line("real_ip_header X-Forwarded-For;")
        b.line("real_ip_recursive on;")
    b.line("")
    b.line("# Request id: the client's when it is a safe token, else nginx's own.")
    b.open("map $http_x_request_id $req_id")
    b.line(f'"~{REQUEST_ID_PATTERN}" $http_x_request_id;')
    b.line("default $request_id;")
    b.close()
    b.line("# CORS allowlist (platform:gateway.corsOrigins).")
    b.open("map $http_origin $cors_origin")
    b.line('default "";')
    for origin in sorted(gw.cors_origins):
        b.line(f'"{origin}" $http_origin;')
    b.close()
    b.open("map $cors_origin $cors_credentials")
    b.line('"" "";')
    b.line("default true;")
    b.close()
    b.open("map $cors_origin $cors_expose")
    b.line('"" "";')
    b.line("default X-Request-ID;")
    b.close()
    b.open("map $http_origin $cors_state")
    b.line('"" none;')
    b.line("default refused;")
    for origin in sorted(gw.cors_origins):
        b.line(f'"{origin}" allowed;')
    b.close()
    b.open('map "$request_method:$cors_state" $cors_preflight')
    b.line('default "";')
    b.line('"OPTIONS:allowed" allowed;')
    b.line('"OPTIONS:refused" refused;')
    b.close()
    b.line("# Authenticated requests neither read nor fill the shared cache.")
    b.open('map "$http_authorization$http_cookie" $cache_skip')
    b.line('"" 0;')
    b.line("default 1;")
    b.close()
    if spec.web is not None:
        policy = WEB_DEV_CONTENT_SECURITY_POLICY if addrs.web_dev else WEB_CONTENT_SECURITY_POLICY
        b.line("# The web app's CSP: a fresh nonce per request ($request_id, never client-supplied).")
        b.open("map $request_id $web_csp")
        b.line(f'default "{policy}";')
        b.close()
    b.open("map $http_upgrade $connection_upgrade")
    b.line("default upgrade;")
    b.line('"" "";')
    b.close()
    b.line("")
    b.line(f"limit_req_zone $binary_remote_addr zone={RATE_ZONE}:10m rate={gw.rate_limit.rps}r/s;")
    b.line("limit_req_status 429;")
    b.line("limit_req_log_level warn;")
    b.line(f"limit_conn_zone $binary_remote_addr zone={CONN_ZONE}:10m;")
    b.line("limit_conn_status 429;")
    b.line("limit_conn_log_level warn;")
    b.line(f"client_max_body_size {gw.body_limit};")
    b.line("")
    b.line("gzip on;")
    b.line(f"gzip_types {' '.join(GZIP_TYPES)};")
    b.line("gzip_min_length 256;")
    b.line("gzip_proxied any;")
    b.line("gzip_vary on;")
    b.line("gzip_comp_level 5;")
    b.line("")
    b.line(
        f"proxy_cache_path {addrs.cache_dir} levels=1:2 keys_zone={CACHE_ZONE}:10m "
        f"max_size={addrs.cache_max_size} inactive=10m use_temp_path=off;"
    )
    b.line("proxy_http_version 1.1;")
    b.line("proxy_connect_timeout 5s;")
    b.line("proxy_read_timeout 60s;")
    for header in (
        "X-Request-ID",
        "X-Powered-By",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Expose-Headers",
        "Access-Control-Max-Age",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
        "Strict-Transport-Security",
    ):
        b.line(f"proxy_hide_header {header};")
    b.line("")
    for name, target in sorted(addrs.upstreams.items()):
        b.open(f"upstream {_upstream_name(name)}")
        b.line(f"server {target} max_fails=3 fail_timeout=10s;")
        b.line("keepalive 64;")
        b.line("keepalive_timeout 60s;")
        b.close()


def render_nginx_conf(spec: PlatformSpec, addrs: GatewayAddresses) -> str:
    """The whole ``nginx.conf`` for *spec* at *addrs* (deterministic)."""
    tls = spec.config.tls.enabled
    b = _Block()
    b.line(f"# Generated by infra/render/nginx.py for stack {spec.stack}. Do not edit.")
    if addrs.user:
        b.line(f"user {addrs.user};")
    b.line(f"worker_processes {addrs.worker_processes};")
    b.line(f"pid {addrs.pid_path};")
    b.line(f"worker_rlimit_nofile {WORKER_CONNECTIONS * 2};")
    b.line(f"error_log {addrs.error_log} warn;")
    b.line("")
    b.open("events")
    b.line(f"worker_connections {WORKER_CONNECTIONS};")
    b.close()
    b.line("")
    b.open("http")
    _http_context(b, spec, addrs)
    b.line("")
    b.open("server")
    b.line(_listen(addrs, addrs.http_port, " default_server"))
    _server_common(b, hsts=False)
    if tls:
        port = "" if addrs.public_https_port == 443 else f":{addrs.public_https_port}"
        b.open("location /")
        b.line(f"return 308 https://$host{port}$request_uri;")
        b.close()
    else:
        _routes(b, spec, addrs, hsts=False)
    b.close()
    if tls:
        b.line("")
        b.open("server")
        b.line(_listen(addrs, addrs.https_port, " ssl http2 default_server"))
        b.line(f"ssl_certificate {addrs.tls_cert};")
        b.line(f"ssl_certificate_key {addrs.tls_key};")
        b.line("ssl_protocols TLSv1.2 TLSv1.3;")
        b.line(f"ssl_ciphers {TLS12_CIPHERS};")
        b.line("ssl_prefer_server_ciphers off;")
        b.line("ssl_session_cache shared:TLS:10m;")
        b.line("ssl_session_timeout 1d;")
        b.line("ssl_session_tickets off;")
        _server_common(b, hsts=True)
        _routes(b, spec, addrs, hsts=True)
        b.close()
    if addrs.internal_port is not None:
        b.line("")
        b.line("# The web app's server-side API calls: the /api routes over plain HTTP, in-cluster only.")
        b.open("server")
        b.line(_listen(addrs, addrs.internal_port))
        for cidr in addrs.internal_trusted:
            b.line(f"set_real_ip_from {cidr};")
        if addrs.internal_trusted:
            b.line("real_ip_header X-Forwarded-For;")
        _server_common(b, hsts=False)
        _routes(b, spec, addrs, hsts=False, web=False)
        b.close()
    b.close()
    return b.text()
