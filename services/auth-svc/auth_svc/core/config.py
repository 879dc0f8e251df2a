"""auth-svc settings: servicekit's environment contract plus token lifetimes and login limiting."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field
from servicekit.settings import Settings as BaseSettings


class Settings(BaseSettings):
    """Environment of auth-svc. Extra variables are optional and have safe defaults."""

    service_name: str = "auth-svc"
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    refresh_token_ttl_seconds: Annotated[
        int, Field(ge=300, description="a session ends after this long without a refresh")
    ] = 14 * 24 * 3600
    session_max_age_seconds: Annotated[
        int, Field(ge=300, description="a session ends this long after login, refreshed or not")
    ] = 30 * 24 * 3600
    login_max_failures: Annotated[int, Field(ge=1, description="failed logins per email+IP allowed")] = 5
    login_max_failures_per_account: Annotated[
        int, Field(ge=1, description="failed logins per email, from any address")
    ] = 20
    login_max_failures_per_ip: Annotated[
        int, Field(ge=1, description="failed logins per address (IPv6: per /64), at any account")
    ] = 100
    login_failure_window_seconds: Annotated[int, Field(ge=1)] = 900
    memory_limit_mib: Annotated[
        int | None, Field(ge=64, description="the container's memory limit when the cgroup does not say")
    ] = None
    password_hash_concurrency: Annotated[
        int | None, Field(ge=1, description="argon2 hashes at once; default: what the memory limit holds")
    ] = None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
