"""Listing queries and writes; every write queues its event in the same transaction (outbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace_svc.events import ListingCreated, ListingDeleted, ListingUpdated
from marketplace_svc.models import Listing
from marketplace_svc.schemas import ListingCreate, ListingOut, ListingPage, SearchParams

PRODUCER = "marketplace-svc"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(params: SearchParams) -> Select[Any]:
    query = select(Listing)
    if params.q:
        pattern = f"%{_escape_like(params.q)}%"
        query = query.where(
            or_(Listing.title.ilike(pattern, escape="\\"), Listing.description.ilike(pattern, escape="\\"))
        )
    if params.min_price is not None:
        query = query.where(Listing.price_minor >= params.min_price)
    if params.max_price is not None:
        query = query.where(Listing.price_minor <= params.max_price)
    if params.status is not None:
        query = query.where(Listing.status == params.status)
    return query


async def search(session: AsyncSession, params: SearchParams) -> ListingPage:
    """One page of matches, newest first, and the total number of matches."""
    query = _filtered(params)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Listing.created_at.desc(), Listing.id.desc()).limit(params.limit).offset(params.offset)
    )
    return ListingPage(
        items=[ListingOut.model_validate(row) for row in rows],
        total=int(total or 0),
        limit=params.limit,
        offset=params.offset,
    )


async def create(session: AsyncSession, owner_id: uuid.UUID, body: ListingCreate) -> Listing:
    """Insert a listing owned by *owner_id* and queue ``listing.created``; the caller commits."""
    now = datetime.now(UTC)
    listing = Listing(id=uuid.uuid4(), owner_id=owner_id, status="active", created_at=now, updated_at=now)
    for name, value in body.model_dump().items():
        setattr(listing, name, value)
    session.add(listing)
    await session.flush()
    await publish_in_transaction(session, new_event(ListingCreated.of(listing), producer=PRODUCER))
    return listing


async def lock(session: AsyncSession, listing_id: uuid.UUID) -> Listing | None:
    """The listing, row-locked for the rest of the transaction."""
    return await session.scalar(select(Listing).where(Listing.id == listing_id).with_for_update())


async def apply_changes(session: AsyncSession, listing: Listing, changes: dict[str, Any]) -> bool:
    """Apply *changes* and queue ``listing.updated`` if anything changed; the caller commits."""
    changed = {k: v for k, v in changes.items() if getattr(listing, k) != v}
    if not changed:
        return False
    now = datetime.now(UTC)
    for name, value in changed.items():
        setattr(listing, name, value)
    if "status" in changed:
        listing.sold_at = now if changed["status"] == "sold" else None
    listing.updated_at = now
    await session.flush()
    await publish_in_transaction(session, new_event(ListingUpdated.of(listing), producer=PRODUCER))
    return True


async def delete(session: AsyncSession, listing: Listing) -> None:
    """Delete *listing* and queue ``listing.deleted``; the caller commits."""
    deleted = {"status": "deleted", "updated_at": datetime.now(UTC)}
    last_state = ListingDeleted.of(listing).model_copy(update=deleted)
    await session.delete(listing)
    await session.flush()
    await publish_in_transaction(session, new_event(last_state, producer=PRODUCER))
