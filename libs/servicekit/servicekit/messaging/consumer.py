"""Consuming events: manual acks, prefetch, retries through the retry queues, dead-lettering.

Per docs/architecture.md: a delivery carries ``x-attempt`` (1 on first publish). On failure the
consumer republishes to ``events.retry`` with key ``<svc>.retry.<attempt>`` and ``x-attempt + 1``,
then acks the original; once ``x-attempt`` reaches ``len(retryDelaysMs) + 1`` it publishes to
``events.dlx`` with key ``<svc>`` instead. A malformed message, an event without a handler or a
payload that fails validation goes to the DLQ at once (retrying cannot fix it).

Handlers run inside one database transaction together with the ``processed_messages`` marker, so a
redelivered message is applied once (acked and counted as ``duplicate``). Handlers must not commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.logging import get_logger, reset_request_id, set_request_id
from servicekit.messaging.envelope import Envelope
from servicekit.messaging.idempotency import mark_processed
from servicekit.messaging.publisher import (
    ATTEMPT_HEADER,
    DLX_EXCHANGE,
    RETRY_EXCHANGE,
    PublishFailed,
    publish_confirmed,
)
from servicekit.metrics import Metrics

Handler = Callable[[Envelope, AsyncSession], Awaitable[None]]
#: Failures of the service's own infrastructure (database unreachable): the message is requeued
#: without spending one of its attempts, so an outage longer than the retry delays loses nothing.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError, TimeoutError)
#: Seconds to wait before requeueing after a transient failure.
TRANSIENT_BACKOFF_S = 1.0


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the message goes straight to the DLQ."""


class EventHandlers:
    """Event type -> handler. ``@handlers.on("payment.succeeded")`` registers one."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Decorator registering *handler* for *event_type*."""

        def decorate(handler: Handler) -> Handler:
            self.add(event_type, handler)
            return handler

        return decorate

    def add(self, event_type: str, handler: Handler) -> None:
        """Register *handler* for *event_type* (one handler per type)."""
        if event_type in self._handlers:
            raise ValueError(f"a handler for '{event_type}' is already registered")
        self._handlers[event_type] = handler

    def get(self, event_type: str) -> Handler | None:
        """The handler of *event_type*, if any."""
        return self._handlers.get(event_type)

    @property
    def event_types(self) -> list[str]:
        """Event types with a handler, sorted."""
        return sorted(self._handlers)

    def __bool__(self) -> bool:
        return bool(self._handlers)


def queue_name(service: str) -> str:
    """The consumer queue of *service*."""
    return f"{service}.events"


class Consumer:
    """Consumes ``<svc>.events`` and dispatches each event to its handler."""

    def __init__(
        self,
        service: str,
        handlers: EventHandlers,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: Metrics,
        *,
        retry_delays_ms: list[int],
        prefetch: int = 10,
    ) -> None:
        self.service = service
        self.handlers = handlers
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.max_attempts = len(retry_delays_ms) + 1
        self.prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self.log = get_logger("servicekit.consumer")

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open a channel, set the prefetch and start consuming (restored on reconnect by aio-pika)."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await self._channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await self._channel.get_queue(queue_name(self.service), ensure=True)
        self._tag = await self._queue.consume(self._on_message, no_ack=False)
        self.log.info("consumer_started", queue=self._queue.name, events=self.handlers.event_types)

    async def stop(self) -> None:
        """Stop consuming, let in-flight messages finish (briefly), close the channel."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        token = set_request_id(message.message_id)
        try:
            await self.handle(message)
        except Exception:
            # A bug in servicekit itself: leave the message to be redelivered, never lose it.
            self.log.exception("consumer_failed", message_id=message.message_id)
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            reset_request_id(token)
            if task is not None:
                self._inflight.discard(task)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Process one delivery to its end: ack, retry or dead-letter."""
        attempt = _attempt(message)
        event_type = message.type or message.routing_key or "unknown"
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(message, event_type, attempt, f"malformed envelope: {exc.errors()[:3]}")
            return
        event_type = envelope.type
        handler = self.handlers.get(envelope.type)
        if handler is None:
            await self._dead_letter(message, event_type, attempt, f"no handler for '{envelope.type}'")
            return
        try:
            async with self.sessionmaker() as session, session.begin():
                fresh = await mark_processed(session, envelope.id, envelope.type)
                if fresh:
                    await handler(envelope, session)
        except TRANSIENT_ERRORS as exc:
            self.log.warning(
                "event_requeued", event_type=event_type, event_id=str(envelope.id), error=f"{exc!r}"[:300]
            )
            await asyncio.sleep(TRANSIENT_BACKOFF_S)
            await message.nack(requeue=True)
            return
        except (PermanentError, ValidationError) as exc:
            self.log.warning(
                "event_rejected", event_type=event_type, event_id=str(envelope.id), error=str(exc)
            )
            await self._dead_letter(message, event_type, attempt, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            self.log.warning(
                "event_handler_failed",
                event_type=event_type,
                event_id=str(envelope.id),
                attempt=attempt,
                error=f"{type(exc).__name__}: {exc}",
            )
            if attempt >= self.max_attempts:
                await self._dead_letter(message, event_type, attempt, f"{type(exc).__name__}: {exc}")
            else:
                await self._retry(message, event_type, attempt)
            return
        await message.ack()
        self.metrics.count_consumed(event_type, "ok" if fresh else "duplicate")
        if not fresh:
            self.log.info("event_duplicate", event_type=event_type, event_id=str(envelope.id))

    async def _retry(self, message: AbstractIncomingMessage, event_type: str, attempt: int) -> None:
        key = f"{self.service}.retry.{attempt}"
        if await self._republish(message, RETRY_EXCHANGE, key, attempt + 1, None):
            self.metrics.count_consumed(event_type, "retried")

    async def _dead_letter(
        self, message: AbstractIncomingMessage, event_type: str, attempt: int, reason: str
    ) -> None:
        if await self._republish(message, DLX_EXCHANGE, self.service, attempt, reason[:1000]):
            self.metrics.count_consumed(event_type, "dead_lettered")
            self.log.error("event_dead_lettered", event_type=event_type, attempt=attempt, reason=reason[:300])

    async def _republish(
        self, message: AbstractIncomingMessage, exchange: str, key: str, attempt: int, error: str | None
    ) -> bool:
        headers = {k: v for k, v in (message.headers or {}).items() if k not in ("x-death", ATTEMPT_HEADER)}
        if error is not None:
            headers["x-error"] = error
            headers["x-original-routing-key"] = message.routing_key or ""
        copy = aio_pika.Message(
            body=message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
            app_id=message.app_id,
            timestamp=message.timestamp,
            headers={**headers, ATTEMPT_HEADER: attempt},
        )
        assert self._channel is not None
        try:
            await publish_confirmed(self._channel, exchange, copy, key)
        except PublishFailed as exc:
            # Not acked: the broker redelivers it once the channel is back.
            self.log.error("event_republish_failed", exchange=exchange, key=key, error=str(exc))
            await asyncio.sleep(1)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return False
        await message.ack()
        return True


def _attempt(message: AbstractIncomingMessage) -> int:
    raw = (message.headers or {}).get(ATTEMPT_HEADER, 1)
    try:
        return max(int(raw), 1)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
