"""Revoked sessions reach every replica of every service: tokens of a revoked session are refused.

auth-svc announces each revocation (logout, a replayed refresh token, a deleted account) as a
``session.revoked`` event. The broker keeps these events in a stream queue,
:data:`REVOCATIONS_STREAM` (bound to ``events`` with that routing key, retained for
:data:`STREAM_MAX_AGE`), declared by the platform's definitions and readable by every service user.
Unlike a service's work queue, a stream gives *every* consumer *every* message: each replica reads
it from :data:`LOOKBACK` ago when it starts (so one that was down or just started knows every
revocation whose tokens could still be valid), then follows it live.

:class:`RevokedSessions` is the replica's in-memory set (session id -> until when its tokens could
be valid); ``servicekit.auth`` refuses a revoked session's access tokens (401 ``session_revoked``),
and listeners (chat-svc's WebSockets) are told so they can close what the session opened.
Entries are dropped once every token of the session has expired, so memory stays bounded by the
revocations of the last access-token lifetime.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel, ConfigDict, ValidationError

from servicekit.logging import get_logger
from servicekit.messaging.envelope import Envelope

EVENT_TYPE = "session.revoked"
#: The stream queue every replica reads revocations from (the platform's definitions declare it).
REVOCATIONS_STREAM = "sessions.revoked"
#: How long the broker keeps a revocation (above the longest access-token lifetime, 1 h).
STREAM_MAX_AGE = "2h"
#: Where a starting replica begins reading: the longest access-token lifetime plus clock leeway.
LOOKBACK = timedelta(hours=1, minutes=5)
PREFETCH = 500
Listener = Callable[[set[str]], None]


class SessionRevoked(BaseModel):
    """The part of auth-svc's ``session.revoked`` payload this module reads."""

    model_config = ConfigDict(extra="ignore")

    session_ids: list[str]
    #: When the last access token of these sessions expires; the entry is kept until then.
    valid_until: datetime


class RevokedSessions:
    """Session ids whose tokens are refused, each until its tokens would have expired anyway."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._listeners: list[Listener] = []
        self._next_prune = 0.0

    def add(self, session_ids: Iterable[str], until: float) -> None:
        """Refuse *session_ids* until *until* (epoch seconds); tell the listeners."""
        now = time.time()
        fresh = {sid for sid in session_ids if until > now and self._until.get(sid, 0.0) < until}
        for sid in fresh:
            self._until[sid] = until
        self._prune(now)
        if fresh:
            for listener in list(self._listeners):
                listener(fresh)

    def is_revoked(self, session_id: str | None) -> bool:
        """True when *session_id* was revoked and its tokens could still be valid."""
        if not session_id:
            return False
        until = self._until.get(session_id)
        return until is not None and until > time.time()

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call *listener* with each batch of newly revoked session ids; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def __len__(self) -> int:
        return len(self._until)

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        for sid in [sid for sid, until in self._until.items() if until <= now]:
            del self._until[sid]


class RevocationFeed:
    """Reads :data:`REVOCATIONS_STREAM` into a :class:`RevokedSessions` (one consumer per replica)."""

    def __init__(self, revoked: RevokedSessions, *, lookback: timedelta = LOOKBACK) -> None:
        self.revoked = revoked
        self.lookback = lookback
        self._channel: AbstractChannel | None = None
        self.error: str | None = "not started"
        self.log = get_logger("servicekit.revocation")

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Consume the stream from :attr:`lookback` ago (restored by aio-pika after a reconnect).

        A missing stream is logged and reported by :meth:`check` (readiness), never raised: the
        broker's other consumers must still start."""
        try:
            self._channel = await connection.channel()
            await self._channel.set_qos(prefetch_count=PREFETCH)
            queue = await self._channel.get_queue(REVOCATIONS_STREAM, ensure=True)
            since = datetime.now(UTC) - self.lookback
            await queue.consume(self._on_message, no_ack=False, arguments={"x-stream-offset": since})
        except Exception as exc:
            self.error = f"cannot read {REVOCATIONS_STREAM}: {type(exc).__name__}: {exc}"
            self.log.error("revocations_unavailable", error=self.error)
            return
        self.error = None
        self.log.info("revocations_following", stream=REVOCATIONS_STREAM, since=since.isoformat())

    async def check(self) -> None:
        """Readiness: the stream is being followed."""
        if self.error is not None:
            raise ConnectionError(self.error)

    async def stop(self) -> None:
        """Close the channel."""
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Envelope.model_validate_json(message.body).parse(SessionRevoked)
        except (ValidationError, ValueError) as exc:
            self.log.warning("revocation_unreadable", error=str(exc)[:200])
        else:
            self.revoked.add(event.session_ids, event.valid_until.timestamp())
        with contextlib.suppress(Exception):
            await message.ack()


def stream_arguments() -> dict[str, Any]:
    """The stream's queue arguments (the platform's definitions and dev topology use the same)."""
    return {
        "x-queue-type": "stream",
        "x-max-age": STREAM_MAX_AGE,
        "x-stream-max-segment-size-bytes": 8_000_000,
    }
