"""A private RabbitMQ node with its own epmd, HOME (so its own Erlang cookie) and loopback ports."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from infra.errors import ToolMissingError
from infra.local.ports import free_port
from infra.local.process import ManagedProcess, ServerError
from infra.local.server import LocalServer, child_env

RABBITMQ_SBIN = Path("/usr/lib/rabbitmq/bin")
MANAGEMENT = "rabbitmq_management"
PROMETHEUS = "rabbitmq_prometheus"
DEFAULT_PLUGINS = (MANAGEMENT, PROMETHEUS)
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_CONNECTION_START = (10, 10)  # class, method


def amqp_handshake(host: str, port: int, timeout: float = 2.0) -> bool:
    """True if the server answers the AMQP 0-9-1 protocol header with ``Connection.Start``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_AMQP_HEADER)
        head = b""
        while len(head) < 11:
            chunk = sock.recv(11 - len(head))
            if not chunk:
                return False
            head += chunk
    frame_type, channel, _size, class_id, method_id = struct.unpack(">BHIHH", head)
    return frame_type == 1 and channel == 0 and (class_id, method_id) == _CONNECTION_START


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """A definitions ``password_hash`` (rabbit_password_hashing_sha256: b64(salt + sha256(salt + pw)))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _tool(name: str) -> str:
    path = RABBITMQ_SBIN / name
    if path.exists():
        return str(path)
    raise ToolMissingError(f"{path} not found", hint="apt-get install rabbitmq-server")


@dataclass(frozen=True)
class RabbitMqInfo:
    """How to reach the node: ``host``, ``port`` (AMQP), ``user``, ``password``, ``node_name``,
    ``management_port`` and ``prometheus_port`` (None when that plugin is off)."""

    host: str
    port: int
    user: str
    password: str
    node_name: str
    management_port: int | None
    prometheus_port: int | None

    def url(self, vhost: str = "/", user: str | None = None, password: str | None = None) -> str:
        """``amqp://user:password@host:port/<vhost>`` (the admin user unless given)."""
        login = quote(user or self.user, safe="")
        secret = quote(self.password if password is None else password, safe="")
        return f"amqp://{login}:{secret}@{self.host}:{self.port}/{quote(vhost, safe='')}"

    @property
    def management_url(self) -> str | None:
        """``http://host:port`` of the management HTTP API (basic auth: user/password)."""
        return f"http://{self.host}:{self.management_port}" if self.management_port else None

    @property
    def prometheus_url(self) -> str | None:
        """``http://host:port/metrics`` of the Prometheus plugin."""
        return f"http://{self.host}:{self.prometheus_port}/metrics" if self.prometheus_port else None


