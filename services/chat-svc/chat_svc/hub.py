"""Live delivery: WebSockets connected to this replica, fed by Redis pub/sub from every replica.

A replica publishes each new message to ``chat-svc:user:<id>`` of both participants. Every replica
subscribes to the channels of the users connected to it (one pub/sub connection per replica) and
writes what arrives to those users' sockets, so delivery works whichever replica took the POST.
Pub/sub is fire-and-forget: a client that was offline catches up with ``GET .../messages``.

Each socket has its own bounded send queue and a task that writes it out: the reader only queues,
so one slow client never delays another's delivery (the reader once awaited each send in turn, up to
its timeout). A client whose queue is full, or whose send does not finish within the send timeout,
is dropped (close 1013 "try again later"; it reconnects and catches up). A socket also closes (4401)
when its session is revoked (:meth:`Hub.revoke`) or its token expires (the route's deadline).

When the replica's Redis connection fails, messages posted meanwhile cannot be delivered live, so
every local socket is closed with 1013 (:data:`REASON_INTERRUPTED`) at once - a client that kept an
open socket would otherwise miss messages silently. Clients reconnect (sockets are refused with 1013
until the subscription is back) and re-fetch with ``GET .../messages``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from servicekit.logging import get_logger
from starlette.websockets import WebSocket

#: Seconds one blocking read on the pub/sub connection waits before looping.
READ_TIMEOUT_S = 1.0
MAX_BACKOFF_S = 5.0
#: The reader pings Redis this often (a failed ping counts as a broken subscription), so a Redis
#: that hangs - not just one that closes the socket - is detected too.
PING_EVERY_S = 2.0
#: Seconds start() waits for the first subscription (Redis may be down: the service starts anyway).
START_WAIT_S = 2.0
#: Close codes: the client must re-authenticate / is too slow and should reconnect later.
CLOSE_UNAUTHORIZED = 4401
CLOSE_TRY_AGAIN_LATER = 1013
#: Close reasons of a 1013 caused by a Redis outage (the client re-fetches after reconnecting).
REASON_INTERRUPTED = "live delivery interrupted; reconnect and re-fetch"
REASON_UNAVAILABLE = "live delivery unavailable; retry later"


class TooManyConnections(Exception):  # noqa: N818 - reads better at call sites
    """The user already has the maximum number of sockets open on this replica."""


class Connection:
    """One socket: its user and session, a bounded send queue and the task that drains it."""

    def __init__(
        self,
        ws: WebSocket,
        user_id: uuid.UUID,
        session_id: str,
        *,
        queue_size: int,
        send_timeout: float,
        closing: set[asyncio.Task[None]],
    ) -> None:
        """*closing*: where the task that closes the socket is kept until it is done (the hub's)."""
        self.ws = ws
        self._closing = closing
        self.user_id = user_id
        self.session_id = session_id
        self.send_timeout = send_timeout
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._sender = asyncio.create_task(self._send_all(), name="chat-ws-sender")
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    def offer(self, data: str) -> bool:
        """Queue *data* for this socket; False when the client is too far behind (queue full)."""
        if self.closed.is_set():
            return True
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    async def _send_all(self) -> None:
        while True:
            data = await self._queue.get()
            try:
                await asyncio.wait_for(self.ws.send_text(data), self.send_timeout)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.close(CLOSE_TRY_AGAIN_LATER, "too slow; reconnect")
                return

    def close(self, code: int, reason: str) -> None:
        """Close the socket with *code* (once; from any task), stopping its sender."""
        if self.closed.is_set():
            return
        self.closed.set()
        self.close_code = code
        self._sender.cancel()
        task = asyncio.get_running_loop().create_task(self._close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, reason=reason), self.send_timeout)

    async def stop(self) -> None:
        """Stop the sender (the socket is gone)."""
        self.closed.set()
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender


