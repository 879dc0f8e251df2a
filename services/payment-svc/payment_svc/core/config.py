"""payment-svc settings: servicekit's environment contract plus the processor choice."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from servicekit.settings import Settings as BaseSettings


class Settings(BaseSettings):
    """Adds ``PAYMENT_PROCESSOR`` (which adapter charges cards) to the shared settings."""

    service_name: str = "payment-svc"
    payment_processor: Literal["sandbox"] = Field(
        "sandbox", description="payment-processor adapter; 'sandbox' approves/declines by test card"
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
