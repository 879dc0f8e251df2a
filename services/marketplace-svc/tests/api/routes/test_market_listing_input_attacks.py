"""Attacks through listing inputs (issue 11, item 10): reopening a sold listing, free listings that
break payment, and inputs that made the service answer 500."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from httpx import AsyncClient

CreateListing = Callable[..., Awaitable[dict[str, Any]]]
TokenFor = Callable[[uuid.UUID], dict[str, str]]
URL = "/api/marketplace/listings"


async def test_a_sold_listing_cannot_be_put_back_on_sale(
    client: AsyncClient, create_listing: CreateListing, token_for: TokenFor, owner: uuid.UUID
) -> None:
    listing = await create_listing(owner)
    url, headers = f"{URL}/{listing['id']}", token_for(owner)
    assert (await client.patch(url, json={"status": "sold"}, headers=headers)).status_code == 200
    reopened = await client.patch(url, json={"status": "active"}, headers=headers)
    assert (reopened.status_code, reopened.json()["error"]["code"]) == (409, "invalid_status_transition")
    assert (await client.get(url)).json()["status"] == "sold"


@pytest.mark.parametrize("price", [0, -1, 10**12 + 1, 2**63])
async def test_a_price_outside_the_bounds_is_422(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID, price: int
) -> None:
    body = {"title": "Free lamp", "price_minor": price, "currency": "EUR"}
    response = await client.post(URL, json=body, headers=token_for(owner))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": 2**63},
        {"max_price": 2**64},
        {"min_price": -(2**63) - 1},
        {"q": "lamp\x00"},
        {"offset": 2**70},
        {"limit": "1e3"},
    ],
)
async def test_hostile_search_parameters_are_422_never_500(
    client: AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get(URL, params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"title": "lamp\x00", "price_minor": 100, "currency": "EUR"},
        {"title": "lamp", "description": "\x00", "price_minor": 100, "currency": "EUR"},
        {"title": "lamp", "price_minor": 100.5, "currency": "EUR"},
        {"title": "lamp", "price_minor": "100", "currency": "EUR"},
        {"title": "lamp", "price_minor": 100, "currency": "eur"},
    ],
)
async def test_hostile_listing_bodies_are_422_never_500(
    client: AsyncClient, token_for: TokenFor, owner: uuid.UUID, body: dict[str, Any]
) -> None:
    response = await client.post(URL, json=body, headers=token_for(owner))
    assert response.status_code == 422, response.text
