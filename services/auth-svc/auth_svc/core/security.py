"""Password checks that run off the event loop, and mapping Redis outages to 503."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from redis.exceptions import RedisError
from servicekit.auth import hash_password, needs_rehash, verify_password
from servicekit.errors import Unavailable
from starlette.concurrency import run_in_threadpool


@lru_cache
def _dummy_hash() -> str:
    """A hash to verify against when the email is unknown, so both paths cost the same."""
    return hash_password("not-a-real-password-0")


async def hash_password_async(password: str) -> str:
    """argon2id hash of *password*, computed in a worker thread (it takes tens of milliseconds)."""
    return await run_in_threadpool(hash_password, password)


async def check_password(password_hash: str | None, password: str) -> bool:
    """True when *password* matches; with no hash, spends the same time and returns False."""
    ok = await run_in_threadpool(verify_password, password_hash or _dummy_hash(), password)
    return ok and password_hash is not None


def should_rehash(password_hash: str) -> bool:
    """True when the stored hash uses weaker parameters than the current ones."""
    return needs_rehash(password_hash)


@contextmanager
def redis_required(what: str) -> Iterator[None]:
    """Turn a Redis failure inside the block into a 503 (sessions and limits cannot fail open)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise Unavailable(f"{what} is unavailable, try again shortly", code="dependency_unavailable") from exc
