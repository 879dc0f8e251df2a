"""FastAPI dependencies of marketplace-svc as Annotated aliases (all ``async``: a plain ``def``
dependency runs in FastAPI's thread pool, a thread hand-off per request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from servicekit.auth import CurrentUser
from servicekit.cache import Cache
from servicekit.db import SessionDep
from servicekit.deps import CacheDep, RuntimeDep, SessionMakerDep
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace_svc.core.config import Settings

__all__ = [
    "CacheDep",
    "CurrentUser",
    "Reads",
    "RuntimeDep",
    "SessionDep",
    "SessionMakerDep",
    "SettingsDep",
    "reads_of",
]


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


@dataclass(frozen=True, slots=True)
class Reads:
    """What a cached read needs."""

    cache: Cache
    sessions: async_sessionmaker[AsyncSession]
    """Open a session only on a cache miss: ``async with reads.sessions() as session``."""
    settings: Settings


def reads_of(request: Request) -> Reads:
    """The cache, the session factory and the settings of the running app.

    A plain function the read routes call with their ``request``, not a dependency: FastAPI solves
    every dependency per request (~10 us each), these values never change while the app runs, and
    a route without dependencies can opt in to servicekit's lean handler (``@lean``).
    """
    runtime = request.app.state.runtime
    if runtime.cache is None or runtime.sessionmaker is None:
        raise RuntimeError("marketplace-svc needs Redis and PostgreSQL (REDIS_HOST, POSTGRES_HOST)")
    return Reads(runtime.cache, runtime.sessionmaker, request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
