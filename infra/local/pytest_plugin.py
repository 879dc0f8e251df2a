"""pytest fixtures with real servers on free loopback ports (registered by the repo-root conftest.py).

Session-scoped, started lazily on first request, once per session, stopped at session end:

- ``postgres_server`` -> :class:`PostgresServer`: ``host``, ``port``, ``superuser``, ``password``,
  ``dsn(db, user, password)``, ``async_dsn(...)``, ``create_database(name, owner, password)``,
  ``drop_database(name)``, ``psql(sql, database, user, password)``, ``info``.
- ``redis_server`` -> :class:`RedisServer`: ``host``, ``port``, ``username`` ("default"),
  ``password``, ``url(db, username, password)``, ``client()``, ``info``. No persistence.
- ``rabbitmq_server`` -> :class:`RabbitMqServer`: ``host``, ``port`` (AMQP), ``user`` ("admin"),
  ``password``, ``url(vhost, user, password)``, ``management_port``, ``prometheus_port``,
  ``info.management_url``, ``info.prometheus_url``, ``ctl(*args)``, ``import_definitions(dict|path)``.

Function-scoped:

- ``postgres_database(prefix="db")`` -> :class:`Database` (``name``, ``owner``, ``password``, ``dsn``,
  ``async_dsn``): a new database owned by a new role on ``postgres_server``, dropped after the test.
- ``server_factory`` -> :class:`ServerFactory`: ``.postgres(**kw)``, ``.redis(**kw)``,
  ``.rabbitmq(**kw)`` start a private instance (for tests that stop, kill or break servers); every
  instance is killed after the test and the test errors if any of its processes survives.
  ``module_server_factory`` is the same, shared by one test module.

Shared servers never touch the machine's own PostgreSQL/Redis/RabbitMQ on the standard ports. Set
``PLATFORM_KEEP_SERVER_DIRS=1`` to keep data and logs (under /tmp/platform-test-servers-*).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from infra.local.postgres_server import PostgresServer
from infra.local.rabbitmq_server import RabbitMqServer
from infra.local.redis_server import RedisServer
from infra.local.server import LocalServer

S = TypeVar("S", bound=LocalServer)


def make_servers_dir(prefix: str = "platform-test-servers-") -> Path:
    """A fresh directory under the system temp dir that the ``postgres`` OS user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _remove(path: Path) -> None:
    if not os.environ.get("PLATFORM_KEEP_SERVER_DIRS"):
        shutil.rmtree(path, ignore_errors=True)


def _shutdown(server: LocalServer, *, graceful: bool) -> list[int]:
    """Stop (or kill) ``server``; return PIDs that are still alive afterwards (should be none)."""
    try:
        if graceful:
            server.stop()
        else:
            server.kill()
    finally:
        leftover = sorted(server.alive_pids())
        if leftover:
            server.kill()
    return leftover


@dataclass(frozen=True)
class Database:
    """A database made for one test: ``name``, ``owner``, ``password``, ``dsn``, ``async_dsn``."""

    name: str
    owner: str
    password: str
    dsn: str
    async_dsn: str


@dataclass
class ServerFactory:
    """Starts private server instances under ``base_dir``; :meth:`cleanup` kills them all."""

    base_dir: Path
    servers: list[LocalServer] = field(default_factory=list)

    def _add(self, cls: Callable[..., S], kind: str, start: bool, kwargs: dict[str, Any]) -> S:
        kwargs.setdefault("name", f"{kind}-{len(self.servers)}")
        server = cls(self.base_dir, **kwargs)
        self.servers.append(server)
        return server.start() if start else server

    def postgres(self, *, start: bool = True, **kwargs: Any) -> PostgresServer:
        """A private :class:`PostgresServer` (started unless ``start=False``)."""
        return self._add(PostgresServer, "postgres", start, kwargs)

    def redis(self, *, start: bool = True, **kwargs: Any) -> RedisServer:
        """A private :class:`RedisServer` (started unless ``start=False``)."""
        return self._add(RedisServer, "redis", start, kwargs)

    def rabbitmq(self, *, start: bool = True, **kwargs: Any) -> RabbitMqServer:
        """A private :class:`RabbitMqServer`; pass ``plugins=()`` for a ~1 s instead of ~6 s stop."""
        return self._add(RabbitMqServer, "rabbitmq", start, kwargs)

    def cleanup(self) -> dict[str, list[int]]:
        """Kill every instance; return ``{name: surviving PIDs}`` for any that left processes."""
        leaks = {}
        for server in reversed(self.servers):
            leftover = _shutdown(server, graceful=False)
            if leftover:
                leaks[f"{server.kind} in {server.base_dir}"] = leftover
        return leaks


@pytest.fixture(scope="session")
def local_servers_dir() -> Iterator[Path]:
    """The session's directory for shared server data and logs."""
    path = make_servers_dir()
    yield path
    _remove(path)


def _session_server(server: S) -> Iterator[S]:
    """Start ``server`` for the session; kill it at the end (its data is deleted right after, so
    a graceful stop would only cost time: ~6 s for RabbitMQ with its plugins)."""
    try:
        server.start()
        yield server
    finally:
        _shutdown(server, graceful=False)


@pytest.fixture(scope="session")
def postgres_server(local_servers_dir: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the whole session (superuser ``postgres``, generated password)."""
    yield from _session_server(PostgresServer(local_servers_dir))


@pytest.fixture(scope="session")
def redis_server(local_servers_dir: Path) -> Iterator[RedisServer]:
    """A redis-server for the whole session (default user with a generated password)."""
    yield from _session_server(RedisServer(local_servers_dir))


@pytest.fixture(scope="session")
def rabbitmq_server(local_servers_dir: Path) -> Iterator[RabbitMqServer]:
    """A RabbitMQ node for the whole session, management and Prometheus plugins on."""
    yield from _session_server(RabbitMqServer(local_servers_dir))


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[Callable[..., Database]]:
    """Factory: ``postgres_database(prefix="db")`` creates a fresh database and owner role."""
    made: list[str] = []

    def create(prefix: str = "db") -> Database:
        name = f"{prefix}_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        postgres_server.create_database(name, owner=name, password=password)
        made.append(name)
        return Database(
            name=name,
            owner=name,
            password=password,
            dsn=postgres_server.dsn(name, name, password),
            async_dsn=postgres_server.async_dsn(name, name, password),
        )

    yield create
    for name in made:
        postgres_server.drop_database(name)
        postgres_server.psql(f'DROP ROLE IF EXISTS "{name}";')


def _factory() -> Iterator[ServerFactory]:
    factory = ServerFactory(make_servers_dir("platform-test-own-"))
    try:
        yield factory
    finally:
        leaks = factory.cleanup()
        _remove(factory.base_dir)
    if leaks:
        pytest.fail(f"server processes survived kill: {leaks}")


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Private server instances for one test; all killed afterwards, leaks reported as errors."""
    yield from _factory()


@pytest.fixture(scope="module")
def module_server_factory() -> Iterator[ServerFactory]:
    """Like ``server_factory`` but shared by one test module (saves boots of slow servers)."""
    yield from _factory()
