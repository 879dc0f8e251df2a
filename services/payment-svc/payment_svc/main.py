"""payment-svc's app factory: ``uvicorn payment_svc.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import create_app as create_service_app

from payment_svc.api.routes import payments
from payment_svc.core.config import Settings, get_settings
from payment_svc.events import build_handlers
from payment_svc.processor import build_processor

#: Environments where the sandbox processor is refused unless the stack allows it.
PRODUCTION_ENVIRONMENTS = frozenset({"staging", "prod"})


def refuse_sandbox_in_production(settings: Settings) -> None:
    """The sandbox approves any Luhn-valid card: refuse to start with it in staging/prod unless the
    stack allowed it with a reason (issue 11: production must not take payments through it)."""
    if settings.payment_processor != "sandbox" or settings.environment not in PRODUCTION_ENVIRONMENTS:
        return
    if not settings.sandbox_allowed_reason:
        raise RuntimeError(
            f"payment-svc: the sandbox payment processor approves any Luhn-valid card and is refused in "
            f"{settings.environment}\n"
            "hint: configure a real PAYMENT_PROCESSOR, or allow the sandbox for this stack with "
            "platform:services.payment-svc.allowSandbox.reason in its stack file"
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The payment-svc app: payments routes, listing consumer, outbox relay, processor adapter."""
    settings = settings or get_settings()
    if settings.fingerprint_key is None:
        raise RuntimeError(
            "payment-svc: FINGERPRINT_KEY is not set\n"
            "hint: the platform generates it (service.yaml secrets); it keys the request fingerprints"
        )
    refuse_sandbox_in_production(settings)
    app = create_service_app(
        settings,
        routers=[payments.router],
        handlers=build_handlers(),
        title="payment-svc",
    )
    app.state.processor = build_processor(settings.payment_processor)
    return app
