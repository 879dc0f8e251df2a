"""marketplace-svc settings: servicekit's environment contract plus cache lifetimes."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field
from servicekit.settings import Settings as BaseSettings

#: The manifest's ``route`` (services/marketplace-svc/service.yaml); the gateway forwards only this.
ROUTE_PREFIX = "/api/marketplace"


class Settings(BaseSettings):
    """Environment of marketplace-svc. Extra variables are optional and have safe defaults."""

    service_name: str = "marketplace-svc"
    listing_cache_ttl_seconds: Annotated[int, Field(ge=1)] = 300
    search_cache_ttl_seconds: Annotated[int, Field(ge=1)] = 30


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
