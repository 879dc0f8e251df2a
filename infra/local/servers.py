"""Real local servers for tests and `platform dev`: one import for all of them.

Each server takes ``base_dir`` (its files go under ``base_dir/<name>``) and optional fixed ports, and
offers ``start()``, ``stop()``, ``kill()``, ``restart()``, ``is_running()``, ``pids()``,
``seen_pids()``/``alive_pids()`` (prove nothing is left), ``log_path`` and ``info`` (a dataclass of
connection facts). Start failures raise :class:`ServerError` with the tail of the logs.
"""

from __future__ import annotations

from infra.local.ports import LOCALHOST, free_port
from infra.local.postgres_server import PostgresInfo, PostgresServer
from infra.local.process import ServerError, pid_alive
from infra.local.rabbitmq_server import RabbitMqInfo, RabbitMqServer, amqp_handshake
from infra.local.redis_server import RedisInfo, RedisServer
from infra.local.server import LocalServer

__all__ = [
    "LOCALHOST",
    "LocalServer",
    "PostgresInfo",
    "PostgresServer",
    "RabbitMqInfo",
    "RabbitMqServer",
    "RedisInfo",
    "RedisServer",
    "ServerError",
    "amqp_handshake",
    "free_port",
    "pid_alive",
]
