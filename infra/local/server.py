"""The common life cycle of a local server: start, stop, kill, restart, PIDs, logs."""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from infra.local.ports import LOCALHOST, listened_by, port_accepts
from infra.local.process import ManagedProcess, ProcessExitedError, ServerError, log_tail, wait_until


def child_env(drop_prefixes: tuple[str, ...], extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus variables starting with ``drop_prefixes``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    env.update(extra)
    return env


class LocalServer(ABC):
    """A server process tree under ``base_dir`` on loopback ports fixed at construction.

    Ports are chosen when the object is built (free ones unless given), so configs that point at the
    server can be rendered before :meth:`start`, and :meth:`restart` reuses the same ports and data.
    """

    #: Short name used in messages and log file names.
    kind: str = "server"
    #: Signal for a graceful stop.
    stop_signal: int = signal.SIGTERM
    #: SIGTERM the server when the (main thread of the) process that started it dies. Set False
    #: on an instance to let the server outlive its starter (a detached runner).
    die_with_parent: bool = True

    def __init__(self, base_dir: Path, *, start_timeout: float, stop_timeout: float = 30.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.host = LOCALHOST
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: ManagedProcess | None = None
        #: Called with (role, process) the moment a process is spawned, before it is ready (role is
        #: "main", or "epmd" for RabbitMQ's helper) - so a caller can record it at once.
        self.on_spawn: Callable[[str, ManagedProcess], None] | None = None

    def _spawned(self, role: str, process: ManagedProcess) -> None:
        if self.on_spawn is not None:
            self.on_spawn(role, process)

    # ---- what each server defines -------------------------------------------------------------

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's main log file."""

    @abstractmethod
    def _prepare(self) -> None:
        """Create directories and config files (idempotent: kept data survives a restart)."""

    @abstractmethod
    def _command(self) -> ManagedProcess:
        """The process to launch."""

    @abstractmethod
    def _ready(self) -> bool:
        """Protocol-level readiness probe (may raise while not ready)."""

    def _log_files(self) -> list[Path]:
        """Files whose tails explain a failure."""
        return [self.log_path]

    def _ready_ports(self) -> list[int]:
        """Ports that must be listened on by our own process before the probe counts."""
        return []

    def _after_stop(self) -> None:
        """Hook run after the main process tree is gone (stop and kill)."""
        return

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers its protocol; no-op if already running.

        Raises :class:`ServerError` (with the tail of the logs) if it exits or is not ready in time.
        """
        if self.is_running():
            return self
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        try:
            self._process = self._command()
            self._process.die_with_parent = self.die_with_parent
            self._process.start()
            self._spawned("main", self._process)
            self._await_ready(self._process)
        except BaseException:  # a failed or interrupted start leaves nothing running
            self.kill()
            raise
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGKILL only after ``stop_timeout``); data is kept for a later start."""
        if self._process is not None:
            self._process.stop(self.stop_signal, timeout=self.stop_timeout)
        self._after_stop()

    def kill(self) -> None:
        """SIGKILL every process of the server at once (a crash); data is kept for a later start."""
        if self._process is not None:
            self._process.kill()
        self._after_stop()

    def restart(self) -> Self:
        """Stop gracefully, then start again on the same ports with the same data."""
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        """True while the main process runs."""
        return self._process is not None and self._process.running()

    def pids(self) -> set[int]:
        """Live PIDs that belong to this server now (its process tree plus helpers such as epmd)."""
        return set(self._process.observe()) if self._process else set()

    def seen_pids(self) -> set[int]:
        """Every PID ever observed for the current run; after stop/kill none may be alive."""
        return set(self._process.seen) if self._process else set()

    def alive_pids(self) -> set[int]:
        """The :meth:`seen_pids` that still run (empty after a successful stop or kill)."""
        return set(self._process.alive_seen()) if self._process else set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- helpers ------------------------------------------------------------------------------

    def error(self, message: str, hint: str = "") -> ServerError:
        """A :class:`ServerError` carrying the tail of this server's logs."""
        return ServerError(
            message,
            hint=hint or f"read {self.log_path}",
            log_tail=log_tail(self._log_files()),
        )

    def _await_ready(
        self,
        process: ManagedProcess,
        *,
        probe: Callable[[], bool] | None = None,
        ports: list[int] | None = None,
        what: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Wait until ``process`` listens on ``ports`` itself and ``probe`` passes; else kill and raise."""
        probe = probe or self._ready
        ports = self._ready_ports() if ports is None else ports
        what = what or self.kind
        timeout = timeout or self.start_timeout

        def check() -> bool:
            if not process.running():
                raise ProcessExitedError
            pids = process.observe()
            return all(listened_by(port, pids) for port in ports) and probe()

        try:
            ready = wait_until(check, timeout=timeout)
        except ProcessExitedError:
            code = process.exit_code()
            self.kill()
            message = f"{what} exited with code {code} while starting"
            busy = [str(port) for port in ports if port_accepts(port, self.host)]
            if busy:
                raise self.error(
                    f"{message}: {self.host}:{','.join(busy)} is already in use by another process",
                    hint="stop that process, or omit the port argument so a free port is chosen",
                ) from None
            raise self.error(message) from None
        if not ready:
            where = ", ".join(f"{self.host}:{port}" for port in ports) or self.host
            error = self.error(
                f"{what} did not become ready on {where} within {timeout:g}s",
                hint=f"read {self.log_path}; a slow machine may need a larger start_timeout",
            )
            self.kill()
            raise error
        process.observe()
