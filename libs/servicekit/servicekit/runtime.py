"""Runtime: the live clients of one app (engine, Redis, broker...) opened and closed by the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.cache import Cache
from servicekit.db import create_engine, create_sessionmaker, ping
from servicekit.health import CHECK_TIMEOUT_S, Check
from servicekit.logging import get_logger
from servicekit.messaging.connection import Broker
from servicekit.messaging.consumer import Consumer, EventHandlers
from servicekit.messaging.outbox import OutboxRelay
from servicekit.messaging.publisher import Publisher
from servicekit.metrics import Metrics
from servicekit.redis import create_redis
from servicekit.revocation import RevocationFeed, RevokedSessions
from servicekit.sessions import SessionStore
from servicekit.settings import Settings

#: Seconds each shutdown step (consumer, relay, broker, Redis, engine) may take before it is abandoned.
STOP_STEP_S = 2.0
#: ... and all of them together (inside the local runner's 10 s and Kubernetes' 30 s grace periods).
STOP_TOTAL_S = 5.0


@dataclass
class Runtime:
    """Everything an app holds open. Only the backends the settings enable are created."""

    settings: Settings
    metrics: Metrics
    handlers: EventHandlers | None = None
    outbox: bool = False
    prefetch: int = 10
    check_timeout: float = CHECK_TIMEOUT_S
    extra_checks: dict[str, Check] = field(default_factory=dict)
    #: Names of checks (besides ``postgres``) without which the service cannot serve anything.
    required: frozenset[str] = frozenset()
    engine: AsyncEngine | None = None
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    redis: Redis | None = None
    cache: Cache | None = None
    sessions: SessionStore | None = None
    broker: Broker | None = None
    publisher: Publisher | None = None
    consumer: Consumer | None = None
    relay: OutboxRelay | None = None
    #: Sessions whose tokens are refused (fed from the broker's revocation stream when RabbitMQ is on).
    revocations: RevokedSessions = field(default_factory=RevokedSessions)
    revocation_feed: RevocationFeed | None = None

    async def start(self) -> None:
        """Create pools and start background tasks (none of them needs a backend to be up yet)."""
        s = self.settings
        if s.postgres_enabled:
            self.engine = create_engine(s)
            self.sessionmaker = create_sessionmaker(self.engine)
        if s.redis_enabled:
            self.redis = create_redis(s)
            self.cache = Cache(self.redis, s.service_name, self.metrics)
            self.sessions = SessionStore(self.redis, s.service_name)
        if s.rabbitmq_enabled:
            self.broker = Broker(s)
            self.publisher = Publisher(self.broker, self.metrics)
            self.revocation_feed = RevocationFeed(self.revocations)
            self.broker.on_connected(self.revocation_feed.start)
            if self.handlers:
                assert self.sessionmaker is not None
                self.consumer = Consumer(
                    s.service_name,
                    self.handlers,
                    self.sessionmaker,
                    self.metrics,
                    retry_delays_ms=s.rabbitmq_retry_delays_ms,
                    prefetch=self.prefetch,
                )
                self.broker.on_connected(self.consumer.start)
            await self.broker.start()
        if self.outbox and self.sessionmaker is not None and self.broker is not None:
            self.relay = OutboxRelay(self.sessionmaker, self.broker, self.metrics)
            self.relay.start()
        get_logger("servicekit").info(
            "service_started",
            postgres=s.postgres_enabled,
            redis=s.redis_enabled,
            rabbitmq=s.rabbitmq_enabled,
            consumer=bool(self.consumer),
            outbox_relay=bool(self.relay),
        )

    async def stop(self) -> None:
        """Stop consumers and the relay, then close the broker, Redis and the engine.

        Every step is bounded by :data:`STOP_STEP_S` (a channel cancel waits forever for a broker
        that is down); a step that overruns is abandoned and logged, so shutdown always finishes.
        """
        log = get_logger("servicekit")
        steps: list[tuple[str, Callable[[], Awaitable[object]] | None]] = [
            ("consumer", self.consumer.stop if self.consumer else None),
            ("outbox_relay", self.relay.stop if self.relay else None),
            ("revocation_feed", self.revocation_feed.stop if self.revocation_feed else None),
            ("publisher", self.publisher.close if self.publisher else None),
            ("broker", self.broker.close if self.broker else None),
            ("redis", self.redis.aclose if self.redis else None),
            ("postgres", self.engine.dispose if self.engine else None),
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TOTAL_S
        for name, step in steps:
            if step is None:
                continue
            limit = max(0.1, min(STOP_STEP_S, deadline - loop.time()))
            try:
                await asyncio.wait_for(step(), limit)
            except TimeoutError:
                log.warning("shutdown_step_timeout", step=name, limit_s=round(limit, 2))
            except Exception as exc:  # closing a broken connection may fail; keep stopping the rest
                log.warning("shutdown_step_failed", step=name, error=f"{type(exc).__name__}: {exc}"[:200])
        log.info("service_stopped")

    def readiness_checks(self) -> dict[str, Check]:
        """Name -> check for every dependency in use (alias of :meth:`dependency_checks`)."""
        return self.dependency_checks()

    def required_checks(self) -> set[str]:
        """Checks whose failure makes the service not ready: PostgreSQL (when used) and the
        service's own ``required`` ones; Redis and RabbitMQ only degrade it."""
        required = set(self.required)
        if self.engine is not None:
            required.add("postgres")
        return required

    def dependency_checks(self) -> dict[str, Check]:
        """Name -> check for every backend in use, plus the service's own."""
        checks: dict[str, Check] = {}
        if self.engine is not None:
            engine = self.engine
            checks["postgres"] = lambda: ping(engine)
        if self.redis is not None:
            redis = self.redis
            checks["redis"] = lambda: redis.ping()  # type: ignore[return-value]
        if self.broker is not None:
            checks["rabbitmq"] = self._rabbit_check
        checks.update(self.extra_checks)
        return checks

    async def _rabbit_check(self) -> None:
        assert self.broker is not None
        if not self.broker.is_connected:
            raise ConnectionError("not connected to RabbitMQ")
        if self.revocation_feed is not None:
            await self.revocation_feed.check()
