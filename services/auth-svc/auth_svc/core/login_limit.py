"""Failed-login limiting per (email, client IP) in Redis: a fixed window counter per pair.

After ``max_failures`` failures inside ``window`` seconds, further attempts for that pair are refused
(429) until the window expires, whatever the password. A successful login clears the counter. The
email is hashed in the key so addresses never appear in Redis.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis


class LoginLimiter:
    """Counts failed logins of one (email, IP) pair."""

    def __init__(self, redis: Redis, service: str, *, max_failures: int, window_seconds: int) -> None:
        self.redis = redis
        self.prefix = f"{service}:login-failures:"
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    def key(self, email: str, ip: str) -> str:
        """The Redis key of the pair."""
        digest = hashlib.sha256(f"{email}\x00{ip}".encode()).hexdigest()[:32]
        return f"{self.prefix}{digest}"

    async def blocked_for(self, email: str, ip: str) -> int:
        """Seconds the pair stays blocked (0 when it may try)."""
        key = self.key(email, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
        if count is None or int(count) < self.max_failures:
            return 0
        return max(int(ttl), 1)

    async def record_failure(self, email: str, ip: str) -> int:
        """Count one failure; the window starts at the first failure. Returns the count."""
        key = self.key(email, ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset(self, email: str, ip: str) -> None:
        """Forget the pair's failures (after a successful login)."""
        await self.redis.delete(self.key(email, ip))
