"""Listings: create, search, read (Redis-cached), update and delete (owner only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from servicekit.auth import Principal
from servicekit.errors import Conflict, Forbidden, NotFound, Unauthorized
from servicekit.routing import lean
from sqlalchemy import select

from marketplace_svc.api.deps import CacheDep, CurrentUser, RuntimeDep, SessionDep, reads_of
from marketplace_svc.core import listings
from marketplace_svc.core.cache_keys import invalidate_listing, listing_key, search_key
from marketplace_svc.core.config import ROUTE_PREFIX
from marketplace_svc.models import Listing
from marketplace_svc.schemas import (
    OWNER_TRANSITIONS,
    ListingCreate,
    ListingOut,
    ListingPage,
    ListingUpdate,
    SearchParams,
)

#: The full prefix here rather than nesting under a ``ROUTE_PREFIX`` router: FastAPI matches every
#: level of nesting again on each request.
router = APIRouter(prefix=f"{ROUTE_PREFIX}/listings", tags=["listings"])
#: Statuses the routes raise themselves (servicekit documents 401, 422 and 503 from the dependencies,
#: and fills in the error body): the lean reads have no dependencies, so they declare their 503.
UNAVAILABLE = {503: {"description": "the cache or the database is unavailable; retry later"}}
NOT_FOUND = {404: {"description": "no such listing (listing_not_found)"}}
NOT_OWNER = {403: {"description": "the caller does not own the listing (not_owner)"}}


def _owner(principal: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise Unauthorized("invalid token", code="invalid_token") from exc


def _notify(runtime: Any) -> None:
    if runtime.relay is not None:
        runtime.relay.notify()


def _json(text: str) -> Response:
    """The cache's JSON text as the response body: a hit is neither decoded nor re-validated (the
    cached value was serialised from the route's response model when it was loaded)."""
    return Response(text, media_type="application/json")


@router.post("", status_code=201, response_model=ListingOut)
async def create_listing(
    body: ListingCreate, principal: CurrentUser, session: SessionDep, cache: CacheDep, runtime: RuntimeDep
) -> Listing:
    """Put a listing up for sale; the caller becomes its owner."""
    listing = await listings.create(session, _owner(principal), body)
    await session.commit()
    await invalidate_listing(cache, listing.id)
    _notify(runtime)
    return listing


@router.get("", response_model=ListingPage, responses=UNAVAILABLE)  # type: ignore[arg-type]
@lean
async def search_listings(params: Annotated[SearchParams, Query()], request: Request) -> Response:
    """Search by text, price range and status; newest first, ``limit``/``offset`` with ``total``.

    ``min_price`` above ``max_price`` is 422."""
    reads = reads_of(request)

    async def load() -> ListingPage:
        async with reads.sessions() as session:  # only on a miss: a hit touches no database connection
            return await listings.search(session, params)

    key = await search_key(reads.cache, params.model_dump())
    ttl = reads.settings.search_cache_ttl_seconds
    return _json(await reads.cache.get_or_load_json(key, load, ttl=ttl))


@router.get("/{listing_id}", response_model=ListingOut, responses=NOT_FOUND | UNAVAILABLE)  # type: ignore[arg-type]
@lean
async def get_listing(listing_id: uuid.UUID, request: Request) -> Response:
    """One listing (cached; a miss for an unknown id is not cached)."""
    reads = reads_of(request)

    async def load() -> ListingOut:
        async with reads.sessions() as session:  # only on a miss
            row = await session.scalar(select(Listing).where(Listing.id == listing_id))
            if row is None:
                raise NotFound("listing not found", code="listing_not_found")
            return ListingOut.model_validate(row)

    ttl = reads.settings.listing_cache_ttl_seconds
    return _json(await reads.cache.get_or_load_json(listing_key(listing_id), load, ttl=ttl))


async def _owned(session: SessionDep, listing_id: uuid.UUID, principal: Principal) -> Listing:
    listing = await listings.lock(session, listing_id)
    if listing is None:
        raise NotFound("listing not found", code="listing_not_found")
    if listing.owner_id != _owner(principal):
        raise Forbidden("only the owner may change this listing", code="not_owner")
    return listing


@router.patch(
    "/{listing_id}",
    response_model=ListingOut,
    responses={  # type: ignore[arg-type]
        **NOT_OWNER,
        **NOT_FOUND,
        409: {"description": "a sold listing stays sold (invalid_status_transition)"},
    },
)
async def update_listing(
    listing_id: uuid.UUID,
    body: ListingUpdate,
    principal: CurrentUser,
    session: SessionDep,
    cache: CacheDep,
    runtime: RuntimeDep,
) -> Listing:
    """Change some fields (owner only, else 403); publishes ``listing.updated`` when anything changed.

    The status moves only from ``active`` to ``sold`` (``OWNER_TRANSITIONS``): a sold listing stays
    sold (409 ``invalid_status_transition``).
    """
    listing = await _owned(session, listing_id, principal)
    moves = body.status is not None and body.status != listing.status
    if moves and (listing.status, body.status) not in OWNER_TRANSITIONS:
        raise Conflict(
            f"a listing cannot go from '{listing.status}' to '{body.status}'",
            code="invalid_status_transition",
        )
    changed = await listings.apply_changes(session, listing, body.model_dump(exclude_unset=True))
    await session.commit()
    if changed:
        await invalidate_listing(cache, listing_id)
        _notify(runtime)
    return listing


@router.delete(
    "/{listing_id}",
    status_code=204,
    response_class=Response,
    responses=NOT_OWNER | NOT_FOUND,  # type: ignore[arg-type]
)
async def delete_listing(
    listing_id: uuid.UUID, principal: CurrentUser, session: SessionDep, cache: CacheDep, runtime: RuntimeDep
) -> Response:
    """Delete a listing (owner only, else 403); publishes ``listing.deleted``."""
    listing = await _owned(session, listing_id, principal)
    await listings.delete(session, listing)
    await session.commit()
    await invalidate_listing(cache, listing_id)
    _notify(runtime)
    return Response(status_code=204)
