"""Benchmark: event throughput through servicekit next to raw aio-pika, and outbox relay latency.

    .venv/bin/python bench/events.py [--messages 3000] [--size 1024] [--rounds 5] [--samples 300]
                                     [--only plain,idempotent,outbox]

Starts its own RabbitMQ and PostgreSQL (``infra.local`` servers on free loopback ports) and runs
every path in one process against the same broker, database, message size (the servicekit envelope
of a ``bench.ping``, ``--size`` bytes), prefetch, publish window, publisher confirms (persistent,
``mandatory``), manual acks and pool size. Two pairs, each path timed from the first publish to the
last ack (messages / second):

1. **plain** (headline, target >= 0.7): raw aio-pika (publish with confirms; consume, ``json.loads``,
   ack) vs servicekit ``Publisher.publish(new_event(...))`` + ``Consumer`` with a handler that does no
   database work (``EventHandlers.add_without_db``): envelope validation, dispatch, retry/DLQ logic,
   metrics, then the ack.
2. **idempotent** (target >= 0.7): raw aio-pika + the idempotency marker written by hand with asyncpg
   (one transaction per delivery: ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, then the ack) vs
   servicekit's idempotent consumer (the handler and the ``processed_messages`` marker in one
   SQLAlchemy transaction, then the ack). The hand-written baseline is the lean one: its asyncpg pool
   skips the reset query on release, so both sides make the same three round trips per delivery,
   and has servicekit's statement timeout.

Pools and connections are long-lived and warmed up before timing (as in a running service); the
marker table only grows (by the same amount for each side). Paths alternate order every round (ABBA) and
each round's ratio pairs runs made seconds apart; the verdict uses the ratio of the medians. Every
run checks that each message was consumed exactly once (and marked, for the idempotent paths).

3. **outbox relay latency**: each sample inserts one event in a transaction (as a service does), and
   times commit -> delivered to a consumer; once with ``relay.notify()`` after the commit (what the
   services' routes do) and once with polling only. Reports p50/p99.

This is a benchmark, never a test: it makes no assertions about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel
from servicekit.db import COMMAND_TIMEOUT_S, create_engine, create_sessionmaker
from servicekit.logging import configure_logging
from servicekit.messaging.connection import Broker
from servicekit.messaging.consumer import Consumer, EventHandlers
from servicekit.messaging.envelope import Envelope, new_event, register_event
from servicekit.messaging.outbox import OutboxRelay, publish_in_transaction
from servicekit.messaging.publisher import ATTEMPT_HEADER, EVENTS_EXCHANGE, Publisher
from servicekit.messaging.tables import add_messaging_tables
from servicekit.messaging.topology import declare_topology
from servicekit.metrics import Metrics
from servicekit.settings import Settings
from servicekit.testing import TEST_PUBLIC_KEYS, create_database
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from infra.local.servers import PostgresServer, RabbitMqServer

SERVICE = "bench-svc"
VHOST = "bench"
PING = "bench.ping"
TICK = "bench.tick"
RAW_KEY = "bench.raw"
RAW_QUEUE = "bench.raw"
TICK_QUEUE = "bench.tick.observer"
DELAYS = [1000]
#: Prefetch of every consumer and size of every database pool (so one connection per delivery).
PREFETCH = 50
#: The hand-written idempotency marker of the raw baseline (same statement servicekit sends).
MARK = (
    "INSERT INTO processed_messages (message_id, event_type) VALUES ($1, $2) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)
TEMPLATE_ID = b"00000000-0000-0000-0000-000000000000"
TARGET = 0.7
PAIRS = {
    "plain": ("raw aio-pika", "servicekit"),
    "idempotent": ("raw + asyncpg marker", "servicekit idempotent"),
}


@register_event(PING)
class Ping(BaseModel):
    """Benchmark payload for the throughput runs."""

    n: int
    pad: str


@register_event(TICK)
class Tick(BaseModel):
    """Benchmark payload for the outbox latency run."""

    n: int
    pad: str


@dataclass
class Env:
    """The benchmark's servers, long-lived pools and message shape."""

    settings: Settings
    amqp_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool
    pad: str
    body: bytes


