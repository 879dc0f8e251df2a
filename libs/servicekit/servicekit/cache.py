"""Redis cache-aside with single-flight loading and a fall-through when Redis is down.

``await cache.get_or_load("listing:42", load_listing, ttl=30)`` returns the cached JSON value or
runs *loader* once per key: concurrent callers in this process share one load (single-flight) and
other replicas wait on a short Redis lock instead of stampeding the database. Values must be
JSON-serialisable (pydantic's encoder is used, so datetimes/UUIDs/Decimals become strings); hits and
misses return the same decoded JSON. ``get_or_load_json`` returns the JSON text itself, for handlers
that answer with it as is (no decode, no response-model re-validation on a hit). When Redis fails,
reads fall through to the loader (logged and counted as ``cache_requests_total{outcome="error"}``)
and Redis is skipped for a short cool-down.

A load that overlaps an invalidation does not cache what it read: :meth:`Cache.invalidate` bumps a
per-key generation, a miss notes the generation before loading, and the value is stored only if the
generation is still the same (one script). Without this, a read that loaded the row just before a
write committed would put the old value back after the write's invalidation, for a whole TTL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import to_json
from redis.asyncio import Redis
from redis.exceptions import RedisError

from servicekit.logging import get_logger
from servicekit.metrics import Metrics

Loader = Callable[[], Awaitable[Any]]
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
#: KEYS: value, generation, lock; ARGV: encoded value, generation seen before loading ("" = none),
#: ttl ms, lock token ("" = no lock held). Releases the lock first (so a failing SET, e.g. OOM, cannot
#: leave it held), then stores only if no invalidation happened meanwhile.
_STORE_IF_CURRENT = """
if ARGV[4] ~= '' and redis.call('get', KEYS[3]) == ARGV[4] then redis.call('del', KEYS[3]) end
if (redis.call('get', KEYS[2]) or '') ~= ARGV[2] then return 0 end
local result = redis.pcall('set', KEYS[1], ARGV[1], 'PX', ARGV[3])
if type(result) == 'table' and result.err then return redis.error_reply(result.err) end
return 1
"""
#: How long a key's generation outlives its last invalidation (far longer than any load). Each
#: invalidation sets a fresh random generation, so an expired one can never come back (no ABA).
GENERATION_TTL_MS = 600_000
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class Cache:
    """Cache-aside over the service's Redis; every key lives under ``<service>:cache:``."""

    def __init__(
        self,
        redis: Redis,
        service: str,
        metrics: Metrics,
        *,
        lock_ttl_ms: int = 5000,
        lock_wait_s: float = 2.0,
        cooldown_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.prefix = f"{service}:cache:"
        self.metrics = metrics
        self.lock_ttl_ms = lock_ttl_ms
        self.lock_wait_s = lock_wait_s
        self.cooldown_s = cooldown_s
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._down_until = 0.0
        #: Keys whose invalidation failed (Redis unreachable); retried before Redis is read again.
        self._unsent_invalidations: set[str] = set()
        self.log = get_logger("servicekit.cache")

    def key(self, key: str) -> str:
        """The full Redis key for *key*."""
        return f"{self.prefix}{key}"

    async def get_or_load(self, key: str, loader: Loader, ttl: float) -> Any:
        """The cached value of *key*, else *loader*'s result (cached for *ttl* seconds)."""
        return json.loads(await self.get_or_load_json(key, loader, ttl))

    async def get_or_load_json(self, key: str, loader: Loader, ttl: float) -> str:
        """Like :meth:`get_or_load`, but the value's JSON text (compact, UTF-8 characters kept)."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._load_through(key, loader, ttl)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is future:  # an invalidation may have started a new load
                del self._inflight[key]

    async def invalidate(self, *keys: str) -> None:
        """Delete *keys* (call after the write commits). Errors are logged, not raised.

        Loads of these keys already under way are not cached, and callers arriving from now on
        do not join them nor wait for their lock. If Redis cannot be reached, the invalidation is
        kept and sent before this process reads Redis again (so it never serves what it failed to
        invalidate; other replicas rely on the entry's TTL).
        """
        if not keys:
            return
        for key in keys:
            self._inflight.pop(key, None)
        await self._send_invalidations({*keys, *self._unsent_invalidations})

    async def _send_invalidations(self, keys: set[str]) -> bool:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.set(self._generation_key(key), uuid.uuid4().hex, px=GENERATION_TTL_MS)
                pipe.delete(*(self.key(k) for k in keys), *(self._lock_key(k) for k in keys))
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._unsent_invalidations |= keys
            self._redis_failed("invalidate", exc)
            return False
        self._unsent_invalidations -= keys
        return True

    async def set(self, key: str, value: Any, ttl: float) -> None:
        """Store *value* under *key* for *ttl* seconds (best effort)."""
        if self._is_down():
            return
        try:
            await self.redis.set(self.key(key), _encode(value), px=int(ttl * 1000))
        except _REDIS_ERRORS as exc:
            self._redis_failed("set", exc)

    def _generation_key(self, key: str) -> str:
        return f"{self.prefix}gen:{key}"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}lock:{key}"

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _redis_failed(self, op: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.cooldown_s
        self.log.warning("cache_redis_error", op=op, error=f"{type(exc).__name__}: {exc}")

    async def _fallthrough(self, loader: Loader) -> str:
        self.metrics.count_cache("error")
        return _encode(await loader())

    async def _load_through(self, key: str, loader: Loader, ttl: float) -> str:
        if self._is_down():
            return await self._fallthrough(loader)
        if self._unsent_invalidations and not await self._send_invalidations(set(self._unsent_invalidations)):
            return await self._fallthrough(loader)
        full = self.key(key)
        try:
            cached = await self.redis.get(full)
            if cached is not None:
                self.metrics.count_cache("hit")
                return cached
            token = uuid.uuid4().hex
            lock = self._lock_key(key)
            generation_key = self._generation_key(key)
            async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
                pipe.set(lock, token, nx=True, px=self.lock_ttl_ms)
                pipe.get(generation_key)
                locked, generation = await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._redis_failed("get", exc)
            return await self._fallthrough(loader)
        self.metrics.count_cache("miss")
        if not locked:
            waited = await self._wait_for_other(full, lock)
            if waited is not None:
                return waited
        try:
            encoded = _encode(await loader())
        except BaseException:
            if locked:
                await self._release(lock, token)
            raise
        try:  # release the lock and store unless invalidated meanwhile: one script
            await self.redis.eval(
                _STORE_IF_CURRENT,
                3,
                full,
                generation_key,
                lock,
                encoded,
                generation or "",
                max(1, int(ttl * 1000)),
                token if locked else "",
            )
        except _REDIS_ERRORS as exc:
            self._redis_failed("set", exc)
            if locked:
                await self._release(lock, token)
        except BaseException:  # cancelled while storing
            if locked:
                await self._release(lock, token)
            raise
        return encoded

    async def _release(self, lock: str, token: str) -> None:
        """Best effort: a lock left behind expires after ``lock_ttl_ms``."""
        try:
            await self.redis.eval(_RELEASE, 1, lock, token)
        except _REDIS_ERRORS as exc:
            self._redis_failed("unlock", exc)

    async def _wait_for_other(self, full: str, lock: str) -> str | None:
        """Another replica holds *lock* to load *full*: poll briefly for its value.

        ``None`` (load it yourself) once the lock is gone without a value - the other load failed
        or was invalidated - or after ``lock_wait_s``.
        """
        deadline = time.monotonic() + self.lock_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.025)
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(full)
                    pipe.exists(lock)
                    cached, still_locked = await pipe.execute()
            except _REDIS_ERRORS as exc:
                self._redis_failed("get", exc)
                return None
            if cached is not None:
                return cached
            if not still_locked:
                return None
        return None


def _encode(value: Any) -> str:
    """Compact JSON text of *value* (pydantic models, datetimes, UUIDs, Decimals included)."""
    return to_json(value).decode()
