"""Transactional outbox (including a broker outage), topology agreement, docs/events.md sync."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import aio_pika
import sqlalchemy as sa
from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from servicekit.messaging.tables import outbox_t
from servicekit.messaging.topology import declare_topology, topology
from servicekit.testing import Database, app_client

from .conftest import CONSUMER, DELAYS, PUBLISHER, Ping, build_definitions
from .messaging_helpers import applied, consumer_app, publisher_app, wait_for

REPO = Path(__file__).resolve().parents[3]


async def write_events(app: Any, ns: list[int], *, commit: bool = True) -> None:
    async with app.state.runtime.sessionmaker() as session:
        for n in ns:
            await publish_in_transaction(session, new_event(Ping(n=n), producer=PUBLISHER))
        if commit:
            await session.commit()
        else:
            await session.rollback()


def pending(app: Any) -> float:
    return app.state.metrics.registry.get_sample_value("outbox_pending", {"service": PUBLISHER}) or 0.0


async def test_outbox_publishes_committed_events_in_order_and_drops_rolled_back_ones(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database
) -> None:
    base = random.randrange(1, 10**6) * 100
    ns = [base + i for i in range(30)]
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER], prefetch=1)
    async with app_client(pub), app_client(con):
        await write_events(pub, [base + 99], commit=False)
        await write_events(pub, ns[:15])
        await write_events(pub, ns[15:])

        async def all_applied() -> bool:
            return len(await applied(con, [*ns, base + 99])) >= len(ns)

        await wait_for(all_applied, 15, "30 outbox events")
        assert await applied(con, [*ns, base + 99]) == ns  # in commit order, the rolled-back one never
        async with pub.state.runtime.sessionmaker() as session:
            unsent = await session.scalar(sa.select(sa.func.count()).where(outbox_t.c.sent_at.is_(None)))
        assert unsent == 0


async def test_outbox_events_written_during_a_broker_outage_are_all_delivered(
    server_factory: Any, database: Database, tmp_path: Path
) -> None:
    admin_password = secrets.token_urlsafe(12)
    definitions, passwords = build_definitions("admin", admin_password)
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(definitions))
    broker = server_factory.rabbitmq(plugins=(), definitions=path, password=admin_password)
    pub = publisher_app(database, broker, passwords[PUBLISHER])
    con = consumer_app(database, broker, passwords[CONSUMER], prefetch=1)
    ns = list(range(1, 41))
    async with app_client(pub) as client, app_client(con):
        await pub.state.runtime.broker.wait_ready(15)
        await con.state.runtime.broker.wait_ready(15)
        await write_events(pub, ns[:5])
        await wait_for(lambda: _applied_at_least(con, 5), 10, "events before the outage")

        await asyncio.to_thread(broker.stop)
        await write_events(pub, ns[5:20])
        await write_events(pub, ns[20:])
        await wait_for(lambda: _true(pending(pub) == 35), 10, "outbox_pending to report the backlog")
        ready = await client.get("/readyz")
        assert ready.status_code == 200  # the outbox holds events: degraded, still serving writes
        assert ready.json()["degraded"] == ["rabbitmq"]
        assert ready.json()["checks"]["rabbitmq"] != "ok"

        await asyncio.to_thread(broker.start)
        await wait_for(lambda: _applied_at_least(con, 40), 40, "every event after the broker came back")
        assert await applied(con) == ns  # none lost, none reordered
        await wait_for(lambda: _true(pending(pub) == 0), 10, "outbox_pending back to 0")
        assert (await client.get("/readyz")).status_code == 200


async def _applied_at_least(app: Any, count: int) -> bool:
    return len(await applied(app)) >= count


async def _true(value: bool) -> bool:
    return value


def _normalized(doc: dict[str, Any]) -> tuple[set[Any], set[Any], set[Any]]:
    exchanges = {(e["name"], e["type"], e["durable"]) for e in doc["exchanges"]}
    queues = {(q["name"], q["durable"], json.dumps(q["arguments"], sort_keys=True)) for q in doc["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in doc["bindings"]}
    return exchanges, queues, bindings


def test_topology_matches_the_platform_definitions_for_every_stack() -> None:
    from infra.render.rabbitmq import render_definitions
    from infra.spec import available_stacks, load_spec

    for stack in available_stacks():
        spec = load_spec(stack)
        passwords = {s.name: "x" for s in spec.services if s.manifest.needs.rabbitmq}
        rendered = render_definitions(spec, passwords)
        ours = topology(spec.consumers, spec.config.rabbitmq.retry_delays_ms)
        assert _normalized(ours) == _normalized(rendered), stack


async def test_declared_topology_is_accepted_by_a_broker_that_loaded_the_definitions(
    rabbitmq_server: Any, sk_broker: dict[str, str]
) -> None:
    """Re-declaring with different arguments would fail with PRECONDITION_FAILED."""
    connection = await aio_pika.connect(rabbitmq_server.url("market"))
    try:
        channel = await connection.channel()
        await declare_topology(channel, {CONSUMER: ["sktest.ping"]}, DELAYS)
        await channel.get_queue(f"{CONSUMER}.retry.{len(DELAYS)}")  # passive: exists
    finally:
        await connection.close()


def test_events_doc_is_in_sync() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servicekit.events_doc", "--check", "--root", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
