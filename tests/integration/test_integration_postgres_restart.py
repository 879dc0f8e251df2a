"""A running marketplace-svc (a uvicorn process, over HTTP) follows a PostgreSQL restart: ``/readyz``
fails while the database is down and passes again within 10 s of its return - the process is never
restarted, its pool reconnects by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from servicekit.testing import bearer

from .conftest import BrokerAccess, served

LISTINGS = "/api/marketplace/listings"
BODY = {"title": "Tent", "description": "2 people", "price_minor": 4000, "currency": "EUR"}
RECOVERY_S = 10.0


async def test_readyz_fails_during_a_postgres_restart_and_recovers_without_restarting_the_service(
    server_factory: Any,
    redis_server: Any,
    isolated_broker: BrokerAccess,
    tmp_path: Path,
    timings: dict[str, float],
) -> None:
    pg = await asyncio.to_thread(server_factory.postgres)
    where = {"postgres": pg, "redis": redis_server, "broker": isolated_broker}
    t = time.monotonic()
    async with served("marketplace-svc", **where, base_dir=tmp_path, factory=server_factory) as market:
        timings["service up"] = time.monotonic() - t
        pids = market.process.pids()
        headers = bearer(market.settings, str(uuid.uuid4()))
        async with httpx.AsyncClient(base_url=market.url, timeout=5) as http:
            assert (await http.post(LISTINGS, json=BODY, headers=headers)).status_code == 201

            await asyncio.to_thread(pg.stop)
            down = await http.get("/readyz")
            assert down.status_code == 503
            checks = down.json()["checks"]
            assert checks["postgres"] != "ok"
            assert checks["redis"] == checks["rabbitmq"] == "ok"

            t = time.monotonic()
            await asyncio.to_thread(pg.start)  # same port, same data directory
            timings["postgres start"] = time.monotonic() - t
            t = time.monotonic()
            status = 503
            while status != 200 and time.monotonic() - t < RECOVERY_S:
                status = (await http.get("/readyz")).status_code
                await asyncio.sleep(0.1 if status != 200 else 0)
            timings["readyz recovered after"] = time.monotonic() - t
            assert status == 200, f"/readyz still failing {RECOVERY_S}s after PostgreSQL came back"
            assert (await http.post(LISTINGS, json=BODY, headers=headers)).status_code == 201
        assert market.process.is_running()
        assert market.process.pids() == pids  # the very same process served before and after