class Progress:
    """Counts finished deliveries; ``done`` is set at the target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    def add(self) -> None:
        """One more delivery was processed and acked."""
        self.count += 1
        if self.count >= self.target:
            self.done.set()


class TimedConsumer(Consumer):
    """servicekit's consumer, reporting each delivery it finished (after its ack) to a Progress."""

    progress: Progress

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Process as usual, then count."""
        await super().handle(message)
        self.progress.add()


def _pad_for(size: int) -> str:
    """Padding so that a servicekit envelope body of a Ping is *size* bytes."""
    bare = len(new_event(Ping(n=0, pad=""), producer=SERVICE).model_dump_json().encode())
    return "x" * max(0, size - bare)


async def _publish_all(count: int, window: int, publish: Callable[[int], Awaitable[None]]) -> None:
    """*window* publishers in parallel, each waiting for its confirm before the next message."""
    numbers = iter(range(count))

    async def worker() -> None:
        for i in numbers:
            await publish(i)

    await asyncio.gather(*(worker() for _ in range(window)))


async def _no_reset(_: asyncpg.Connection) -> None:
    """The lean baseline: no ``RESET ALL``/``UNLISTEN`` round trip when a connection is released."""


async def _marked(env: Env) -> int:
    async with env.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM processed_messages"))


async def run_raw(env: Env, count: int, window: int, *, marker: bool) -> float:
    """Raw aio-pika (confirms, mandatory, persistent; manual ack), optionally + the asyncpg marker."""
    connection = await aio_pika.connect_robust(env.amqp_url)
    pool = env.pool
    progress = Progress(count)
    try:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel(publisher_confirms=True)
        await consume_channel.set_qos(prefetch_count=PREFETCH)
        queue = await consume_channel.get_queue(RAW_QUEUE)
        exchange = await publish_channel.get_exchange(EVENTS_EXCHANGE)

        async def on_message(message: AbstractIncomingMessage) -> None:
            event = json.loads(message.body)
            if marker:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.fetchval(MARK, uuid.UUID(event["id"]), event["type"])
            await message.ack()
            progress.add()

        tag = await queue.consume(on_message, no_ack=False)

        async def publish(i: int) -> None:
            event_id = str(uuid.uuid4())
            message = aio_pika.Message(
                env.body.replace(TEMPLATE_ID, event_id.encode()),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event_id,
                type=PING,
                app_id=SERVICE,
                timestamp=time.time(),
                headers={ATTEMPT_HEADER: 1},
            )
            await exchange.publish(message, routing_key=RAW_KEY, mandatory=True, timeout=5)

        start = time.perf_counter()
        await _publish_all(count, window, publish)
        await progress.done.wait()
        elapsed = time.perf_counter() - start
        await queue.cancel(tag)
    finally:
        await connection.close()
    if progress.count != count:
        raise RuntimeError(f"raw: {progress.count} deliveries for {count} messages")
    return count / elapsed


async def run_servicekit(env: Env, count: int, window: int, *, idempotent: bool) -> float:
    """servicekit Publisher + Consumer; the handler does nothing (with or without the DB marker)."""
    metrics = Metrics(SERVICE)
    handlers = EventHandlers()
    if idempotent:

        async def in_transaction(event: Envelope, session: AsyncSession) -> None:
            return None

        handlers.add(PING, in_transaction)
    else:

        async def without_db(event: Envelope) -> None:
            return None

        handlers.add_without_db(PING, without_db)
    consumer = TimedConsumer(
        SERVICE,
        handlers,
        env.sessionmaker if idempotent else None,
        metrics,
        retry_delays_ms=DELAYS,
        prefetch=PREFETCH,
    )
    consumer.progress = Progress(1)
    broker = Broker(env.settings)
    broker.on_connected(consumer.start)
    await broker.start()
    publisher = Publisher(broker, metrics)
    try:
        await broker.wait_ready(30)
        # One untimed message first: the publisher opens its channel on first use.
        await publisher.publish(new_event(Ping(n=-1, pad=env.pad), producer=SERVICE))
        await consumer.progress.done.wait()
        progress = consumer.progress = Progress(count)

        async def publish(i: int) -> None:
            await publisher.publish(new_event(Ping(n=i, pad=env.pad), producer=SERVICE))

        start = time.perf_counter()
        await _publish_all(count, window, publish)
        await progress.done.wait()
        elapsed = time.perf_counter() - start
    finally:
        await consumer.stop()
        await publisher.close()
        await broker.close()
    ok = metrics.registry.get_sample_value(
        "messaging_consumed_total", {"service": SERVICE, "event": PING, "outcome": "ok"}
    )
    if progress.count != count or ok != count + 1:
        raise RuntimeError(f"servicekit: {progress.count} deliveries, {ok} ok for {count} messages")
    return count / elapsed


@dataclass
class Run:
    """One timed run: throughput, and this process's CPU time per message (the client's cost)."""

    rate: float
    cpu_us: float


async def run_path(env: Env, pair: str, side: int, count: int, window: int) -> Run:
    """One timed run of *pair*'s baseline (side 0) or servicekit (side 1); checks the marker rows."""
    idempotent = pair == "idempotent"
    before = await _marked(env) if idempotent else 0
    cpu = time.process_time()
    if side == 0:
        rate = await run_raw(env, count, window, marker=idempotent)
    else:
        rate = await run_servicekit(env, count, window, idempotent=idempotent)
    cpu_us = (time.process_time() - cpu) / count * 1e6
    expected = count + side  # servicekit's run sends one untimed message first
    if idempotent and (marked := await _marked(env) - before) != expected:
        raise RuntimeError(f"{PAIRS[pair][side]}: {marked} markers for {expected} messages")
    return Run(rate, cpu_us)


