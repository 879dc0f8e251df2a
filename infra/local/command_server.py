"""A LocalServer for one command line with files written first and an HTTP readiness URL.

The platform's own processes (nginx, Prometheus, Alertmanager, uvicorn services) need no more than
this; the ``postgres``/``redis``/``rabbitmq`` classes keep their richer life cycles.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from infra.local.process import ManagedProcess
from infra.local.server import LocalServer, child_env

#: Variables of the caller that must never leak into a child's environment contract.
CONTRACT_PREFIXES = (
    "SERVICE_", "ENVIRONMENT", "LOG_", "CORS_", "POSTGRES_", "DB_", "REDIS_", "RABBITMQ_", "JWT_",
    "SECRETS_DIR",
)  # fmt: skip


class CommandServer(LocalServer):
    """Runs ``argv`` (own session, output appended to ``log_path``) after writing ``files``.

    Ready when our process listens on every port in ``ports`` and ``ready_url`` answers 200.
    Started processes are not tied to the life of the caller (``die_with_parent=False``): `platform
    dev up` exits and `down` stops them by PID.
    """

    def __init__(
        self,
        name: str,
        base_dir: Path,
        argv: Sequence[str],
        *,
        log_path: Path,
        ports: Sequence[int],
        ready_url: str,
        files: Mapping[Path, str] | None = None,
        dirs: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(base_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.kind = name
        self.argv = list(argv)
        self._log_path = log_path
        self.ports = list(ports)
        self.port = self.ports[0]
        self.ready_url = ready_url
        self.files = dict(files or {})
        self.dirs = list(dirs)
        self.env = dict(env or {})
        self.cwd = cwd or base_dir
        self.stop_signal = stop_signal

    @property
    def log_path(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self._log_path

    def _prepare(self) -> None:
        for directory in self.dirs:
            directory.mkdir(parents=True, exist_ok=True)
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _command(self) -> ManagedProcess:
        return ManagedProcess(
            self.kind,
            self.argv,
            log_path=self.log_path,
            env=child_env(CONTRACT_PREFIXES, self.env),
            cwd=self.cwd,
            die_with_parent=False,
        )

    def _ready_ports(self) -> list[int]:
        return self.ports

    def _ready(self) -> bool:
        return httpx.get(self.ready_url, timeout=2.0).status_code == 200
