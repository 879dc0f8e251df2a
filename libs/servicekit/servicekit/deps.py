"""FastAPI dependencies (Annotated aliases) over the app's runtime."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request
from redis.asyncio import Redis

from servicekit.cache import Cache
from servicekit.messaging.publisher import Publisher
from servicekit.runtime import Runtime
from servicekit.sessions import SessionStore
from servicekit.settings import Settings

T = TypeVar("T")


def get_runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime`."""
    return request.app.state.runtime


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (a service's subclass instance)."""
    return request.app.state.settings


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"this service has no {what}")
    return value


def get_redis(request: Request) -> Redis:
    """The service's Redis client."""
    return _need(get_runtime(request).redis, "Redis (REDIS_HOST is not set)")


def get_cache(request: Request) -> Cache:
    """The service's cache."""
    return _need(get_runtime(request).cache, "Redis (REDIS_HOST is not set)")


def get_session_store(request: Request) -> SessionStore:
    """The refresh-token session store."""
    return _need(get_runtime(request).sessions, "Redis (REDIS_HOST is not set)")


def get_publisher(request: Request) -> Publisher:
    """The direct publisher (prefer the outbox for events tied to a DB change)."""
    return _need(get_runtime(request).publisher, "RabbitMQ (RABBITMQ_HOST is not set)")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
CacheDep = Annotated[Cache, Depends(get_cache)]
SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
