"""RabbitMQ definitions: imported at boot by a real broker; routing, retry and dead-lettering work."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator

import aio_pika
import httpx
import pytest
from aiormq.exceptions import ChannelAccessRefused

from infra.local.pytest_plugin import make_servers_dir
from infra.local.rabbitmq_server import RabbitMqServer
from infra.render.rabbitmq import (
    DLX,
    EVENTS,
    RETRY,
    VHOST,
    password_hash,
    queue_names,
    render_definitions,
)
from infra.spec import PlatformSpec, load_spec

#: A password for every broker user the spec has (derived: a new service gets one too).
PASSWORDS = {s.name: f"pw-{s.name}" for s in load_spec("dev").services if s.manifest.needs.rabbitmq}


@pytest.fixture(scope="module")
def broker(specs) -> Iterator[RabbitMqServer]:
    base = make_servers_dir("platform-test-render-")
    definitions = base / "definitions.json"
    definitions.write_text(json.dumps(render_definitions(specs["dev"], PASSWORDS)))
    server = RabbitMqServer(base, definitions=definitions, plugins=("rabbitmq_prometheus",))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        leftover = server.alive_pids()
        if leftover:
            server.kill()
        shutil.rmtree(base, ignore_errors=True)
    assert not leftover


def url(broker: RabbitMqServer, user: str | None = None) -> str:
    if user is None:
        return broker.url(VHOST)
    return broker.url(VHOST, user=user, password=PASSWORDS[user])


async def get_one(channel: aio_pika.abc.AbstractChannel, queue: str, wait: float = 5.0):
    """Poll *queue* (passively) until a message arrives; return it acked, or None after *wait* seconds."""
    q = await channel.get_queue(queue, ensure=False)
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        message = await q.get(fail=False, no_ack=True)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    return None


async def test_published_event_lands_in_every_consumer_queue(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "marketplace-svc")) as conn:
        channel = await conn.channel(publisher_confirms=True)
        events = await channel.get_exchange(EVENTS, ensure=False)
        await events.publish(aio_pika.Message(b"listing-7", headers={"x-attempt": 1}), "listing.created")
    async with await aio_pika.connect(url(broker, "chat-svc")) as conn:
        got = await get_one(await conn.channel(), "chat-svc.events")
    assert got is not None
    assert got.body == b"listing-7"
    async with await aio_pika.connect(url(broker, "payment-svc")) as conn:
        got = await get_one(await conn.channel(), "payment-svc.events")
    assert got is not None
    assert got.routing_key == "listing.created"


async def test_retry_queue_dead_letters_back_after_its_ttl(broker: RabbitMqServer, specs) -> None:
    delay = specs["dev"].config.rabbitmq.retry_delays_ms[0] / 1000
    async with await aio_pika.connect(url(broker, "chat-svc")) as conn:
        channel = await conn.channel(publisher_confirms=True)
        retry = await channel.get_exchange(RETRY, ensure=False)
        start = asyncio.get_running_loop().time()
        await retry.publish(aio_pika.Message(b"again", headers={"x-attempt": 2}), "chat-svc.retry.1")
        got = await get_one(channel, "chat-svc.events", wait=delay + 5)
        elapsed = asyncio.get_running_loop().time() - start
    assert got is not None
    assert got.body == b"again"
    assert got.headers["x-attempt"] == 2
    assert elapsed >= delay * 0.9


async def test_final_failure_goes_to_the_dead_letter_queue(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "chat-svc")) as conn:
        channel = await conn.channel(publisher_confirms=True)
        dlx = await channel.get_exchange(DLX, ensure=False)
        await dlx.publish(aio_pika.Message(b"dead"), "chat-svc")
    async with await aio_pika.connect(url(broker)) as conn:  # admin: services cannot read their DLQ
        got = await get_one(await conn.channel(), "chat-svc.dlq")
    assert got is not None
    assert got.body == b"dead"


async def test_rejected_delivery_goes_straight_to_the_dead_letter_queue(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "payment-svc")) as conn:
        channel = await conn.channel(publisher_confirms=True)
        payments = await channel.get_exchange(EVENTS, ensure=False)
        await payments.publish(aio_pika.Message(b"poison"), "payment.succeeded")  # marketplace consumes it
    async with await aio_pika.connect(url(broker, "marketplace-svc")) as conn:
        channel = await conn.channel()
        queue = await channel.get_queue("marketplace-svc.events", ensure=False)
        for _ in range(100):
            message = await queue.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None
        await message.reject(requeue=False)
    async with await aio_pika.connect(url(broker)) as conn:
        got = await get_one(await conn.channel(), "marketplace-svc.dlq")
    assert got is not None
    assert got.body == b"poison"


async def test_topic_permissions_refuse_events_the_service_does_not_publish(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "marketplace-svc")) as conn:
        channel = await conn.channel(publisher_confirms=True)
        events = await channel.get_exchange(EVENTS, ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await events.publish(aio_pika.Message(b"forged"), "payment.succeeded")


async def test_services_cannot_declare_topology(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "chat-svc")) as conn:
        channel = await conn.channel()
        with pytest.raises(ChannelAccessRefused):
            await channel.declare_queue("chat-svc.mine", durable=True)


async def test_services_cannot_read_other_services_queues(broker: RabbitMqServer) -> None:
    async with await aio_pika.connect(url(broker, "chat-svc")) as conn:
        channel = await conn.channel()
        queue = await channel.get_queue("payment-svc.events", ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await queue.get(fail=False)


async def test_wrong_password_is_refused(broker: RabbitMqServer) -> None:
    with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(broker.url(VHOST, user="chat-svc", password="wrong"))


def test_detailed_queue_metrics_expose_what_the_alerts_use(broker: RabbitMqServer) -> None:
    params = {"family": "queue_coarse_metrics", "vhost": VHOST}
    text = httpx.get(f"http://{broker.host}:{broker.prometheus_port}/metrics/detailed", params=params).text
    assert 'rabbitmq_detailed_queue_messages_ready{vhost="market",queue="chat-svc.dlq"}' in text


def test_definitions_hold_no_plaintext_password(specs) -> None:
    text = json.dumps(render_definitions(specs["prod"], PASSWORDS))
    assert not any(pw in text for pw in PASSWORDS.values())


def test_password_hash_is_deterministic_and_user_salted() -> None:
    assert password_hash("a", "pw") == password_hash("a", "pw")
    assert password_hash("a", "pw") != password_hash("b", "pw")


def test_queue_names_follow_the_contract(spec: PlatformSpec) -> None:
    names = queue_names(spec)
    delays = spec.config.rabbitmq.retry_delays_ms
    assert sorted(names) == sorted(spec.consumers)
    for svc, queues in names.items():
        assert queues.events == f"{svc}.events"
        assert queues.retries == tuple(f"{svc}.retry.{n}" for n in range(1, len(delays) + 1))
        assert queues.dlq == f"{svc}.dlq"


def test_definitions_are_byte_stable(spec: PlatformSpec) -> None:
    a = json.dumps(render_definitions(spec, PASSWORDS), sort_keys=True)
    assert a == json.dumps(render_definitions(spec, dict(reversed(PASSWORDS.items()))), sort_keys=True)
