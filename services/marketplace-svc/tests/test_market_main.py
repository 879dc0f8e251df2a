"""The app factory: API routes under the manifest's prefix, operational endpoints at the root."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi import FastAPI
from httpx import AsyncClient
from marketplace_svc.main import ROUTE_PREFIX

MANIFEST = Path(__file__).resolve().parents[1] / "service.yaml"


def test_route_prefix_is_the_manifest_route() -> None:
    assert yaml.safe_load(MANIFEST.read_text())["route"] == ROUTE_PREFIX


def test_every_api_route_is_under_the_prefix(market_app: FastAPI) -> None:
    paths = market_app.openapi()["paths"]
    assert paths
    assert all(path.startswith(f"{ROUTE_PREFIX}/") for path in paths)


async def test_healthz_is_served_at_the_root(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_checks_every_backend(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"postgres", "redis", "rabbitmq"}


async def test_metrics_are_served_at_the_root(client: AsyncClient) -> None:
    await client.get(f"{ROUTE_PREFIX}/listings")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "cache_requests_total{" in response.text
