"""Consuming events: manual acks, prefetch, retries through the retry queues, dead-lettering.

Per docs/architecture.md: a delivery carries ``x-attempt`` (1 on first publish). On failure the
consumer republishes to ``events.retry`` with key ``<svc>.retry.<attempt>`` and ``x-attempt + 1``,
then acks the original; once ``x-attempt`` reaches ``len(retryDelaysMs) + 1`` it publishes to
``events.dlx`` with key ``<svc>`` instead. A malformed message, an event without a handler or a
payload that fails validation goes to the DLQ at once (retrying cannot fix it).

Handlers registered with :meth:`EventHandlers.add` / ``on`` run inside one database transaction
together with the ``processed_messages`` marker, so a redelivered message is applied once (acked and
counted as ``duplicate``). Handlers must not commit. Handlers registered with ``add_without_db`` /
``on_without_db`` get only the event: no transaction, no marker, so they see every delivery
(at-least-once) and must be idempotent themselves (cache invalidation, fan-out to websockets...).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.logging import get_logger, reset_request_id, set_request_id
from servicekit.messaging.envelope import Envelope
from servicekit.messaging.idempotency import begin_and_mark, mark_processed
from servicekit.messaging.publisher import (
    ATTEMPT_HEADER,
    DLX_EXCHANGE,
    RETRY_EXCHANGE,
    PublishFailed,
    publish_confirmed,
)
from servicekit.metrics import Metrics

Handler = Callable[[Envelope, AsyncSession], Awaitable[None]]
#: A handler that needs no database: it gets the event only and must be idempotent itself.
PlainHandler = Callable[[Envelope], Awaitable[None]]
#: Failures of the service's own infrastructure (database unreachable): the message is requeued
#: without spending one of its attempts, so an outage longer than the retry delays loses nothing.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError, TimeoutError)
#: Seconds to wait before requeueing after a transient failure.
TRANSIENT_BACKOFF_S = 1.0


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble rather than a handler bug: requeue without spending an attempt.

    Includes any driver error on a connection that turned out to be dead (the database restarted
    while it sat in the pool): SQLAlchemy flags those ``connection_invalidated``.
    """
    return isinstance(exc, TRANSIENT_ERRORS) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the message goes straight to the DLQ."""


@dataclass(frozen=True)
class Route:
    """The handler of one event type and whether it runs in a transaction with the marker."""

    handler: Handler | PlainHandler
    in_transaction: bool


class EventHandlers:
    """Event type -> handler. ``@handlers.on("payment.succeeded")`` registers one."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Decorator registering a transactional, idempotent *handler* for *event_type*."""

        def decorate(handler: Handler) -> Handler:
            self.add(event_type, handler)
            return handler

        return decorate

    def on_without_db(self, event_type: str) -> Callable[[PlainHandler], PlainHandler]:
        """Decorator registering a database-free, at-least-once *handler* for *event_type*."""

        def decorate(handler: PlainHandler) -> PlainHandler:
            self.add_without_db(event_type, handler)
            return handler

        return decorate

    def add(self, event_type: str, handler: Handler) -> None:
        """Register *handler* for *event_type*: it runs in a transaction with the processed marker."""
        self._add(event_type, Route(handler, in_transaction=True))

    def add_without_db(self, event_type: str, handler: PlainHandler) -> None:
        """Register *handler* for *event_type*: no transaction, no marker, every delivery reaches it."""
        self._add(event_type, Route(handler, in_transaction=False))

    def _add(self, event_type: str, route: Route) -> None:
        if event_type in self._routes:
            raise ValueError(f"a handler for '{event_type}' is already registered")
        self._routes[event_type] = route

    def get(self, event_type: str) -> Handler | PlainHandler | None:
        """The handler of *event_type*, if any."""
        route = self._routes.get(event_type)
        return route.handler if route is not None else None

    def route(self, event_type: str) -> Route | None:
        """The handler of *event_type* and how it runs, if any."""
        return self._routes.get(event_type)

    @property
    def event_types(self) -> list[str]:
        """Event types with a handler, sorted."""
        return sorted(self._routes)

    @property
    def needs_database(self) -> bool:
        """True when some handler runs in a transaction (and so needs a sessionmaker)."""
        return any(route.in_transaction for route in self._routes.values())

    def __bool__(self) -> bool:
        return bool(self._routes)


def queue_name(service: str) -> str:
    """The consumer queue of *service*."""
    return f"{service}.events"


class Consumer:
    """Consumes ``<svc>.events`` and dispatches each event to its handler.

    *sessionmaker* may be ``None`` only when every handler was registered ``without_db``.
    """

    def __init__(
        self,
        service: str,
        handlers: EventHandlers,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
        metrics: Metrics,
        *,
        retry_delays_ms: list[int],
        prefetch: int = 10,
    ) -> None:
        if sessionmaker is None and handlers.needs_database:
            raise ValueError(f"{service}: transactional event handlers need a sessionmaker")
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
        route = self.handlers.route(event_type)
        if route is None:
            await self._dead_letter(message, event_type, attempt, f"no handler for '{event_type}'")
            return
        fresh = True
        try:
            if route.in_transaction:
                fresh = await self._apply_once(envelope, route.handler)  # type: ignore[arg-type]
            else:
                await route.handler(envelope)  # type: ignore[call-arg]
        except (PermanentError, ValidationError) as exc:
            self.log.warning(
                "event_rejected", event_type=event_type, event_id=str(envelope.id), error=str(exc)
            )
            await self._dead_letter(message, event_type, attempt, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            if is_transient(exc):
                self.log.warning(
                    "event_requeued", event_type=event_type, event_id=str(envelope.id), error=f"{exc!r}"[:300]
                )
                await asyncio.sleep(TRANSIENT_BACKOFF_S)
                await message.nack(requeue=True)
                return
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

    async def _apply_once(self, envelope: Envelope, handler: Handler) -> bool:
        """Marker + handler in one transaction, committed before the caller acks; False = duplicate.

        The marker goes through the pooled connection directly; the handler's session joins that
        connection's transaction, so it costs nothing unless the handler uses it. The session never
        commits the transaction itself (a handler's ``commit()`` only flushes); this method does.
        """
        assert self.sessionmaker is not None
        engine = self.sessionmaker.kw.get("bind")
        if not isinstance(engine, AsyncEngine):  # e.g. a sessionmaker with several binds
            async with self.sessionmaker() as session, session.begin():
                fresh = await mark_processed(session, envelope.id, envelope.type)
                if fresh:
                    await handler(envelope, session)
            return fresh
        async with engine.connect() as conn:
            fresh = await conn.run_sync(begin_and_mark, envelope.id, envelope.type)
            if fresh:
                session = self.sessionmaker(bind=conn, join_transaction_mode="rollback_only")
                try:
                    await handler(envelope, session)
                    if session.in_transaction() or session.new or session.dirty or session.deleted:
                        await session.commit()  # flushes; the connection's transaction stays open
                finally:
                    if session.in_transaction():
                        await session.close()
            await conn.commit()
        return fresh

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
        # The first hop records the publisher's routing key; later hops arrive with the redelivery key.
        headers.setdefault("x-original-routing-key", message.routing_key or "")
        if error is not None:
            headers["x-error"] = error
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
