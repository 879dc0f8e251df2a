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
    refresh_token_ttl_seconds: Annotated[int, Field(ge=300)] = 14 * 24 * 3600
    login_max_failures: Annotated[int, Field(ge=1, description="failed logins per email+IP allowed")] = 5
    login_failure_window_seconds: Annotated[int, Field(ge=1)] = 900


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
