"""Publishing and consuming through the platform's real topology (rendered definitions imported into
the session's broker), as the services' own least-privilege users."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from servicekit.db import create_engine, create_sessionmaker
from servicekit.messaging.connection import Broker
from servicekit.messaging.consumer import Consumer, EventHandlers
from servicekit.messaging.envelope import Envelope, new_event
from servicekit.messaging.publisher import Publisher, Unroutable
from servicekit.metrics import Metrics
from servicekit.testing import Database, app_client
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .conftest import CONSUMER, DELAYS, PING, PUBLISHER, UNROUTED, Ping, make_settings
from .messaging_helpers import (
    applied,
    consumed,
    consumer_app,
    consumer_handlers,
    drain_dlq,
    publisher_app,
    wait_for,
)


def ping(n: int, note: str = "") -> Envelope:
    return new_event(Ping(n=n, note=note), producer=PUBLISHER)


@pytest.fixture
def ns() -> list[int]:
    """Fresh event numbers for one test (the consumer queue is shared by the session)."""
    base = random.randrange(1, 10**8) * 10
    return [base + i for i in range(10)]


async def test_published_events_are_consumed_and_applied(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub) as pub_client, app_client(con) as con_client:
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        for n in ns[:3]:
            await pub.state.runtime.publisher.publish(ping(n))
        await wait_for(lambda: _has(con, ns[:3]), 10, "three events applied")
        metrics = (await pub_client.get("/metrics")).text
        ready = (await con_client.get("/readyz")).json()
    assert 'messaging_published_total{event="sktest.ping",service="skpub-svc"} 3.0' in metrics
    assert consumed(con, "ok") == 3
    assert ready["checks"] == {"postgres": "ok", "rabbitmq": "ok"}


async def test_duplicate_deliveries_are_applied_once(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    event = ping(ns[0])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        for _ in range(3):  # the same event id three times, e.g. a publisher retry after a lost confirm
            await pub.state.runtime.publisher.publish(event)
        await pub.state.runtime.publisher.publish(ping(ns[1]))
        await wait_for(lambda: _has(con, [ns[1]]), 10, "the marker event")
        await wait_for(lambda: _count(con, "duplicate", 2), 10, "two duplicates counted")
    assert sorted(await applied(con, ns)) == [ns[0], ns[1]]


async def test_poison_message_is_retried_then_dead_lettered_and_consuming_goes_on(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        poison = ping(ns[0], "poison")
        await pub.state.runtime.publisher.publish(poison)
        dead = await drain_dlq(rabbitmq_server, limit_s=10, expected=1)
        await pub.state.runtime.publisher.publish(ping(ns[1]))
        await wait_for(lambda: _has(con, [ns[1]]), 10, "a good event after the poison one")
    assert len(dead) == 1
    message = dead[0]
    assert json.loads(message.body)["id"] == str(poison.id)
    assert message.headers["x-attempt"] == len(DELAYS) + 1  # every attempt was made
    assert "handler bug" in str(message.headers["x-error"])
    assert consumed(con, "retried") == len(DELAYS)
    assert consumed(con, "dead_lettered") == 1
    assert await applied(con, ns) == [ns[1]]  # the failing attempts rolled back


async def test_permanent_errors_and_malformed_messages_skip_retries(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        await pub.state.runtime.publisher.publish(ping(ns[0], "permanent"))
        connection = await aio_pika.connect(rabbitmq_server.url("market", PUBLISHER, sk_broker[PUBLISHER]))
        channel = await connection.channel()
        exchange = await channel.get_exchange("events", ensure=False)
        await exchange.publish(aio_pika.Message(b"{not json", headers={"x-attempt": 1}), "sktest.ping")
        await connection.close()
        dead = await drain_dlq(rabbitmq_server, limit_s=10, expected=2)
    assert sorted(m.headers["x-attempt"] for m in dead) == [1, 1]
    assert consumed(con, "retried") == 0
    assert consumed(con, "dead_lettered") == 2


async def test_unroutable_event_is_reported(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    from pydantic import BaseModel
    from servicekit.messaging.envelope import registry

    class Unrouted(BaseModel):
        x: int

    if (UNROUTED, 1) not in registry:
        registry.register(UNROUTED, Unrouted)
    async with app_client(pub):
        await pub.state.runtime.broker.wait_ready(10)
        with pytest.raises(Unroutable):
            await pub.state.runtime.publisher.publish(
                Envelope(type=UNROUTED, producer=PUBLISHER, payload={"x": 1})
            )


async def _has(app: Any, ns: list[int]) -> bool:
    return set(ns) <= set(await applied(app, ns))


async def _count(app: Any, outcome: str, expected: float) -> bool:
    return consumed(app, outcome) >= expected


async def test_database_outage_requeues_without_spending_attempts(
    rabbitmq_server: Any, sk_broker: dict[str, str], server_factory: Any, ns: list[int]
) -> None:
    from servicekit.testing import create_database

    from .conftest import create_schema

    pg = server_factory.postgres()
    db = await create_database(pg)
    await create_schema(db)
    pub = publisher_app(db, rabbitmq_server, sk_broker[PUBLISHER], outbox=False)
    con = consumer_app(db, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        await asyncio.to_thread(pg.stop)
        await pub.state.runtime.publisher.publish(ping(ns[0]))
        await asyncio.sleep(sum(DELAYS) / 1000 * 3)  # longer than every retry delay together
        await asyncio.to_thread(pg.start)
        await wait_for(lambda: _has(con, [ns[0]]), 15, "the event once the database is back")
    assert consumed(con, "dead_lettered") == 0
    assert consumed(con, "ok") == 1


# --- database-free handlers, handler sessions, stale pooled connections ------------------------


class _Base(DeclarativeBase):
    pass


class AppliedRow(_Base):
    """The test schema's ``applied`` table, mapped, for handlers that use the ORM."""

    __tablename__ = "applied"
    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int]
    event_id: Mapped[str] = mapped_column(sa.String(64))


