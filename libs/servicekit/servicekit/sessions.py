"""Redis-backed refresh-token sessions: create, rotate (with reuse detection), revoke.

A session lives from login until it is revoked, idle for ``ttl`` or older than ``max_age`` (an
absolute lifetime: refreshing cannot keep it alive forever). Its id (``sid``) is carried by every
token issued for it, access tokens included, so revoking it can reach live access (see
:mod:`servicekit.revocation`). The session remembers the ``jti`` of the one refresh token that may
rotate it next; presenting any other (an already-rotated, i.e. stolen and replayed, token) revokes
every session of the user.

Rotation is one Lua script: check the token id and the absolute lifetime, then store the successor's
id, atomically. (Before, a replay racing the real refresh could pass between a GETDEL and the
tombstone that marked it used: it escaped reuse detection, or the real refresh's successor survived
the revocation.)

Keys (all under ``<service>:``): ``session:<sid>`` -> JSON ``{user_id, created_at, expires_at, jti,
data}`` with TTL ``min(ttl, expires_at - now)``; ``user-sessions:<user_id>`` -> set of the user's sids.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from servicekit.errors import Unauthorized

DEFAULT_TTL = timedelta(days=14)
DEFAULT_MAX_AGE = timedelta(days=30)

#: KEYS[1]: the session. ARGV: presented jti, successor jti, now (epoch s), idle ttl (s), user-set prefix.
_ROTATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'gone'} end
local record = cjson.decode(raw)
local user_set = ARGV[5] .. record.user_id
if record.jti ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', user_set, record.sid)
  return {'reused', record.user_id}
end
local left = tonumber(record.expires_at) - tonumber(ARGV[3])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', user_set, record.sid)
  return {'expired', record.user_id}
end
record.jti = ARGV[2]
local encoded = cjson.encode(record)
redis.call('SET', KEYS[1], encoded, 'EX', math.min(tonumber(ARGV[4]), math.ceil(left)))
return {'ok', encoded}
"""


@dataclass(frozen=True)
class SessionInfo:
    """One live session."""

    session_id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class RefreshTokenReused(Unauthorized):
    """A refresh token that was already rotated came back: every session of its user was revoked."""

    def __init__(self, user_id: str, revoked: list[str]) -> None:
        super().__init__("refresh token reused; all sessions revoked", code="refresh_token_reused")
        self.user_id = user_id
        self.revoked = revoked


class SessionStore:
    """Sessions of one service in Redis."""

    def __init__(
        self,
        redis: Redis,
        service: str,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self.redis = redis
        self.prefix = f"{service}:"
        self.ttl = ttl
        self.max_age = max_age

    def _session(self, sid: str) -> str:
        return f"{self.prefix}session:{sid}"

    def _user(self, user_id: str) -> str:
        return f"{self.prefix}user-sessions:{user_id}"

    async def create(
        self,
        user_id: str,
        *,
        token_id: str,
        ttl: timedelta | None = None,
        max_age: timedelta | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        """Start a session for *user_id* whose first refresh token has id *token_id*; returns the sid."""
        sid = uuid.uuid4().hex
        now = time.time()
        idle = ttl or self.ttl
        lifetime = max_age or self.max_age
        record = {
            "sid": sid,
            "user_id": user_id,
            "created_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "expires_at": math.ceil(now + lifetime.total_seconds()),
            "jti": token_id,
            "data": data or {},
        }
        seconds = max(1, math.ceil(min(idle, lifetime).total_seconds()))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._session(sid), json.dumps(record), ex=seconds)
            pipe.sadd(self._user(user_id), sid)
            pipe.expire(self._user(user_id), math.ceil(lifetime.total_seconds()), gt=True)
            pipe.expire(self._user(user_id), math.ceil(lifetime.total_seconds()), nx=True)
            await pipe.execute()
        return sid

    async def get(self, sid: str) -> SessionInfo | None:
        """The live session *sid*, or None when expired or revoked."""
        raw = await self.redis.get(self._session(sid))
        return _parse(raw) if raw else None

    async def is_active(self, sid: str) -> bool:
        """True while *sid* is neither expired nor revoked."""
        return bool(await self.redis.exists(self._session(sid)))

    async def rotate(
        self, sid: str, token_id: str, new_token_id: str, *, ttl: timedelta | None = None
    ) -> SessionInfo:
        """Let refresh token *token_id* of *sid* be replaced by *new_token_id* (refresh-token rotation).

        Raises :class:`RefreshTokenReused` (every session of the user revoked) when *token_id* is not
        the session's current one, and :class:`Unauthorized` when the session is gone or past its
        absolute lifetime.
        """
        seconds = max(1, math.ceil((ttl or self.ttl).total_seconds()))
        users = f"{self.prefix}user-sessions:"
        result = await self.redis.eval(  # type: ignore[misc]
            _ROTATE, 1, self._session(sid), token_id, new_token_id, time.time(), seconds, users
        )
        outcome = result[0]
        if outcome == "ok":
            return _parse(result[1])
        if outcome == "reused":
            user_id = result[1]
            revoked = [sid, *await self.revoke_all(user_id)]
            raise RefreshTokenReused(user_id, sorted(set(revoked)))
        if outcome == "expired":
            raise Unauthorized("session reached its maximum age; log in again", code="session_expired")
        raise Unauthorized("session expired or revoked", code="session_revoked")

    async def revoke(self, sid: str) -> SessionInfo | None:
        """End one session (logout); the session it was, or None when it was not active."""
        raw = await self.redis.getdel(self._session(sid))
        if not raw:
            return None
        info = _parse(raw)
        await self.redis.srem(self._user(info.user_id), sid)
        return info

    async def revoke_all(self, user_id: str) -> list[str]:
        """End every session of *user_id* (logout everywhere, a replayed token); returns their sids."""
        sids = sorted(await self.redis.smembers(self._user(user_id)))
        async with self.redis.pipeline(transaction=True) as pipe:
            for sid in sids:
                pipe.delete(self._session(sid))
            pipe.delete(self._user(user_id))
            await pipe.execute()
        return sids


def _parse(raw: str | bytes) -> SessionInfo:
    record = json.loads(raw)
    data = record.get("data") or {}
    return SessionInfo(
        session_id=record["sid"],
        user_id=record["user_id"],
        created_at=datetime.fromisoformat(record["created_at"]),
        expires_at=datetime.fromtimestamp(int(record["expires_at"]), UTC),
        data=data if isinstance(data, dict) else {},
    )
