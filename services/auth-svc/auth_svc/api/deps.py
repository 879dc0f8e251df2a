"""FastAPI dependencies of auth-svc as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from servicekit.auth import CurrentUser
from servicekit.db import SessionDep
from servicekit.deps import RedisDep, RuntimeDep, SessionStoreDep

from auth_svc.core.config import Settings
from auth_svc.core.hashing import PasswordHashing
from auth_svc.core.login_limit import LoginLimiter

__all__ = [
    "ClientIpDep",
    "CurrentUser",
    "LimiterDep",
    "PasswordsDep",
    "RuntimeDep",
    "SessionDep",
    "SessionStoreDep",
    "SettingsDep",
]


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


async def get_client_ip(request: Request) -> str:
    """The caller's address.

    uvicorn's ``--proxy-headers`` puts the gateway's ``X-Forwarded-For`` here only when the TCP peer is
    in ``FORWARDED_ALLOW_IPS`` (the image trusts the cluster's private ranges, never ``*``); the
    gateway sends exactly the client's address, so a client cannot choose its limiter bucket.
    """
    return request.client.host if request.client else "unknown"


async def get_limiter(
    redis: RedisDep, settings: Annotated[Settings, Depends(get_settings_dep)]
) -> LoginLimiter:
    """The failed-login limiter over the service's Redis."""
    return LoginLimiter(
        redis,
        settings.service_name,
        max_failures=settings.login_max_failures,
        max_failures_per_account=settings.login_max_failures_per_account,
        max_failures_per_ip=settings.login_max_failures_per_ip,
        window_seconds=settings.login_failure_window_seconds,
    )


async def get_passwords(request: Request) -> PasswordHashing:
    """The app's bounded password hashing."""
    return request.app.state.passwords


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PasswordsDep = Annotated[PasswordHashing, Depends(get_passwords)]
ClientIpDep = Annotated[str, Depends(get_client_ip)]
LimiterDep = Annotated[LoginLimiter, Depends(get_limiter)]
