"""What `platform dev` leaves on disk: the state file, the secrets file, and stopping by PID.

``state.json`` records every component that `up` started (PIDs with their kernel start times, ports,
URLs, log file), written the moment each process is spawned (``ready`` once it answers), so
`status`/`down` work from any process - even after an `up` that was killed half way. ``ports.json``
remembers the ports across `down`/`up` (only `reset` forgets them). ``secrets.json`` (0600) holds the
generated local passwords.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from infra.errors import PlatformError
from infra.local.process import proc_starttime, process_tree

STATE_VERSION = 1


class Component(BaseModel):
    """One started process tree: its root PID and every PID seen (pid -> kernel start time)."""

    name: str
    kind: str
    pid: int
    start_time: int
    pids: dict[int, int] = {}
    stop_signal: int = int(signal.SIGTERM)
    stop_timeout: float = 15.0
    ports: dict[str, int] = {}
    url: str | None = None
    health: str | None = Field(None, description="http URL (200 = healthy), or tcp:/amqp: probe")
    log: str | None = None
    tier: int = Field(0, description="stop order: higher tiers stop first")
    ready: bool = Field(True, description="False from spawn until it first answered its probe")
    restarts: int = Field(0, description="times the supervisor (or `up`) restarted it after it died")
    last_restart: float | None = Field(None, description="epoch seconds of the last restart")

    def alive_pids(self) -> list[int]:
        """Recorded PIDs that still run as the same process (PID reuse does not count)."""
        known = {self.pid: self.start_time, **self.pids}
        return sorted(pid for pid, start in known.items() if proc_starttime(pid) == start)

    def root_alive(self) -> bool:
        """True while the root process runs."""
        return proc_starttime(self.pid) == self.start_time


class DevState(BaseModel):
    """The whole state file."""

    version: int = STATE_VERSION
    stack: str
    state_dir: str
    ports: dict[str, int] = {}
    reload: bool = False
    complete: bool = False
    started_at: float = 0.0
    ca_cert: str | None = None
    scrape_interval: str | None = None
    expected: list[str] = Field([], description="every component `up` is to start (missing = not started)")
    components: list[Component] = []

    def component(self, name: str) -> Component | None:
        """The component called *name*, if recorded."""
        return next((c for c in self.components if c.name == name), None)


def state_path(state_dir: Path) -> Path:
    """``<state_dir>/state.json``."""
    return state_dir / "state.json"


def read_state(state_dir: Path) -> DevState | None:
    """The recorded state, or None when there is none."""
    path = state_path(state_dir)
    if not path.exists():
        return None
    try:
        return DevState.model_validate_json(path.read_text())
    except ValueError as exc:
        raise PlatformError(
            f"{path} is not a valid state file: {exc.__class__.__name__}",
            hint=f"stop leftover processes by hand, then delete {path}",
        ) from exc


def write_state(state_dir: Path, state: DevState) -> None:
    """Atomically replace the state file."""
    path = state_path(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)


def clear_state(state_dir: Path) -> None:
    """Remove the state file (after a complete stop); the remembered ports stay."""
    state_path(state_dir).unlink(missing_ok=True)


def read_ports(state_dir: Path) -> dict[str, int]:
    """The ports of the last `up` (``ports.json``), kept across `down` so URLs never move."""
    path = state_dir / "ports.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def write_ports(state_dir: Path, ports: dict[str, int]) -> None:
    """Remember *ports* for the next `up` (atomically)."""
    path = state_dir / "ports.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports, indent=2, sort_keys=True))
    tmp.replace(path)


def load_secrets(state_dir: Path, names: list[str]) -> dict[str, str]:
    """Passwords for *names* from ``secrets.json`` (0600), generating and saving the missing ones."""
    path = state_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in stored]
    for name in missing:
        stored[name] = secrets.token_urlsafe(32 if name == "jwt" else 24)
    if missing or not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
    path.chmod(0o600)
    return stored


@contextlib.contextmanager
def state_lock(state_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Exclusive lock so two `platform dev` commands never change the same state at once.

    *wait* seconds are spent retrying (the supervisor holds the lock while it restarts a component).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with (state_dir / ".lock").open("w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PlatformError(
                        f"another `platform dev` command is working on {state_dir}",
                        hint="wait for it to finish (or stop it), then retry",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- processes


def session_members(sid: int) -> list[int]:
    """Live processes whose session id is *sid* (each component runs in its own session)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def observe(component: Component) -> None:
    """Add the root's current process tree and session members to ``component.pids``."""
    if not component.root_alive():
        return
    for pid in {*process_tree(component.pid), *session_members(component.pid)}:
        start = proc_starttime(pid)
        if start is not None:
            component.pids.setdefault(pid, start)


def _signal_alive(component: Component, sig: int, only_root: bool) -> None:
    targets = [component.pid] if only_root else component.alive_pids()
    for pid in targets:
        start = component.pids.get(pid, component.start_time if pid == component.pid else None)
        if proc_starttime(pid) == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _wait_gone(component: Component, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while component.alive_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_component(component: Component) -> list[int]:
    """Stop gracefully (stop signal to the root), SIGKILL what is left after the timeout.

    Returns the PIDs still alive at the end (empty on success).
    """
    observe(component)
    timeout = component.stop_timeout
    if component.root_alive():
        _signal_alive(component, component.stop_signal, only_root=True)
    else:  # the root crashed: its leftovers (e.g. beam.smp under a killed script) have no one to
        _signal_alive(component, component.stop_signal, only_root=False)  # stop them; ask each
        timeout = min(timeout, 5.0)
    if not _wait_gone(component, timeout):
        observe(component)
        _signal_alive(component, signal.SIGKILL, only_root=False)
        _wait_gone(component, 5.0)
    return component.alive_pids()


def describe(component: Component) -> dict[str, Any]:
    """Plain facts for `status --json`."""
    return {
        "name": component.name,
        "kind": component.kind,
        "pid": component.pid,
        "running": component.root_alive(),
        "ports": component.ports,
        "url": component.url,
        "log": component.log,
    }
