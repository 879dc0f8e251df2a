"""chat-svc settings: servicekit's environment contract plus WebSocket tuning."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field
from servicekit.settings import Settings as BaseSettings


class Settings(BaseSettings):
    """Adds WebSocket limits to the shared settings."""

    service_name: str = "chat-svc"
    ws_max_connections_per_user: Annotated[int, Field(ge=1)] = 10
    ws_send_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    ws_send_queue_size: Annotated[
        int, Field(ge=1, description="frames queued per socket; a client further behind is dropped")
    ] = 64


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
