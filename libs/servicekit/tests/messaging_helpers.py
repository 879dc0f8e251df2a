"""Apps and probes shared by the messaging tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import sqlalchemy as sa
from fastapi import FastAPI
from servicekit.app import create_app
from servicekit.messaging.consumer import EventHandlers, PermanentError
from servicekit.messaging.envelope import Envelope
from servicekit.testing import Database
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import CONSUMER, DELAYS, PUBLISHER, Ping, make_settings


def consumer_handlers() -> EventHandlers:
    """Records each applied Ping; ``note`` "poison" always fails, "permanent" is rejected at once."""
    handlers = EventHandlers()

    @handlers.on("sktest.ping")
    async def apply(event: Envelope, session: AsyncSession) -> None:
        ping = event.parse(Ping)
        await session.execute(
            sa.text("INSERT INTO applied (n, event_id) VALUES (:n, :id)"), {"n": ping.n, "id": str(event.id)}
        )
        if ping.note == "poison":
            raise RuntimeError("handler bug")
        if ping.note == "permanent":
            raise PermanentError("cannot ever apply this")

    return handlers


def consumer_app(database: Database, broker: Any, password: str, **kwargs: Any) -> FastAPI:
    settings = make_settings(
        CONSUMER,
        database=database,
        rabbitmq=broker,
        rabbitmq_user=CONSUMER,
        rabbitmq_password=password,
        rabbitmq_retry_delays_ms=DELAYS,
    )
    return create_app(settings, handlers=consumer_handlers(), outbox=False, **kwargs)


def publisher_app(database: Database, broker: Any, password: str, **kwargs: Any) -> FastAPI:
    settings = make_settings(
        PUBLISHER, database=database, rabbitmq=broker, rabbitmq_user=PUBLISHER, rabbitmq_password=password
    )
    return create_app(settings, **kwargs)


async def wait_for(condition: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {limit_s}s waiting for {what}")


async def applied(app: FastAPI, ns: list[int] | None = None) -> list[int]:
    """``n`` of the applied rows in insertion order (optionally only those in *ns*)."""
    async with app.state.runtime.sessionmaker() as session:
        rows = (await session.execute(sa.text("SELECT n FROM applied ORDER BY id"))).scalars().all()
    return [n for n in rows if ns is None or n in ns]


def consumed(app: FastAPI, outcome: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "messaging_consumed_total", {"service": CONSUMER, "event": "sktest.ping", "outcome": outcome}
    )
    return value or 0.0


async def drain_dlq(broker: Any, limit_s: float, expected: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Messages in the consumer's DLQ (read as the broker admin), waiting for *expected* of them."""
    connection = await aio_pika.connect(broker.url("market"))
    found: list[aio_pika.abc.AbstractIncomingMessage] = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{CONSUMER}.dlq")
        deadline = time.monotonic() + limit_s
        while len(found) < expected and time.monotonic() < deadline:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                found.append(message)
    finally:
        await connection.close()
    return found
