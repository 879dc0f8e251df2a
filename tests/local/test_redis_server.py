"""RedisServer: authenticated PING, ACL users, restart on the same port, kill, start failures."""

from __future__ import annotations

import socket

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.local.process import ServerError, pid_alive


def test_shared_server_answers_ping_with_password(redis_server):
    with redis.Redis.from_url(redis_server.url()) as client:
        assert client.ping() is True


def test_commands_without_password_are_refused(redis_server):
    anonymous = redis.Redis(host=redis_server.host, port=redis_server.port, retry=Retry(NoBackoff(), 0))
    with anonymous as client, pytest.raises(redis.AuthenticationError):
        client.ping()


def test_acl_rules_limit_a_service_user_to_its_prefix(server_factory):
    server = server_factory.redis(acl_rules=["user shop on >shop-pw ~shop:* +@all"])
    with redis.Redis.from_url(server.url(username="shop", password="shop-pw")) as client:
        client.set("shop:k", "v")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("other:k", "v")


def test_restart_keeps_port_and_data_with_persistence(server_factory):
    server = server_factory.redis(persistence=True)
    port = server.port
    with server.client() as client:
        client.set("k", "kept")
    server.restart()
    assert server.port == port
    with server.client() as client:
        assert client.get("k") == b"kept"


def test_restart_without_persistence_starts_empty(server_factory):
    server = server_factory.redis()
    with server.client() as client:
        client.set("k", "v")
    server.restart()
    with server.client() as client:
        assert client.get("k") is None


def test_kill_leaves_no_process(server_factory):
    server = server_factory.redis()
    seen = server.seen_pids()
    assert seen
    server.kill()
    assert not server.is_running()
    assert [pid for pid in seen if pid_alive(pid)] == []


def test_port_taken_fails_with_log_tail(server_factory):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = server_factory.redis(start=False, port=port)
        with pytest.raises(ServerError) as info:
            server.start()
    assert f"127.0.0.1:{port} is already in use" in info.value.message
    assert "Address already in use" in info.value.log_tail
