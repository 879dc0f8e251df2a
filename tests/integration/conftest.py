"""Cross-service fixtures: real services (in-process ASGI apps with their lifespans running, or uvicorn
processes) on real PostgreSQL, Redis and RabbitMQ, each with its own database, its own Redis ACL user
and its own RabbitMQ user from the platform's rendered definitions.

The topology is always ``infra.render.rabbitmq.render_definitions`` of the dev stack's spec with
shorter retry delays (same count, so ``max_attempts`` is the stack's). On the session broker every
test gets its own vhost and renamed users (``<svc>-<tag>``: user names are node-wide); a private
broker (``server_factory``) loads the definitions unchanged at boot, vhost ``market``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from servicekit.settings import Settings
from servicekit.testing import (
    Credentials,
    Database,
    IsolatedVhost,
    app_client,
    delete_vhost,
    import_platform_vhost,
    provisioned_from_spec,
)
from servicekit.testing import platform_definitions as servicekit_platform_definitions
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.local.ports import free_port
from infra.local.uvicorn_service import UvicornService
from infra.render.rabbitmq import VHOST
from infra.spec import PlatformSpec, config_from_stack_file, load_spec, stack_file

REPO = Path(__file__).resolve().parents[2]
STACK = "dev"


def short_delays(count: int) -> list[int]:
    """*count* retry delays of 100-ms steps (the spec's minimum is 100 ms)."""
    return [100 * (n + 1) for n in range(count)]


def stack_spec(stack: str = STACK) -> PlatformSpec:
    """The stack's real spec, with its retry delays shortened (their number, so N, unchanged)."""
    config = config_from_stack_file(stack_file(REPO, stack))
    rabbit = dict(config.get("rabbitmq") or {})
    count = len(load_spec(stack).config.rabbitmq.retry_delays_ms)
    config["rabbitmq"] = {**rabbit, "retryDelaysMs": short_delays(count)}
    return load_spec(stack, config=config)


@dataclass(frozen=True)
class BrokerAccess:
    """Where the services reach RabbitMQ: the server, the vhost and each service's own user."""

    server: Any
    vhost: str
    users: dict[str, Credentials]
    delays_ms: list[int]

    def url(self, service: str | None = None) -> str:
        """AMQP URL as *service*'s user (the admin when None)."""
        if service is None:
            return self.server.url(self.vhost)
        creds = self.users[service]
        return self.server.url(self.vhost, creds.user, creds.password)


def platform_definitions(
    spec: PlatformSpec, *, vhost: str = VHOST, suffix: str = ""
) -> tuple[dict[str, Any], dict[str, Credentials]]:
    """Rendered definitions with fresh passwords, moved to *vhost*, users renamed ``<svc><suffix>``."""
    return servicekit_platform_definitions(spec, vhost=vhost, suffix=suffix)


@pytest.fixture
async def isolated_broker(rabbitmq_server: Any) -> AsyncIterator[BrokerAccess]:
    """The platform topology and users in a fresh vhost of the session broker (deleted afterwards)."""
    spec = stack_spec()
    isolated = await import_platform_vhost(rabbitmq_server, spec, prefix="it")
    delays = list(spec.config.rabbitmq.retry_delays_ms)
    yield BrokerAccess(rabbitmq_server, isolated.vhost, isolated.users, delays)
    await delete_vhost(rabbitmq_server, isolated.vhost, [creds.user for creds in isolated.users.values()])


def private_broker_access(server: Any, spec: PlatformSpec, users: dict[str, Credentials]) -> BrokerAccess:
    """Access to a private broker that booted with the unchanged definitions (vhost ``market``)."""
    return BrokerAccess(server, VHOST, users, list(spec.config.rabbitmq.retry_delays_ms))


# ---- services -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceKind:
    """How to build one service: its settings class, app factory and migrations."""

    name: str
    settings_cls: type[Settings]
    create_app: Callable[[Any], FastAPI]
    alembic_ini: Path


def service_kind(name: str) -> ServiceKind:
    """The service package behind *name* (``marketplace-svc`` -> ``marketplace_svc``), imported lazily."""
    package = name.replace("-", "_")
    config = importlib.import_module(f"{package}.core.config")
    main = importlib.import_module(f"{package}.main")
    return ServiceKind(
        name, config.Settings, main.create_app, REPO / "services" / name / "migrations" / "alembic.ini"
    )


@dataclass
class Deployed:
    """A service's database, Redis user and settings (migrated), ready to run."""

    kind: ServiceKind
    database: Database
    settings: Settings
    redis_user: str | None


@contextlib.asynccontextmanager
async def deployed(
    name: str, *, postgres: Any, redis: Any, broker: BrokerAccess, **overrides: Any
) -> AsyncIterator[Deployed]:
    """Provision *name* like the platform would: own database (migrated), Redis ACL user, broker user."""
    kind = service_kind(name)
    async with provisioned_from_spec(
        load_spec(STACK),
        kind.settings_cls,
        name,
        postgres=postgres,
        redis=redis,
        rabbitmq=broker.server,
        broker=IsolatedVhost(broker.vhost, broker.users),
        alembic_ini=kind.alembic_ini,
        **({"rabbitmq_retry_delays_ms": broker.delays_ms, "log_level": "WARNING"} | overrides),
    ) as service:
        yield Deployed(kind, service.database, service.settings, service.redis_user)


@dataclass
class Running:
    """An in-process service: its app (lifespan entered) and a client talking to it."""

    name: str
    settings: Settings
    database: Database
    app: FastAPI
    client: AsyncClient

    @property
    def runtime(self) -> Any:
        """servicekit's Runtime of the app (engine, consumer, relay, metrics...)."""
        return self.app.state.runtime

    def consumed(self, event: str, outcome: str) -> float:
        """``messaging_consumed_total`` for *event* and *outcome*."""
        labels = {"service": self.name, "event": event, "outcome": outcome}
        return self.app.state.metrics.registry.get_sample_value("messaging_consumed_total", labels) or 0.0


@contextlib.asynccontextmanager
async def running(
    name: str, *, postgres: Any, redis: Any, broker: BrokerAccess, **overrides: Any
) -> AsyncIterator[Running]:
    """Deploy *name* and run its app in-process (consumer and outbox relay running) until exit."""
    async with deployed(name, postgres=postgres, redis=redis, broker=broker, **overrides) as dep:
        app = dep.kind.create_app(dep.settings)
        async with app_client(app, base_url=f"http://{name}") as client:
            await app.state.runtime.broker.wait_ready(30)
            yield Running(name, dep.settings, dep.database, app, client)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables (docs/architecture.md) that reproduce *settings* in a process."""
    env: dict[str, str] = {}
    for field, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[field.upper()] = str(value)
    return env


@dataclass
class Served:
    """A service running as its own uvicorn process, plus the test's own engine on its database."""

    name: str
    settings: Settings
    database: Database
    process: UvicornService
    url: str
    engine: AsyncEngine

    def session(self) -> AsyncSession:
        """A session on the service's database (for seeding and assertions)."""
        return async_sessionmaker(self.engine, expire_on_commit=False)()

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the process's ``/metrics`` (0 when absent)."""
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(f"{self.url}/metrics")).text
        want = labels | {"service": self.name}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in want.items()):
                    return float(sample.value)
        return 0.0