async def outbox_latency(env: Env, samples: int, *, notify: bool) -> list[float]:
    """Seconds from commit of an outbox insert to delivery at a consumer, per sample."""
    metrics = Metrics(SERVICE)
    broker = Broker(env.settings)
    await broker.start()
    relay = OutboxRelay(env.sessionmaker, broker, metrics)
    connection = await aio_pika.connect_robust(env.amqp_url)
    waiting: dict[str, asyncio.Future[float]] = {}
    latencies: list[float] = []
    try:
        await broker.wait_ready(30)
        relay.start()
        channel = await connection.channel()
        queue = await channel.get_queue(TICK_QUEUE)

        async def on_message(message: AbstractIncomingMessage) -> None:
            arrived = time.perf_counter()
            await message.ack()
            future = waiting.pop(message.message_id or "", None)
            if future is not None and not future.done():
                future.set_result(arrived)

        await queue.consume(on_message, no_ack=False)
        for n in range(samples):
            event = new_event(Tick(n=n, pad=env.pad), producer=SERVICE)
            arrived = asyncio.get_running_loop().create_future()
            waiting[str(event.id)] = arrived
            async with env.sessionmaker() as session, session.begin():
                await publish_in_transaction(session, event)
            start = time.perf_counter()  # committed
            if notify:
                relay.notify()
            async with asyncio.timeout(10):
                latencies.append(await arrived - start)
    finally:
        await relay.stop()
        await broker.close()
        await connection.close()
    return latencies


@contextlib.asynccontextmanager
async def environment(base: Path, size: int) -> AsyncIterator[Env]:
    """Servers, a database with servicekit's tables, a vhost with the platform topology + bench queues."""
    pg = PostgresServer(base)
    rabbit = RabbitMqServer(base, plugins=())
    engine: AsyncEngine | None = None
    pool: asyncpg.Pool | None = None
    try:
        await asyncio.gather(asyncio.to_thread(pg.start), asyncio.to_thread(rabbit.start))
        await asyncio.to_thread(rabbit.ctl, "add_vhost", VHOST)
        await asyncio.to_thread(rabbit.ctl, "set_permissions", "-p", VHOST, rabbit.user, ".*", ".*", ".*")
        database = await create_database(pg, "bench_events")
        settings = Settings(  # type: ignore[call-arg]
            service_name=SERVICE,
            environment="test",
            jwt_public_keys=TEST_PUBLIC_KEYS,
            postgres_host=database.host,
            postgres_port=database.port,
            postgres_db=database.name,
            postgres_user=database.user,
            postgres_password=database.password,
            db_pool_size=PREFETCH,
            db_max_overflow=0,
            rabbitmq_host=rabbit.host,
            rabbitmq_port=rabbit.port,
            rabbitmq_vhost=VHOST,
            rabbitmq_user=rabbit.user,
            rabbitmq_password=rabbit.password,
            rabbitmq_retry_delays_ms=DELAYS,
        )
        engine = create_engine(settings)
        metadata = sa.MetaData()
        add_messaging_tables(metadata)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        pool = await asyncpg.create_pool(
            database.url,
            min_size=PREFETCH,
            max_size=PREFETCH,
            reset=_no_reset,
            command_timeout=COMMAND_TIMEOUT_S,  # as servicekit's engine sets
        )
        await _warm_up(engine)
        amqp_url = rabbit.url(VHOST)
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            await declare_topology(channel, {SERVICE: [PING]}, DELAYS)
            events = await channel.get_exchange(EVENTS_EXCHANGE)
            for name, key in ((RAW_QUEUE, RAW_KEY), (TICK_QUEUE, TICK)):
                queue = await channel.declare_queue(name, durable=True)
                await queue.bind(events, routing_key=key)
        pad = _pad_for(size)
        template = new_event(Ping(n=0, pad=pad), producer=SERVICE, event_id=uuid.UUID(int=0))
        body = template.model_dump_json().encode()
        yield Env(settings, amqp_url, engine, create_sessionmaker(engine), pool, pad, body)
    finally:
        if pool is not None:
            await pool.close()
        if engine is not None:
            await engine.dispose()
        for server in (rabbit, pg):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(server.stop)


