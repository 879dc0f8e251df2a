"""With its Redis stopped, the service still serves reads (and writes) straight from PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from httpx import AsyncClient
from marketplace_svc.core.config import Settings
from marketplace_svc.main import create_app
from servicekit.testing import app_client, issue_test_token

URL = "/api/marketplace/listings"
BODY = {"title": "Kettle", "description": "", "price_minor": 900, "currency": "EUR"}


async def test_reads_and_writes_work_with_redis_stopped(
    server_factory: Any, settings_with_redis: Callable[[Any], Settings]
) -> None:
    redis = server_factory.redis()
    settings = settings_with_redis(redis)
    owner = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {issue_test_token(settings, owner)}"}
    async with app_client(create_app(settings)) as client:
        client: AsyncClient
        listing = (await client.post(URL, json=BODY, headers=headers)).json()
        assert (await client.get(f"{URL}/{listing['id']}")).status_code == 200  # cached while Redis is up
        redis.stop()

        one = await client.get(f"{URL}/{listing['id']}")
        search = await client.get(URL, params={"q": "Kettle", "limit": 100})
        update = await client.patch(f"{URL}/{listing['id']}", json={"price_minor": 800}, headers=headers)
        again = await client.get(f"{URL}/{listing['id']}")
        ready = await client.get("/readyz")

    assert one.status_code == 200
    assert search.status_code == 200
    assert listing["id"] in {item["id"] for item in search.json()["items"]}
    assert update.status_code == 200
    assert again.json()["price_minor"] == 800
    assert ready.status_code == 200  # Redis only degrades it: it stays in the Service's endpoints
    assert ready.json()["degraded"] == ["redis"]
    assert ready.json()["checks"]["redis"] != "ok"
