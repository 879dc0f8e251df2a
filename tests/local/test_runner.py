"""The `platform dev` runner's parts: ports, TLS, secrets, stopping by PID, CLI guards, failed start."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509

from infra.errors import UsageError
from infra.local.process import proc_starttime
from infra.local.runner import resolve_ports
from infra.local.state import Component, load_secrets, stop_component
from infra.local.tls import ensure_tls

PLATFORM = str(Path(sys.executable).with_name("platform"))


def test_requested_ports_win_and_previous_ones_are_reused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = resolve_ports(["a", "b", "c"], {"a": 41111}, {"b": taken, "c": 41112})
    assert ports["a"] == 41111
    assert ports["b"] != taken  # the previous port is in use now: a fresh one
    assert ports["c"] == 41112
    assert len(set(ports.values())) == 3


@pytest.mark.parametrize(("requested", "message"), [({"zzz": 1}, "unknown"), ({"a": 5, "b": 5}, "twice")])
def test_bad_port_requests_are_usage_errors(requested: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_ports(["a", "b"], requested, {})


def test_gateway_certificate_is_issued_by_the_local_ca_for_localhost(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for key in (files.key, files.ca_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = ensure_tls(tmp_path / "tls")
    assert again.cert.read_bytes() == files.cert.read_bytes()  # kept while valid


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_secrets(tmp_path, ["jwt", "postgres"])
    second = load_secrets(tmp_path, ["jwt", "postgres", "new"])
    assert {k: second[k] for k in first} == first
    assert second["new"] not in first.values()
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert len(first["jwt"]) >= 32


def _spawn(script: str) -> Component:
    proc = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    time.sleep(0.3)
    return Component(
        name="t", kind="t", pid=proc.pid, start_time=proc_starttime(proc.pid) or 0, stop_timeout=1.0
    )


def test_stop_component_ends_the_whole_tree_even_when_sigterm_is_ignored() -> None:
    component = _spawn("trap '' TERM; sleep 60 & sleep 60 & wait")
    from infra.local.state import observe

    observe(component)
    assert len(component.alive_pids()) >= 3
    assert stop_component(component) == []
    assert component.alive_pids() == []


def test_reset_without_yes_on_a_non_tty_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [PLATFORM, "dev", "reset", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "hint: pass --yes" in result.stderr


def test_status_without_a_platform_says_not_running(tmp_path: Path) -> None:
    result = subprocess.run(
        [PLATFORM, "dev", "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "not running"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_component_that_cannot_start_fails_up_and_everything_is_stopped() -> None:
    """The runner itself (the CLI refuses a busy pinned port before starting anything: tests/cli)."""
    from infra.errors import PlatformError
    from infra.local.runner import DevOptions, DevRunner

    state_dir = Path(tempfile.mkdtemp(prefix="platform-dev-fail-"))
    state_dir.chmod(0o755)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runner = DevRunner(DevOptions(state_dir=state_dir, ports={"gateway_https": port}))
        with pytest.raises(PlatformError) as failed:
            runner.up()
    assert "gateway" in failed.value.message
    assert "Address already in use" in (getattr(failed.value, "log_tail", "") or "")  # nginx's log
    assert not (state_dir / "state.json").exists()
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(state_dir)) == []
