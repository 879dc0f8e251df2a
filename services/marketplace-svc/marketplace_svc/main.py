"""The marketplace-svc app factory: ``uvicorn marketplace_svc.main:create_app --factory``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from servicekit.app import create_app as create_service_app
from servicekit.cache import Cache

from marketplace_svc.api.routes import listings
from marketplace_svc.core.config import Settings, get_settings
from marketplace_svc.core.handlers import build_handlers

#: The manifest's ``route`` (services/marketplace-svc/service.yaml); the gateway forwards only this.
ROUTE_PREFIX = "/api/marketplace"


def api_router() -> APIRouter:
    """Every resource router under the route prefix."""
    router = APIRouter(prefix=ROUTE_PREFIX)
    router.include_router(listings.router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (tests)."""
    app: FastAPI

    def cache() -> Cache | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.cache if runtime is not None else None

    app = create_service_app(
        settings or get_settings(),
        routers=[api_router()],
        handlers=build_handlers(cache),
        title="marketplace-svc",
    )
    return app
