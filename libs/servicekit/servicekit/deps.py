"""FastAPI dependencies (Annotated aliases) over the app's runtime.

Every dependency is an ``async def`` that only reads ``app.state``: FastAPI runs a plain ``def``
dependency in its thread pool, which costs a thread hand-off per dependency per request.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.cache import Cache
from servicekit.messaging.publisher import Publisher
from servicekit.runtime import Runtime
from servicekit.sessions import SessionStore
from servicekit.settings import Settings

T = TypeVar("T")
_NO_REDIS = "Redis (REDIS_HOST is not set)"


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"this service has no {what}")
    return value


async def get_runtime(request: Request) -> Runtime:
    """The app's :class:`Runtime`."""
    return _runtime(request)


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (a service's subclass instance)."""
    return request.app.state.settings


async def get_redis(request: Request) -> Redis:
    """The service's Redis client."""
    return _need(_runtime(request).redis, _NO_REDIS)


async def get_cache(request: Request) -> Cache:
    """The service's cache."""
    return _need(_runtime(request).cache, _NO_REDIS)


async def get_session_store(request: Request) -> SessionStore:
    """The refresh-token session store."""
    return _need(_runtime(request).sessions, _NO_REDIS)


async def get_publisher(request: Request) -> Publisher:
    """The direct publisher (prefer the outbox for events tied to a DB change)."""
    return _need(_runtime(request).publisher, "RabbitMQ (RABBITMQ_HOST is not set)")


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """The session factory, for handlers that need a session only sometimes (e.g. on a cache miss):
    ``async with sessionmaker() as session: ...``. ``SessionDep`` opens one for every request."""
    return _need(_runtime(request).sessionmaker, "database (POSTGRES_HOST is not set)")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
CacheDep = Annotated[Cache, Depends(get_cache)]
SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
SessionMakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
