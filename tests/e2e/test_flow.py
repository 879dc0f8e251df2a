"""The marketplace end to end through the TLS gateway: accounts, listings, cache, payments, events, chat.

Tests run in file order and share the ``flow`` dict (a user journey, step by step).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.sync.client import connect

from .conftest import Platform, create_listing, new_account, poll

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


@pytest.fixture(scope="module")
def flow() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def client(platform: Platform) -> httpx.Client:
    with platform.client() as c:
        yield c


def _auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def test_register_and_login(platform: Platform, client: httpx.Client, flow: dict[str, Any]) -> None:
    flow["seller"] = new_account(platform, client, "seller")
    flow["buyer"] = new_account(platform, client, "buyer")
    me = client.get(platform.url("/api/auth/me"), headers=_auth(flow["buyer"]["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == flow["buyer"]["id"]


def test_create_listing(platform: Platform, client: httpx.Client, flow: dict[str, Any]) -> None:
    flow["word"] = f"lamp{uuid.uuid4().hex[:10]}"
    flow["listing"] = create_listing(
        platform, client, flow["seller"]["token"], title=f"Desk {flow['word']}", description="brass, works"
    )
    assert flow["listing"]["status"] == "active"


def test_search_twice_second_is_served_from_the_gateway_cache(
    platform: Platform, client: httpx.Client, flow: dict[str, Any]
) -> None:
    url = platform.url(f"/api/marketplace/listings?q={quote(flow['word'])}")
    first = client.get(url)
    second = client.get(url)
    assert first.status_code == second.status_code == 200
    assert [item["id"] for item in first.json()["items"]] == [flow["listing"]["id"]]
    assert first.headers["x-cache-status"] == "MISS"
    assert second.headers["x-cache-status"] == "HIT"
    assert second.json() == first.json()


def test_pay_with_an_idempotency_key_returns_the_same_payment_twice(
    platform: Platform, client: httpx.Client, flow: dict[str, Any]
) -> None:
    listing = flow["listing"]
    body = {
        "listing_id": listing["id"],
        "amount_minor": listing["price_minor"],  # the price the buyer saw
        "currency": listing["currency"],
        "card": CARD,
    }
    token = flow["buyer"]["token"]

    def attempt() -> httpx.Response | None:
        # payment-svc learns the listing from listing.created; until then it answers 404.
        rid = platform.request_id("payment-svc")
        r = client.post(
            platform.url("/api/payments"),
            json=body,
            headers=_auth(token, **{"Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": rid}),
        )
        return r if r.status_code != 404 else None

    first = poll(attempt, timeout=30, what="payment-svc knowing the listing")
    assert first.status_code == 201, first.text
    # Replaying the first key (same body) returns the very same payment, not a second charge.
    replay = client.post(
        platform.url("/api/payments"),
        json=body,
        headers=_auth(token, **{"Idempotency-Key": first.request.headers["Idempotency-Key"]}),
    )
    assert replay.status_code == first.status_code
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert first.headers["idempotent-replayed"] == "false"
    flow["payment"] = first.json()


def test_listing_becomes_sold_via_the_broker(
    platform: Platform, client: httpx.Client, flow: dict[str, Any]
) -> None:
    url = platform.url(f"/api/marketplace/listings/{flow['listing']['id']}")
    headers = _auth(flow["seller"]["token"])  # authenticated: bypasses the gateway cache

    def sold() -> bool:
        return client.get(url, headers=headers).json().get("status") == "sold"

    poll(sold, timeout=30, what="listing sold after payment.succeeded")


def test_chat_message_is_delivered_over_websocket_through_the_gateway(
    platform: Platform, client: httpx.Client, flow: dict[str, Any]
) -> None:
    buyer, seller = flow["buyer"], flow["seller"]

    def open_conversation() -> httpx.Response | None:
        r = client.post(
            platform.url("/api/chat/conversations"),
            json={"listing_id": flow["listing"]["id"]},
            headers=_auth(buyer["token"], **{"X-Request-ID": platform.request_id("chat-svc")}),
        )
        return r if r.status_code in (200, 201) else None

    conversation = poll(open_conversation, timeout=30, what="chat-svc knowing the listing").json()
    wss = f"wss://localhost:{platform.ports['gateway_https']}/api/chat/ws"
    bearer: list = ["bearer", seller["token"]]  # the token never goes in the URL
    with connect(wss, ssl=platform.ssl_context(), open_timeout=10, subprotocols=bearer) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"
        text = f"still available? {uuid.uuid4().hex[:6]}"
        posted = client.post(
            platform.url(f"/api/chat/conversations/{conversation['id']}/messages"),
            json={"body": text},
            headers=_auth(buyer["token"]),
        )
        assert posted.status_code == 201, posted.text
        frame = json.loads(ws.recv(timeout=10))
    assert frame["type"] == "message"
    assert frame["message"]["body"] == text


def test_prometheus_has_request_metrics_for_every_service(platform: Platform) -> None:
    url = f"http://127.0.0.1:{platform.ports['prometheus']}/api/v1/query"
    wanted = {svc.name for svc in platform.spec.services}

    def services() -> set[str] | None:
        data = httpx.get(url, params={"query": "sum by (service) (http_requests_total)"}, timeout=5).json()
        seen = {r["metric"].get("service") for r in data["data"]["result"]}
        return seen if wanted <= seen else None

    assert wanted <= poll(services, timeout=30, what="http_requests_total for every service")


def test_every_service_logs_json_lines_carrying_the_request_id(platform: Platform) -> None:
    for svc in platform.spec.services:
        rid = platform.request_ids[svc.name]
        path = platform.log(svc.name)

        def logged(path=path, rid=rid) -> list[dict[str, Any]]:
            # Lines starting with "===" are the runner's own start markers.
            lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("===")]
            records = [json.loads(ln) for ln in lines]  # every line is JSON
            return [r for r in records if r.get("request_id") == rid]

        hits = poll(logged, timeout=10, what=f"{svc.name} logging request {rid}")
        assert all(h["service"] == svc.name for h in hits)


def test_gateway_access_log_is_json_with_request_ids(platform: Platform) -> None:
    records = [json.loads(ln) for ln in platform.log("gateway-access").read_text().splitlines() if ln]
    logged = {r["request_id"] for r in records}
    assert set(platform.request_ids.values()) <= logged
