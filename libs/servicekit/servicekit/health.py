"""``/healthz`` (liveness: no dependencies) and ``/readyz`` (readiness: only what the service cannot
serve anything without).

Readiness must not cascade: a Redis outage taking every pod out of its Service endpoints would turn
a degraded login into a total outage. So ``/readyz`` fails only on the *required* checks (PostgreSQL
when the service uses it, plus any the service marks required); the others (Redis, RabbitMQ - the
outbox holds events meanwhile) are reported as ``degraded`` with a 200, and in the
``dependency_up`` gauge that ``/metrics`` refreshes and the ``DependencyDown`` alert watches.
Requests that need a dependency which is down answer 503 + ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from servicekit.errors import error_body

Check = Callable[[], Awaitable[Any]]
#: Each readiness check must answer within this many seconds.
CHECK_TIMEOUT_S = 1.0

router = APIRouter(tags=["health"])


async def run_checks(checks: dict[str, Check], limit_s: float = CHECK_TIMEOUT_S) -> dict[str, str]:
    """Run every check concurrently, each bounded by *limit_s*; name -> ``ok`` or the failure."""

    async def one(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), limit_s)
        except TimeoutError:
            return f"timeout after {limit_s}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        return "ok"

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests. Touches no dependency."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when every required dependency answers (others may be ``degraded``), else 503."""
    runtime = request.app.state.runtime
    start = time.perf_counter()
    results = await run_checks(runtime.dependency_checks(), runtime.check_timeout)
    took = round((time.perf_counter() - start) * 1000, 1)
    request.app.state.metrics.set_dependencies(results)
    required = runtime.required_checks()
    failed = sorted(name for name, result in results.items() if result != "ok" and name in required)
    degraded = sorted(name for name, result in results.items() if result != "ok" and name not in required)
    if not failed:
        body: dict[str, Any] = {"status": "degraded" if degraded else "ok", "checks": results}
        if degraded:
            body["degraded"] = degraded
        return JSONResponse({**body, "duration_ms": took})
    body = error_body("not_ready", f"not ready: {', '.join(failed)}", {"checks": results})
    return JSONResponse(
        {"status": "unavailable", "checks": results, "duration_ms": took, **body}, status_code=503
    )


def add_health_routes(app: FastAPI) -> None:
    """Add ``/healthz`` and ``/readyz`` to *app* directly (same routes as :data:`router`)."""
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False, tags=["health"])
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False, tags=["health"])