class Hub:
    """Local sockets by user, plus the replica's Redis subscription that feeds them."""

    def __init__(
        self,
        redis: Redis,
        subscriber: Redis,
        prefix: str,
        *,
        max_per_user: int,
        send_timeout: float,
        queue_size: int = 64,
    ) -> None:
        """*redis* publishes; *subscriber* (a client whose timeout exceeds READ_TIMEOUT_S) listens."""
        self.redis = redis
        self.subscriber = subscriber
        self.prefix = prefix
        self.max_per_user = max_per_user
        self.send_timeout = send_timeout
        self.queue_size = queue_size
        self._sockets: dict[uuid.UUID, set[Connection]] = defaultdict(set)
        self._closing: set[asyncio.Task[None]] = set()
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.log = get_logger("chat_svc.hub")

    def channel(self, user_id: uuid.UUID) -> str:
        """The pub/sub channel of one user (prefixed: the Redis ACL allows ``<svc>:*`` only)."""
        return f"{self.prefix}user:{user_id}"

    @property
    def control_channel(self) -> str:
        """Always subscribed, so the pub/sub connection exists even with no user connected."""
        return f"{self.prefix}hub"

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the reader task (it connects, and reconnects after a Redis outage); wait briefly
        for the first subscription so the first sockets are not refused."""
        self._task = asyncio.create_task(self._run(), name="chat-hub-reader")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), START_WAIT_S)

    async def stop(self) -> None:
        """Stop reading and close every local socket."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sockets in list(self._sockets.values()):
            for conn in list(sockets):
                await conn.stop()
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1001)
        self._sockets.clear()
        await self._close_pubsub()

    async def wait_subscribed(self) -> None:
        """Wait until the pub/sub connection is up (bound it with ``asyncio.timeout``)."""
        await self._subscribed.wait()

    @property
    def is_subscribed(self) -> bool:
        """True while the replica's pub/sub connection is up."""
        return self._subscribed.is_set()

    async def _close_pubsub(self) -> None:
        self._subscribed.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _connect(self) -> PubSub:
        pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
        async with self._lock:
            channels = [self.control_channel, *(self.channel(u) for u in self._sockets)]
            await pubsub.subscribe(*channels)
            self._pubsub = pubsub
            self._subscribed.set()
        return pubsub

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                pubsub = await self._connect()
                backoff = 0.2
                loop = asyncio.get_running_loop()
                next_ping = loop.time() + PING_EVERY_S
                while True:
                    message = await pubsub.get_message(timeout=READ_TIMEOUT_S)
                    if message is not None and message.get("type") == "message":
                        await self._dispatch(str(message["channel"]), str(message["data"]))
                    if loop.time() >= next_ping:
                        # A hung Redis sends nothing at all, so silence on the subscription proves
                        # nothing: ask the server (the client's short socket timeout bounds it).
                        await self.redis.ping()
                        next_ping = loop.time() + PING_EVERY_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("chat_hub_redis_failed", error=f"{type(exc).__name__}: {exc}")
                await self._close_pubsub()
                self.interrupt()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    # ---------------------------------------------------------------- sockets

    async def add(self, user_id: uuid.UUID, session_id: str, ws: WebSocket) -> Connection:
        """Register a socket of *session_id*; subscribe to the user's channel on their first socket here."""
        async with self._lock:
            sockets = self._sockets[user_id]
            if len(sockets) >= self.max_per_user:
                if not sockets:
                    del self._sockets[user_id]
                raise TooManyConnections(f"at most {self.max_per_user} connections per user")
            first = not sockets
            conn = Connection(
                ws,
                user_id,
                session_id,
                queue_size=self.queue_size,
                send_timeout=self.send_timeout,
                closing=self._closing,
            )
            sockets.add(conn)
            if first and self._pubsub is not None:
                with contextlib.suppress(Exception):  # the reader resubscribes after reconnecting
                    await self._pubsub.subscribe(self.channel(user_id))
        return conn

    async def remove(self, conn: Connection) -> None:
        """Forget a socket; unsubscribe when the user's last socket here is gone."""
        await conn.stop()
        user_id = conn.user_id
        async with self._lock:
            sockets = self._sockets.get(user_id)
            if sockets is None:
                return
            sockets.discard(conn)
            if not sockets:
                del self._sockets[user_id]
                if self._pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(self.channel(user_id))

    def connected(self, user_id: uuid.UUID) -> int:
        """How many sockets the user has open on this replica."""
        return sum(not conn.closed.is_set() for conn in self._sockets.get(user_id, ()))

    def interrupt(self) -> None:
        """Close (1013) every local socket: live delivery stopped, clients must re-fetch."""
        closed = 0
        for sockets in list(self._sockets.values()):
            for conn in list(sockets):
                if not conn.closed.is_set():
                    conn.close(CLOSE_TRY_AGAIN_LATER, REASON_INTERRUPTED)
                    closed += 1
        if closed:
            self.log.warning("chat_ws_interrupted", sockets=closed)

    def revoke(self, session_ids: set[str]) -> None:
        """Close (4401) every socket of these revoked sessions; their clients must log in again."""
        for sockets in list(self._sockets.values()):
            for conn in list(sockets):
                if conn.session_id in session_ids:
                    conn.close(CLOSE_UNAUTHORIZED, "session revoked")

    async def publish(self, user_ids: list[uuid.UUID], data: str) -> None:
        """Fan *data* out to the users' sockets on every replica (best effort)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.publish(self.channel(user_id), data)
                await pipe.execute()
        except Exception as exc:
            self.log.warning("chat_publish_failed", error=f"{type(exc).__name__}: {exc}")

    async def _dispatch(self, channel: str, data: str) -> None:
        prefix = f"{self.prefix}user:"
        if not channel.startswith(prefix):
            return
        try:
            user_id = uuid.UUID(channel[len(prefix) :])
        except ValueError:
            return
        for conn in list(self._sockets.get(user_id, ())):
            if not conn.offer(data):  # never wait for one client: drop it, it catches up later
                self.log.warning("chat_ws_dropped_slow_client", user_id=str(user_id))
                conn.close(CLOSE_TRY_AGAIN_LATER, "too slow; reconnect")
