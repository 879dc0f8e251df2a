"""LocalServer life cycle on a stand-in process: the not-ready timeout path and the exit path."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.process import ManagedProcess, ServerError
from infra.local.server import LocalServer


class ShellServer(LocalServer):
    """A 'server' that is a shell script and is never ready."""

    kind = "shell"

    def __init__(self, base_dir: Path, script: str, start_timeout: float) -> None:
        super().__init__(base_dir, start_timeout=start_timeout)
        self.script = script

    @property
    def log_path(self) -> Path:
        return self.base_dir / "shell.log"

    def _prepare(self) -> None:
        return None

    def _command(self) -> ManagedProcess:
        return ManagedProcess("sh", ["sh", "-c", self.script], log_path=self.log_path)

    def _ready(self) -> bool:
        return False


def test_not_ready_in_time_kills_everything_and_shows_log(tmp_path: Path):
    server = ShellServer(tmp_path, "echo booting slowly; sleep 60 & wait", start_timeout=0.5)
    with pytest.raises(ServerError) as info:
        server.start()
    assert info.value.message == "shell did not become ready on 127.0.0.1 within 0.5s"
    assert "booting slowly" in info.value.log_tail
    assert server.seen_pids()
    assert server.alive_pids() == set()


def test_exit_during_start_reports_exit_code_and_log(tmp_path: Path):
    server = ShellServer(tmp_path, "echo 'FATAL: bad config' >&2; exit 3", start_timeout=30)
    with pytest.raises(ServerError) as info:
        server.start()
    assert info.value.message == "shell exited with code 3 while starting"
    assert "FATAL: bad config" in info.value.log_tail
    assert f"hint: read {server.log_path}" in str(info.value)
