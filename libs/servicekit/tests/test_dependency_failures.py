"""Issue 14 items 6-7 against real servers: an unreachable dependency answers 503 + Retry-After (never
500), readiness fails only on what the service cannot serve without, degraded dependencies show in
``dependency_up``. Private PostgreSQL and Redis (killed by the tests), one pair for the module."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from servicekit.app import create_app
from servicekit.db import SessionDep
from servicekit.deps import RedisDep
from servicekit.testing import app_client, create_database
from sqlalchemy import text

from .conftest import make_settings


def build_app(database: Any, redis: Any) -> FastAPI:
    router = APIRouter()

    @router.get("/db")
    async def from_db(session: SessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    @router.get("/cache")
    async def from_redis(redis: RedisDep) -> dict[str, bool]:
        return {"pong": bool(await redis.ping())}

    @router.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a plain bug stays a 500")

    settings = make_settings("dep-svc", database=database, redis=redis)
    return create_app(settings, routers=[router], tune_gc=False)


@pytest.fixture
async def servers(server_factory: Any) -> dict[str, Any]:
    postgres = server_factory.postgres()
    redis = server_factory.redis()
    database = await create_database(postgres)
    return {"postgres": postgres, "redis": redis, "database": database}


def _metric(text_: str, dependency: str) -> float:
    for line in text_.splitlines():
        if line.startswith("dependency_up{") and f'dependency="{dependency}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no dependency_up sample for {dependency}")


async def test_redis_outage_degrades_but_does_not_unready_and_answers_503(servers: dict[str, Any]) -> None:
    app = build_app(servers["database"], servers["redis"])
    async with app_client(app) as client:
        assert (await client.get("/cache")).status_code == 200
        servers["redis"].kill()
        cache = await client.get("/cache", headers={"X-Request-ID": "outage-1"})
        ready = await client.get("/readyz")
        db = await client.get("/db")
        metrics = (await client.get("/metrics")).text
        bug = await client.get("/bug")
    assert cache.status_code == 503
    assert cache.headers["retry-after"] == "5"
    assert cache.json() == {
        "error": {
            "code": "unavailable",
            "message": "redis is unavailable; retry later",
            "request_id": "outage-1",
            "details": {"dependency": "redis"},
        }
    }
    assert ready.status_code == 200  # only login-like features need Redis: stay in the endpoints
    assert ready.json()["status"] == "degraded"
    assert ready.json()["degraded"] == ["redis"]
    assert db.status_code == 200  # what does not need Redis is served
    assert _metric(metrics, "redis") == 0
    assert _metric(metrics, "postgres") == 1
    assert 'dependency_unavailable_total{dependency="redis",service="dep-svc"} 1.0' in metrics
    assert bug.status_code == 500


async def test_database_outage_answers_503_and_makes_the_service_unready(servers: dict[str, Any]) -> None:
    app = build_app(servers["database"], servers["redis"])
    async with app_client(app) as client:
        assert (await client.get("/db")).status_code == 200
        servers["postgres"].kill()
        first = await client.get("/db")  # a pooled connection that just broke
        second = await client.get("/db")  # a new connection that is refused
        ready = await client.get("/readyz")
    for response in (first, second):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["code"] == "unavailable"
        assert response.json()["error"]["details"] == {"dependency": "postgres"}
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
