"""Request/response bodies and event payloads of payment-svc."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from payment_svc.processor import Card, PaymentMethod, Token

GENERIC_DECLINE = "card_declined"


#: 12-19 digits, spaces and dashes anywhere (the validator drops them).
CARD_NUMBER = r"^[ -]*(?:[0-9][ -]*){12,19}$"


class CardIn(BaseModel):
    """Card details. The number is used for the charge and dropped; only last4 is stored.

    A card whose expiry month has passed is 422 (the schema cannot compare with today)."""

    model_config = ConfigDict(extra="forbid")

    number: Annotated[str, Field(min_length=12, max_length=23, pattern=CARD_NUMBER)]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    cvc: Annotated[str, Field(pattern=r"^[0-9]{3,4}$")]

    @field_validator("number")
    @classmethod
    def _digits(cls, value: str) -> str:
        digits = value.replace(" ", "").replace("-", "")
        if not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise ValueError("card number must be 12-19 digits")
        return digits

    @model_validator(mode="after")
    def _not_expired(self) -> CardIn:
        now = datetime.now(UTC)
        if (self.exp_year, self.exp_month) < (now.year, now.month):
            raise ValueError("card has expired")
        return self

    def __repr__(self) -> str:
        return f"CardIn(last4={self.number[-4:]!r})"


#: Integer amount in the currency's minor unit (cents), as marketplace-svc prices listings.
AmountMinor = Annotated[int, Field(ge=1, le=10**12, strict=True)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class PaymentCreate(BaseModel):
    """Pay for a listing, at the price the buyer saw, with either a card or a provider token
    (exactly one of the two: the schema's ``oneOf``)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["card"]}, {"required": ["token"]}]}
    )

    listing_id: uuid.UUID
    amount_minor: AmountMinor = Field(
        description="the listing's price as the buyer saw it; another price now is 409 price_changed"
    )
    currency: Currency = Field(description="the currency of that price")
    card: CardIn | SkipJsonSchema[None] = None
    token: Annotated[str, Field(min_length=1, max_length=255)] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _exactly_one_method(self) -> PaymentCreate:
        if (self.card is None) == (self.token is None):
            raise ValueError("give exactly one of 'card' or 'token'")
        return self

    def method(self) -> PaymentMethod:
        """The processor-level payment method."""
        if self.card is not None:
            c = self.card
            return Card(number=c.number, exp_month=c.exp_month, exp_year=c.exp_year, cvc=c.cvc)
        assert self.token is not None
        return Token(self.token)

    def canonical(self) -> str:
        """A canonical serialization used (through an HMAC) as the request fingerprint."""
        return self.model_dump_json(exclude_none=True)

    def __repr__(self) -> str:
        return f"PaymentCreate(listing_id={self.listing_id}, card={self.card!r}, token=***)"


class PaymentOut(BaseModel):
    """A payment as its buyer sees it."""

    model_config = ConfigDict(from_attributes=True)

    @field_validator("decline_code")
    @classmethod
    def _generic_decline(cls, value: str | None) -> str | None:
        """Detailed decline codes (insufficient funds, expired, ...) tell a card tester which stolen
        cards are alive; the client gets one code for every decline."""
        return None if value is None else GENERIC_DECLINE

    id: uuid.UUID
    listing_id: uuid.UUID
    amount_minor: int
    currency: str
    status: Literal["succeeded", "failed"]
    decline_code: str | None = Field(
        description="'card_declined' for any decline: the processor's reason is not disclosed"
    )
    card_last4: str | None
    card_brand: str | None
    created_at: datetime


class PaymentPage(BaseModel):
    """The caller's payments, newest first."""

    items: list[PaymentOut]


class ListingEvent(BaseModel):
    """The part of a listing.created / listing.updated payload payment-svc reads.

    Unknown fields are ignored so the publisher can add fields without breaking this consumer.
    """

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    owner_id: uuid.UUID
    price_minor: Annotated[int, Field(ge=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    status: str
    updated_at: datetime
