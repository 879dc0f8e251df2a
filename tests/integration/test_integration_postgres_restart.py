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
from servicekit.auth import issue_access_token

from infra.local.ports import free_port
from infra.local.uvicorn_service import UvicornService

from .conftest import REPO, BrokerAccess, deployed, settings_env

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
    async with deployed("marketplace-svc", postgres=pg, redis=redis_server, broker=isolated_broker) as dep:
        port = free_port()
        service = UvicornService(
            "marketplace-svc",
            "marketplace_svc",
            tmp_path,
            port,
            settings_env(dep.settings),
            log_path=tmp_path / "marketplace-svc.log",
            cwd=REPO,
        )
        server_factory.servers.append(service)  # killed and leak-checked by the factory if we fail
        t = time.monotonic()
        await asyncio.to_thread(service.start)  # returns once /readyz answered 200
        timings["service start"] = time.monotonic() - t
        pids = service.pids()
        headers = {"Authorization": f"Bearer {issue_access_token(dep.settings, str(uuid.uuid4()))}"}
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
                assert (await http.post(LISTINGS, json=BODY, headers=headers)).status_code == 201

                await asyncio.to_thread(pg.stop)
                down = await http.get("/readyz")
                assert down.status_code == 503
                assert down.json()["checks"]["postgres"] != "ok"
                assert down.json()["checks"]["redis"] == down.json()["checks"]["rabbitmq"] == "ok"

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
            assert service.is_running()
            assert service.pids() == pids  # the very same process served before and after
        finally:
            await asyncio.to_thread(service.stop)