@contextlib.asynccontextmanager
async def serving(
    deps: list[Deployed], *, base_dir: Path, factory: Any = None
) -> AsyncIterator[list[Served]]:
    """Run each deployed service as ``uvicorn <pkg>.main:create_app --factory`` (as `platform dev`
    does) on a free port, all started and stopped in parallel; *factory* (a ``server_factory``) also
    kills them if the test dies. Yields them once every ``/readyz`` answered 200."""
    started: list[Served] = []
    for dep in deps:
        port = free_port()
        name = dep.kind.name
        process = UvicornService(
            name,
            name.replace("-", "_"),
            base_dir,
            port,
            settings_env(dep.settings),
            log_path=base_dir / f"{name}.log",
            cwd=REPO,
        )
        if factory is not None:
            factory.servers.append(process)
        engine = create_async_engine(dep.settings.database_url)
        started.append(Served(name, dep.settings, dep.database, process, f"http://127.0.0.1:{port}", engine))
    try:
        await asyncio.gather(*(asyncio.to_thread(s.process.start) for s in started))
        yield started
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.process.stop) for s in started), return_exceptions=True)
        for s in started:
            await s.engine.dispose()


@contextlib.asynccontextmanager
async def served(
    name: str, *, postgres: Any, redis: Any, broker: BrokerAccess, base_dir: Path, factory: Any = None
) -> AsyncIterator[Served]:
    """Deploy *name* and run it as a uvicorn process (see :func:`serving`) until exit."""
    async with (
        deployed(name, postgres=postgres, redis=redis, broker=broker) as dep,
        serving([dep], base_dir=base_dir, factory=factory) as (service,),
    ):
        yield service


# ---- waiting ------------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[Any]],
    limit_s: float,
    what: str,
    interval: float = 0.1,
    progress: dict[str, Any] | None = None,
) -> Any:
    """Await *check* until it returns something truthy; fail the test after *limit_s* seconds.

    *progress*, a dict the check keeps up to date, is shown in the failure message.
    """
    deadline = time.monotonic() + limit_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    pytest.fail(f"{what}: not reached within {limit_s}s (last: {last!r}, progress: {progress})")


async def publish_as(url: str, message: aio_pika.Message, routing_key: str) -> None:
    """Publish *message* to ``events`` and wait for the confirm, logged in as *url*'s user."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("events", ensure=False)
        await exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=10)
    finally:
        await connection.close()


async def queue_depth(url: str, queue: str) -> int:
    """Messages ready in *queue* (passive declare; *url* must be allowed to read it)."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


@pytest.fixture
def timings() -> Iterator[dict[str, float]]:
    """Named durations a test records; printed at its end (``-s`` shows them)."""
    marks: dict[str, float] = {}
    yield marks
    if marks:
        print("\ntimings: " + ", ".join(f"{k}={v:.2f}s" for k, v in marks.items()))
