"""The app factory: API routes under the manifest's prefix, operational endpoints at the root."""

from __future__ import annotations

from pathlib import Path

from marketplace_svc.main import ROUTE_PREFIX
from servicekit.testing import OperationalContract, RoutePrefixContract


class TestOperational(OperationalContract, RoutePrefixContract):
    backends = {"postgres", "redis", "rabbitmq"}
    manifest = Path(__file__).resolve().parents[1] / "service.yaml"
    route_prefix = ROUTE_PREFIX
    app_fixture = "market_app"
    metrics_probe = f"{ROUTE_PREFIX}/listings"
    metrics_text = "cache_requests_total{"
