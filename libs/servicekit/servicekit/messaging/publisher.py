"""Publishing events: persistent messages, mandatory routing, waiting for publisher confirms."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aio_pika.exceptions import DeliveryError, PublishError

from servicekit.messaging.connection import Broker
from servicekit.messaging.envelope import Envelope
from servicekit.metrics import Metrics

EVENTS_EXCHANGE = "events"
RETRY_EXCHANGE = "events.retry"
REDELIVER_EXCHANGE = "events.redeliver"
DLX_EXCHANGE = "events.dlx"
ATTEMPT_HEADER = "x-attempt"
#: Seconds to wait for the broker's confirm before treating a publish as failed.
CONFIRM_TIMEOUT_S = 5.0


class PublishFailed(Exception):  # noqa: N818 - reads as an outcome
    """The broker did not confirm the message (down, nack, timeout); safe to retry."""


class Unroutable(PublishFailed):
    """The broker returned a mandatory message: no queue is bound for its routing key."""


def build_message(
    envelope: Envelope, *, attempt: int = 1, headers: dict[str, Any] | None = None
) -> aio_pika.Message:
    """A persistent JSON message carrying the envelope and the ``x-attempt`` header."""
    return aio_pika.Message(
        body=envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.id),
        type=envelope.type,
        app_id=envelope.producer,
        timestamp=envelope.occurred_at,
        headers={**(headers or {}), ATTEMPT_HEADER: attempt},
    )


async def publish_confirmed(
    channel: AbstractChannel, exchange: str, message: aio_pika.Message, routing_key: str
) -> None:
    """Publish on a confirm-mode channel; raise :class:`Unroutable`/:class:`PublishFailed` unless acked."""
    target: AbstractExchange = await channel.get_exchange(exchange, ensure=False)
    try:
        await target.publish(message, routing_key=routing_key, mandatory=True, timeout=CONFIRM_TIMEOUT_S)
    except PublishError as exc:
        raise Unroutable(f"no queue bound for '{routing_key}' on '{exchange}'") from exc
    except (DeliveryError, TimeoutError) as exc:
        raise PublishFailed(f"broker did not confirm '{routing_key}': {exc!r}") from exc
    except Exception as exc:  # connection/channel errors while the broker is away
        raise PublishFailed(f"publish of '{routing_key}' failed: {exc!r}") from exc


class Publisher:
    """Publishes envelopes to the ``events`` exchange with the event type as routing key."""

    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.broker = broker
        self.metrics = metrics
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def _get_channel(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel  # the common case: no lock
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                if not self.broker.is_connected:
                    raise PublishFailed("not connected to RabbitMQ")
                self._channel = await self.broker.channel(publisher_confirms=True, on_return_raises=True)
            return self._channel

    async def publish(self, envelope: Envelope) -> None:
        """Publish now and wait for the confirm. Prefer the outbox for events tied to a DB change."""
        try:
            channel = await self._get_channel()
        except PublishFailed:
            raise
        except Exception as exc:
            raise PublishFailed(f"cannot open a channel: {exc!r}") from exc
        await publish_confirmed(channel, EVENTS_EXCHANGE, build_message(envelope), envelope.type)
        self.metrics.count_published(envelope.type)

    async def close(self) -> None:
        """Close the publishing channel."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
