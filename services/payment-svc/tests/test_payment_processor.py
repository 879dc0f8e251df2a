"""The sandbox processor: outcome by test card, idempotent per key, never keeps the number."""

from __future__ import annotations

import pytest
from payment_svc.processor import (
    Card,
    PaymentProcessor,
    ProcessorUnavailable,
    SandboxProcessor,
    Token,
    luhn_valid,
)


def card(number: str) -> Card:
    return Card(number=number, exp_month=12, exp_year=2099, cvc="123")


@pytest.mark.parametrize(
    ("number", "approved", "code"),
    [
        ("4242424242424242", True, None),
        ("4000000000000002", False, "card_declined"),
        ("4000000000009995", False, "insufficient_funds"),
        ("4242424242424241", False, "invalid_number"),
    ],
)
async def test_outcome_by_test_card(number: str, approved: bool, code: str | None) -> None:
    result = await SandboxProcessor().charge(1000, "EUR", card(number), "k")
    assert (result.approved, result.decline_code, result.last4) == (approved, code, number[-4:])


async def test_repeated_key_returns_first_result_without_charging_again() -> None:
    processor = SandboxProcessor()
    first = await processor.charge(1000, "EUR", card("4242424242424242"), "same")
    second = await processor.charge(1000, "EUR", card("4242424242424242"), "same")
    assert (second, processor.charges) == (first, 1)


async def test_processor_error_card_raises_unavailable() -> None:
    with pytest.raises(ProcessorUnavailable):
        await SandboxProcessor().charge(1000, "EUR", card("4000000000000119"), "k")


async def test_tokens_approve_and_decline() -> None:
    processor = SandboxProcessor()
    assert (await processor.charge(1, "EUR", Token("tok_visa"), "a")).approved
    assert (
        await processor.charge(1, "EUR", Token("tok_chargeDeclined"), "b")
    ).decline_code == "card_declined"


def test_sandbox_implements_the_protocol() -> None:
    assert isinstance(SandboxProcessor(), PaymentProcessor)


def test_card_repr_hides_the_number() -> None:
    assert "4242424242424242" not in repr(card("4242424242424242"))


def test_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424243")