def _consumed(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "messaging_consumed_total", {"service": CONSUMER, "event": PING, "outcome": outcome}
    )
    return value or 0.0


@asynccontextmanager
async def running_consumer(
    rabbitmq_server: Any,
    sk_broker: dict[str, str],
    handlers: EventHandlers,
    sessionmaker: Any = None,
    database: Database | None = None,
) -> AsyncIterator[tuple[Publisher, Metrics]]:
    """A bare Consumer (no app) as skcon-svc plus a Publisher as skpub-svc; yields (publisher, metrics)."""
    common = {"rabbitmq": rabbitmq_server, "rabbitmq_retry_delays_ms": DELAYS}
    con_settings = make_settings(
        CONSUMER, database=database, rabbitmq_user=CONSUMER, rabbitmq_password=sk_broker[CONSUMER], **common
    )
    pub_settings = make_settings(
        PUBLISHER, rabbitmq_user=PUBLISHER, rabbitmq_password=sk_broker[PUBLISHER], **common
    )
    metrics = Metrics(CONSUMER)
    consumer = Consumer(CONSUMER, handlers, sessionmaker, metrics, retry_delays_ms=DELAYS, prefetch=1)
    con_broker, pub_broker = Broker(con_settings), Broker(pub_settings)
    con_broker.on_connected(consumer.start)
    await con_broker.start()
    await pub_broker.start()
    publisher = Publisher(pub_broker, Metrics(PUBLISHER))
    try:
        await con_broker.wait_ready(10)
        await pub_broker.wait_ready(10)
        yield publisher, metrics
    finally:
        await consumer.stop()
        await publisher.close()
        await con_broker.close()
        await pub_broker.close()


def test_handler_registration_rules() -> None:
    handlers = EventHandlers()

    @handlers.on_without_db(PING)
    async def plain(event: Envelope) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        handlers.add(PING, lambda event, session: plain(event))  # type: ignore[arg-type,return-value]
    assert handlers.get(PING) is plain
    assert not handlers.needs_database
    Consumer(CONSUMER, handlers, None, Metrics(CONSUMER), retry_delays_ms=DELAYS)  # no DB needed
    handlers.add("sktest.other", lambda event, session: plain(event))  # type: ignore[arg-type,return-value]
    assert handlers.needs_database
    with pytest.raises(ValueError, match="need a sessionmaker"):
        Consumer(CONSUMER, handlers, None, Metrics(CONSUMER), retry_delays_ms=DELAYS)


