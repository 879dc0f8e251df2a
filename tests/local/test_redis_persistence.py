"""Issue 14 item 10: the local Redis keeps data across a restart exactly when the stack says so
(``platform:redis.persistence``), because it runs the stack's rendered redis.conf."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from infra.local.acl_redis import AclRedisServer
from infra.local.pytest_plugin import make_servers_dir
from infra.render.redis import redis_users
from infra.spec import PlatformSpec, load_spec


def _with_persistence(mode: str) -> PlatformSpec:
    spec = load_spec("dev")
    redis = spec.config.redis.model_copy(update={"persistence": mode})
    return spec.model_copy(update={"config": spec.config.model_copy(update={"redis": redis})})


@pytest.mark.parametrize(("mode", "kept"), [("aof", True), ("rdb", True), ("none", False)])
def test_sessions_survive_a_restart_where_the_stack_keeps_redis_data(mode: str, kept: bool) -> None:
    spec = _with_persistence(mode)
    passwords = {user: f"pw-{user}-0123456789" for user in redis_users(spec)}
    base: Path = make_servers_dir("platform-redis-persist-")
    server = AclRedisServer(base, spec, passwords)
    server.start()
    try:
        with server.client() as client:
            client.set("auth-svc:session:probe", "alive")
        if mode == "aof":
            time.sleep(1.5)  # appendfsync everysec: a crash loses at most the last second
            server.kill()  # a crash
        else:
            server.stop()  # a `platform dev down` (rdb saves on a graceful shutdown)
        server.start()
        with server.client() as client:
            value = client.get("auth-svc:session:probe")
        assert (value == b"alive") is kept
    finally:
        server.kill()
        shutil.rmtree(base, ignore_errors=True)
