"""The app factory every service uses."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from servicekit.auth import public_keys
from servicekit.errors import install_error_handlers
from servicekit.health import CHECK_TIMEOUT_S, Check, add_health_routes
from servicekit.logging import configure_logging, flush_logs
from servicekit.messaging.consumer import EventHandlers
from servicekit.metrics import Metrics, metrics_endpoint
from servicekit.middleware import RequestContextMiddleware
from servicekit.openapi import install as install_openapi
from servicekit.process_state import PROCESS
from servicekit.routing import add_routes_in_order
from servicekit.runtime import Runtime
from servicekit.settings import Settings

ExtraLifespan = Callable[[FastAPI, Runtime], AbstractAsyncContextManager[None]]
#: FastAPI's native OpenTelemetry is off: the platform observes services through Prometheus metrics
#: and JSON logs, and FastAPI would otherwise check for configured OTel providers on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


#: Net allocations of GC-tracked objects between young-generation collections while serving
#: (CPython's default is 700, which the objects of in-flight requests alone reach every few requests).
GEN0_THRESHOLD = 5000


@contextmanager
def tuned_gc(enabled: bool = True) -> Iterator[None]:
    """While serving, keep the cyclic garbage collector off the hot path.

    uvicorn and asyncio leave reference cycles behind every request, so the collector runs often,
    and each full (generation 2) collection walks every tracked object: the imported modules,
    SQLAlchemy/pydantic/FastAPI structures (~130k objects in marketplace-svc). Measured under wrk
    (50 connections): ~25 full collections in 10 s of up to 130 ms each, a quarter of the process's
    time and the whole p99 tail. So, once started:

    - ``gc.collect()`` then ``gc.freeze()``: the long-lived objects move to the permanent
      generation (startup garbage is not kept); collections scan only what requests create;
    - the young-generation threshold goes from 700 to :data:`GEN0_THRESHOLD`: ~20x fewer
      collections (4000 -> 180 per 8 s under that load), GC time 0.5 s -> 0.17 s.

    When the last serving app of the process stops, ``gc.unfreeze()`` hands the objects back and the
    thresholds are restored (tests run several apps in one process, sometimes overlapping); the
    count and the saved thresholds live in :data:`servicekit.process_state.PROCESS`.
    """
    if not enabled:
        yield
        return
    if PROCESS.serving_apps == 0:
        PROCESS.gc_thresholds = gc.get_threshold()
    PROCESS.serving_apps += 1
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *PROCESS.gc_thresholds[1:])
    try:
        yield
    finally:
        PROCESS.serving_apps -= 1
        if PROCESS.serving_apps == 0:
            gc.set_threshold(*PROCESS.gc_thresholds)
            gc.unfreeze()


def create_app(
    settings: Settings,
    *,
    routers: Iterable[APIRouter] = (),
    handlers: EventHandlers | None = None,
    outbox: bool | None = None,
    lifespan: ExtraLifespan | None = None,
    readiness_checks: dict[str, Check] | None = None,
    required_checks: Iterable[str] = (),
    title: str | None = None,
    version: str = "0.1.0",
    prefetch: int = 10,
    check_timeout: float = CHECK_TIMEOUT_S,
    telemetry: TelemetryConfig | None = None,
    tune_gc: bool = True,
) -> FastAPI:
    """A FastAPI app with the platform's runtime wired in.

    - The lifespan opens (and closes) only the backends the settings enable: the DB engine when
      ``POSTGRES_HOST`` is set, Redis (+ cache, session store) when ``REDIS_HOST`` is, the RabbitMQ
      connection + publisher when ``RABBITMQ_HOST`` is; a consumer when *handlers* are given; the
      outbox relay when *outbox* (default: PostgreSQL and RabbitMQ both enabled).
    - *readiness_checks*: the service's own checks; they only degrade readiness unless named in
      *required_checks* (PostgreSQL, when used, is always required; Redis and RabbitMQ never are).
    - ``/healthz``, ``/readyz``, ``/metrics``; CORS from ``CORS_ORIGINS``; ``X-Request-ID``; access
      log; every error as ``{"error": {"code", "message", "request_id", "details"?}}``; an OpenAPI
      document that lists every status an operation can answer (see :mod:`servicekit.openapi`).
    - *routers*: each plain router's routes become app routes (matched once per request), matched
      before the platform's and the docs routes; none may shadow a platform route (see
      :mod:`servicekit.routing`). Other routers are included as they are. Endpoints decorated
      with :func:`servicekit.routing.lean` get the lean handler (``LeanRoute``); app creation
      refuses one that is not eligible, or any when *telemetry* is given.
    - *lifespan* runs inside the runtime's (clients are open) for service-specific tasks.
    - *telemetry* is passed to FastAPI; default :data:`NO_TELEMETRY` (native OpenTelemetry off).
    - *tune_gc*: once started, the objects built so far are moved out of the garbage collector's
      reach and young collections run less often (see :func:`tuned_gc`).
    """
    public_keys(settings)  # every service verifies tokens: refuse to start without JWT_PUBLIC_KEYS
    if handlers and not settings.postgres_enabled:
        raise RuntimeError(
            f"{settings.service_name}: consuming events needs PostgreSQL (idempotency marker)\n"
            "hint: set POSTGRES_* or do not pass handlers"
        )
    if handlers and not settings.rabbitmq_enabled:
        raise RuntimeError(
            f"{settings.service_name}: event handlers given but RABBITMQ_HOST is not set\n"
            "hint: set RABBITMQ_* or do not pass handlers"
        )
    metrics = Metrics(settings.service_name)
    use_outbox = outbox if outbox is not None else (settings.postgres_enabled and settings.rabbitmq_enabled)

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(
            settings.service_name,
            level=settings.log_level,
            fmt=settings.log_format,
            log_file=settings.log_file,
        )
        runtime = Runtime(
            settings=settings,
            metrics=metrics,
            handlers=handlers,
            outbox=use_outbox,
            prefetch=prefetch,
            check_timeout=check_timeout,
            extra_checks=dict(readiness_checks or {}),
            required=frozenset(required_checks),
        )
        app.state.runtime = runtime
        await runtime.start()
        try:
            if lifespan is not None:
                async with lifespan(app, runtime):
                    with tuned_gc(tune_gc):
                        yield
            else:
                with tuned_gc(tune_gc):
                    yield
        finally:
            await runtime.stop()
            flush_logs()

    app = FastAPI(
        title=title or settings.service_name,
        version=version,
        lifespan=run,
        telemetry=NO_TELEMETRY if telemetry is None else telemetry,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    install_openapi(app)
    cors = (
        {
            "allow_origins": settings.cors_origins,
            "allow_credentials": True,
            "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            "allow_headers": ["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
            "expose_headers": ["X-Request-ID"],
        }
        if settings.cors_origins
        else None
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, cors=cors)
    # Lean handlers record no FastAPI telemetry: lean routes are refused when it is on.
    add_routes_in_order(app, routers, _add_platform_routes, lean=telemetry is None)
    return app


def _add_platform_routes(app: FastAPI) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics``, on the app itself (an included router is one more
    level to match per request)."""
    add_health_routes(app)
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
