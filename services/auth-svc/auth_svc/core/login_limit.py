"""Failed-login limiting in Redis: per (email, client), per account and per client, fixed windows.

Three counters, each a fixed window that starts at its first counted attempt:

- ``pair`` (email + client): ``max_failures`` guesses at one account from one client;
- ``account`` (email, any client): ``max_failures_per_account``, so guessing one password from many
  addresses is limited too;
- ``client`` (any email): ``max_failures_per_ip``, against password spraying (one guess at many
  accounts from one address).

A client is its IPv4 address, or the /64 network of its IPv6 address (one subscriber usually holds a
whole /64 and can rotate through it at will).

An attempt is *reserved* before the password is checked: one Lua script refuses it when any counter
is at its limit and otherwise counts it in all three, atomically. So parallel guesses cannot all pass
a check made before any of them was counted (they did: the check ran before the slow hash and the
failure was counted after it). A successful login clears the pair's counter and gives back its
reservation on the other two; an attempt the service was too busy to judge (503) is given back.
Emails are hashed in the keys, so addresses never appear in Redis.
"""

from __future__ import annotations

import hashlib
import ipaddress

from redis.asyncio import Redis

#: KEYS: pair, account, client. ARGV: their limits, then the window in seconds.
#: Returns 0 when the attempt was counted, else the seconds until the blocking window ends.
_RESERVE = """
local blocked = 0
for i = 1, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then
    blocked = math.max(blocked, redis.call('TTL', KEYS[i]), 1)
  end
end
if blocked > 0 then return blocked end
for i = 1, 3 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[4], 'NX')
end
return 0
"""
#: KEYS: pair, account, client. ARGV[1] "1": clear the pair. Gives the attempt back on the others.
_GIVE_BACK = """
local first = 1
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  first = 2
end
for i = first, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


def client_bucket(ip: str) -> str:
    """The limiter's name for a client address: IPv4 as is, IPv6 as its /64 (IPv4-mapped as IPv4)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class LoginLimiter:
    """Reserves login attempts against the three counters of an (email, client) pair."""

    def __init__(
        self,
        redis: Redis,
        service: str,
        *,
        max_failures: int,
        max_failures_per_account: int,
        max_failures_per_ip: int,
        window_seconds: int,
    ) -> None:
        self.redis = redis
        self.prefix = f"{service}:login-attempts:"
        self.limits = (max_failures, max_failures_per_account, max_failures_per_ip)
        self.window_seconds = window_seconds

    def keys(self, email: str, ip: str) -> tuple[str, str, str]:
        """The Redis keys of the pair's, the account's and the client's counters."""
        client = client_bucket(ip)
        return (
            f"{self.prefix}pair:{_digest(email, client)}",
            f"{self.prefix}account:{_digest(email)}",
            f"{self.prefix}client:{_digest(client)}",
        )

    async def reserve(self, email: str, ip: str) -> int:
        """Count this attempt in every counter and return 0, or return the seconds it stays blocked."""
        blocked = await self.redis.eval(  # type: ignore[misc]
            _RESERVE, 3, *self.keys(email, ip), *self.limits, self.window_seconds
        )
        return int(blocked)

    async def succeeded(self, email: str, ip: str) -> None:
        """The reserved attempt succeeded: forget the pair's failures, give the attempt back."""
        await self.redis.eval(_GIVE_BACK, 3, *self.keys(email, ip), "1")  # type: ignore[misc]

    async def give_back(self, email: str, ip: str) -> None:
        """The reserved attempt was never judged (the service was busy): uncount it everywhere."""
        await self.redis.eval(_GIVE_BACK, 3, *self.keys(email, ip), "0")  # type: ignore[misc]
