"""With Redis stopped, token endpoints fail closed (503) instead of skipping limits or sessions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from auth_svc.core.config import Settings
from auth_svc.main import create_app
from servicekit.testing import app_client

PASSWORD = "correct-horse-42-battery"


async def test_login_is_503_while_redis_is_down(
    server_factory: Any, settings_with_redis: Callable[[Any], Settings]
) -> None:
    redis = server_factory.redis()
    email = f"down-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    async with app_client(create_app(settings_with_redis(redis))) as client:
        assert (await client.post("/api/auth/register", json=credentials)).status_code == 201
        redis.stop()
        response = await client.post("/api/auth/login", json=credentials)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
