"""Routers added as flat app routes: same OpenAPI document and behaviour as ``include_router``."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from servicekit.app import NO_TELEMETRY, create_app
from servicekit.errors import Forbidden, NotFound
from servicekit.routing import (
    COPIED_ROUTE_ARGUMENTS,
    SPECIAL_ROUTE_ARGUMENTS,
    LeanRoute,
    add_router,
    flattenable,
    lean,
)
from servicekit.testing import app_client

from .conftest import make_settings


class Thing(BaseModel):
    id: int
    name: str


async def team_header(x_team: str = Header("none")) -> str:
    if x_team == "blocked":
        raise Forbidden("team blocked", code="team_blocked")
    return x_team


def demo_router() -> APIRouter:
    """Prefix, tags, router dependencies, responses, a response model, a status code, a
    ``response_model=None`` override, a custom response class and a websocket route."""
    router = APIRouter(
        prefix="/api/demo",
        tags=["demo"],
        dependencies=[Depends(team_header)],
        responses={418: {"description": "teapot"}},
    )

    @router.get("/things/{thing_id}", response_model=Thing, summary="One thing")
    async def get_thing(thing_id: int) -> dict[str, object]:
        return {"id": thing_id, "name": "lamp", "secret": "not in the model"}

    @router.post("/things", status_code=201, tags=["writes"], responses={409: {"description": "dup"}})
    async def create_thing(thing: Thing) -> Thing:
        """Create a thing.\f internal notes"""
        return thing

    @router.get("/raw", response_model=None)
    async def raw() -> dict[str, str]:
        return {"raw": "yes"}

    @router.delete("/things/{thing_id}", status_code=204, response_class=Response, deprecated=True)
    async def delete_thing(thing_id: int) -> Response:
        return Response(status_code=204)

    @router.websocket("/ws")
    async def ws(socket: WebSocket, team: str = Depends(team_header)) -> None:
        await socket.accept()
        await socket.send_text(f"hello {team}")
        await socket.close()

    return router


def test_flat_routes_give_the_same_openapi_document_as_include_router() -> None:
    included, flat = FastAPI(), FastAPI()
    included.include_router(demo_router())
    add_router(flat, demo_router())
    assert all(not type(route).__name__.startswith("_Included") for route in flat.router.routes)
    assert flat.openapi() == included.openapi()


async def test_flat_routes_behave_like_included_ones() -> None:
    async with app_client(create_app(make_settings(), routers=[demo_router()])) as client:
        thing = await client.get("/api/demo/things/3")
        blocked = await client.get("/api/demo/things/3", headers={"X-Team": "blocked"})
        created = await client.post("/api/demo/things", json={"id": 1, "name": "a"})
        raw = await client.get("/api/demo/raw")
        deleted = await client.delete("/api/demo/things/3")
        not_allowed = await client.put("/api/demo/things/3")
        metrics = (await client.get("/metrics")).text
    assert thing.json() == {"id": 3, "name": "lamp"}  # filtered by the response model
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "team_blocked"  # the router's dependency ran
    assert created.status_code == 201
    assert raw.json() == {"raw": "yes"}
    assert deleted.status_code == 204
    assert not_allowed.status_code == 405
    assert not_allowed.json()["error"]["code"] == "method_not_allowed"
    assert 'route="/api/demo/things/{thing_id}",service="demo-svc",status="200"' in metrics


async def test_flat_websocket_route_runs_the_router_dependencies() -> None:
    app = FastAPI()
    add_router(app, demo_router())
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "path": "/api/demo/ws", "raw_path": b"/api/demo/ws",
        "root_path": "", "query_string": b"", "headers": [(b"x-team", b"a")], "scheme": "ws",
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "subprotocols": [], "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "hello a"


async def test_dependency_overrides_of_the_app_apply_to_flat_routes() -> None:
    app = FastAPI()
    add_router(app, demo_router())
    app.dependency_overrides[team_header] = lambda: "overridden"
    async with app_client(app) as client:
        assert (await client.get("/api/demo/things/1", headers={"X-Team": "blocked"})).status_code == 200


async def test_routers_that_cannot_be_flattened_are_included() -> None:
    nested, inner = APIRouter(prefix="/a"), APIRouter(prefix="/b")

    @inner.get("/c")
    async def c() -> dict[str, int]:
        return {"c": 1}

    nested.include_router(inner)

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        yield

    with_lifespan = APIRouter(lifespan=lifespan)
    assert flattenable(demo_router())
    assert not flattenable(nested)
    assert not flattenable(with_lifespan)
    app = FastAPI()
    add_router(app, nested)
    assert not any(isinstance(route, APIRoute) and route.path == "/a/b/c" for route in app.router.routes)
    async with app_client(app) as client:
        assert (await client.get("/a/b/c")).json() == {"c": 1}


async def test_service_routes_come_first_and_platform_routes_still_answer() -> None:
    app = create_app(make_settings(), routers=[demo_router()])
    paths = [getattr(route, "path", None) for route in app.router.routes]
    assert paths.index("/api/demo/things/{thing_id}") < paths.index("/healthz") < paths.index("/docs")
    async with app_client(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/metrics")).status_code == 200
        assert "/api/demo/things/{thing_id}" in (await client.get("/openapi.json")).json()["paths"]
        assert (await client.get("/docs")).status_code == 200


@pytest.mark.parametrize("path", ["/{anything}", "/healthz", "/docs"])
def test_a_service_route_that_would_shadow_a_platform_route_is_refused(path: str) -> None:
    router = APIRouter()

    @router.get(path)
    async def greedy() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="a platform route"):
        create_app(make_settings(), routers=[router])


def test_a_service_route_with_another_method_on_a_platform_path_is_allowed() -> None:
    router = APIRouter()

    @router.post("/metrics")
    async def push() -> dict[str, str]:
        return {}

    create_app(make_settings(), routers=[router])


class Filters(BaseModel):
    q: str
    limit: int = Field(10, ge=1, le=100)


def lean_router(mark: bool = True) -> APIRouter:
    """Endpoints a lean handler can answer (parameters in, a Response out; marked with ``@lean``
    when *mark*) and ones it must not (never marked)."""
    router = APIRouter(prefix="/api/lean", tags=["lean"])
    opt_in = lean if mark else (lambda endpoint: endpoint)

    @router.get("/items/{item_id}", response_model=Thing)
    @opt_in
    async def item(item_id: uuid.UUID, request: Request) -> Response:
        if item_id.int == 0:
            raise NotFound("no such item", code="item_not_found")
        return JSONResponse({"id": str(item_id), "path": request.url.path})

    @router.get("/search")
    @opt_in
    async def search(
        filters: Annotated[Filters, Query()],
        x_team: Annotated[str | None, Header()] = None,
        session: Annotated[str | None, Cookie()] = None,
    ) -> Response:
        return JSONResponse({"filters": filters.model_dump(), "team": x_team, "session": session})

    @router.get("/with-dependency")
    async def with_dependency(team: Annotated[str, Depends(team_header)]) -> Response:
        return JSONResponse({"team": team})

    @router.get("/returns-dict")
    async def returns_dict() -> dict[str, int]:
        return {"n": 1}

    @router.get("/sync")
    def sync() -> Response:
        return JSONResponse({"sync": True})

    @router.get("/annotated-wrongly")
    @opt_in
    async def annotated_wrongly(n: int) -> Response:
        return {"n": n}  # type: ignore[return-value]  # FastAPI serialises it anyway

    @router.delete("/annotated-wrongly", status_code=204)
    @opt_in
    async def annotated_wrongly_none(n: int) -> Response:
        return None  # type: ignore[return-value]

    return router


def test_only_endpoints_that_opted_in_are_lean() -> None:
    app = create_app(make_settings(), routers=[lean_router()])
    lean_paths = {route.path: route.lean for route in app.router.routes if isinstance(route, LeanRoute)}
    assert lean_paths == {
        "/api/lean/items/{item_id}": True,
        "/api/lean/search": True,
        "/api/lean/annotated-wrongly": True,
    }
    assert sum(isinstance(r, LeanRoute) for r in app.router.routes) == 4  # GET and DELETE annotated-wrongly
    unmarked = create_app(make_settings(), routers=[lean_router(mark=False)])
    assert not any(isinstance(route, LeanRoute) for route in unmarked.router.routes)


def _router_with(endpoint_kind: str) -> APIRouter:
    router = APIRouter(prefix="/api/refused")
    if endpoint_kind == "dependency":

        @router.get("/x")
        @lean
        async def with_dependency(team: Annotated[str, Depends(team_header)]) -> Response:
            return JSONResponse({"team": team})

    elif endpoint_kind == "returns-dict":

        @router.get("/x")
        @lean
        async def returns_dict() -> dict[str, int]:
            return {"n": 1}

    elif endpoint_kind == "sync":

        @router.get("/x")
        @lean
        def sync() -> Response:
            return JSONResponse({})

    elif endpoint_kind == "body":

        @router.post("/x")
        @lean
        async def body(thing: Thing) -> Response:
            return JSONResponse({})

    return router


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dependency", "dependencies"),
        ("returns-dict", "not annotated to return a Response"),
        ("sync", "not an async def"),
        ("body", "request body"),
    ],
)
def test_an_ineligible_lean_endpoint_is_refused_when_the_app_is_created(kind: str, reason: str) -> None:
    with pytest.raises(RuntimeError, match=reason) as refused:
        create_app(make_settings(), routers=[_router_with(kind)])
    assert "hint: drop @lean" in str(refused.value)


def test_lean_endpoints_are_refused_when_fastapi_telemetry_is_on() -> None:
    with pytest.raises(RuntimeError, match="telemetry"):
        create_app(make_settings(), routers=[lean_router()], telemetry=NO_TELEMETRY)
    create_app(make_settings(), routers=[lean_router(mark=False)], telemetry=NO_TELEMETRY)  # fine


def test_a_lean_endpoint_on_a_router_that_is_included_is_refused() -> None:
    router = lean_router()
    router.add_event_handler("startup", lambda: None)  # not flattenable: included as it is
    with pytest.raises(RuntimeError, match="included"):
        create_app(make_settings(), routers=[router])


def test_add_router_copies_every_argument_of_add_api_route() -> None:
    """A FastAPI upgrade that adds an argument to add_api_route must fail here, not be dropped."""
    parameters = set(inspect.signature(APIRouter.add_api_route).parameters) - {"self", "path", "endpoint"}
    assert parameters == set(COPIED_ROUTE_ARGUMENTS) | set(SPECIAL_ROUTE_ARGUMENTS)
    websocket = set(inspect.signature(APIRouter.add_api_websocket_route).parameters)
    assert websocket == {"self", "path", "endpoint", "name", "dependencies"}  # what add_router passes


async def test_lean_handlers_answer_exactly_like_fastapis() -> None:
    requests: list[tuple[str, dict[str, str]]] = [
        (f"/api/lean/items/{uuid.UUID(int=5)}", {}),
        ("/api/lean/items/" + uuid.UUID(int=5).hex.upper(), {}),  # other spellings of a UUID
        ("/api/lean/items/not-a-uuid", {}),
        (f"/api/lean/items/{uuid.UUID(int=0)}", {}),  # the endpoint raises NotFound
        ("/api/lean/search?q=lamp&limit=5", {"X-Team": "a", "Cookie": "session=s1"}),
        ("/api/lean/search?limit=500", {}),  # q missing, limit too large: two errors
        ("/api/lean/search?q=x&q=y", {}),
        ("/api/lean/with-dependency", {"X-Team": "blocked"}),
        ("/api/lean/returns-dict", {}),
        ("/api/lean/sync", {}),
        ("/api/lean/annotated-wrongly?n=3", {}),
    ]
    answers = []
    for mark in (True, False):  # lean handlers, FastAPI's handlers
        app = create_app(make_settings(), routers=[lean_router(mark)])
        async with app_client(app) as client:
            responses = [
                await client.get(url, headers={"X-Request-ID": f"rid-{i}", **headers})
                for i, (url, headers) in enumerate(requests)
            ]
            responses.append(
                await client.delete("/api/lean/annotated-wrongly?n=1", headers={"X-Request-ID": "rid-del"})
            )
            openapi = (await client.get("/openapi.json")).json()
        answers.append(([(r.status_code, r.headers.raw, r.content) for r in responses], openapi))
    assert answers[0] == answers[1]
    statuses = [status for status, _, _ in answers[0][0]]
    assert statuses == [200, 200, 422, 404, 200, 422, 200, 403, 200, 200, 200, 204]
