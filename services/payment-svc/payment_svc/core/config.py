"""payment-svc settings: servicekit's environment contract plus the processor choice."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from servicekit.settings import Settings as BaseSettings


class Settings(BaseSettings):
    """Adds ``PAYMENT_PROCESSOR`` (which adapter charges cards) to the shared settings."""

    service_name: str = "payment-svc"
    payment_processor: Literal["sandbox"] = Field(
        "sandbox", description="payment-processor adapter; 'sandbox' approves/declines by test card"
    )
    sandbox_allowed_reason: str | None = Field(
        None,
        description="why this staging/prod stack may run the sandbox processor "
        "(from platform:services.payment-svc.allowSandbox.reason); without it the sandbox is refused there",
    )
    payment_attempts_per_buyer: Annotated[
        int, Field(ge=1, description="payment attempts one buyer may make per window (card testing)")
    ] = 20
    payment_attempts_per_card: Annotated[
        int, Field(ge=1, description="payment attempts with one card, by any buyer, per window")
    ] = 10
    payment_attempt_window_seconds: Annotated[int, Field(ge=60)] = 3600
    fingerprint_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="HMAC key of request fingerprints (card data): this service's own (FINGERPRINT_KEY); "
        "required to serve, not to migrate",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
