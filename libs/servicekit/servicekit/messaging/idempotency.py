"""Idempotent consumption: the handler's work and the processed marker commit together."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.messaging.tables import processed_t

#: ``INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING message_id``, built once (its compiled
#: form is cached by SQLAlchemy and prepared once per connection by asyncpg).
MARK_PROCESSED = (
    insert(processed_t)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(processed_t.c.message_id)
)

#: The same statement as driver SQL (asyncpg's ``$n`` parameters), for :func:`begin_and_mark`.
MARK_PROCESSED_SQL = (
    "INSERT INTO processed_messages (message_id, event_type) VALUES ($1, $2) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)


async def mark_processed(session: AsyncSession, message_id: uuid.UUID, event_type: str) -> bool:
    """Insert the marker in the caller's transaction; False when the message was already processed.

    Concurrent duplicates block on the primary key until the first transaction ends, then see the
    conflict, so exactly one of them applies the event.
    """
    result = await session.execute(MARK_PROCESSED, {"message_id": message_id, "event_type": event_type})
    return result.first() is not None


def begin_and_mark(connection: Connection, message_id: uuid.UUID, event_type: str) -> bool:
    """Begin a transaction on *connection* and insert the marker in it (sync, for ``run_sync``).

    Same contract as :func:`mark_processed`, in one greenlet hop. The statement is driver SQL: no
    compilation or cache lookup, but SQLAlchemy still wraps its errors and invalidates the pool when
    the connection turns out to be dead.
    """
    connection.begin()
    result = connection.exec_driver_sql(MARK_PROCESSED_SQL, (message_id, event_type))
    return result.first() is not None
