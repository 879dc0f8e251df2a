"""Idempotent consumption: the handler's work and the processed marker commit together."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.messaging.tables import processed_t


async def mark_processed(session: AsyncSession, message_id: uuid.UUID, event_type: str) -> bool:
    """Insert the marker in the caller's transaction; False when the message was already processed.

    Concurrent duplicates block on the primary key until the first transaction ends, then see the
    conflict, so exactly one of them applies the event.
    """
    stmt = (
        insert(processed_t)
        .values(message_id=message_id, event_type=event_type)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(processed_t.c.message_id)
    )
    result = await session.execute(stmt)
    return result.first() is not None
