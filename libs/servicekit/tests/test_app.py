"""The app factory: request ids, error shapes, metrics, logs, CORS, health (no backends needed)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from servicekit.app import create_app
from servicekit.auth import CurrentUser, require_role
from servicekit.errors import Conflict, RateLimited
from servicekit.testing import app_client

from .conftest import make_settings


class Item(BaseModel):
    name: str
    price_minor: int


def build_app(**settings: object) -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 13:
            raise RuntimeError("password=hunter2 in /srv/secret.py")
        return {"id": item_id}

    @router.post("/items", status_code=201)
    async def create_item(item: Item, user: CurrentUser) -> dict[str, str]:
        if item.name == "dup":
            raise Conflict("item exists", details={"name": item.name})
        return {"name": item.name, "owner": user.user_id}

    @router.get("/limited")
    async def limited() -> None:
        raise RateLimited(retry_after=7)

    @router.get("/admin", dependencies=[require_role("admin")])
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    return create_app(make_settings(**settings), routers=[router])  # type: ignore[arg-type]


async def test_request_id_is_reused_when_valid_and_generated_otherwise() -> None:
    async with app_client(build_app()) as client:
        reused = await client.get("/items/1", headers={"X-Request-ID": "req-abc.123"})
        generated = await client.get("/items/1")
        hostile = await client.get("/items/1", headers={"X-Request-ID": "a b\tc" + "x" * 300})
    assert reused.headers["x-request-id"] == "req-abc.123"
    assert len(generated.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "a b\tc" + "x" * 300


async def test_errors_share_one_shape() -> None:
    async with app_client(build_app()) as client:
        not_found = await client.get("/nowhere", headers={"X-Request-ID": "r1"})
        invalid = await client.get("/items/abc", headers={"X-Request-ID": "r2"})
        unauthorized = await client.post("/items", json={"name": "a", "price_minor": 1})
        limited = await client.get("/limited")
        not_allowed = await client.delete("/items/1")
    assert not_found.status_code == 404
    assert not_found.json() == {"error": {"code": "not_found", "message": "Not Found", "request_id": "r1"}}
    assert invalid.status_code == 422
    body = invalid.json()["error"]
    assert body["code"] == "validation_error"
    assert body["request_id"] == "r2"
    assert body["details"][0]["loc"] == ["path", "item_id"]
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert unauthorized.json()["error"]["code"] == "unauthorized"
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert not_allowed.status_code == 405
    assert not_allowed.json()["error"]["code"] == "method_not_allowed"


async def test_conflict_and_forbidden_carry_codes_and_details() -> None:
    from servicekit.testing import bearer

    app = build_app()
    settings = app.state.settings
    user = bearer(settings, "u1")
    admin = bearer(settings, "u2", roles=["admin"])
    async with app_client(app) as client:
        created = await client.post("/items", json={"name": "a", "price_minor": 1}, headers=user)
        conflict = await client.post("/items", json={"name": "dup", "price_minor": 1}, headers=user)
        forbidden = await client.get("/admin", headers=user)
        allowed = await client.get("/admin", headers=admin)
    assert created.status_code == 201
    assert created.json() == {"name": "a", "owner": "u1"}
    assert conflict.status_code == 409
    assert conflict.json()["error"]["details"] == {"name": "dup"}
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert allowed.status_code == 200


async def test_unexpected_error_is_500_without_internals(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    async with app_client(build_app(log_file=str(log_file))) as client:
        response = await client.get("/items/13", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error", "request_id": "boom-1"}
    }
    assert "hunter2" not in response.text
    assert "secret.py" not in response.text
    # ... but the log has the traceback, tied to the request id
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    failure = next(line for line in lines if line["event"] == "unhandled_error")
    assert failure["request_id"] == "boom-1"
    assert "hunter2" in failure["exception"]


async def test_log_lines_are_json_with_the_required_fields(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    async with app_client(build_app(log_file=str(log_file))) as client:
        await client.get("/items/5", headers={"X-Request-ID": "log-1"})
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    access = next(line for line in lines if line["event"] == "request" and line["request_id"] == "log-1")
    assert {"timestamp", "level", "service", "request_id", "event"} <= access.keys()
    assert access["service"] == "demo-svc"
    assert access["level"] == "info"
    assert access["route"] == "/items/{item_id}"
    assert access["status"] == 200


async def test_metrics_use_the_route_template_and_exact_names() -> None:
    async with app_client(build_app()) as client:
        for item in (1, 2, 3):
            await client.get(f"/items/{item}")
        await client.get("/no/such/path/42")
        text = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/items/{item_id}",service="demo-svc",status="200"} 3.0'
        in text
    )
    assert 'route="/items/1"' not in text
    assert 'http_requests_total{method="GET",route="unmatched",service="demo-svc",status="404"} 1.0' in text
    assert "http_request_duration_seconds_bucket{" in text
    for name in ("messaging_published_total", "messaging_consumed_total", "outbox_pending"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


async def test_each_app_has_its_own_registry() -> None:
    first, second = build_app(), build_app()
    async with app_client(first) as a, app_client(second) as b:
        await a.get("/items/1")
        text = (await b.get("/metrics")).text
    assert 'route="/items/{item_id}"' not in text


async def test_health_without_backends() -> None:
    async with app_client(build_app()) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {}


async def test_cors_allows_only_configured_origins() -> None:
    async with app_client(build_app(cors_origins=["https://app.example.com"])) as client:
        allowed = await client.options(
            "/items/1",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
        denied = await client.get("/items/1", headers={"Origin": "https://evil.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers


async def test_route_label_is_the_full_template_of_nested_routers() -> None:
    outer, inner = APIRouter(prefix="/api/demo"), APIRouter(prefix="/things")

    @inner.get("/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    outer.include_router(inner)
    async with app_client(create_app(make_settings(), routers=[outer])) as client:
        assert (await client.get("/api/demo/things/7")).status_code == 200
        await client.get("/metrics")
        text = (await client.get("/metrics")).text
    assert 'route="/api/demo/things/{thing_id}"' in text
    assert 'http_requests_total{method="GET",route="/metrics",service="demo-svc",status="200"}' in text
    assert 'route="unmatched"' not in text


async def test_native_and_stdlib_lines_share_the_log_file(tmp_path: Path) -> None:
    import logging

    from servicekit.logging import configure_logging, get_logger, reset_request_id, set_request_id

    log_file = tmp_path / "svc.log"
    configure_logging("log-svc", level="INFO", log_file=str(log_file))
    token = set_request_id("rid-9")
    try:
        get_logger("servicekit.test").info("native_line", n=1)
        get_logger("servicekit.test").debug("below_the_level")
        logging.getLogger("sqlalchemy.test").warning("foreign %s", "line")
    finally:
        reset_request_id(token)
        configure_logging("log-svc")  # closes the file sink
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("native_line", "info"),
        ("foreign line", "warning"),
    ]
    assert all(line["service"] == "log-svc" and line["request_id"] == "rid-9" for line in lines)
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_dependencies_run_on_the_event_loop() -> None:
    """A plain ``def`` dependency costs a thread-pool hand-off on every request."""
    import inspect

    from servicekit import deps

    providers = [deps.get_runtime, deps.get_app_settings, deps.get_redis, deps.get_cache]
    providers += [deps.get_session_store, deps.get_publisher, deps.get_sessionmaker]
    assert all(inspect.iscoroutinefunction(provider) for provider in providers)


async def test_gc_is_tuned_while_serving_and_restored_after_the_last_app() -> None:
    import gc

    from servicekit.app import GEN0_THRESHOLD

    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    async with app_client(build_app()) as first:
        frozen, serving = gc.get_freeze_count(), gc.get_threshold()
        async with app_client(build_app()) as second:
            assert (await second.get("/healthz")).status_code == 200
        assert gc.get_threshold() == serving  # the first app still serves
        assert (await first.get("/healthz")).status_code == 200
    assert frozen > 10_000  # the modules, the app, the clients
    assert serving == (GEN0_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
    assert (gc.get_freeze_count() == 0) == (frozen_before == 0)  # handed back by the last app


async def test_cors_in_the_request_layer_answers_exactly_like_starlettes_middleware_around_it() -> None:
    from fastapi.responses import JSONResponse
    from httpx import ASGITransport, AsyncClient
    from servicekit.metrics import Metrics
    from servicekit.middleware import RequestContextMiddleware
    from starlette.middleware.cors import CORSMiddleware

    cors = {
        "allow_origins": ["https://app.example.com"],
        "allow_credentials": True,
        "allow_methods": ["GET"],
        "allow_headers": ["Authorization"],
        "expose_headers": ["X-Request-ID"],
    }

    def app_with(merged: bool) -> FastAPI:
        app = FastAPI()

        @app.get("/plain")
        async def plain() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/varies")
        async def varies() -> JSONResponse:
            response = JSONResponse({"ok": True}, headers={"Vary": "Accept-Encoding"})
            response.raw_headers.append((b"vary", b"Cookie"))
            return response

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("unexpected")

        if merged:
            app.add_middleware(RequestContextMiddleware, metrics=Metrics("m"), cors=cors)
        else:  # the reference: Starlette's middleware outside the request layer
            app.add_middleware(RequestContextMiddleware, metrics=Metrics("r"))
            app.add_middleware(CORSMiddleware, **cors)
        return app

    allowed, evil = {"Origin": "https://app.example.com"}, {"Origin": "https://evil.example.com"}
    preflight = {"Access-Control-Request-Method": "GET"}
    requests = [
        ("GET", "/plain", {}),
        ("GET", "/varies", {}),
        ("GET", "/varies", allowed),
        ("GET", "/plain", evil),
        ("OPTIONS", "/plain", {**allowed, **preflight}),
        ("OPTIONS", "/plain", {**evil, **preflight}),
        ("GET", "/boom", {}),
        ("GET", "/boom", allowed),
        ("GET", "/nowhere", {}),
        ("GET", "/plain", {"X-Request-ID": "second-id", "Origin": "https://app.example.com"}),
    ]
    answers = []
    for merged in (False, True):
        transport = ASGITransport(app=app_with(merged), raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://t") as client:
            responses = [
                await client.request(m, url, headers={"X-Request-ID": f"rid-{i}", **h})
                for i, (m, url, h) in enumerate(requests)
            ]
        answers.append([(r.status_code, r.headers.raw, r.content) for r in responses])
    assert answers[1] == answers[0]
    assert (b"vary", b"Accept-Encoding, Cookie, Origin") in answers[1][1][1]
    assert answers[1][6][0] == 500
    assert (b"vary", b"Origin") in answers[1][6][1]
    assert answers[1][4][0] == 200
    assert answers[1][5][0] == 400


async def test_info_lines_are_batched_per_loop_iteration_and_warnings_are_not(tmp_path: Path) -> None:
    import asyncio

    from servicekit.logging import configure_logging, get_logger

    log_file = tmp_path / "svc.log"
    configure_logging("log-svc", level="INFO", log_file=str(log_file))

    def lines() -> list[str]:
        return [json.loads(line)["event"] for line in log_file.read_text().splitlines()]

    try:
        log = get_logger("servicekit.test")
        for n in range(3):
            log.info(f"info_{n}")
        assert lines() == []  # pending until this loop iteration ends
        await asyncio.sleep(0)
        assert lines() == ["info_0", "info_1", "info_2"]  # then all at once
        log.info("info_3")
        log.warning("warning_now")
        assert lines()[3:] == ["info_3", "warning_now"]  # a warning flushes at once, in order
    finally:
        configure_logging("log-svc")


def test_batched_lines_survive_a_loop_that_stops_before_flushing(tmp_path: Path) -> None:
    import asyncio

    from servicekit.logging import configure_logging, get_logger

    log_file = tmp_path / "svc.log"
    configure_logging("log-svc", level="INFO", log_file=str(log_file))
    log = get_logger("servicekit.test")

    def log_and_stop(loop: asyncio.AbstractEventLoop) -> None:
        log.info("on_a_loop_stopped_at_once")
        loop.stop()  # the flush scheduled for the next iteration never runs

    async def log_and_yield() -> None:
        log.info("on_the_next_loop")
        await asyncio.sleep(0)

    try:
        dead = asyncio.new_event_loop()
        dead.call_soon(log_and_stop, dead)
        dead.run_forever()
        dead.close()
        asyncio.run(log_and_yield())
        events = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
        assert events == ["on_a_loop_stopped_at_once", "on_the_next_loop"]
    finally:
        configure_logging("log-svc")


async def test_the_process_wide_state_is_one_explicit_object() -> None:
    """Issue 11 (speed-ups made explicit): the GC tuning, the logging configuration the direct
    logger uses and the timestamp cache live in servicekit.process_state.PROCESS, not in classes
    scattered over modules."""
    import servicekit.app
    import servicekit.logging
    from servicekit.logging import utc_timestamp
    from servicekit.process_state import PROCESS, ProcessState

    assert isinstance(PROCESS, ProcessState)
    async with app_client(build_app()):
        assert PROCESS.serving_apps >= 1
        assert PROCESS.log_sinks is not None
        assert PROCESS.log_processors
    utc_timestamp(1_700_000_000.5)
    assert (PROCESS.timestamp_second, PROCESS.timestamp_text) == (1_700_000_000, "2023-11-14T22:13:20")
    for module in (servicekit.app, servicekit.logging):  # no class holding process-wide state left
        holders = [
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__ and name.startswith("_")
            and any(not k.startswith("__") and not callable(v) for k, v in vars(value).items())
        ]  # fmt: skip
        assert holders == [], module.__name__
