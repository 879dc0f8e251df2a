"""Reading listings: one by id, search with filters and pagination, both served from Redis."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from servicekit.logging import current_request_id
from servicekit.testing import Database
from sqlalchemy import event

CreateListing = Callable[..., Awaitable[dict[str, Any]]]
TokenFor = Callable[[uuid.UUID], dict[str, str]]
URL = "/api/marketplace/listings"


async def _sql(db: Database, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(db.url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def _search(client: AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_get_returns_a_listing(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    response = await client.get(f"{URL}/{listing['id']}")
    assert response.status_code == 200
    assert response.json() == listing


async def test_get_of_an_unknown_listing_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{URL}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "listing_not_found"


async def test_get_with_a_malformed_id_is_422(client: AsyncClient) -> None:
    assert (await client.get(f"{URL}/not-a-uuid")).status_code == 422


async def test_second_read_is_served_from_the_cache(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, market_db: Database
) -> None:
    listing = await create_listing(owner, title="Cached title")
    await client.get(f"{URL}/{listing['id']}")
    await _sql(
        market_db,
        "UPDATE listings SET title = 'Changed behind the cache' WHERE id = $1",
        uuid.UUID(listing["id"]),
    )
    assert (await client.get(f"{URL}/{listing['id']}")).json()["title"] == "Cached title"


async def test_a_cache_hit_is_the_same_json_and_uses_no_database_connection(
    client: AsyncClient, market_app: FastAPI, create_listing: CreateListing, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner, title="Lampe \u00e9t\u00e9")
    checkouts: list[str | None] = []

    def on_checkout(*_: Any) -> None:
        checkouts.append(current_request_id())  # the outbox relay's checkouts carry no request id

    engine = market_app.state.runtime.engine.sync_engine
    event.listen(engine, "checkout", on_checkout)
    try:
        miss = await client.get(f"{URL}/{listing['id']}", headers={"X-Request-ID": f"miss-{owner}"})
        hit = await client.get(f"{URL}/{listing['id']}", headers={"X-Request-ID": f"hit-{owner}"})
    finally:
        event.remove(engine, "checkout", on_checkout)
    assert f"miss-{owner}" in checkouts
    assert f"hit-{owner}" not in checkouts
    assert hit.status_code == 200
    assert hit.headers["content-type"] == "application/json"
    assert hit.content == miss.content
    assert hit.json() == listing


async def test_update_invalidates_the_cached_listing(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner, title="Old title")
    await client.get(f"{URL}/{listing['id']}")
    await client.patch(f"{URL}/{listing['id']}", json={"title": "New title"}, headers=token_for(owner))
    assert (await client.get(f"{URL}/{listing['id']}")).json()["title"] == "New title"


async def test_search_results_are_served_from_the_cache(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str, market_db: Database
) -> None:
    listing = await create_listing(owner, title=f"Lamp {tag}")
    assert (await _search(client, q=tag))["total"] == 1
    await _sql(market_db, "DELETE FROM listings WHERE id = $1", uuid.UUID(listing["id"]))
    assert (await _search(client, q=tag))["total"] == 1


async def test_a_write_invalidates_cached_searches(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str
) -> None:
    await create_listing(owner, title=f"Lamp {tag}")
    assert (await _search(client, q=tag))["total"] == 1
    await create_listing(owner, title=f"Desk {tag}")
    assert (await _search(client, q=tag))["total"] == 2


async def test_search_matches_text_in_title_or_description(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str
) -> None:
    in_title = await create_listing(owner, title=f"Chair {tag.upper()}")
    in_description = await create_listing(owner, title="Table", description=f"oak, {tag}")
    await create_listing(owner, title="Unrelated")
    page = await _search(client, q=tag)
    assert {item["id"] for item in page["items"]} == {in_title["id"], in_description["id"]}


async def test_search_text_wildcards_are_literal(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str
) -> None:
    await create_listing(owner, title=f"Chair {tag}")
    assert (await _search(client, q=f"{tag[:4]}%{tag[6:]}"))["total"] == 0


async def test_search_filters_by_price_range(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str
) -> None:
    for price in (500, 1000, 1500, 2000):
        await create_listing(owner, title=f"Item {tag}", price_minor=price)
    page = await _search(client, q=tag, min_price=1000, max_price=1500)
    assert sorted(item["price_minor"] for item in page["items"]) == [1000, 1500]


async def test_search_filters_by_status(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID, tag: str
) -> None:
    sold = await create_listing(owner, title=f"Sold {tag}")
    await create_listing(owner, title=f"Active {tag}")
    await client.patch(f"{URL}/{sold['id']}", json={"status": "sold"}, headers=token_for(owner))
    page = await _search(client, q=tag, status="sold")
    assert [item["id"] for item in page["items"]] == [sold["id"]]


async def test_search_paginates_newest_first_with_a_total(
    client: AsyncClient, create_listing: CreateListing, owner: uuid.UUID, tag: str
) -> None:
    ids = [(await create_listing(owner, title=f"Item {n} {tag}"))["id"] for n in range(5)]
    first = await _search(client, q=tag, limit=2, offset=0)
    third = await _search(client, q=tag, limit=2, offset=4)
    assert first["total"] == third["total"] == 5
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    assert [item["id"] for item in third["items"]] == ids[:1]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"min_price": 10, "max_price": 5}, id="min-above-max"),
        pytest.param({"limit": 0}, id="limit-zero"),
        pytest.param({"limit": 101}, id="limit-too-big"),
        pytest.param({"offset": -1}, id="negative-offset"),
        pytest.param({"status": "reserved"}, id="unknown-status"),
        pytest.param({"colour": "red"}, id="unknown-parameter"),
    ],
)
async def test_search_rejects_invalid_parameters(client: AsyncClient, params: dict[str, Any]) -> None:
    assert (await client.get(URL, params=params)).status_code == 422
