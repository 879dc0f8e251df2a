"""The app factory: API routes under the manifest's prefix, operational endpoints at the root."""

from __future__ import annotations

from pathlib import Path

from auth_svc.main import ROUTE_PREFIX
from servicekit.testing import OperationalContract, RoutePrefixContract


class TestOperational(OperationalContract, RoutePrefixContract):
    backends = {"postgres", "redis", "rabbitmq"}
    manifest = Path(__file__).resolve().parents[1] / "service.yaml"
    route_prefix = ROUTE_PREFIX
    app_fixture = "auth_app"
