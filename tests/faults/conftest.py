"""Fault injection against a real `platform dev` (the CLI as a subprocess, free ports, loopback only).

``dev_platform`` is one platform per test module (its own temp state dir, `down` at the end, and the
module fails if a recorded process survives). Faults are injected by PID (SIGKILL/SIGSTOP) or by
stopping a component through the runner; every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from infra.local.process import proc_starttime

PLATFORM = str(Path(sys.executable).with_name("platform"))
UP_TIMEOUT = 240
PASSWORD = "correct horse battery staple 42"


def run_cli(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the real `platform` console script."""
    return subprocess.run(
        [PLATFORM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def poll(check: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Call *check* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout}s (last: {last!r})")


def recorded_pids(state: dict[str, Any]) -> dict[int, int]:
    """Every PID (-> start time) the state file records."""
    pids: dict[int, int] = {}
    for component in state["components"]:
        pids[component["pid"]] = component["start_time"]
        pids.update({int(p): s for p, s in component["pids"].items()})
    return pids


def alive(pids: dict[int, int]) -> list[int]:
    """The PIDs still running as the same processes."""
    return sorted(pid for pid, start in pids.items() if proc_starttime(pid) == start)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains *text* (e.g. a state dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                mentions = text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if mentions and proc_starttime(int(entry)) is not None:
                found.append(int(entry))
    return found


def new_state_dir(prefix: str) -> Path:
    """A fresh state dir the ``postgres`` OS user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class DevPlatform:
    """A running platform: its state dir, state, and HTTPS clients that trust its CA."""

    state_dir: Path
    state: dict[str, Any]

    @property
    def ports(self) -> dict[str, int]:
        return self.state["ports"]

    def reload(self) -> dict[str, Any]:
        self.state = json.loads((self.state_dir / "state.json").read_text())
        return self.state

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.reload()["components"] if c["name"] == name)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.ports['gateway_https']}{path}"

    def client(self, **kwargs: Any) -> httpx.Client:
        verify = ssl.create_default_context(cafile=self.state["ca_cert"])
        return httpx.Client(verify=verify, timeout=kwargs.pop("timeout", 15), **kwargs)

    def secrets(self) -> dict[str, str]:
        return json.loads((self.state_dir / "secrets.json").read_text())

    def status(self) -> dict[str, dict[str, Any]]:
        result = run_cli("dev", "status", "--state-dir", str(self.state_dir), "--json", timeout=60)
        return {row["name"]: row for row in json.loads(result.stdout)["components"]}

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signal component *name*'s root process; returns its PID."""
        component = self.component(name)
        os.kill(component["pid"], sig)
        return component["pid"]

    def healthy_again(self, name: str, old_pid: int, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until *name* runs under a new PID and answers its probe; returns its status row."""

        def check() -> dict[str, Any] | None:
            row = self.status().get(name)
            return row if row and row["pid"] != old_pid and row["healthy"] else None

        return poll(check, timeout=timeout, interval=0.5, what=f"{name} healthy again")

    def log(self, name: str) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def account(self, client: httpx.Client) -> dict[str, str]:
        """Register and log in a fresh user: ``{"id", "token", "refresh_token", "email"}``."""
        email = f"fault-{uuid.uuid4().hex[:8]}@example.com"
        r = client.post(self.url("/api/auth/register"), json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        login = client.post(self.url("/api/auth/login"), json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        body = login.json()
        return {"id": r.json()["id"], "token": body["access_token"], "email": email, **body}


def start_platform(state_dir: Path, *extra: str) -> DevPlatform:
    """`platform dev up` in *state_dir*; fails the test (after a `down`) if it does not come up."""
    up = run_cli("dev", "up", "--state-dir", str(state_dir), "--json", *extra)
    if up.returncode != 0:
        run_cli("dev", "down", "--state-dir", str(state_dir), timeout=120)
        pytest.fail(f"platform dev up failed ({up.returncode}):\n{up.stderr[-4000:]}")
    return DevPlatform(state_dir, json.loads(up.stdout))


def stop_platform(platform: DevPlatform) -> None:
    """`platform dev down`; asserts no recorded process and nothing using the state dir survives."""
    state_file = platform.state_dir / "state.json"
    final = json.loads(state_file.read_text()) if state_file.exists() else platform.state
    down = run_cli("dev", "down", "--state-dir", str(platform.state_dir), timeout=180)
    left = alive(recorded_pids(final))
    stray = processes_mentioning(str(platform.state_dir))
    if not os.environ.get("PLATFORM_KEEP_SERVER_DIRS"):
        shutil.rmtree(platform.state_dir, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert not left, f"processes survived `platform dev down`: {left}"
    assert not stray, f"processes still use the state dir: {stray}"


@pytest.fixture(scope="module")
def dev_platform() -> Iterator[DevPlatform]:
    platform = start_platform(new_state_dir("platform-faults-"))
    try:
        yield platform
    finally:
        stop_platform(platform)


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to completion on a private loop. Not ``asyncio.run``: it leaves the main thread
    without a current event loop, which every later in-process Pulumi render in the session needs."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
