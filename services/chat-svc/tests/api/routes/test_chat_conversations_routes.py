"""/api/chat/conversations over real HTTP against a replica on real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest


@pytest.fixture
async def conversation(http, auth, seed_listing) -> dict[str, Any]:
    """A fresh conversation between a new buyer and a new seller."""
    seller, buyer = uuid.uuid4(), uuid.uuid4()
    listing = await seed_listing(seller)
    r = await http.post("/api/chat/conversations", json={"listing_id": str(listing)}, headers=auth(buyer))
    assert r.status_code == 201, r.text
    return r.json()


async def post(http: Any, auth: Any, conv: dict[str, Any], sender: str, body: str) -> Any:
    url = f"/api/chat/conversations/{conv['id']}/messages"
    return await http.post(url, json={"body": body}, headers=auth(uuid.UUID(sender)))


async def test_buyer_opens_conversation_with_the_listings_seller(http, auth, seed_listing) -> None:
    seller, buyer = uuid.uuid4(), uuid.uuid4()
    listing = await seed_listing(seller)
    r = await http.post("/api/chat/conversations", json={"listing_id": str(listing)}, headers=auth(buyer))
    assert r.status_code == 201
    assert (r.json()["buyer_id"], r.json()["seller_id"]) == (str(buyer), str(seller))


async def test_opening_again_returns_the_same_conversation(http, auth, conversation) -> None:
    buyer = uuid.UUID(conversation["buyer_id"])
    body = {"listing_id": conversation["listing_id"]}
    r = await http.post("/api/chat/conversations", json=body, headers=auth(buyer))
    assert (r.status_code, r.json()["id"]) == (200, conversation["id"])


async def test_unknown_listing_is_404(http, auth) -> None:
    body = {"listing_id": str(uuid.uuid4())}
    r = await http.post("/api/chat/conversations", json=body, headers=auth(uuid.uuid4()))
    assert r.status_code == 404


async def test_seller_cannot_open_conversation_with_themselves(http, auth, seed_listing) -> None:
    seller = uuid.uuid4()
    listing = await seed_listing(seller)
    r = await http.post("/api/chat/conversations", json={"listing_id": str(listing)}, headers=auth(seller))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "own_listing")


async def test_anonymous_is_401(http, conversation) -> None:
    assert (await http.get(f"/api/chat/conversations/{conversation['id']}/messages")).status_code == 401


async def test_both_participants_post_and_read(http, auth, conversation) -> None:
    assert (
        await post(http, auth, conversation, conversation["buyer_id"], "still available?")
    ).status_code == 201
    assert (await post(http, auth, conversation, conversation["seller_id"], "yes")).status_code == 201
    url = f"/api/chat/conversations/{conversation['id']}/messages"
    r = await http.get(url, headers=auth(uuid.UUID(conversation["buyer_id"])))
    assert [m["body"] for m in r.json()["items"]] == ["yes", "still available?"]


async def test_non_participant_cannot_read_messages(http, auth, conversation) -> None:
    url = f"/api/chat/conversations/{conversation['id']}/messages"
    r = await http.get(url, headers=auth(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_participant")


async def test_non_participant_cannot_post(http, auth, conversation) -> None:
    r = await post(http, auth, conversation, str(uuid.uuid4()), "hi")
    assert r.status_code == 403


async def test_non_participant_cannot_read_conversation(http, auth, conversation) -> None:
    r = await http.get(f"/api/chat/conversations/{conversation['id']}", headers=auth(uuid.uuid4()))
    assert r.status_code == 403


async def test_messages_page_with_cursor(http, auth, conversation) -> None:
    for n in range(5):
        assert (await post(http, auth, conversation, conversation["buyer_id"], f"m{n}")).status_code == 201
    url, headers = (
        f"/api/chat/conversations/{conversation['id']}/messages",
        auth(uuid.UUID(conversation["seller_id"])),
    )
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await http.get(url, params=params, headers=headers)).json()
        pages.append([m["body"] for m in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["m4", "m3"], ["m2", "m1"], ["m0"]]


async def test_malformed_cursor_is_400(http, auth, conversation) -> None:
    url = f"/api/chat/conversations/{conversation['id']}/messages"
    r = await http.get(url, params={"cursor": "!!"}, headers=auth(uuid.UUID(conversation["buyer_id"])))
    assert r.status_code == 400


async def test_blank_message_is_422(http, auth, conversation) -> None:
    assert (await post(http, auth, conversation, conversation["buyer_id"], "   ")).status_code == 422


async def test_conversation_is_listed_for_both_participants_only(http, auth, conversation) -> None:
    def ids(r: Any) -> set[str]:
        return {c["id"] for c in r.json()["items"]}

    for user in (conversation["buyer_id"], conversation["seller_id"]):
        r = await http.get("/api/chat/conversations", headers=auth(uuid.UUID(user)))
        assert conversation["id"] in ids(r)
    r = await http.get("/api/chat/conversations", headers=auth(uuid.uuid4()))
    assert ids(r) == set()


async def test_posting_publishes_message_sent(http, auth, conversation, admin_channel) -> None:
    queue = await admin_channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind("events", routing_key="message.sent")
    r = await post(http, auth, conversation, conversation["buyer_id"], "hello")
    async with asyncio.timeout(10):
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                envelope = json.loads(message.body)
                if envelope["payload"]["message_id"] == r.json()["id"]:
                    break
            await asyncio.sleep(0.05)
    assert envelope["type"] == "message.sent"
    assert envelope["payload"]["recipient_id"] == conversation["seller_id"]