async def _warm_up(engine: AsyncEngine) -> None:
    """Open every pooled connection once, as a running service's pool already has."""

    async def hold() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(hold() for _ in range(PREFETCH)))


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def throughput(env: Env, pairs: list[str], args: argparse.Namespace) -> None:
    """Alternating rounds of each pair; prints per-round numbers, medians, ratios and verdicts."""
    for pair in pairs:  # warm-up of every path (imports, caches, prepared statements, queues)
        for side in (0, 1):
            await run_path(env, pair, side, 300, args.window)
    runs: dict[str, tuple[list[Run], list[Run]]] = {p: ([], []) for p in pairs}
    for r in range(1, args.rounds + 1):
        cells = []
        for pair in pairs:
            for side in (0, 1) if r % 2 else (1, 0):
                runs[pair][side].append(await run_path(env, pair, side, args.messages, args.window))
            base, kit = runs[pair][0][-1].rate, runs[pair][1][-1].rate
            cells.append(f"{PAIRS[pair][0]} {base:5.0f} | {PAIRS[pair][1]} {kit:5.0f} ({kit / base:.2f})")
        print(f"round {r} (msg/s): " + " || ".join(cells), flush=True)
    for pair in pairs:
        base_runs, kit_runs = runs[pair]
        base_m = statistics.median(run.rate for run in base_runs)
        kit_m = statistics.median(run.rate for run in kit_runs)
        base_cpu = statistics.median(run.cpu_us for run in base_runs)
        kit_cpu = statistics.median(run.cpu_us for run in kit_runs)
        per_round = [k.rate / b.rate for b, k in zip(base_runs, kit_runs, strict=True)]
        ratio = kit_m / base_m
        print(
            f"{pair}: median {PAIRS[pair][0]} {base_m:.0f} msg/s ({base_cpu:.0f} us CPU/msg), "
            f"{PAIRS[pair][1]} {kit_m:.0f} msg/s ({kit_cpu:.0f} us CPU/msg); ratio {ratio:.2f} "
            f"(rounds {min(per_round):.2f}-{max(per_round):.2f}), target >= {TARGET}: "
            f"{'PASS' if ratio >= TARGET else 'MISS'}"
        )


async def main_async(args: argparse.Namespace) -> None:
    configure_logging("bench", level="ERROR", fmt="console")
    only = set(args.only.split(","))
    base = Path(tempfile.mkdtemp(prefix="bench-events-"))
    await asyncio.to_thread(base.chmod, 0o755)
    try:
        async with environment(base, args.size) as env:
            load = os.getloadavg()[0]
            print(
                f"messages={args.messages} size={len(env.body)}B window={args.window} prefetch={PREFETCH} "
                f"pool={PREFETCH} rounds={args.rounds} cpus={os.cpu_count()} load1={load:.1f}",
                flush=True,
            )
            pairs = [p for p in PAIRS if p in only]
            if pairs:
                await throughput(env, pairs, args)
            if "outbox" in only:
                for notify in (True, False):
                    samples = args.samples if notify else max(20, args.samples // 10)
                    lat = await outbox_latency(env, samples, notify=notify)
                    label = "notify() after commit" if notify else "polling only (0.2 s interval)"
                    print(
                        f"outbox relay latency, {label}: n={len(lat)} p50={_pct(lat, 50) * 1000:.1f} ms "
                        f"p99={_pct(lat, 99) * 1000:.1f} ms"
                    )
            print(f"load1 at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000, help="messages per throughput run")
    parser.add_argument("--size", type=int, default=1024, help="message body size in bytes")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per pair")
    parser.add_argument("--window", type=int, default=100, help="unconfirmed publishes in flight")
    parser.add_argument("--samples", type=int, default=300, help="outbox latency samples")
    parser.add_argument(
        "--only", default="plain,idempotent,outbox", help="comma list of: plain, idempotent, outbox"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
