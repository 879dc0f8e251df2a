"""Redis-backed refresh-token sessions: create, check, rotate (with reuse detection), revoke.

A refresh token carries a session id (``sid``). Keys (all under ``<service>:``):
``session:<sid>`` -> JSON ``{user_id, created_at, data}`` with the session TTL;
``user-sessions:<user_id>`` -> set of the user's session ids; ``session-rotated:<sid>`` -> user id,
a tombstone so a replayed (already rotated) refresh token revokes every session of its user.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from servicekit.errors import Unauthorized

DEFAULT_TTL = timedelta(days=14)


@dataclass(frozen=True)
class SessionInfo:
    """One live session."""

    session_id: str
    user_id: str
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class SessionStore:
    """Sessions of one service in Redis."""

    def __init__(self, redis: Redis, service: str, *, ttl: timedelta = DEFAULT_TTL) -> None:
        self.redis = redis
        self.prefix = f"{service}:"
        self.ttl = ttl

    def _session(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _user(self, user_id: str) -> str:
        return f"{self.prefix}user-sessions:{user_id}"

    def _tombstone(self, sid: str) -> str:
        return f"{self.prefix}session-rotated:{sid}"

    async def create(
        self, user_id: str, *, ttl: timedelta | None = None, data: dict[str, Any] | None = None
    ) -> str:
        """Start a session for *user_id*; returns its id (put it in the refresh token's ``sid``)."""
        sid = uuid.uuid4().hex
        lifetime = ttl or self.ttl
        record = {"user_id": user_id, "created_at": datetime.now(UTC).isoformat(), "data": data or {}}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._session(sid), json.dumps(record), ex=lifetime)
            pipe.sadd(self._user(user_id), sid)
            pipe.expire(self._user(user_id), lifetime, gt=True)
            pipe.expire(self._user(user_id), lifetime, nx=True)
            await pipe.execute()
        return sid

    async def get(self, sid: str) -> SessionInfo | None:
        """The live session *sid*, or None when expired or revoked."""
        raw = await self.redis.get(self._session(sid))
        return _parse(sid, raw) if raw else None

    async def is_active(self, sid: str) -> bool:
        """True while *sid* is neither expired nor revoked."""
        return bool(await self.redis.exists(self._session(sid)))

    async def revoke(self, sid: str) -> bool:
        """End one session (logout); False when it was not active."""
        raw = await self.redis.getdel(self._session(sid))
        if not raw:
            return False
        await self.redis.srem(self._user(_parse(sid, raw).user_id), sid)
        return True

    async def revoke_all(self, user_id: str) -> int:
        """End every session of *user_id* (logout everywhere, password change); returns how many."""
        sids = await self.redis.smembers(self._user(user_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            for sid in sids:
                pipe.delete(self._session(sid))
            pipe.delete(self._user(user_id))
            results = await pipe.execute()
        return int(sum(results[:-1]))

    async def rotate(self, sid: str, *, ttl: timedelta | None = None) -> SessionInfo:
        """Consume *sid* once and return its successor (refresh-token rotation).

        A second use of the same *sid* is a replayed token: every session of the user is revoked
        and :class:`Unauthorized` raised.
        """
        raw = await self.redis.getdel(self._session(sid))
        if not raw:
            owner = await self.redis.get(self._tombstone(sid))
            if owner:
                await self.revoke_all(owner)
                raise Unauthorized("refresh token reused; all sessions revoked", code="refresh_token_reused")
            raise Unauthorized("session expired or revoked", code="session_revoked")
        old = _parse(sid, raw)
        lifetime = ttl or self.ttl
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._tombstone(sid), old.user_id, ex=lifetime)
            pipe.srem(self._user(old.user_id), sid)
            await pipe.execute()
        new_sid = await self.create(old.user_id, ttl=lifetime, data=old.data)
        info = await self.get(new_sid)
        assert info is not None
        return info


def _parse(sid: str, raw: str) -> SessionInfo:
    record = json.loads(raw)
    return SessionInfo(
        session_id=sid,
        user_id=record["user_id"],
        created_at=datetime.fromisoformat(record["created_at"]),
        data=record.get("data") or {},
    )
