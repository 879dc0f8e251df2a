"""Tests every servicekit app must pass, written once: a service's test module subclasses them.

Pytest collects the subclass (named ``Test...``) with the inherited tests; the service's conftest
provides the ``client`` fixture (an httpx client calling the running app) and, for
:class:`RoutePrefixContract`, the app through the fixture named by ``app_fixture``::

    class TestOperational(OperationalContract, RoutePrefixContract):
        backends = {"postgres", "redis", "rabbitmq"}
        manifest = SERVICE_DIR / "service.yaml"
        route_prefix = ROUTE_PREFIX
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml
from httpx import AsyncClient


class OperationalContract:
    """``/healthz``, ``/readyz`` and ``/metrics`` are served at the root, as the platform expects."""

    #: Backends ``/readyz`` must check (exactly these).
    backends: ClassVar[set[str]]
    #: Path requested before reading ``/metrics``, and a text the metrics must then contain.
    metrics_probe: ClassVar[str] = "/healthz"
    metrics_text: ClassVar[str] = "http_requests_total{"

    async def test_healthz_answers_without_touching_backends(self, client: AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_checks_each_needed_backend(self, client: AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == dict.fromkeys(self.backends, "ok")

    async def test_metrics_are_served_at_the_root(self, client: AsyncClient) -> None:
        await client.get(self.metrics_probe)
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert self.metrics_text in response.text


class RoutePrefixContract:
    """The API lives under the manifest's ``route`` (the only prefix the gateway forwards)."""

    manifest: ClassVar[Path]
    route_prefix: ClassVar[str]
    #: Name of the fixture giving the running FastAPI app.
    app_fixture: ClassVar[str] = "app"

    def test_route_prefix_is_the_manifest_route(self) -> None:
        assert yaml.safe_load(Path(self.manifest).read_text())["route"] == self.route_prefix

    def test_every_api_route_is_under_the_prefix(self, request: Any) -> None:
        paths = request.getfixturevalue(self.app_fixture).openapi()["paths"]
        assert paths
        assert all(path.startswith(f"{self.route_prefix}/") for path in paths)
