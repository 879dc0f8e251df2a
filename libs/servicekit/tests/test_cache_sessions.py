"""Cache-aside (single-flight, prefixing, fall-through when Redis is down) and the session store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ResponseError
from servicekit.cache import Cache
from servicekit.errors import Unauthorized
from servicekit.metrics import Metrics
from servicekit.redis import create_redis
from servicekit.sessions import RefreshTokenReused, SessionStore

from .conftest import make_settings


def cache_for(redis_server: Any, service: str | None = None) -> tuple[Cache, Metrics]:
    settings = make_settings(service or f"c{uuid.uuid4().hex[:8]}-svc", redis=redis_server)
    metrics = Metrics(settings.service_name)
    return Cache(create_redis(settings), settings.service_name, metrics), metrics


def counter(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "cache_requests_total", {"service": metrics.service, "outcome": outcome}
    )
    return value or 0.0


class Loader:
    """Counts calls; slow enough that concurrent callers overlap."""

    def __init__(self, value: Any, delay: float = 0.1) -> None:
        self.value, self.delay, self.calls = value, delay, 0

    async def __call__(self) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


async def test_miss_then_hit_under_the_service_prefix(redis_server: Any) -> None:
    cache, metrics = cache_for(redis_server)
    load = Loader({"id": 42, "price_minor": 1999}, delay=0)
    assert await cache.get_or_load("listing:42", load, ttl=30) == {"id": 42, "price_minor": 1999}
    assert await cache.get_or_load("listing:42", load, ttl=30) == {"id": 42, "price_minor": 1999}
    assert load.calls == 1
    assert (counter(metrics, "miss"), counter(metrics, "hit")) == (1, 1)
    keys = await cache.redis.keys(f"{metrics.service}:*")
    assert keys == [f"{metrics.service}:cache:listing:42"]
    assert 0 < await cache.redis.pttl(keys[0]) <= 30_000
    await cache.redis.aclose()


async def test_invalidate_forces_a_reload(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)
    load = Loader("v1", delay=0)
    await cache.get_or_load("k", load, ttl=30)
    load.value = "v2"
    await cache.invalidate("k")
    assert await cache.get_or_load("k", load, ttl=30) == "v2"
    assert load.calls == 2
    await cache.redis.aclose()


class GatedLoader:
    """Returns its current value once released; counts calls."""

    def __init__(self, value: Any) -> None:
        self.value, self.calls = value, 0
        self.started, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        value = self.value  # what a database read returns at this moment
        self.started.set()
        await self.release.wait()
        return value


async def test_a_load_overlapping_an_invalidation_does_not_cache_what_it_read(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)
    load = GatedLoader("active")
    reading = asyncio.create_task(cache.get_or_load("listing:1", load, ttl=30))
    await load.started.wait()
    load.value = "sold"  # the write commits, then invalidates, while the read is still loading
    await cache.invalidate("listing:1")
    load.release.set()
    assert await reading == "active"  # the overlapping read may answer with what it read ...
    assert await cache.get_or_load("listing:1", load, ttl=30) == "sold"  # ... but did not cache it
    assert load.calls == 2
    assert await cache.get_or_load("listing:1", load, ttl=30) == "sold"
    assert load.calls == 2  # a load that did not overlap an invalidation is cached
    await cache.redis.aclose()


async def test_callers_after_an_invalidation_do_not_join_the_load_under_way(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)
    load = GatedLoader("active")
    first = asyncio.create_task(cache.get_or_load("listing:2", load, ttl=30))
    await load.started.wait()
    load.value = "sold"
    await cache.invalidate("listing:2")
    second = asyncio.create_task(cache.get_or_load("listing:2", load, ttl=30))
    load.release.set()
    assert (await first, await second) == ("active", "sold")
    assert load.calls == 2
    await cache.redis.aclose()


async def test_invalidation_generations_expire_and_are_never_reused(redis_server: Any) -> None:
    cache, metrics = cache_for(redis_server)
    generation = f"{metrics.service}:cache:gen:listing:3"
    await cache.invalidate("listing:3")
    first = await cache.redis.get(generation)
    assert 0 < await cache.redis.pttl(generation) <= 600_000
    await cache.redis.delete(generation)
    await cache.invalidate("listing:3")
    assert await cache.redis.get(generation) != first
    await cache.redis.aclose()


async def test_a_read_after_an_invalidation_does_not_wait_for_the_refused_load(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)
    other_replica, _ = cache_for(redis_server, cache.prefix.split(":")[0])
    load = GatedLoader("active")
    first = asyncio.create_task(cache.get_or_load("listing:4", load, ttl=30))
    await load.started.wait()  # holds the key's lock
    waiting = asyncio.create_task(other_replica.get_or_load("listing:4", Loader("sold", delay=0), ttl=30))
    await asyncio.sleep(0.1)  # the other replica is polling for the value
    await cache.invalidate("listing:4")
    here = cache.get_or_load("listing:4", Loader("sold", delay=0), ttl=30)
    assert await asyncio.wait_for(here, 1.0) == "sold"  # not lock_wait_s (2 s) behind the refused load
    assert await asyncio.wait_for(waiting, 1.0) == "sold"
    load.release.set()
    assert await first == "active"
    await cache.redis.aclose()
    await other_replica.redis.aclose()


async def test_an_expired_generation_cannot_come_back(redis_server: Any) -> None:
    cache, metrics = cache_for(redis_server)
    await cache.invalidate("listing:5")
    load = GatedLoader("active")
    reading = asyncio.create_task(cache.get_or_load("listing:5", load, ttl=30))
    await load.started.wait()
    await cache.redis.delete(f"{metrics.service}:cache:gen:listing:5")  # as if it had expired
    load.value = "sold"
    await cache.invalidate("listing:5")
    load.release.set()
    await reading
    assert await cache.get_or_load("listing:5", load, ttl=30) == "sold"
    await cache.redis.aclose()


async def test_a_failed_store_releases_the_lock(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, metrics = cache_for(redis_server)
    real_eval = cache.redis.eval

    async def store_fails(script: str, *args: Any) -> Any:
        if "'set'" in script:  # the store; the lock release goes through
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        return await real_eval(script, *args)

    monkeypatch.setattr(cache.redis, "eval", store_fails)
    assert await cache.get_or_load("k", Loader("v", delay=0), ttl=30) == "v"  # answered anyway
    assert await cache.redis.exists(f"{metrics.service}:cache:lock:k") == 0
    await cache.redis.aclose()


async def test_an_invalidation_that_failed_is_sent_before_redis_is_read_again(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, _ = cache_for(redis_server)
    cache.cooldown_s = 0.0  # Redis is tried again at once
    load = Loader("v1", delay=0)
    await cache.get_or_load("k", load, ttl=30)
    reachable = cache.redis.pipeline

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis unreachable")

    monkeypatch.setattr(cache.redis, "pipeline", unreachable)
    load.value = "v2"
    await cache.invalidate("k")  # logged, not raised, and kept
    monkeypatch.setattr(cache.redis, "pipeline", reachable)
    assert await cache.get_or_load("k", load, ttl=30) == "v2"  # not the "v1" still in Redis
    assert await cache.get_or_load("k", load, ttl=30) == "v2"
    assert load.calls == 2
    await cache.redis.aclose()


async def test_concurrent_misses_load_once_in_process(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)
    load = Loader([1, 2, 3])
    results = await asyncio.gather(*(cache.get_or_load("hot", load, ttl=30) for _ in range(50)))
    assert results == [[1, 2, 3]] * 50
    assert load.calls == 1
    await cache.redis.aclose()


async def test_concurrent_misses_across_replicas_load_once(redis_server: Any) -> None:
    service = f"r{uuid.uuid4().hex[:8]}-svc"
    (one, _), (two, _) = cache_for(redis_server, service), cache_for(redis_server, service)
    load = Loader("shared", delay=0.3)
    results = await asyncio.gather(one.get_or_load("hot", load, ttl=30), two.get_or_load("hot", load, ttl=30))
    assert results == ["shared", "shared"]
    assert load.calls == 1  # the second replica waited on the Redis lock instead of loading
    await one.redis.aclose()
    await two.redis.aclose()


async def test_json_text_is_the_same_on_miss_and_hit(redis_server: Any) -> None:
    cache, metrics = cache_for(redis_server)
    value = {"id": uuid.UUID(int=7), "title": "Lampe \u00e9t\u00e9", "at": timedelta(seconds=90)}
    load = Loader(value, delay=0)
    miss = await cache.get_or_load_json("j", load, ttl=30)
    hit = await cache.get_or_load_json("j", load, ttl=30)
    assert (
        miss
        == hit
        == '{"id":"00000000-0000-0000-0000-000000000007","title":"Lampe \u00e9t\u00e9","at":"PT1M30S"}'
    )
    assert (load.calls, counter(metrics, "miss"), counter(metrics, "hit")) == (1, 1, 1)
    assert await cache.get_or_load("j", load, ttl=30) == json.loads(hit)
    await cache.redis.aclose()


async def test_loader_errors_propagate_and_are_not_cached(redis_server: Any) -> None:
    cache, _ = cache_for(redis_server)

    async def failing() -> None:
        raise LookupError("db says no")

    with pytest.raises(LookupError):
        await cache.get_or_load("bad", failing, ttl=30)
    assert await cache.get_or_load("bad", Loader("ok", delay=0), ttl=30) == "ok"
    await cache.redis.aclose()


async def test_reads_fall_through_when_redis_is_down(server_factory: Any) -> None:
    redis_server = server_factory.redis()
    cache, metrics = cache_for(redis_server)
    load = Loader({"fresh": True}, delay=0)
    await cache.get_or_load("k", load, ttl=30)
    await asyncio.to_thread(redis_server.stop)

    start = time.monotonic()
    for _ in range(5):
        assert await cache.get_or_load("k", load, ttl=30) == {"fresh": True}
    await cache.invalidate("k")  # logged, not raised
    assert time.monotonic() - start < 1.5
    assert load.calls == 6
    assert counter(metrics, "error") == 5

    await asyncio.to_thread(redis_server.start)
    await asyncio.sleep(cache.cooldown_s)
    await cache.get_or_load("k", load, ttl=30)
    await cache.get_or_load("k", load, ttl=30)
    assert counter(metrics, "hit") == 1  # caching resumed by itself
    await cache.redis.aclose()


def store_for(
    redis_server: Any, ttl: timedelta = timedelta(days=1), max_age: timedelta = timedelta(days=30)
) -> SessionStore:
    settings = make_settings(f"s{uuid.uuid4().hex[:8]}-svc", redis=redis_server)
    return SessionStore(create_redis(settings), settings.service_name, ttl=ttl, max_age=max_age)


async def test_sessions_create_revoke_and_revoke_all(redis_server: Any) -> None:
    store = store_for(redis_server)
    one = await store.create("user-1", token_id="t1")
    two = await store.create("user-1", token_id="t2", data={"ua": "phone"})
    other = await store.create("user-2", token_id="t3")
    info = await store.get(two)
    assert info is not None
    assert (info.user_id, info.data) == ("user-1", {"ua": "phone"})
    ended = await store.revoke(one)
    assert ended is not None
    assert (ended.session_id, ended.user_id) == (one, "user-1")
    assert await store.revoke(one) is None
    assert not await store.is_active(one)
    assert await store.is_active(two)
    assert await store.revoke_all("user-1") == [two]
    assert not await store.is_active(two)
    assert await store.is_active(other)
    await store.redis.aclose()


async def test_rotation_keeps_the_session_and_reuse_revokes_everything(redis_server: Any) -> None:
    store = store_for(redis_server)
    first = await store.create("user-1", token_id="t1")
    parallel = await store.create("user-1", token_id="p1")
    rotated = await store.rotate(first, "t1", "t2")
    assert (rotated.session_id, rotated.user_id) == (first, "user-1")
    assert (await store.rotate(first, "t2", "t3")).session_id == first
    with pytest.raises(RefreshTokenReused) as exc:
        await store.rotate(first, "t1", "t9")  # a replayed (already rotated) refresh token
    assert exc.value.code == "refresh_token_reused"
    assert (exc.value.user_id, exc.value.revoked) == ("user-1", sorted([first, parallel]))
    assert not await store.is_active(first)
    assert not await store.is_active(parallel)
    with pytest.raises(Unauthorized) as unknown:
        await store.rotate("never-existed", "t", "u")
    assert unknown.value.code == "session_revoked"
    await store.redis.aclose()


async def test_sessions_expire_when_idle(redis_server: Any) -> None:
    store = store_for(redis_server, ttl=timedelta(seconds=1))
    sid = await store.create("user-1", token_id="t1")
    assert 0 < await store.redis.ttl(f"{store.prefix}session:{sid}") <= 1
    await asyncio.sleep(1.2)
    assert await store.get(sid) is None
    await store.redis.aclose()


async def test_a_session_refreshed_all_along_still_ends_at_its_maximum_age(redis_server: Any) -> None:
    """Attack (issue 11, item 12): a stolen session kept alive forever by refreshing it."""
    store = store_for(redis_server, ttl=timedelta(seconds=60), max_age=timedelta(seconds=3))
    sid = await store.create("user-1", token_id="t0")
    await store.rotate(sid, "t0", "t1")  # refreshed well within the idle timeout...
    await store.rotate(sid, "t1", "t2")
    assert 0 < await store.redis.ttl(f"{store.prefix}session:{sid}") <= 4  # ...never past the maximum age
    await asyncio.sleep(4.5)  # past the maximum age, far from the 60 s idle timeout
    with pytest.raises(Unauthorized) as exc:
        await store.rotate(sid, "t2", "t3")
    assert exc.value.code in {"session_expired", "session_revoked"}
    assert not await store.is_active(sid)
    await store.redis.aclose()


async def test_a_replay_racing_the_real_refresh_is_always_detected(redis_server: Any) -> None:
    """Attack (issue 11, item 12): the thief replays the refresh token while the user refreshes.

    Two replicas (two connections) rotate the same token at once, 50 times. Each time exactly one
    may win, the other must be seen as a reuse, and the session (the winner's too) must end. Before,
    the replay could pass between the GETDEL and the tombstone (no reuse seen), and most of the time
    the winner's successor survived the revocation."""
    first, second = store_for(redis_server), store_for(redis_server)
    second.prefix = first.prefix
    escaped: list[str] = []
    for n in range(50):
        sid = await first.create("user-1", token_id=f"t{n}")

        async def rotate(store: SessionStore, new: str, sid: str = sid, n: int = n) -> str:
            try:
                await store.rotate(sid, f"t{n}", new)
            except RefreshTokenReused:
                return "reused"
            except Unauthorized as exc:
                return exc.code
            return "rotated"

        outcomes = sorted(await asyncio.gather(rotate(first, "a"), rotate(second, "b")))
        if outcomes != ["reused", "rotated"] or await first.is_active(sid):
            escaped.append(f"{outcomes}, active={await first.is_active(sid)}")
    assert not escaped, escaped
    await first.redis.aclose()
    await second.redis.aclose()
