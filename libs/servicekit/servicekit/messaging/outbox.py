"""Transactional outbox: events are written with the business change and published by a relay.

``publish_in_transaction(session, event)`` adds a row in the caller's transaction; the
:class:`OutboxRelay` task locks the oldest unsent rows (``FOR UPDATE SKIP LOCKED``, so replicas share
the work), publishes them in ``id`` order with confirms and marks them sent. When the broker is down
it stops at the first failure (keeping order), records the error and retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aio_pika.abc import AbstractChannel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.logging import get_logger
from servicekit.messaging.connection import Broker
from servicekit.messaging.envelope import Envelope
from servicekit.messaging.publisher import (
    EVENTS_EXCHANGE,
    PublishFailed,
    Unroutable,
    build_message,
    publish_confirmed,
)
from servicekit.messaging.tables import outbox_t
from servicekit.metrics import Metrics

#: Seconds between two ``outbox_pending`` counts while the relay is healthy (a query each time).
PENDING_REFRESH_S = 1.0


async def publish_in_transaction(session: AsyncSession, event: Envelope) -> None:
    """Queue *event* in the caller's transaction; it is published only if that transaction commits."""
    await session.execute(
        sa.insert(outbox_t).values(
            event_id=event.id,
            event_type=event.type,
            envelope=event.model_dump(mode="json"),
        )
    )


class OutboxRelay:
    """Background task that drains the outbox to RabbitMQ."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        metrics: Metrics,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.2,
        max_backoff: float = 5.0,
        retention: timedelta = timedelta(days=1),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.retention = retention
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._last_purge = 0.0
        self._last_refresh = float("-inf")
        self.log = get_logger("servicekit.outbox")

    def start(self) -> None:
        """Start the relay loop."""
        self._task = asyncio.create_task(self._run(), name="servicekit-outbox-relay")

    def notify(self) -> None:
        """Poll now instead of at the next interval (e.g. right after a commit)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop the loop and close the channel."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _run(self) -> None:
        backoff = self.poll_interval
        while True:
            try:
                _, more = await self.relay_once()
                backoff = self.poll_interval
                if more:
                    continue
                if asyncio.get_running_loop().time() - self._last_refresh >= PENDING_REFRESH_S:
                    await self._refresh_pending()
                await self._purge_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("outbox_relay_failed", error=str(exc), retry_in_s=round(backoff, 2))
                with contextlib.suppress(Exception):
                    await self._refresh_pending()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def _get_channel(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            if not self.broker.is_connected:
                raise PublishFailed("not connected to RabbitMQ")
            self._channel = await self.broker.channel(publisher_confirms=True, on_return_raises=True)
        return self._channel

    async def relay_once(self) -> tuple[int, bool]:
        """Publish one batch; returns (rows sent, whether a full batch was sent). Raises on failure."""
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(outbox_t.c.id, outbox_t.c.event_type, outbox_t.c.envelope)
                    .where(outbox_t.c.sent_at.is_(None))
                    .order_by(outbox_t.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0, False
            channel = await self._get_channel()
            sent: list[int] = []
            failure: tuple[int, str] | None = None
            for row in rows:
                envelope = Envelope.model_validate(row.envelope)
                try:
                    await publish_confirmed(channel, EVENTS_EXCHANGE, build_message(envelope), envelope.type)
                    self.metrics.count_published(envelope.type)
                except Unroutable:
                    # Nobody consumes this event type: keeping it would block the outbox forever.
                    self.log.warning(
                        "outbox_event_unroutable", event_type=envelope.type, event_id=str(envelope.id)
                    )
                except PublishFailed as exc:
                    failure = (row.id, str(exc))
                    break
                sent.append(row.id)
            now = datetime.now(UTC)
            if sent:
                await session.execute(
                    sa.update(outbox_t)
                    .where(outbox_t.c.id.in_(sent))
                    .values(sent_at=now, attempts=outbox_t.c.attempts + 1)
                )
            if failure is not None:
                await session.execute(
                    sa.update(outbox_t)
                    .where(outbox_t.c.id == failure[0])
                    .values(attempts=outbox_t.c.attempts + 1, last_error=failure[1][:2000])
                )
        if failure is not None:
            raise PublishFailed(failure[1])
        return len(sent), len(rows) == self.batch_size

    async def _refresh_pending(self) -> None:
        self._last_refresh = asyncio.get_running_loop().time()
        async with self.sessionmaker() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(outbox_t).where(outbox_t.c.sent_at.is_(None))
            )
        self.metrics.set_outbox_pending(int(count or 0))

    async def _purge_sent(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_purge < 60:
            return
        self._last_purge = loop.time()
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                sa.delete(outbox_t).where(
                    outbox_t.c.sent_at.is_not(None), outbox_t.c.sent_at < datetime.now(UTC) - self.retention
                )
            )
