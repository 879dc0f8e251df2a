"""Consumed events: ``payment.succeeded`` marks the listing sold (idempotent via servicekit)."""

from __future__ import annotations

from collections.abc import Callable

from servicekit.cache import Cache
from servicekit.logging import get_logger
from servicekit.messaging.consumer import EventHandlers
from servicekit.messaging.envelope import Envelope
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace_svc.core import listings
from marketplace_svc.core.cache_keys import invalidate_after_commit
from marketplace_svc.events import PaymentSucceeded


def build_handlers(get_cache: Callable[[], Cache | None]) -> EventHandlers:
    """The service's event handlers; *get_cache* returns the running app's cache (or None)."""
    handlers = EventHandlers()
    log = get_logger("marketplace_svc.events")

    @handlers.on("payment.succeeded")
    async def mark_sold(event: Envelope, session: AsyncSession) -> None:
        paid = event.parse(PaymentSucceeded)
        listing = await listings.lock(session, paid.listing_id)
        if listing is None:
            # Deleted meanwhile: nothing to mark; retrying cannot bring it back.
            log.warning("payment_for_unknown_listing", listing_id=str(paid.listing_id))
            return
        if await listings.apply_changes(session, listing, {"status": "sold"}):
            cache = get_cache()
            if cache is not None:
                invalidate_after_commit(session, cache, listing.id)
            log.info("listing_sold", listing_id=str(listing.id), payment_id=str(paid.payment_id))

    return handlers
