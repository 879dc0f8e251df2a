"""Request and response bodies of marketplace-svc."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

Status = Literal["active", "sold"]
#: Status changes an owner may make (anything else but "no change" is 409 invalid_status_transition):
#: a sold listing stays sold.
OWNER_TRANSITIONS = frozenset({("active", "sold")})
#: No NUL characters: PostgreSQL text cannot hold them (the driver would fail the request).
NO_NUL = r"^[^\x00]*$"
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL)]
Description = Annotated[str, Field(max_length=5000, pattern=NO_NUL)]
#: The highest price in minor units (10^12: far below PostgreSQL's BIGINT, so any bound is safe).
MAX_PRICE_MINOR = 10**12
#: Integer amount in the currency's minor unit (e.g. cents): at least 1 (a listing is paid for), at
#: most :data:`MAX_PRICE_MINOR`.
PriceMinor = Annotated[int, Field(ge=1, le=MAX_PRICE_MINOR, strict=True)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]


class ListingCreate(BaseModel):
    """``POST /listings``: the owner is the caller (from the access token), never the body."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    price_minor: PriceMinor
    currency: Currency


class ListingUpdate(BaseModel):
    """``PATCH /listings/{id}``: only the fields given change; give at least one, none of them null."""

    # The schema says both (minProperties, no null type); None is only the "not given" default here,
    # and a null that is given is refused by the validator below.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    price_minor: PriceMinor | SkipJsonSchema[None] = None
    currency: Currency | SkipJsonSchema[None] = None
    status: Status | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_empty(self) -> ListingUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null")
        return self


class ListingOut(BaseModel):
    """A listing as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    price_minor: int
    currency: str
    status: Status
    created_at: datetime
    updated_at: datetime
    sold_at: datetime | None = None


class SearchParams(BaseModel):
    """``GET /listings`` query: filters and limit/offset pagination."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[
        str | None, Field(max_length=200, pattern=NO_NUL, description="matches title or description")
    ] = None
    min_price: Annotated[
        int | None, Field(ge=0, le=MAX_PRICE_MINOR, description="lowest price_minor; not above max_price")
    ] = None
    max_price: Annotated[
        int | None, Field(ge=0, le=MAX_PRICE_MINOR, description="highest price_minor; not below min_price")
    ] = None
    status: Status | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=10_000)] = 0

    @model_validator(mode="after")
    def _price_range(self) -> SearchParams:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price is above max_price")
        return self


class ListingPage(BaseModel):
    """One page of search results and the total number of matches."""

    items: list[ListingOut]
    total: int
    limit: int
    offset: int
