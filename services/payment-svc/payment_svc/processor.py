"""The payment-processor adapter: one Protocol, a documented sandbox, chosen by settings.

A real provider (Stripe, Adyen, ...) implements :class:`PaymentProcessor` in its own module and is
added to :func:`build_processor`. The service never sees more than what :class:`ProcessorResult`
carries, and never stores a full card number (only ``last4``).

Sandbox test cards (any future expiry, any 3-4 digit CVC) and tokens:

=====================  ===================  ========================
card number / token    outcome              ``decline_code``
=====================  ===================  ========================
4242424242424242       approved             -
5555555555554444       approved             -
4000000000000002       declined             ``card_declined``
4000000000009995       declined             ``insufficient_funds``
4000000000000069       declined             ``expired_card``
4000000000000119       processor error      raises ``ProcessorUnavailable``
``tok_visa``           approved             -
``tok_chargeDeclined`` declined             ``card_declined``
=====================  ===================  ========================

Any other number that passes the Luhn check is approved; one that fails it is declined with
``invalid_number``. Unknown tokens are declined with ``invalid_token``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Card:
    """Raw card details as received; lives only for the duration of a request."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        """The only part of the number that is ever stored."""
        return self.number[-4:]

    def __repr__(self) -> str:
        return f"Card(last4={self.last4!r})"


@dataclass(frozen=True, slots=True)
class Token:
    """A payment-method token issued by the provider's client-side SDK."""

    value: str


PaymentMethod = Card | Token


@dataclass(frozen=True, slots=True)
class ProcessorResult:
    """The outcome of one charge attempt."""

    approved: bool
    reference: str
    decline_code: str | None = None
    last4: str | None = None
    brand: str | None = None


class ProcessorUnavailable(Exception):  # noqa: N818 - reads better at call sites
    """The processor could not be reached or errored; the outcome is unknown, retrying is safe."""


@runtime_checkable
class PaymentProcessor(Protocol):
    """What the service needs from a payment provider.

    ``idempotency_key`` is forwarded to the provider so that a retry after a timeout never charges
    twice; implementations must return the original result for a repeated key.
    """

    name: str

    async def charge(
        self, amount_minor: int, currency: str, method: PaymentMethod, idempotency_key: str
    ) -> ProcessorResult:
        """Charge ``amount_minor`` (cents) in ``currency``; raise ProcessorUnavailable if unknown."""
        ...


_DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
_ERRORS = {"4000000000000119"}
_TOKENS: dict[str, str | None] = {"tok_visa": None, "tok_chargeDeclined": "card_declined"}


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every real card number satisfies."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    """A best-effort brand from the number's prefix."""
    if not number.isdigit() or len(number) < 4:
        return "unknown"
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


class SandboxProcessor:
    """Deterministic in-process processor for dev, test and staging: outcome by test card/token.

    Like real providers it is idempotent per key: a repeated key returns the first result without a
    second charge, for ``result_ttl_s`` (a day, as providers keep keys) and for the ``max_results``
    most recent keys (memory stays bounded however many attempts are made). ``charges`` counts the
    charges actually made (tests assert on it).
    """

    name = "sandbox"

    def __init__(self, *, max_results: int = 10_000, result_ttl_s: float = 24 * 3600) -> None:
        self._results: OrderedDict[str, tuple[float, ProcessorResult]] = OrderedDict()
        self.max_results = max_results
        self.result_ttl_s = result_ttl_s
        self.charges = 0

    @property
    def kept(self) -> int:
        """How many results are remembered."""
        return len(self._results)

    def _remember(self, key: str, result: ProcessorResult) -> None:
        now = time.monotonic()
        self._results[key] = (now + self.result_ttl_s, result)
        while len(self._results) > self.max_results:
            self._results.popitem(last=False)
        while self._results:
            oldest_key, (expires, _) = next(iter(self._results.items()))
            if expires > now:
                break
            del self._results[oldest_key]

    async def charge(
        self, amount_minor: int, currency: str, method: PaymentMethod, idempotency_key: str
    ) -> ProcessorResult:
        """Approve or decline by test card/token; see the module docstring for the table."""
        known = self._results.get(idempotency_key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        if amount_minor <= 0:
            raise ValueError("amount must be positive")
        reference = "sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if isinstance(method, Token):
            if method.value not in _TOKENS:
                result = ProcessorResult(False, reference, "invalid_token")
            else:
                code = _TOKENS[method.value]
                result = ProcessorResult(code is None, reference, code, last4="4242", brand="visa")
        else:
            number = method.number
            if number in _ERRORS:
                raise ProcessorUnavailable("sandbox: simulated processor error")
            code = _DECLINES.get(number) or (None if luhn_valid(number) else "invalid_number")
            result = ProcessorResult(code is None, reference, code, method.last4, card_brand(number))
        if result.approved:
            self.charges += 1
        self._remember(idempotency_key, result)
        return result


ProcessorName = Literal["sandbox"]


def build_processor(name: str) -> PaymentProcessor:
    """The processor named by settings (``PAYMENT_PROCESSOR``); add real providers here."""
    if name == "sandbox":
        return SandboxProcessor()
    raise ValueError(f"unknown payment processor {name!r}; hint: set PAYMENT_PROCESSOR=sandbox")
