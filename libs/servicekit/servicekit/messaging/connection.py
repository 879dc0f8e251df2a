"""A robust RabbitMQ connection that the app can start while the broker is still down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from servicekit.logging import get_logger
from servicekit.settings import Settings

OnConnected = Callable[[AbstractRobustConnection], Awaitable[None]]
#: Seconds between reconnection attempts (aio-pika's robust connection and our first connect).
RECONNECT_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 3.0


class Broker:
    """Owns the service's one AMQP connection.

    :meth:`start` returns at once; a background task connects (retrying with backoff) and then runs
    the ``on_connected`` callbacks once (consumers, ...). After that aio-pika's robust connection
    reconnects by itself and restores channels and consumers.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: AbstractRobustConnection | None = None
        self._on_connected: list[OnConnected] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.log = get_logger("servicekit.broker")

    def on_connected(self, callback: OnConnected) -> None:
        """Run *callback* once the first connection is up."""
        self._on_connected.append(callback)

    async def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._connect_loop(), name="servicekit-broker-connect")

    async def _connect_loop(self) -> None:
        delay = 0.2
        s = self.settings
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    host=s.rabbitmq_host or "localhost",
                    port=s.rabbitmq_port,
                    login=s.rabbitmq_user or "guest",
                    password=s.rabbitmq_password.get_secret_value(),
                    virtualhost=s.rabbitmq_vhost,
                    timeout=CONNECT_TIMEOUT_S,
                    reconnect_interval=RECONNECT_INTERVAL_S,
                    client_properties={"connection_name": s.service_name},
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("rabbitmq_connect_failed", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.log.info("rabbitmq_connected")
        for callback in self._on_connected:
            await callback(self.connection)
        self._ready.set()

    @property
    def is_connected(self) -> bool:
        """True while the connection is open (False during an outage and reconnection)."""
        conn = self.connection
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    async def wait_ready(self, limit_s: float | None = None) -> None:
        """Wait until connected and the ``on_connected`` callbacks ran."""
        await asyncio.wait_for(self._ready.wait(), limit_s)

    async def channel(
        self, *, publisher_confirms: bool = True, on_return_raises: bool = False
    ) -> AbstractChannel:
        """A new (robust) channel; waits for the first connection."""
        if self.connection is None:
            await self._ready.wait()
        assert self.connection is not None
        return await self.connection.channel(
            publisher_confirms=publisher_confirms, on_return_raises=on_return_raises
        )

    async def close(self) -> None:
        """Stop connecting and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
