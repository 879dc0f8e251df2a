"""A private PostgreSQL cluster: initdb, postgres on a free loopback port, scram password auth."""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from infra.errors import ToolMissingError
from infra.local.ports import free_port
from infra.local.process import ManagedProcess, ServerError
from infra.local.server import LocalServer, child_env

#: Settings applied unless overridden: a throwaway cluster does not need to fsync.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes; keep room for "/.s.PGSQL.NNNNN"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or the directory of ``postgres`` on PATH)."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise ToolMissingError(
        "PostgreSQL server binaries not found", hint="apt-get install postgresql (or put postgres on PATH)"
    )


def _psql_literal(value: str) -> str:
    """A psql backslash-command argument in single quotes (psql doubles quotes, escapes backslashes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class PostgresInfo:
    """How to reach the cluster: ``host``, ``port``, ``superuser``, ``password``, ``socket_dir``."""

    host: str
    port: int
    superuser: str
    password: str
    socket_dir: Path

    def dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """``postgresql://user:password@host:port/database`` (the superuser by default)."""
        user = user or self.superuser
        password = self.password if password is None else password
        login = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"postgresql://{login}@{self.host}:{self.port}/{database}"

    def async_dsn(
        self, database: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        """The SQLAlchemy asyncpg URL: ``postgresql+asyncpg://...``."""
        return "postgresql+asyncpg://" + self.dsn(database, user, password).split("://", 1)[1]


class PostgresServer(LocalServer):
    """A PostgreSQL cluster under ``base_dir/<name>`` (``data/``, ``run/`` socket dir, ``postgres.log``).

    Attributes: ``host`` (127.0.0.1), ``port``, ``superuser`` ("postgres"), ``password`` (generated),
    ``data_dir``, ``socket_dir``, ``log_path``, ``info`` (:class:`PostgresInfo`). Methods: ``dsn()``,
    ``async_dsn()``, ``create_database(name, owner, password)``, ``drop_database(name)``, ``psql(sql)``.
    As root, initdb and postgres run as the ``postgres`` OS user (initdb refuses root).
    """

    kind = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        superuser: str = "postgres",
        settings: Mapping[str, str] | None = None,
        name: str = "postgres",
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(base_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.dir = self.base_dir / name
        self.port = port or free_port()
        self.superuser = superuser
        self.password = password or secrets.token_urlsafe(18)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.bin_dir = postgres_bin_dir()
        self.data_dir = self.dir / "data"
        self.os_user = "postgres" if os.geteuid() == 0 else None
        socket_dir = self.dir / "run"
        if len(str(socket_dir)) > _UNIX_SOCKET_MAX:
            socket_dir = Path(tempfile.mkdtemp(prefix="pg-sock-"))
        self.socket_dir = socket_dir

    @property
    def log_path(self) -> Path:
        """The server log (postgres writes to stderr; initdb output goes here too)."""
        return self.dir / "postgres.log"

    @property
    def info(self) -> PostgresInfo:
        """Connection facts as a plain dataclass (safe to pass around; no process handle)."""
        return PostgresInfo(self.host, self.port, self.superuser, self.password, self.socket_dir)

    def dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """See :meth:`PostgresInfo.dsn`."""
        return self.info.dsn(database, user, password)

    def async_dsn(
        self, database: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        """See :meth:`PostgresInfo.async_dsn`."""
        return self.info.async_dsn(database, user, password)

    # ---- life cycle hooks ---------------------------------------------------------------------

    def _owner_ids(self) -> tuple[int, int] | None:
        if self.os_user is None:
            return None
        entry = pwd.getpwnam(self.os_user)
        return entry.pw_uid, entry.pw_gid

    def _check_reachable(self, uid: int, gid: int) -> None:
        """Fail early, with a fix, if the ``postgres`` user cannot traverse to ``self.dir``."""
        groups = {gid} | {g.gr_gid for g in grp.getgrall() if self.os_user in g.gr_mem}
        for directory in [self.dir, *self.dir.parents]:
            st = directory.stat()
            if st.st_uid == uid:
                needed = stat.S_IXUSR
            elif st.st_gid in groups:
                needed = stat.S_IXGRP
            else:
                needed = stat.S_IXOTH
            if not st.st_mode & needed:
                raise ServerError(
                    f"the {self.os_user} OS user cannot enter {directory}",
                    hint=f"chmod o+x {directory}, or pick a base directory the {self.os_user} user can reach",
                )

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        ids = self._owner_ids()
        if ids:
            self._check_reachable(*ids)
            os.chown(self.socket_dir, *ids)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pwfile = self.dir / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if ids:
            os.chown(self.data_dir, *ids)
            os.chown(pwfile, *ids)
        argv = [
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        ]  # fmt: skip
        try:
            with self.log_path.open("ab") as log:
                result = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env(("PG", "LC_", "LANG"), {"LANG": "C.UTF-8"}),
                    cwd=self.dir,
                    user=ids[0] if ids else None,
                    group=ids[1] if ids else None,
                    extra_groups=[] if ids else None,
                    timeout=120,
                    check=False,
                )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise self.error(f"initdb failed with exit code {result.returncode}")

    def _command(self) -> ManagedProcess:
        settings = {
            **self.settings,
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
        }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return ManagedProcess(
            "postgres",
            argv,
            log_path=self.log_path,
            env=child_env(("PG", "LC_", "LANG"), {"LANG": "C.UTF-8"}),
            cwd=self.dir,
            user=self.os_user,
        )

    def _ready_ports(self) -> list[int]:
        return [self.port]

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "2"],
            env=child_env(("PG",), {}),
            timeout=5,
            check=False,
        )
        return result.returncode == 0

    # ---- SQL helpers --------------------------------------------------------------------------

    def psql(
        self, sql: str, database: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        """Run ``sql`` with psql (unaligned, tuples only, stop on first error); return its stdout."""
        env = child_env(("PG",), {"PGPASSWORD": self.password if password is None else password})
        argv = [
            str(self.bin_dir / "psql"),
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port),
            "-U", user or self.superuser, "-d", database,
        ]  # fmt: skip
        result = subprocess.run(argv, input=sql, capture_output=True, text=True, env=env, timeout=60)
        if result.returncode != 0:
            raise ServerError(
                f"psql failed on database {database!r}: {result.stderr.strip()}",
                hint=f"is the server running? read {self.log_path}",
            )
        return result.stdout

    def create_database(self, name: str, owner: str, password: str) -> str:
        """Create login role ``owner`` (or reset its password) and database ``name`` it owns.

        Idempotent. Returns the owner's DSN for the new database.
        """
        for label, value in (("database", name), ("owner", owner)):
            if not _IDENTIFIER.match(value):
                raise ServerError(f"invalid {label} name {value!r}", hint="use letters, digits, _ and -")
        script = "\n".join(
            [
                f"\\set owner {_psql_literal(owner)}",
                f"\\set password {_psql_literal(password)}",
                f"\\set dbname {_psql_literal(name)}",
                "SELECT format('CREATE ROLE %I LOGIN', :'owner')"
                " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \\gexec",
                "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'owner', :'password') \\gexec",
                "SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'owner')"
                " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \\gexec",
                "",
            ]
        )
        self.psql(script)
        return self.dsn(name, owner, password)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions first."""
        script = f"\\set dbname {_psql_literal(name)}\n" + (
            "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'dbname') \\gexec\n"
        )
        self.psql(script)
