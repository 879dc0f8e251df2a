"""redis.conf + ACL file: a real redis-server loads them; the ACLs allow and refuse what they should."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.retry import Retry

from infra.errors import UsageError
from infra.local.ports import free_port, port_accepts
from infra.render.redis import redis_users, render_redis_acl, render_redis_conf
from infra.spec import PlatformSpec

from .conftest import require_tool


@pytest.fixture(scope="module")
def redis_port(specs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    spec = specs["prod"]  # aof persistence: the richest config
    base = tmp_path_factory.mktemp("redis")
    port = free_port()
    (base / "users.acl").write_text(render_redis_acl(spec, {u: f"pw-{u}" for u in redis_users(spec)}))
    conf = render_redis_conf(
        spec,
        port=port,
        dir=str(base),
        aclfile=str(base / "users.acl"),
        bind="127.0.0.1",
        logfile=str(base / "log"),
    )
    (base / "redis.conf").write_text(conf)
    proc = subprocess.Popen([require_tool("redis-server"), str(base / "redis.conf")])
    deadline = time.monotonic() + 10
    while not port_accepts(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server did not start: {(base / 'log').read_text()}")
        time.sleep(0.05)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(port: int, user: str | None = None) -> redis.Redis:
    # No retries: an authentication refusal is the answer, not a transient error.
    no_retry = Retry(NoBackoff(), 0)
    if user is None:
        return redis.Redis(port=port, retry=no_retry)
    return redis.Redis(port=port, username=user, password=f"pw-{user}", retry=no_retry)


def test_default_user_is_off(redis_port: int) -> None:
    with pytest.raises((AuthenticationError, ResponseError)):
        client(redis_port).ping()


def test_service_user_may_use_its_own_prefix(redis_port: int) -> None:
    c = client(redis_port, "marketplace-svc")
    c.set("marketplace-svc:listing:1", "x", ex=60)
    assert c.get("marketplace-svc:listing:1") == b"x"


def test_service_user_may_not_touch_other_prefixes(redis_port: int) -> None:
    with pytest.raises(NoPermissionError):
        client(redis_port, "marketplace-svc").get("auth-svc:session:1")


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("SHUTDOWN",),
    ],
)
def test_service_user_may_not_run_dangerous_commands(redis_port: int, command: tuple[str, ...]) -> None:
    # NOPERM from the ACL; DEBUG is refused even earlier (enable-debug-command no).
    with pytest.raises(ResponseError, match=r"NOPERM|no permissions|DEBUG command not allowed"):
        client(redis_port, "auth-svc").execute_command(*command)


@pytest.mark.parametrize(
    "command",
    [
        ("SCRIPT", "LOAD", "return 1"),
        ("SCRIPT", "FLUSH"),
        ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)"),
        ("FUNCTION", "LIST"),
        ("FCALL", "f", "0"),
        ("SCAN", "0"),
        ("RANDOMKEY",),
    ],
)
def test_service_user_may_not_script_or_list_keys(redis_port: int, command: tuple[str, ...]) -> None:
    with pytest.raises(NoPermissionError):
        client(redis_port, "auth-svc").execute_command(*command)


async def test_servicekit_cache_lock_is_released_under_the_service_acl(redis_port: int) -> None:
    """servicekit's cache takes a SET NX lock and releases it with EVAL: both allowed, on its keys only."""
    from redis.asyncio import Redis
    from servicekit.cache import Cache
    from servicekit.metrics import Metrics

    redis_client = Redis(port=redis_port, username="marketplace-svc", password="pw-marketplace-svc")
    cache = Cache(redis_client, "marketplace-svc", Metrics("marketplace-svc"))

    async def load() -> dict:
        return {"id": 1}

    try:
        assert await cache.get_or_load("acl-lock", load, ttl=60) == {"id": 1}
        assert cache._down_until == 0.0  # no Redis error was swallowed (unlock included)
        assert await redis_client.exists(f"{cache.prefix}lock:acl-lock") == 0
    finally:
        await redis_client.aclose()


def test_service_user_eval_cannot_reach_other_services_keys(redis_port: int) -> None:
    script = "return redis.call('get', KEYS[1])"
    with pytest.raises(NoPermissionError):
        client(redis_port, "marketplace-svc").eval(script, 1, "auth-svc:session:1")


def test_exporter_may_read_info_but_no_keys(redis_port: int) -> None:
    c = client(redis_port, "exporter")
    assert "redis_version" in c.info("server")
    with pytest.raises(NoPermissionError):
        c.get("auth-svc:x")


def test_admin_may_do_everything(redis_port: int) -> None:
    assert client(redis_port, "admin").config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}


def test_config_applies_maxmemory_and_persistence(redis_port: int, specs) -> None:
    config = client(redis_port, "admin").config_get("*")
    assert int(config["maxmemory"]) == 1024**3  # prod: 1Gi
    assert config["appendonly"] == "yes"


def test_acl_file_has_no_plaintext_passwords(spec: PlatformSpec) -> None:
    acl = render_redis_acl(spec, {u: f"secret-{u}" for u in redis_users(spec)})
    assert "secret-" not in acl


@pytest.mark.parametrize(
    ("mode", "line"), [("none", 'save ""'), ("rdb", "save 3600 1"), ("aof", "appendonly yes")]
)
def test_persistence_follows_the_stack(specs, mode: str, line: str, tmp_path: Path) -> None:
    conf = render_redis_conf(specs["dev"], dir=str(tmp_path), aclfile="/a", persistence=mode)  # type: ignore[arg-type]
    assert line in conf


def _with_redis_services(spec: PlatformSpec, *names: str) -> PlatformSpec:
    """*spec* with services called *names* that need Redis (bypassing the manifest's name checks)."""
    base = spec.service("marketplace-svc")
    services = tuple(
        base.model_copy(update={"manifest": base.manifest.model_copy(update={"name": n})}) for n in names
    )
    return spec.model_copy(update={"services": services})


@pytest.mark.parametrize("name", ["admin", "exporter", "default"])
def test_service_user_may_not_take_a_platform_user(specs, name: str) -> None:
    with pytest.raises(UsageError, match=f"Redis ACL user.*{name}"):
        redis_users(_with_redis_services(specs["dev"], "auth-svc", name))


def test_service_user_may_not_be_defined_twice(specs) -> None:
    with pytest.raises(UsageError, match="auth-svc defined twice"):
        redis_users(_with_redis_services(specs["dev"], "auth-svc", "auth-svc"))