class RabbitMqServer(LocalServer):
    """A RabbitMQ node under ``base_dir/<name>`` (``home/``, ``mnesia/``, ``log/``, ``rabbitmq.conf``).

    Attributes: ``host`` (127.0.0.1), ``port`` (AMQP), ``dist_port``, ``epmd_port``,
    ``management_port`` / ``prometheus_port`` (None if the plugin is not in ``plugins``), ``user``
    ("admin", administrator on vhost "/"), ``password`` (generated), ``node_name``
    ("rabbit-<port>@localhost" unless given), ``log_path``, ``info`` (:class:`RabbitMqInfo`); ``url(vhost)``,
    ``ctl(*args)`` (rabbitmqctl against this node), ``import_definitions(path or dict)``.

    ``definitions`` (a JSON file) is imported at every boot, with the admin user merged in (a node
    that loads definitions creates no default user). It runs its own epmd on ``epmd_port``
    (never the system one on 4369); :meth:`pids` includes it and stop/kill end it too. A graceful stop
    takes ~6 s with the management or Prometheus plugin (their stats collector waits 5 s) and ~1 s
    without; pass ``plugins=()`` where that matters.
    """

    kind = "rabbitmq"

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        dist_port: int | None = None,
        epmd_port: int | None = None,
        management_port: int | None = None,
        prometheus_port: int | None = None,
        user: str = "admin",
        password: str | None = None,
        plugins: Sequence[str] = DEFAULT_PLUGINS,
        definitions: Path | None = None,
        name: str = "rabbitmq",
        node_name: str | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(base_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.dir = self.base_dir / name
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.epmd_port = epmd_port or free_port()
        self.plugins = list(plugins)
        self.management_port = (management_port or free_port()) if MANAGEMENT in self.plugins else None
        self.prometheus_port = (prometheus_port or free_port()) if PROMETHEUS in self.plugins else None
        self.user = user
        self.password = password or secrets.token_urlsafe(18)
        self.definitions = Path(definitions).resolve() if definitions else None
        #: The node's identity; its data lives in ``mnesia/<node_name>``, so a stable name (not the
        #: port-derived default) keeps queued messages across restarts even when the port moves.
        self.node_name = node_name or f"rabbit-{self.port}@localhost"
        self.server_bin = _tool("rabbitmq-server")
        epmd = shutil.which("epmd")
        if epmd is None:
            raise ToolMissingError("epmd not found", hint="apt-get install erlang-base")
        self.epmd_bin = epmd
        self._epmd: ManagedProcess | None = None

    # ---- paths and facts ----------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """The node's log file (``log/<node_name>.log``)."""
        return self.dir / "log" / f"{self.node_name}.log"

    @property
    def stdout_path(self) -> Path:
        """Console output of rabbitmq-server (boot banner, crash reports before logging starts)."""
        return self.dir / "rabbitmq-server.out"

    @property
    def config_path(self) -> Path:
        """The generated rabbitmq.conf."""
        return self.dir / "rabbitmq.conf"

    @property
    def info(self) -> RabbitMqInfo:
        """Connection facts as a plain dataclass."""
        return RabbitMqInfo(
            self.host,
            self.port,
            self.user,
            self.password,
            self.node_name,
            self.management_port,
            self.prometheus_port,
        )

    def url(self, vhost: str = "/", user: str | None = None, password: str | None = None) -> str:
        """See :meth:`RabbitMqInfo.url`."""
        return self.info.url(vhost, user, password)

    def _log_files(self) -> list[Path]:
        return [self.stdout_path, self.log_path, self.dir / "epmd.log"]

    def _env(self) -> dict[str, str]:
        """Everything that points the scripts at this node only (private HOME => private cookie)."""
        return child_env(
            ("RABBITMQ_", "ERL_"),
            {
                "HOME": str(self.dir / "home"),
                "RABBITMQ_NODENAME": self.node_name,
                "RABBITMQ_USE_LONGNAME": "false",
                "RABBITMQ_NODE_IP_ADDRESS": self.host,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_PORT": str(self.epmd_port),
                "ERL_EPMD_ADDRESS": self.host,
                "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                "RABBITMQ_CONF_ENV_FILE": "/dev/null",
                "RABBITMQ_CONFIG_FILE": str(self.config_path),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
                # -start_epmd false: never spawn a stray `epmd -daemon` on our port (ours runs,
                # recorded, in the foreground); without it a node that lost its epmd starts one.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                    "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
                ),
            },
        )

    def _config(self) -> str:
        lines = [
            f"listeners.tcp.default = {self.host}:{self.port}",
            "loopback_users = none",
            f"default_user = {self.user}",
            f"default_pass = {self.password}",
            "default_user_tags.administrator = true",
            "log.console = false",
            "log.file.level = info",
        ]
        if self.management_port:
            lines += [f"management.tcp.ip = {self.host}", f"management.tcp.port = {self.management_port}"]
        if self.prometheus_port:
            lines += [f"prometheus.tcp.ip = {self.host}", f"prometheus.tcp.port = {self.prometheus_port}"]
        if self.definitions:
            lines += [
                "definitions.import_backend = local_filesystem",
                f"definitions.local.path = {self.boot_definitions_path}",
            ]
        return "\n".join(lines) + "\n"

    @property
    def boot_definitions_path(self) -> Path:
        """The copy of ``definitions`` imported at boot, with the admin user added."""
        return self.dir / "boot-definitions.json"

    @staticmethod
    def _read_definitions(source: Path) -> dict[str, Any]:
        try:
            return json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            raise ServerError(
                f"cannot read RabbitMQ definitions {source}: {exc}", hint="pass a valid definitions JSON file"
            ) from exc

    def _with_admin(self, definitions: Mapping[str, Any]) -> dict[str, Any]:
        """``definitions`` plus vhost "/", the admin user and its permissions on every vhost.

        A node that imports definitions at boot creates no default user or vhost, and imported
        vhosts grant the admin nothing, so the admin access this class promises is merged in;
        nothing else is changed.
        """
        defs = json.loads(json.dumps(definitions))
        vhosts = defs.setdefault("vhosts", [])
        if not any(v.get("name") == "/" for v in vhosts):
            vhosts.append({"name": "/"})
        users = [u for u in defs.setdefault("users", []) if u.get("name") != self.user]
        users.append(
            {
                "name": self.user,
                "password_hash": rabbit_password_hash(self.password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        )
        defs["users"] = users
        permissions = [p for p in defs.setdefault("permissions", []) if p.get("user") != self.user]
        for vhost in vhosts:
            permissions.append(
                {"user": self.user, "vhost": vhost["name"], "configure": ".*", "write": ".*", "read": ".*"}
            )
        defs["permissions"] = permissions
        return defs

    # ---- life cycle hooks ---------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.definitions and not self.definitions.is_file():
            raise ServerError(
                f"RabbitMQ definitions file {self.definitions} does not exist",
                hint="render the definitions first, or pass definitions=None",
            )
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        home = self.dir / "home"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        self.config_path.write_text(self._config())
        self.config_path.chmod(0o600)
        (self.dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        if self.definitions:
            defs = self._with_admin(self._read_definitions(self.definitions))
            self.boot_definitions_path.write_text(json.dumps(defs))
            self.boot_definitions_path.chmod(0o600)
        self._start_epmd()

    def _start_epmd(self) -> None:
        """Our own epmd in the foreground, so its PID is ours to stop (no daemon, no port 4369)."""
        if self._epmd is not None and self._epmd.running():
            return
        self._epmd = ManagedProcess(
            "epmd",
            [self.epmd_bin, "-address", self.host, "-port", str(self.epmd_port)],
            log_path=self.dir / "epmd.log",
            env=child_env(("ERL_",), {}),
            cwd=self.dir,
            die_with_parent=self.die_with_parent,
        )
        self._epmd.start()
        self._spawned("epmd", self._epmd)
        self._await_ready(self._epmd, probe=lambda: True, ports=[self.epmd_port], what="epmd", timeout=10.0)

    def _epmd_pids(self) -> list[int]:
        return self._epmd.observe() if self._epmd else []

    def _command(self) -> ManagedProcess:
        return ManagedProcess(
            "rabbitmq-server",
            [self.server_bin],
            log_path=self.stdout_path,
            env=self._env(),
            cwd=self.dir,
        )

    def _ready_ports(self) -> list[int]:
        return [p for p in (self.port, self.management_port, self.prometheus_port) if p]

    def _ready(self) -> bool:
        return amqp_handshake(self.host, self.port)

    def _after_stop(self) -> None:
        if self._epmd is not None:
            self._epmd.stop(timeout=5.0)

    def kill(self) -> None:
        """SIGKILL the node (beam and its helpers) and its epmd."""
        if self._epmd is not None:
            self._epmd.observe()
        super().kill()
        if self._epmd is not None:
            self._epmd.kill()

    def pids(self) -> set[int]:
        """Live PIDs: the rabbitmq-server script, beam.smp, erl_child_setup, inet_gethost, epmd."""
        return super().pids() | set(self._epmd_pids())

    def seen_pids(self) -> set[int]:
        """Every PID observed for the current run, epmd included."""
        return super().seen_pids() | (set(self._epmd.seen) if self._epmd else set())

    def alive_pids(self) -> set[int]:
        """The :meth:`seen_pids` that still run."""
        return super().alive_pids() | (set(self._epmd.alive_seen()) if self._epmd else set())

    def epmd_pid(self) -> int | None:
        """PID of this node's epmd (None before start)."""
        return self._epmd.pid if self._epmd else None

    # ---- management ---------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl <args>`` against this node (same HOME/cookie, epmd port); return stdout."""
        result = subprocess.run(
            [_tool("rabbitmqctl"), "-n", self.node_name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"rabbitmqctl {' '.join(args[:1])} failed: {(result.stderr or result.stdout).strip()}",
                hint=f"is the node running? read {self.log_path}",
            )
        return result.stdout

    def import_definitions(self, definitions: Path | Mapping[str, Any]) -> None:
        """Import a definitions file (or dict) into the running node with rabbitmqctl.

        The admin user is granted full permissions on every vhost the definitions declare.
        """
        if not isinstance(definitions, Mapping):
            definitions = self._read_definitions(Path(definitions))
        path = self.dir / f"import-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(self._with_admin(definitions)))
        path.chmod(0o600)
        try:
            self.ctl("import_definitions", str(path))
        finally:
            path.unlink(missing_ok=True)
