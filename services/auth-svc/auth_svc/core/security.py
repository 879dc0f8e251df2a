"""Mapping Redis outages to 503 (password hashing lives in :mod:`auth_svc.core.hashing`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError
from servicekit.errors import Unavailable


@contextmanager
def redis_required(what: str) -> Iterator[None]:
    """Turn a Redis failure inside the block into a 503 (sessions and limits cannot fail open)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise Unavailable(f"{what} is unavailable, try again shortly", code="dependency_unavailable") from exc
