"""The marketplace-svc app factory: ``uvicorn marketplace_svc.main:create_app --factory``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from servicekit.app import create_app as create_service_app
from servicekit.cache import Cache

from marketplace_svc.api.routes import listings
from marketplace_svc.core.config import ROUTE_PREFIX, Settings, get_settings
from marketplace_svc.core.handlers import build_handlers

__all__ = ["ROUTE_PREFIX", "api_routers", "create_app"]


def api_routers() -> list[APIRouter]:
    """Every resource router; each carries the full prefix (``ROUTE_PREFIX/<resource>``) itself,
    because every level of router nesting is matched again on each request."""
    return [listings.router]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (tests)."""
    app: FastAPI

    def cache() -> Cache | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.cache if runtime is not None else None

    app = create_service_app(
        settings or get_settings(),
        routers=api_routers(),
        handlers=build_handlers(cache),
        title="marketplace-svc",
    )
    return app
