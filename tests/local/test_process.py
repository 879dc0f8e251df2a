"""Process plumbing: free ports, whole-tree kill, no orphans when the parent dies, readiness waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from infra.local.ports import free_port, listened_by, port_accepts
from infra.local.process import (
    ManagedProcess,
    ProcessExitedError,
    ServerError,
    pid_alive,
    wait_until,
)


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert max(ports) < ephemeral_low
    for port in list(ports)[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_listened_by_tells_our_listener_from_others():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listened_by(port, [os.getpid()])
        assert not listened_by(port, [1])
    assert not port_accepts(port)


def test_kill_ends_grandchildren_that_were_reparented(tmp_path: Path):
    proc = ManagedProcess("sh", ["sh", "-c", "sleep 60 & sleep 60 & wait"], log_path=tmp_path / "sh.log")
    proc.start()
    assert wait_until(lambda: len(proc.observe()) == 3, timeout=5)
    seen = set(proc.seen)
    proc.kill()
    assert [pid for pid in seen if pid_alive(pid)] == []


def test_stop_is_graceful_when_the_process_obeys(tmp_path: Path):
    proc = ManagedProcess("sleep", ["sleep", "60"], log_path=tmp_path / "sleep.log")
    proc.start()
    assert proc.stop(signal.SIGTERM, timeout=5) is True
    assert proc.exit_code() == -signal.SIGTERM


def test_stop_escalates_to_sigkill(tmp_path: Path):
    proc = ManagedProcess("stubborn", ["sh", "-c", "trap '' TERM; sleep 60"], log_path=tmp_path / "s.log")
    proc.start()
    assert wait_until(lambda: len(proc.observe()) == 2, timeout=5)
    assert proc.stop(signal.SIGTERM, timeout=0.5) is False
    assert proc.alive_seen() == []


def _orphan_child(tmp_path: Path, die_with_parent: bool) -> int:
    """Start ``sleep 60`` from a Python process that then exits abruptly; return the sleep's PID."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from infra.local.process import ManagedProcess
        proc = ManagedProcess(
            "sleep", ["sleep", "60"], log_path=Path({str(tmp_path / "c.log")!r}),
            die_with_parent={die_with_parent!r},
        )
        proc.start()
        Path({str(pid_file)!r}).write_text(str(proc.pid))
        os._exit(0)  # no cleanup: as if the test runner crashed
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
    return int(pid_file.read_text())


def test_children_die_with_their_parent(tmp_path: Path):
    child = _orphan_child(tmp_path, die_with_parent=True)
    assert wait_until(lambda: not pid_alive(child), timeout=5)


def test_detached_children_outlive_their_parent(tmp_path: Path):
    child = _orphan_child(tmp_path, die_with_parent=False)
    try:
        time.sleep(0.3)
        assert pid_alive(child)
    finally:
        os.kill(child, signal.SIGKILL)


def test_missing_binary_is_a_clear_error(tmp_path: Path):
    proc = ManagedProcess("nothing", ["/nonexistent/server"], log_path=tmp_path / "n.log")
    with pytest.raises(ServerError, match="could not run /nonexistent/server"):
        proc.start()


def test_wait_until_retries_errors_but_not_process_exit():
    calls = []

    def flaky() -> bool:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionRefusedError
        return True

    assert wait_until(flaky, timeout=5, interval=0.01)
    assert len(calls) == 3
    assert wait_until(lambda: False, timeout=0.2, interval=0.05) is False

    def exited() -> bool:
        raise ProcessExitedError

    with pytest.raises(ProcessExitedError):
        wait_until(exited, timeout=5)
