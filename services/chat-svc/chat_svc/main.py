"""chat-svc's app factory: ``uvicorn chat_svc.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from servicekit.app import create_app as create_service_app
from servicekit.redis import create_redis
from servicekit.runtime import Runtime

from chat_svc.api.routes import conversations, ws
from chat_svc.core.config import Settings, get_settings
from chat_svc.events import build_handlers
from chat_svc.hub import READ_TIMEOUT_S, Hub

#: The pub/sub connection blocks in reads of READ_TIMEOUT_S; its socket timeout must exceed that.
PUBSUB_SOCKET_TIMEOUT_S = READ_TIMEOUT_S + 1.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """The chat-svc app: conversation routes, the WebSocket, the listing consumer and the hub."""
    settings = settings or get_settings()
    hubs: list[Hub] = []

    async def pubsub_ready() -> None:
        """Readiness: this replica's Redis subscription is up (else live delivery is down)."""
        if not hubs or not hubs[-1].is_subscribed:
            raise ConnectionError("not subscribed to Redis pub/sub")

    @asynccontextmanager
    async def hub_lifespan(app: FastAPI, runtime: Runtime) -> AsyncIterator[None]:
        assert runtime.redis is not None, "chat-svc needs Redis (REDIS_HOST)"
        pubsub_redis = create_redis(settings, socket_timeout=PUBSUB_SOCKET_TIMEOUT_S)
        hub = Hub(
            runtime.redis,
            pubsub_redis,
            settings.redis_prefix,
            max_per_user=settings.ws_max_connections_per_user,
            send_timeout=settings.ws_send_timeout_seconds,
            queue_size=settings.ws_send_queue_size,
        )
        app.state.hub = hub
        hubs.append(hub)
        unsubscribe = runtime.revocations.listen(hub.revoke)  # revoked sessions' sockets close
        await hub.start()
        try:
            yield
        finally:
            unsubscribe()
            await hub.stop()
            await pubsub_redis.aclose()

    return create_service_app(
        settings,
        routers=[conversations.router, ws.router],
        handlers=build_handlers(),
        lifespan=hub_lifespan,
        readiness_checks={"pubsub": pubsub_ready},
        title="chat-svc",
    )
