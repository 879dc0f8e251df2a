"""Attack: card testing (issue 11, item 8).

A fraudster checks stolen card numbers by paying small amounts: many cards from one account, or one
card from many accounts, reading the detailed decline code to learn which cards are alive. Attempts
are now limited per buyer and per card (fingerprint) and the decline code a client sees is generic;
the sandbox keeps a bounded number of results. Runs a second app instance with low limits on the
session's real PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from payment_svc.main import create_app
from payment_svc.processor import Card, SandboxProcessor
from servicekit.testing import app_client

from .test_payments_routes import APPROVE, INSUFFICIENT, pay, pay_body

LIMIT = 3


def luhn_card(prefix: str = "4") -> str:
    """A random 16-digit number that passes the Luhn check (the sandbox approves it)."""
    digits = [int(d) for d in prefix] + [random.randrange(10) for _ in range(15 - len(prefix))]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if i % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


@pytest.fixture
async def strict(payment_settings: Any) -> AsyncIterator[Any]:
    """A client of an app whose limits are LIMIT attempts per buyer and per card."""
    settings = payment_settings.model_copy(
        update={"payment_attempts_per_buyer": LIMIT, "payment_attempts_per_card": LIMIT}
    )
    async with app_client(create_app(settings)) as client:
        yield client


async def test_many_cards_from_one_account_are_limited(strict, auth, seed_listing) -> None:
    buyer = auth(uuid.uuid4())
    statuses = []
    for _ in range(LIMIT + 2):
        card = {**APPROVE, "number": "4000000000000002" if len(statuses) % 2 else luhn_card()}
        listing = await seed_listing(uuid.uuid4())
        statuses.append((await pay(strict, buyer, pay_body(listing, card), str(uuid.uuid4()))).status_code)
    assert statuses[:LIMIT] == [201, 402, 201][:LIMIT]
    assert statuses[LIMIT:] == [429, 429]


async def test_one_card_from_many_accounts_is_limited(strict, auth, seed_listing) -> None:
    card = {**APPROVE, "number": luhn_card()}
    statuses = []
    for _ in range(LIMIT + 1):
        listing = await seed_listing(uuid.uuid4())
        r = await pay(strict, auth(uuid.uuid4()), pay_body(listing, card), str(uuid.uuid4()))
        statuses.append(r.status_code)
    assert statuses == [201] * LIMIT + [429]
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "too_many_payment_attempts"


async def test_a_decline_does_not_say_why(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing, INSUFFICIENT), str(uuid.uuid4()))
    assert (r.status_code, r.json()["decline_code"]) == (402, "card_declined")


async def test_the_sandbox_keeps_a_bounded_number_of_results() -> None:
    processor = SandboxProcessor(max_results=100)
    card = Card(number=APPROVE["number"], exp_month=12, exp_year=2099, cvc="123")
    first = await processor.charge(100, "EUR", card, "key-0")
    for n in range(1, 1000):
        await processor.charge(100, "EUR", card, f"key-{n}")
    assert processor.kept <= 100
    assert await processor.charge(100, "EUR", card, "key-999") == await processor.charge(
        100, "EUR", card, "key-999"
    )  # a recent key is still answered from memory
    assert first.approved
