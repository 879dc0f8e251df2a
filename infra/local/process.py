"""One supervised OS process: its own session, a log file, its whole process tree, no orphans."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from infra.errors import PlatformError

_PR_SET_PDEATHSIG = 1


class ServerError(PlatformError):
    """A local server failed to start or stop; ``log_tail`` holds the last lines of its logs."""

    def __init__(self, message: str, *, hint: str = "", log_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        if self.log_tail:
            text += f"\n--- log tail ---\n{self.log_tail}"
        return text


class ProcessExitedError(Exception):
    """The supervised process exited while we were waiting for it to become ready."""


def log_tail(paths: Iterable[Path], lines: int = 25) -> str:
    """The last ``lines`` lines of each existing file in ``paths``, each under a header."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        tail = "\n".join(text.rstrip().splitlines()[-lines:])
        parts.append(f"==> {path} <==\n{tail}")
    return "\n".join(parts)


def proc_starttime(pid: int) -> int | None:
    """The kernel start time of a live process, or None if it is gone or a zombie.

    Pairing a PID with its start time guards against PID reuse when proving a process is gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (non-zombie) process."""
    return proc_starttime(pid) is not None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (by parent PID), root first."""
    if not pid_alive(root):
        return []
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid_alive(pid):
            tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask the kernel to SIGTERM the child if the process that started it dies (no orphans)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.1,
) -> bool:
    """Call ``check`` until it returns True (True) or ``timeout`` seconds pass (False).

    Exceptions from ``check`` count as "not yet", except :class:`ProcessExitedError`, which is raised.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_exception(lambda exc: not isinstance(exc, ProcessExitedError))
        | retry_if_result(lambda ok: not ok),
        reraise=False,
    )
    try:
        return bool(retrying(check))
    except RetryError:
        return False


class ManagedProcess:
    """A child process in its own session with output appended to ``log_path``.

    Every PID of its tree that was ever observed is remembered in ``seen`` (pid -> start time) so a
    caller can prove that all of them are gone after :meth:`stop` or :meth:`kill`.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.die_with_parent = die_with_parent
        self.popen: subprocess.Popen[bytes] | None = None
        self.seen: dict[int, int] = {}

    @property
    def pid(self) -> int | None:
        """PID of the started process (None before :meth:`start`)."""
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Spawn the process; output goes to ``log_path`` (appended, so restarts keep history)."""
        if self.running():
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            kwargs: dict[str, object] = {}
            if self.user is not None and os.geteuid() == 0:
                entry = pwd.getpwnam(self.user)
                kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if self._pdeathsig() else None,
                    **kwargs,  # type: ignore[call-overload]
                )
            except OSError as exc:
                raise ServerError(
                    f"could not run {self.argv[0]}: {exc.strerror}",
                    hint=f"install {self.name} or check the path",
                ) from exc
        self.seen = {}
        self.observe()

    def _pdeathsig(self) -> bool:
        """Tie the child to our life only from the main thread: the kernel signals the child when
        the *thread* that forked it exits, and a worker thread may exit long before the process."""
        return self.die_with_parent and threading.current_thread() is threading.main_thread()

    def running(self) -> bool:
        """True while the started process has not exited."""
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        """The exit status once the process has exited, else None."""
        return self.popen.poll() if self.popen else None

    def observe(self) -> list[int]:
        """The live process tree now; adds every member to ``seen``."""
        if self.popen is None or self.popen.poll() is not None:
            return []
        tree = process_tree(self.popen.pid)
        for pid in tree:
            start = proc_starttime(pid)
            if start is not None:
                self.seen.setdefault(pid, start)
        return tree

    def alive_seen(self) -> list[int]:
        """PIDs in ``seen`` that still run as the same process (no PID-reuse false positives)."""
        return [pid for pid, start in self.seen.items() if proc_starttime(pid) == start]

    def send(self, sig: int) -> None:
        """Send ``sig`` to the started process only (not its tree)."""
        if self.running() and self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
        """Send ``sig`` and wait for the whole tree to exit; SIGKILL what is left after ``timeout``.

        Returns True if everything exited on its own (a graceful stop), False if it had to be killed.
        """
        if self.popen is None:
            return True
        self.observe()
        self.send(sig)
        graceful = True
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            graceful = False
        graceful = self._wait_seen_gone(max(0.5, min(timeout, 5.0))) and graceful
        if not graceful:
            self.kill()
        return graceful

    def kill(self) -> None:
        """SIGKILL every live process of the tree (snapshot first, so reparented ones are caught)."""
        self.observe()
        for pid in self.alive_seen():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        self._wait_seen_gone(5.0)

    def _wait_seen_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive_seen():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
