"""Benchmark: event throughput through servicekit next to raw aio-pika, and outbox relay latency.

    .venv/bin/python bench/events.py [--messages 3000] [--size 1024] [--rounds 3] [--samples 300]

Starts its own RabbitMQ and PostgreSQL (infra.local servers on free loopback ports) and, in the
same run, on the same broker, with the same message size:

- **raw aio-pika**: persistent messages published with confirms and ``mandatory`` to the ``events``
  exchange (at most ``--window`` unconfirmed), consumed with manual acks and the same prefetch;
- **servicekit**: ``Publisher.publish`` (same confirms, mandatory, window) and ``Consumer`` (the
  envelope is validated, the handler runs in a PostgreSQL transaction together with the
  ``processed_messages`` marker, then the ack) — i.e. everything a service gets for free.

A third path, **raw + marker**, is raw aio-pika plus a hand-written asyncpg transaction per
delivery inserting the same ``processed_messages`` row: what it costs to get servicekit's
exactly-once effect without servicekit.

Throughput = messages / (first publish -> last ack). Prints the ratio servicekit / raw (target
>= 0.7) and servicekit / raw + marker. Then the outbox relay: each sample inserts one event in a
transaction (as a service does), calls ``relay.notify()`` like the routes do, and times until a
consumer receives it; p50/p99 (and, for comparison, with polling only).
This is a benchmark, never a test: it makes no assertions about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import sqlalchemy as sa
from pydantic import BaseModel
from servicekit.db import create_engine, create_sessionmaker
from servicekit.logging import configure_logging
from servicekit.messaging.connection import Broker
from servicekit.messaging.consumer import Consumer, EventHandlers
from servicekit.messaging.envelope import Envelope, new_event, register_event
from servicekit.messaging.outbox import OutboxRelay, publish_in_transaction
from servicekit.messaging.publisher import EVENTS_EXCHANGE, Publisher
from servicekit.messaging.tables import add_messaging_tables
from servicekit.messaging.topology import declare_topology
from servicekit.metrics import Metrics
from servicekit.settings import Settings
from servicekit.testing import TEST_JWT_SECRET, create_database
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from infra.local.servers import PostgresServer, RabbitMqServer

SERVICE = "bench-svc"
VHOST = "bench"
PING = "bench.ping"
TICK = "bench.tick"
RAW_KEY = "bench.raw"
RAW_QUEUE = "bench.raw"
TICK_QUEUE = "bench.tick.observer"
DELAYS = [1000]
PREFETCH = 50
#: The hand-written idempotency marker of the "raw + marker" baseline.
MARK = "INSERT INTO processed_messages (message_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING"
TEMPLATE_ID = b"00000000-0000-0000-0000-000000000000"


@register_event(PING)
class Ping(BaseModel):
    """Benchmark payload for the throughput run."""

    n: int
    pad: str


@register_event(TICK)
class Tick(BaseModel):
    """Benchmark payload for the outbox latency run."""

    n: int
    pad: str


@dataclass
class Env:
    """The benchmark's servers and connection settings."""

    settings: Settings
    amqp_url: str
    asyncpg_dsn: str


def _pad_for(size: int) -> str:
    """Padding so that a servicekit envelope body of a Ping is *size* bytes."""
    bare = len(new_event(Ping(n=0, pad=""), producer=SERVICE).model_dump_json().encode())
    return "x" * max(0, size - bare)


class Progress:
    """Counts acknowledged deliveries; ``done`` is set at the target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    def add(self) -> None:
        """One more delivery was processed and acked."""
        self.count += 1
        if self.count >= self.target:
            self.done.set()


class CountingMetrics(Metrics):
    """servicekit's metrics, also reporting each successfully consumed delivery to a Progress."""

    def __init__(self, service: str, progress: Progress) -> None:
        super().__init__(service)
        self.progress = progress

    def count_consumed(self, event: str, outcome: str) -> None:
        """Count as usual; an ``ok`` outcome comes after the ack, so it marks the end of one message."""
        super().count_consumed(event, outcome)
        if outcome == "ok":
            self.progress.add()


