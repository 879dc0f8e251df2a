"""payment-svc's app factory: ``uvicorn payment_svc.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import create_app as create_service_app

from payment_svc.api.routes import payments
from payment_svc.core.config import Settings, get_settings
from payment_svc.events import build_handlers
from payment_svc.processor import build_processor


def create_app(settings: Settings | None = None) -> FastAPI:
    """The payment-svc app: payments routes, listing consumer, outbox relay, processor adapter."""
    settings = settings or get_settings()
    if settings.fingerprint_key is None:
        raise RuntimeError(
            "payment-svc: FINGERPRINT_KEY is not set\n"
            "hint: the platform generates it (service.yaml secrets); it keys the request fingerprints"
        )
    app = create_service_app(
        settings,
        routers=[payments.router],
        handlers=build_handlers(),
        title="payment-svc",
    )
    app.state.processor = build_processor(settings.payment_processor)
    return app
