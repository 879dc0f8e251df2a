"""Free loopback ports and who listens on them."""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

LOCALHOST = "127.0.0.1"

_handed_out: set[int] = set()
_lock = threading.Lock()
_LOWEST = 20000
_rng = random.SystemRandom()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))  # no SO_REUSEADDR: a port in TIME_WAIT counts as taken
        except OSError:
            return False
    return True


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on ``host`` now and was not handed out before by this process.

    Chosen at random below the kernel's ephemeral range (so no outgoing connection can be holding
    it when the server binds, and two test sessions rarely pick the same one); remembering earlier
    answers keeps two servers built in one process from getting the same port.
    """
    low, _high = _ephemeral_range()
    top = low - 1 if low - 1 > _LOWEST + 1000 else 65535
    with _lock:
        for _ in range(200):
            port = _rng.randint(_LOWEST, top)
            if port not in _handed_out and _bindable(port, host):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free TCP port found on {host} after 200 tries")


def port_accepts(port: int, host: str = LOCALHOST, timeout: float = 0.5) -> bool:
    """True if a TCP connect to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state on ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def listened_by(port: int, pids: Iterable[int]) -> bool:
    """True if one of ``pids`` holds a listening socket on ``port``.

    This proves that the process we started, and not some other program, owns the port.
    """
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return False
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") in wanted:
                    return True
            except OSError:
                continue
    return False