async def _publish_all(count: int, window: int, publish: Callable[[int], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with gate:
            await publish(i)

    await asyncio.gather(*(one(i) for i in range(count)))


async def run_raw(env: Env, count: int, body: bytes, window: int, *, marker: bool = False) -> float:
    """Raw aio-pika: confirms + mandatory + persistent, manual ack; returns messages/second.

    With *marker*, each delivery also inserts its id into ``processed_messages`` in its own
    transaction (hand-written asyncpg): the same guarantee servicekit's consumer gives.
    """
    connection = await aio_pika.connect_robust(env.amqp_url)
    pool = (
        await asyncpg.create_pool(env.asyncpg_dsn, min_size=PREFETCH, max_size=PREFETCH) if marker else None
    )
    try:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=PREFETCH)
        queue = await consume_channel.get_queue(RAW_QUEUE)
        exchange = await publish_channel.get_exchange(EVENTS_EXCHANGE)
        progress = Progress(count)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            event = json.loads(message.body)  # a consumer looks at what it got, as servicekit does
            if pool is not None:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(MARK, uuid.UUID(event["id"]), event["type"])
            await message.ack()
            progress.add()

        tag = await queue.consume(on_message)

        async def publish(i: int) -> None:
            message = aio_pika.Message(
                body.replace(TEMPLATE_ID, str(uuid.uuid4()).encode()),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(uuid.uuid4()),
                type=RAW_KEY,
            )
            await exchange.publish(message, routing_key=RAW_KEY, mandatory=True)

        start = time.perf_counter()
        await _publish_all(count, window, publish)
        await progress.done.wait()
        elapsed = time.perf_counter() - start
        await queue.cancel(tag)
    finally:
        await connection.close()
        if pool is not None:
            await pool.close()
    return count / elapsed


async def run_servicekit(env: Env, count: int, pad: str, window: int) -> float:
    """servicekit Publisher + Consumer (DB transaction + idempotency marker); returns messages/second."""
    progress = Progress(count)
    metrics = CountingMetrics(SERVICE, progress)
    engine = create_engine(env.settings)
    sessionmaker = create_sessionmaker(engine)
    handlers = EventHandlers()

    async def handle(event: Envelope, session: AsyncSession) -> None:
        event.parse(Ping)

    handlers.add(PING, handle)
    consumer = Consumer(SERVICE, handlers, sessionmaker, metrics, retry_delays_ms=DELAYS, prefetch=PREFETCH)
    broker = Broker(env.settings)
    broker.on_connected(consumer.start)
    await broker.start()
    publisher = Publisher(broker, metrics)
    try:
        await broker.wait_ready(30)

        async def publish(i: int) -> None:
            await publisher.publish(new_event(Ping(n=i, pad=pad), producer=SERVICE))

        start = time.perf_counter()
        await _publish_all(count, window, publish)
        await progress.done.wait()
        elapsed = time.perf_counter() - start
    finally:
        await consumer.stop()
        await publisher.close()
        await broker.close()
        await engine.dispose()
    return count / elapsed


async def outbox_latency(env: Env, samples: int, pad: str, *, notify: bool) -> list[float]:
    """Seconds from commit of an outbox insert to delivery at a consumer, per sample."""
    metrics = Metrics(SERVICE)
    engine = create_engine(env.settings)
    sessionmaker = create_sessionmaker(engine)
    broker = Broker(env.settings)
    await broker.start()
    relay = OutboxRelay(sessionmaker, broker, metrics)
    connection = await aio_pika.connect_robust(env.amqp_url)
    waiting: dict[str, asyncio.Future[float]] = {}
    latencies: list[float] = []
    try:
        await broker.wait_ready(30)
        relay.start()
        channel = await connection.channel()
        queue = await channel.get_queue(TICK_QUEUE)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            future = waiting.pop(message.message_id or "", None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

        await queue.consume(on_message, no_ack=False)
        for n in range(samples):
            event = new_event(Tick(n=n, pad=pad), producer=SERVICE)
            arrived = asyncio.get_running_loop().create_future()
            waiting[str(event.id)] = arrived
            start = time.perf_counter()
            async with sessionmaker() as session, session.begin():
                await publish_in_transaction(session, event)
            if notify:
                relay.notify()
            async with asyncio.timeout(10):
                latencies.append(await arrived - start)
    finally:
        await relay.stop()
        await broker.close()
        await connection.close()
        await engine.dispose()
    return latencies


async def prepare(pg: PostgresServer, rabbit: RabbitMqServer) -> Env:
    """Database with servicekit's tables, a vhost with the platform topology plus bench queues."""
    rabbit.ctl("add_vhost", VHOST)
    rabbit.ctl("set_permissions", "-p", VHOST, rabbit.user, ".*", ".*", ".*")
    database = await create_database(pg, "bench_events")
    settings = Settings(  # type: ignore[call-arg]
        service_name=SERVICE,
        environment="test",
        jwt_secret=TEST_JWT_SECRET,
        postgres_host=database.host,
        postgres_port=database.port,
        postgres_db=database.name,
        postgres_user=database.user,
        postgres_password=database.password,
        db_pool_size=PREFETCH,
        rabbitmq_host=rabbit.host,
        rabbitmq_port=rabbit.port,
        rabbitmq_vhost=VHOST,
        rabbitmq_user=rabbit.user,
        rabbitmq_password=rabbit.password,
        rabbitmq_retry_delays_ms=DELAYS,
    )
    metadata = sa.MetaData()
    add_messaging_tables(metadata)
    engine = create_async_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    amqp_url = rabbit.url(VHOST)
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel, {SERVICE: [PING]}, DELAYS)
        events = await channel.get_exchange(EVENTS_EXCHANGE)
        for name, key in ((RAW_QUEUE, RAW_KEY), (TICK_QUEUE, TICK)):
            queue = await channel.declare_queue(name, durable=True)
            await queue.bind(events, routing_key=key)
    return Env(settings, amqp_url, database.url)


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def main_async(args: argparse.Namespace) -> None:
    configure_logging("bench", level="ERROR", fmt="console")
    base = Path(tempfile.mkdtemp(prefix="bench-events-"))
    await asyncio.to_thread(base.chmod, 0o755)
    pg = PostgresServer(base)
    rabbit = RabbitMqServer(base, plugins=())
    try:
        await asyncio.gather(asyncio.to_thread(pg.start), asyncio.to_thread(rabbit.start))
        env = await prepare(pg, rabbit)
        pad = _pad_for(args.size)
        template = new_event(Ping(n=0, pad=pad), producer=SERVICE, event_id=uuid.UUID(int=0))
        body = template.model_dump_json().encode()
        print(f"messages={args.messages} size={len(body)}B window={args.window} prefetch={PREFETCH}")
        await run_raw(env, 200, body, args.window)  # warm-up every path
        await run_raw(env, 200, body, args.window, marker=True)
        await run_servicekit(env, 200, pad, args.window)
        raw: list[float] = []
        marked: list[float] = []
        kit: list[float] = []
        for r in range(1, args.rounds + 1):
            raw.append(await run_raw(env, args.messages, body, args.window))
            marked.append(await run_raw(env, args.messages, body, args.window, marker=True))
            kit.append(await run_servicekit(env, args.messages, pad, args.window))
            print(
                f"round {r}: raw aio-pika {raw[-1]:6.0f} msg/s | raw + asyncpg marker {marked[-1]:6.0f} msg/s"
                f" | servicekit {kit[-1]:6.0f} msg/s"
            )
        raw_m, marked_m, kit_m = (statistics.median(x) for x in (raw, marked, kit))
        ratio = kit_m / raw_m
        verdict = "meets" if ratio >= 0.7 else "BELOW"
        print(f"median: raw {raw_m:.0f}, raw + marker {marked_m:.0f}, servicekit {kit_m:.0f} msg/s")
        print(f"ratio servicekit / raw aio-pika = {ratio:.2f} ({verdict} the 0.7 target)")
        print(f"ratio servicekit / raw aio-pika + same idempotency marker = {kit_m / marked_m:.2f}")
        for notify in (True, False):
            samples = args.samples if notify else max(20, args.samples // 10)
            lat = await outbox_latency(env, samples, pad, notify=notify)
            label = "notify() after commit" if notify else "polling only (0.2 s interval)"
            print(
                f"outbox relay latency, {label}: n={len(lat)} p50={_pct(lat, 50) * 1000:.1f} ms "
                f"p99={_pct(lat, 99) * 1000:.1f} ms"
            )
    finally:
        for server in (rabbit, pg):
            with contextlib.suppress(Exception):
                server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000, help="messages per throughput round")
    parser.add_argument("--size", type=int, default=1024, help="message body size in bytes")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path")
    parser.add_argument("--window", type=int, default=100, help="unconfirmed publishes in flight")
    parser.add_argument("--samples", type=int, default=300, help="outbox latency samples")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
