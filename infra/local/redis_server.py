"""A private redis-server on a free loopback port, password (ACL) protected, no persistence by default."""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.errors import ToolMissingError
from infra.local.ports import free_port
from infra.local.process import ManagedProcess
from infra.local.server import LocalServer, child_env


@dataclass(frozen=True)
class RedisInfo:
    """How to reach the server: ``host``, ``port``, ``username`` ("default"), ``password``."""

    host: str
    port: int
    username: str
    password: str

    def url(self, db: int = 0, username: str | None = None, password: str | None = None) -> str:
        """``redis://user:password@host:port/db`` (the default user unless given)."""
        user = quote(username or self.username, safe="")
        secret = quote(self.password if password is None else password, safe="")
        return f"redis://{user}:{secret}@{self.host}:{self.port}/{db}"


class RedisServer(LocalServer):
    """redis-server under ``base_dir/<name>`` (``redis.conf``, ``users.acl``, ``data/``, ``redis.log``).

    Attributes: ``host`` (127.0.0.1), ``port``, ``username`` ("default"), ``password`` (generated),
    ``log_path``, ``info`` (:class:`RedisInfo`); ``url(db, username, password)``. ``acl_rules`` are extra
    ``users.acl`` lines (e.g. ``"user svc on >pw ~svc:* +@all"``). With ``persistence=False`` (default)
    nothing is written to disk, so a restart starts empty; ``persistence=True`` turns on the AOF.
    """

    kind = "redis"

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        acl_rules: Sequence[str] = (),
        persistence: bool = False,
        name: str = "redis",
        start_timeout: float = 15.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(base_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.dir = self.base_dir / name
        self.port = port or free_port()
        self.username = "default"
        self.password = password or secrets.token_urlsafe(18)
        self.acl_rules = list(acl_rules)
        self.persistence = persistence
        binary = shutil.which("redis-server")
        if binary is None:
            raise ToolMissingError("redis-server not found", hint="apt-get install redis-server")
        self.binary = binary

    @property
    def log_path(self) -> Path:
        """The server log (redis logs to stdout, captured here)."""
        return self.dir / "redis.log"

    @property
    def config_path(self) -> Path:
        """The generated redis.conf."""
        return self.dir / "redis.conf"

    @property
    def acl_path(self) -> Path:
        """The generated ACL file (default user + ``acl_rules``)."""
        return self.dir / "users.acl"

    @property
    def info(self) -> RedisInfo:
        """Connection facts as a plain dataclass."""
        return RedisInfo(self.host, self.port, self.username, self.password)

    def url(self, db: int = 0, username: str | None = None, password: str | None = None) -> str:
        """See :meth:`RedisInfo.url`."""
        return self.info.url(db, username, password)

    def client(self, **kwargs: object) -> redis.Redis:
        """A synchronous client authenticated as the default user (caller closes it)."""
        return redis.Redis(
            host=self.host, port=self.port, username=self.username, password=self.password, **kwargs
        )

    def _prepare(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        self.acl_path.write_text(
            "\n".join([f"user default on #{digest} ~* &* +@all", *self.acl_rules]) + "\n"
        )
        self.acl_path.chmod(0o600)
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',
            f"dir {data}",
            f"aclfile {self.acl_path}",
            'save ""',
            f"appendonly {'yes' if self.persistence else 'no'}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _command(self) -> ManagedProcess:
        return ManagedProcess(
            "redis-server",
            [self.binary, str(self.config_path)],
            log_path=self.log_path,
            env=child_env(("REDIS",), {}),
            cwd=self.dir,
        )

    def _ready_ports(self) -> list[int]:
        return [self.port]

    def _ready(self) -> bool:
        no_retry = Retry(NoBackoff(), 0)  # the readiness loop retries; redis-py's backoff would stall it
        with self.client(socket_timeout=2, socket_connect_timeout=2, retry=no_retry) as client:
            return bool(client.ping())
