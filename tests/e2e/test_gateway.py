"""The live gateway in front of the real services: limits, CORS, compression, headers, redirect."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import Platform, create_listing, new_account

ALLOWED_ORIGIN = "http://localhost:3000"  # in the dev stack's corsOrigins


def test_rate_limit_answers_429_with_a_json_body(platform: Platform) -> None:
    limit = platform.spec.config.gateway.rate_limit
    url = platform.url("/api/marketplace/listings?limit=1")
    with platform.client() as client, ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: client.get(url), range(limit.burst + 3 * limit.rps)))
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 429}
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "no request was rate limited"
    assert limited[0].json()["error"]["code"] == "rate_limited"


def test_body_above_the_route_limit_is_refused_with_413(platform: Platform) -> None:
    with platform.client() as client:
        r = client.post(
            platform.url("/api/auth/register"),
            content=b"{" + b" " * 70_000 + b"}",  # auth-svc's body_limit is 64k
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_cors_preflight_from_an_allowed_origin_is_answered(platform: Platform) -> None:
    with platform.client() as client:
        r = client.options(
            platform.url("/api/marketplace/listings"),
            headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
        )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]


def test_cors_preflight_from_another_origin_is_refused(platform: Platform) -> None:
    with platform.client() as client:
        r = client.options(
            platform.url("/api/marketplace/listings"),
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        )
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers


def test_json_is_gzipped(platform: Platform) -> None:
    description = "oak " * 200
    with platform.client() as client:
        user = new_account(platform, client, "gzip")
        listing = create_listing(platform, client, user["token"], title="Big shelf", description=description)
        url = platform.url(f"/api/marketplace/listings/{listing['id']}")
        with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("application/json")
    assert json.loads(gzip.decompress(raw))["description"] == description


def test_security_headers_and_hsts(platform: Platform) -> None:
    with platform.client() as client:
        r = client.get(platform.url("/api/marketplace/listings"))
    assert r.headers["strict-transport-security"].startswith("max-age=63072000")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["server"] == "nginx"  # server_tokens off: no version


def test_plain_http_redirects_to_https(platform: Platform) -> None:
    r = httpx.get(f"http://localhost:{platform.ports['gateway_http']}/api/marketplace/listings?x=1")
    assert r.status_code == 308
    assert r.headers["location"] == platform.url("/api/marketplace/listings?x=1")
