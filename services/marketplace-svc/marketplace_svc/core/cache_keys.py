"""Cache keys of listing reads and their invalidation.

``listing:<id>`` holds one listing. Search results live under ``search:<generation>:<digest>``, the
digest being SHA-256 of the query's canonical JSON (sorted keys, no whitespace): an unambiguous
encoding, so no query text can spell another query's key (``q="x&status=sold"`` once shared the key
of ``q=x&status=sold``). Every write replaces the generation (``search-generation``), so all cached
searches become unreachable at once and expire by TTL, without scanning keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from servicekit.cache import Cache
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

SEARCH_GENERATION = "search-generation"
#: The generation outlives any search entry; it is replaced on every write anyway.
GENERATION_TTL_S = 24 * 3600
_pending: set[asyncio.Task[None]] = set()


def listing_key(listing_id: uuid.UUID) -> str:
    """The cache key of one listing."""
    return f"listing:{listing_id}"


async def search_key(cache: Cache, params: dict[str, Any]) -> str:
    """The cache key of one search, in the current generation."""

    async def new_generation() -> str:
        return uuid.uuid4().hex

    generation = await cache.get_or_load(SEARCH_GENERATION, new_generation, ttl=GENERATION_TTL_S)
    return f"search:{generation}:{search_digest(params)}"


def search_digest(params: dict[str, Any]) -> str:
    """SHA-256 (hex) of the query's canonical JSON; unset (None) parameters are left out."""
    canonical = json.dumps(
        {k: v for k, v in params.items() if v is not None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def invalidate_listing(cache: Cache, listing_id: uuid.UUID) -> None:
    """Drop the listing and every cached search (after the write committed)."""
    await cache.invalidate(listing_key(listing_id), SEARCH_GENERATION)


def invalidate_after_commit(session: AsyncSession, cache: Cache, listing_id: uuid.UUID) -> None:
    """Invalidate once *session*'s transaction commits (for code that does not own the commit)."""

    def on_commit(_: object) -> None:
        task = asyncio.get_running_loop().create_task(invalidate_listing(cache, listing_id))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    event.listen(session.sync_session, "after_commit", on_commit, once=True)