async def test_handlers_without_db_see_every_delivery_and_failures_still_retry(
    rabbitmq_server: Any, sk_broker: dict[str, str], ns: list[int]
) -> None:
    seen: list[int] = []
    handlers = EventHandlers()

    @handlers.on_without_db(PING)
    async def remember(event: Envelope) -> None:
        payload = event.parse(Ping)
        seen.append(payload.n)
        if payload.note == "poison":
            raise RuntimeError("handler bug")

    async with running_consumer(rabbitmq_server, sk_broker, handlers) as (publisher, metrics):
        twice = ping(ns[0])
        await publisher.publish(twice)
        await publisher.publish(twice)  # no marker: at-least-once, the handler sees both
        await publisher.publish(ping(ns[1], "poison"))
        dead = await drain_dlq(rabbitmq_server, limit_s=10, expected=1)
        await wait_for(lambda: _true(_consumed(metrics, "ok") == 2), 10, "both copies handled")
    assert seen.count(ns[0]) == 2
    assert seen.count(ns[1]) == len(DELAYS) + 1
    assert dead[0].headers["x-attempt"] == len(DELAYS) + 1
    assert _consumed(metrics, "retried") == len(DELAYS)
    assert _consumed(metrics, "duplicate") == 0


async def test_orm_work_commits_with_the_marker_and_a_handler_commit_only_flushes(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    handlers = EventHandlers()

    @handlers.on(PING)
    async def apply(event: Envelope, session: AsyncSession) -> None:
        payload = event.parse(Ping)
        session.add(AppliedRow(n=payload.n, event_id=str(event.id)))  # never flushed by the handler
        if payload.note == "commit-then-fail":
            await session.commit()  # against the rules; must not make the row (or the marker) stick
            raise RuntimeError("failed after commit")

    engine = create_engine(make_settings(CONSUMER, database=database))
    good, bad = ping(ns[0]), ping(ns[1], "commit-then-fail")
    try:
        async with running_consumer(
            rabbitmq_server, sk_broker, handlers, create_sessionmaker(engine), database
        ) as (publisher, metrics):
            await publisher.publish(good)
            await publisher.publish(bad)
            await drain_dlq(rabbitmq_server, limit_s=10, expected=1)
            await publisher.publish(good)  # a redelivery of an applied event
            await wait_for(lambda: _true(_consumed(metrics, "duplicate") == 1), 10, "the duplicate")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM applied ORDER BY id"))).scalars().all()
            marked = set((await conn.execute(sa.text("SELECT message_id FROM processed_messages"))).scalars())
    finally:
        await engine.dispose()
    assert list(rows) == [ns[0]]
    assert marked == {good.id}
    assert _consumed(metrics, "ok") == 1
    assert _consumed(metrics, "retried") == len(DELAYS)


async def test_database_restart_under_hot_pooled_connections_requeues_without_spending_attempts(
    rabbitmq_server: Any, sk_broker: dict[str, str], server_factory: Any, ns: list[int]
) -> None:
    """Pooled connections used moments ago are not pinged: a dead one fails the delivery once."""
    from servicekit.testing import create_database

    from .conftest import create_schema

    pg = server_factory.postgres()
    db = await create_database(pg)
    await create_schema(db)
    engine = create_engine(make_settings(CONSUMER, database=db), pre_ping_idle_s=3600)  # never pings
    try:
        async with running_consumer(
            rabbitmq_server, sk_broker, consumer_handlers(), create_sessionmaker(engine), db
        ) as (publisher, metrics):
            await publisher.publish(ping(ns[0]))
            await wait_for(lambda: _true(_consumed(metrics, "ok") == 1), 10, "the first event")
            await asyncio.to_thread(pg.restart)  # the pooled connection is now dead, and still trusted
            await publisher.publish(ping(ns[1]))
            await wait_for(lambda: _true(_consumed(metrics, "ok") == 2), 15, "the event after the restart")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT n FROM applied ORDER BY id"))).scalars().all()
    finally:
        await engine.dispose()
    assert list(rows) == [ns[0], ns[1]]
    assert _consumed(metrics, "retried") == 0
    assert _consumed(metrics, "dead_lettered") == 0


async def _true(value: bool) -> bool:
    return value
