"""The service's Redis client: short timeouts so a dead Redis fails fast instead of stalling."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from servicekit.settings import Settings

#: Seconds to connect / to wait for a reply before a Redis call fails.
SOCKET_TIMEOUT_S = 0.5


def create_redis(settings: Settings, *, socket_timeout: float = SOCKET_TIMEOUT_S) -> Redis:
    """A pooled async client for the service's Redis (strings decoded as UTF-8)."""
    if not settings.redis_enabled:
        raise RuntimeError(
            f"{settings.service_name}: REDIS_HOST is not set\n"
            "hint: set REDIS_HOST/PORT/DB or drop needs.redis"
        )
    return Redis(
        host=settings.redis_host or "localhost",
        port=settings.redis_port,
        db=settings.redis_db,
        username=settings.redis_user,
        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=15,
        decode_responses=True,
        client_name=settings.service_name,
    )
