"""/api/chat/ws: live delivery to participants, across replicas, with subprotocol auth."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


@pytest.fixture
async def conversation(http, auth, seed_listing) -> dict[str, Any]:
    """A fresh conversation between a new buyer and a new seller."""
    listing = await seed_listing(uuid.uuid4())
    r = await http.post(
        "/api/chat/conversations", json={"listing_id": str(listing)}, headers=auth(uuid.uuid4())
    )
    return r.json()


async def post(http: Any, auth: Any, conv: dict[str, Any], sender: str, body: str) -> dict[str, Any]:
    url = f"/api/chat/conversations/{conv['id']}/messages"
    r = await http.post(url, json={"body": body}, headers=auth(uuid.UUID(sender)))
    assert r.status_code == 201, r.text
    return r.json()


def bearer(token: str) -> list[Any]:
    """The subprotocols that carry an access token."""
    return ["bearer", token]


async def receive(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(5):
        return json.loads(await ws.recv())


async def test_message_posted_over_http_reaches_both_participants(
    http, auth, token, replicas, conversation
) -> None:
    url = replicas[0].ws
    async with (
        connect(url, subprotocols=bearer(token(uuid.UUID(conversation["seller_id"])))) as seller_ws,
        connect(url, subprotocols=bearer(token(uuid.UUID(conversation["buyer_id"])))) as buyer_ws,
    ):
        sent = await post(http, auth, conversation, conversation["buyer_id"], "is it blue?")
        for ws in (seller_ws, buyer_ws):
            frame = await receive(ws)
            assert frame == {"type": "message", "message": sent}


async def test_delivery_crosses_replicas(http, auth, token, replicas, conversation) -> None:
    other_replica = replicas[1].ws
    seller = uuid.UUID(conversation["seller_id"])
    async with connect(other_replica, subprotocols=bearer(token(seller))) as seller_ws:
        sent = await post(http, auth, conversation, conversation["buyer_id"], "via replica one")
        assert (await receive(seller_ws))["message"]["id"] == sent["id"]


async def test_subprotocol_auth(http, auth, token, replicas, conversation) -> None:
    seller = uuid.UUID(conversation["seller_id"])
    async with connect(replicas[0].ws, subprotocols=["bearer", token(seller)]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        sent = await post(http, auth, conversation, conversation["buyer_id"], "hello")
        assert (await receive(ws))["message"]["id"] == sent["id"]


async def test_invalid_token_is_refused(replicas) -> None:
    with pytest.raises(InvalidStatus) as failure:
        async with connect(replicas[0].ws, subprotocols=bearer("not-a-jwt")):
            pass
    assert failure.value.response.status_code == 403


async def test_missing_token_is_refused(replicas) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(replicas[0].ws):
            pass


async def test_non_participant_receives_nothing(
    http, auth, token, replicas, seed_listing, conversation
) -> None:
    stranger = uuid.uuid4()
    own = await seed_listing(uuid.uuid4())
    r = await http.post("/api/chat/conversations", json={"listing_id": str(own)}, headers=auth(stranger))
    strangers_conversation = r.json()
    async with connect(replicas[0].ws, subprotocols=bearer(token(stranger))) as ws:
        await post(http, auth, conversation, conversation["buyer_id"], "private")
        mine = await post(http, auth, strangers_conversation, strangers_conversation["seller_id"], "for you")
        # Delivery is ordered per connection: the first frame must be the stranger's own message.
        assert (await receive(ws))["message"]["id"] == mine["id"]


async def test_readiness_covers_the_pubsub_subscription(http) -> None:
    r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"postgres": "ok", "redis": "ok", "rabbitmq": "ok", "pubsub": "ok"}
