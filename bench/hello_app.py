"""A bare FastAPI hello-world: the baseline bench/gateway.py compares the gateway path against."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    """One JSON route, nothing else."""
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app
