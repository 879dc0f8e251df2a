"""Creating, changing and deleting listings: validation, ownership and the events they publish."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import asyncpg
from httpx import AsyncClient
from marketplace_svc.core.config import Settings
from servicekit.testing import Database, issue_test_token

CreateListing = Callable[..., Awaitable[dict[str, Any]]]
TokenFor = Callable[[uuid.UUID], dict[str, str]]
URL = "/api/marketplace/listings"
BODY = {"title": "Road bike", "description": "Steel frame", "price_minor": 25000, "currency": "EUR"}


async def _outbox(db: Database, listing_id: str) -> list[str]:
    conn = await asyncpg.connect(db.url)
    try:
        rows = await conn.fetch(
            "SELECT event_type FROM outbox WHERE envelope->'payload'->>'id' = $1 ORDER BY id", listing_id
        )
    finally:
        await conn.close()
    return [row["event_type"] for row in rows]


async def test_create_makes_the_caller_the_owner(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY, headers=token_for(owner))
    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] == str(owner)
    assert body["status"] == "active"
    assert body["price_minor"] == 25000


async def test_create_without_a_token_is_401(client: AsyncClient) -> None:
    assert (await client.post(URL, json=BODY)).status_code == 401


async def test_create_with_a_token_for_another_audience_is_401(
    client: AsyncClient, owner: uuid.UUID, market_settings: Settings
) -> None:
    other = market_settings.model_copy(update={"jwt_audience": "another-platform"})
    headers = {"Authorization": f"Bearer {issue_test_token(other, str(owner))}"}
    assert (await client.post(URL, json=BODY, headers=headers)).status_code == 401


async def test_create_with_an_expired_token_is_401(
    client: AsyncClient, owner: uuid.UUID, market_settings: Settings
) -> None:
    token = issue_test_token(market_settings, str(owner), now=datetime.now(UTC) - timedelta(hours=2))
    response = await client.post(URL, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_create_rejects_an_owner_in_the_body(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY | {"owner_id": str(uuid.uuid4())}, headers=token_for(owner))
    assert response.status_code == 422


async def test_create_rejects_a_negative_price(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY | {"price_minor": -1}, headers=token_for(owner))
    assert response.status_code == 422


async def test_create_rejects_a_fractional_price(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY | {"price_minor": 10.5}, headers=token_for(owner))
    assert response.status_code == 422


async def test_create_rejects_a_lowercase_currency(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY | {"currency": "eur"}, headers=token_for(owner))
    assert response.status_code == 422


async def test_create_rejects_a_blank_title(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.post(URL, json=BODY | {"title": "   "}, headers=token_for(owner))
    assert response.status_code == 422


async def test_create_queues_listing_created(
    create_listing: CreateListing, owner: uuid.UUID, market_db: Database
) -> None:
    listing = await create_listing(owner)
    assert await _outbox(market_db, listing["id"]) == ["listing.created"]


async def test_listing_created_reaches_the_broker(
    create_listing: CreateListing, owner: uuid.UUID, market_settings: Settings, rabbitmq_server: Any
) -> None:
    connection = await aio_pika.connect(rabbitmq_server.url(market_settings.rabbitmq_vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind("events", routing_key="listing.*")
        listing = await create_listing(owner, price_minor=1234)
        async with asyncio.timeout(10), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    envelope = json.loads(message.body)
                if envelope["payload"]["id"] == listing["id"]:
                    break
    assert envelope["type"] == "listing.created"
    assert envelope["payload"]["owner_id"] == str(owner)
    assert envelope["payload"]["price_minor"] == 1234


async def test_owner_updates_a_listing(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.patch(
        f"{URL}/{listing['id']}", json={"price_minor": 19900}, headers=token_for(owner)
    )
    assert response.status_code == 200
    assert response.json()["price_minor"] == 19900
    assert response.json()["title"] == listing["title"]


async def test_update_queues_listing_updated(
    client: AsyncClient,
    create_listing: CreateListing,
    token_for: TokenFor,
    owner: uuid.UUID,
    market_db: Database,
) -> None:
    listing = await create_listing(owner)
    await client.patch(f"{URL}/{listing['id']}", json={"title": "Gravel bike"}, headers=token_for(owner))
    assert await _outbox(market_db, listing["id"]) == ["listing.created", "listing.updated"]


async def test_update_without_changes_publishes_nothing(
    client: AsyncClient,
    create_listing: CreateListing,
    token_for: TokenFor,
    owner: uuid.UUID,
    market_db: Database,
) -> None:
    listing = await create_listing(owner)
    await client.patch(f"{URL}/{listing['id']}", json={"title": listing["title"]}, headers=token_for(owner))
    assert await _outbox(market_db, listing["id"]) == ["listing.created"]


async def test_owner_marks_a_listing_sold(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.patch(f"{URL}/{listing['id']}", json={"status": "sold"}, headers=token_for(owner))
    assert response.json()["status"] == "sold"
    assert response.json()["sold_at"] is not None


async def test_only_the_owner_may_update(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.patch(
        f"{URL}/{listing['id']}", json={"price_minor": 1}, headers=token_for(uuid.uuid4())
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_owner"


async def test_update_of_an_unknown_listing_is_404(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID
) -> None:
    response = await client.patch(f"{URL}/{uuid.uuid4()}", json={"price_minor": 1}, headers=token_for(owner))
    assert response.status_code == 404


async def test_update_with_no_fields_is_422(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.patch(f"{URL}/{listing['id']}", json={}, headers=token_for(owner))
    assert response.status_code == 422


async def test_update_with_an_unknown_status_is_422(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.patch(
        f"{URL}/{listing['id']}", json={"status": "reserved"}, headers=token_for(owner)
    )
    assert response.status_code == 422


async def test_owner_deletes_a_listing(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    assert (await client.get(f"{URL}/{listing['id']}")).status_code == 200  # now cached
    assert (await client.delete(f"{URL}/{listing['id']}", headers=token_for(owner))).status_code == 204
    assert (await client.get(f"{URL}/{listing['id']}")).status_code == 404


async def test_delete_queues_listing_deleted_with_the_last_state(
    client: AsyncClient,
    create_listing: CreateListing,
    token_for: TokenFor,
    owner: uuid.UUID,
    market_db: Database,
) -> None:
    listing = await create_listing(owner)
    await client.delete(f"{URL}/{listing['id']}", headers=token_for(owner))
    assert await _outbox(market_db, listing["id"]) == ["listing.created", "listing.deleted"]
    conn = await asyncpg.connect(market_db.url)
    try:
        payload = json.loads(
            await conn.fetchval(
                "SELECT envelope->'payload' FROM outbox WHERE event_type = 'listing.deleted' "
                "AND envelope->'payload'->>'id' = $1",
                listing["id"],
            )
        )
    finally:
        await conn.close()
    assert (payload["status"], payload["owner_id"]) == ("deleted", str(owner))
    assert payload["title"] == BODY["title"]
    assert payload["updated_at"] > listing["updated_at"]


async def test_only_the_owner_may_delete(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.delete(f"{URL}/{listing['id']}", headers=token_for(uuid.uuid4()))
    assert response.status_code == 403
    assert (await client.get(f"{URL}/{listing['id']}")).status_code == 200
