"""RabbitMQ killed with SIGKILL in the middle of 1,000 payments, then restarted on the same ports and
data: payment-svc keeps answering (its outbox absorbs the outage) and every ``payment.succeeded``
reaches marketplace-svc exactly once - none lost, none applied twice, nothing dead-lettered.

Both services run as their own uvicorn processes (as `platform dev` runs them), each with its own
database and its own RabbitMQ user from the rendered definitions, on a private broker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from marketplace_svc.events import ListingCreated
from marketplace_svc.models import Listing
from payment_svc.events import upsert_listing
from payment_svc.models import Listing as PaymentListing
from servicekit.messaging.envelope import new_event
from servicekit.messaging.tables import outbox_t, processed_t
from servicekit.testing import bearer

from infra.render.rabbitmq import dead_letter_queue

from .conftest import (
    Served,
    deployed,
    platform_definitions,
    private_broker_access,
    queue_depth,
    serving,
    stack_spec,
    wait_until,
)

PAYMENTS = 1000
KILL_AFTER = 300
CONCURRENCY = 20
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
UNSENT = sa.select(sa.func.count()).select_from(outbox_t).where(outbox_t.c.sent_at.is_(None))
SOLD = sa.select(sa.func.count()).where(Listing.status == "sold")


async def rows(service: Served, query: Any) -> list[Any]:
    async with service.session() as session:
        return [tuple(row) if len(row) > 1 else row[0] for row in await session.execute(query)]


async def count(service: Served, query: Any) -> int:
    async with service.session() as session:
        return int(await session.scalar(query) or 0)


async def seed_listings(market: Served, pay: Served, seller: uuid.UUID) -> list[uuid.UUID]:
    """1,000 active listings in marketplace-svc, and in payment-svc's read model as ``listing.created``
    would put them: payment-svc's own handler applies marketplace-svc's own event for each (the
    broker path of listing.created is test_integration_flow's subject; here it would only add load)."""
    now = datetime.now(UTC)
    listings = [
        Listing(
            id=uuid.uuid4(),
            owner_id=seller,
            title=f"item {n}",
            description="",
            price_minor=1000 + n,
            currency="EUR",
            status="active",
            created_at=now,
            updated_at=now,
        )
        for n in range(PAYMENTS)
    ]
    events = [new_event(ListingCreated.of(listing), producer=market.name) for listing in listings]
    async with market.session() as session:
        session.add_all(listings)
        await session.commit()
    async with pay.session() as session:
        for event in events:
            await upsert_listing(event, session)
        await session.commit()
    return [listing.id for listing in listings]


NO_ATTEMPT_LIMITS = {"payment_attempts_per_buyer": 100_000, "payment_attempts_per_card": 100_000}


@pytest.mark.timeout(240)  # ~45 s on a quiet 2-core machine; headroom for a loaded one
async def test_a_broker_killed_mid_payments_loses_and_duplicates_nothing(
    server_factory: Any, postgres_server: Any, redis_server: Any, tmp_path: Path, timings: dict[str, float]
) -> None:
    began = time.monotonic()
    spec = stack_spec()
    definitions, users = platform_definitions(spec)
    (tmp_path / "definitions.json").write_text(json.dumps(definitions))
    broker = await asyncio.to_thread(
        server_factory.rabbitmq, plugins=(), definitions=tmp_path / "definitions.json"
    )
    access = private_broker_access(broker, spec, users)
    timings["broker boot"] = time.monotonic() - began
    t = time.monotonic()
    where = {"postgres": postgres_server, "redis": redis_server, "broker": access}
    async with (
        deployed("marketplace-svc", **where) as market_deployed,
        # One buyer and one card pay for everything here: lift the card-testing limits.
        deployed("payment-svc", **where, **NO_ATTEMPT_LIMITS) as pay_deployed,
        serving([market_deployed, pay_deployed], base_dir=tmp_path, factory=server_factory) as (market, pay),
    ):
        timings["services up"] = time.monotonic() - t
        t = time.monotonic()
        ids = await seed_listings(market, pay, uuid.uuid4())
        prices = {listing_id: 1000 + n for n, listing_id in enumerate(ids)}  # as seed_listings priced them
        assert await count(pay, sa.select(sa.func.count()).select_from(PaymentListing)) == PAYMENTS
        timings["seed"] = time.monotonic() - t

        headers = bearer(pay.settings, str(uuid.uuid4()))
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=pay.url, limits=limits, timeout=30) as http:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def pay_for(listing_id: uuid.UUID) -> int:
                async with gate:
                    response = await http.post(
                        "/api/payments",
                        json={
                            "listing_id": str(listing_id),
                            "amount_minor": prices[listing_id],
                            "currency": "EUR",
                            "card": CARD,
                        },
                        headers=headers | {"Idempotency-Key": str(uuid.uuid4())},
                    )
                    return response.status_code

            t = time.monotonic()
            before = await asyncio.gather(*(pay_for(i) for i in ids[:KILL_AFTER]))
            timings[f"{KILL_AFTER} payments"] = time.monotonic() - t
            await asyncio.to_thread(broker.kill)  # SIGKILL: beam, its helpers, its epmd
            t = time.monotonic()
            during = await asyncio.gather(*(pay_for(i) for i in ids[KILL_AFTER:]))
            timings[f"{PAYMENTS - KILL_AFTER} payments, broker dead"] = time.monotonic() - t
            assert before + during == [201] * PAYMENTS  # the API kept answering through the outage
            backlog = await count(pay, UNSENT)
            sold_while_down = await count(market, SOLD)
            ready = await http.get("/readyz")  # the outage was real, and only degrades payment-svc
            assert ready.status_code == 200
            assert ready.json()["degraded"] == ["rabbitmq"]

        t = time.monotonic()
        await asyncio.to_thread(broker.start)  # same ports, same data directory
        timings["broker restart"] = time.monotonic() - t
        t = time.monotonic()
        progress: dict[str, Any] = {}

        async def settled() -> bool:
            progress["sold"] = await count(market, SOLD)
            progress["unsent"] = await count(pay, UNSENT)
            progress["at_s"] = round(time.monotonic() - t, 1)
            return progress["sold"] == PAYMENTS and progress["unsent"] == 0

        await wait_until(
            settled, 45, "every listing sold and payment-svc's outbox empty", interval=0.25, progress=progress
        )
        timings["drain after restart"] = time.monotonic() - t

        paid_listing = dict(
            await rows(
                pay,
                sa.select(outbox_t.c.event_id, outbox_t.c.envelope["payload"]["listing_id"].astext).where(
                    outbox_t.c.event_type == "payment.succeeded"
                ),
            )
        )
        applied = await rows(
            market, sa.select(processed_t.c.message_id).where(processed_t.c.event_type == "payment.succeeded")
        )
        sold_events = await rows(
            market,
            sa.select(outbox_t.c.envelope["payload"]["id"].astext).where(
                outbox_t.c.event_type == "listing.updated"
            ),
        )
        dead = [
            await queue_depth(access.url(), dead_letter_queue(svc))
            for svc in ("marketplace-svc", "payment-svc")
        ]
        duplicates = await market.metric(
            "messaging_consumed_total", event="payment.succeeded", outcome="duplicate"
        )
    timings["total"] = time.monotonic() - began
    print(
        f"\noutbox backlog at restart: {backlog}, sold before restart: {sold_while_down}, "
        f"redelivered duplicates skipped: {duplicates:.0f}"
    )

    expected = sorted(str(i) for i in ids)
    assert backlog > 0  # the outbox really absorbed the outage...
    assert sold_while_down < PAYMENTS  # ...and delivery really waited for the broker
    assert len(paid_listing) == PAYMENTS
    assert len(applied) == PAYMENTS  # exactly 1,000 payment.succeeded applied
    assert set(applied) == set(paid_listing)  # 0 lost, nothing foreign
    assert sorted(paid_listing[a] for a in applied) == expected  # no listing processed twice
    assert sorted(sold_events) == expected  # each listing went to sold exactly once
    assert dead == [0, 0]
