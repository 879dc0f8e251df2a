"""One real platform for the whole e2e session: `platform dev up` as a subprocess on free ports.

The state directory is a fresh temp dir (traversable by the ``postgres`` OS user); `platform dev down`
runs at the end and the session fails if any recorded process survives it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.process import proc_starttime
from infra.spec import PlatformSpec, load_spec

PLATFORM = str(Path(sys.executable).with_name("platform"))
UP_TIMEOUT = 180
_source = itertools.count(20)


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


def recorded_pids(state: dict[str, Any]) -> dict[int, int]:
    """Every PID (-> start time) the state file records, epmd included."""
    pids: dict[int, int] = {}
    for component in state["components"]:
        pids[component["pid"]] = component["start_time"]
        pids.update({int(p): s for p, s in component["pids"].items()})
    return pids


def alive(pids: dict[int, int]) -> list[int]:
    """The PIDs still running as the same processes."""
    return sorted(pid for pid, start in pids.items() if proc_starttime(pid) == start)


@dataclass
class Platform:
    """A running local platform: its state, ports and clients that trust its CA."""

    state_dir: Path
    state: dict[str, Any]
    spec: PlatformSpec
    request_ids: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return self.state["ports"]

    @property
    def ca(self) -> str:
        return self.state["ca_cert"]

    def url(self, path: str) -> str:
        return f"https://localhost:{self.ports['gateway_https']}{path}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def client(self, **kwargs: Any) -> httpx.Client:
        """HTTPS client verifying the local CA, from its own loopback address (own rate-limit bucket)."""
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{next(_source)}", verify=self.ssl_context())
        return httpx.Client(transport=transport, timeout=15, **kwargs)

    def request_id(self, service: str) -> str:
        """A request id to send to *service* (remembered, so the logs can be checked for it)."""
        rid = f"e2e-{service}-{uuid.uuid4().hex[:12]}"
        self.request_ids[service] = rid
        return rid

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def reload_state(self) -> None:
        self.state = json.loads((self.state_dir / "state.json").read_text())


PASSWORD = "correct horse battery staple 42"


def new_account(platform: Platform, client: httpx.Client, who: str = "user") -> dict[str, str]:
    """Register and log in a fresh user through the gateway: ``{"id", "token", "email"}``."""
    email = f"{who}-{uuid.uuid4().hex[:8]}@example.com"
    rid = platform.request_id("auth-svc")
    registered = client.post(
        platform.url("/api/auth/register"),
        json={"email": email, "password": PASSWORD},
        headers={"X-Request-ID": rid},
    )
    assert registered.status_code == 201, registered.text
    assert registered.headers["x-request-id"] == rid
    login = client.post(platform.url("/api/auth/login"), json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"id": registered.json()["id"], "token": login.json()["access_token"], "email": email}


def create_listing(platform: Platform, client: httpx.Client, token: str, **fields: Any) -> dict[str, Any]:
    """POST a listing as the owner of *token*; returns the created listing."""
    body = {"title": "Lamp", "description": "", "price_minor": 2500, "currency": "EUR", **fields}
    r = client.post(
        platform.url("/api/marketplace/listings"),
        json=body,
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": platform.request_id("marketplace-svc")},
    )
    assert r.status_code == 201, r.text
    return r.json()


def poll(check: Callable[[], Any], *, timeout: float, interval: float = 0.3, what: str = "condition") -> Any:
    """Call *check* until it returns something truthy; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout}s (last: {last!r})")


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    state_dir = Path(tempfile.mkdtemp(prefix="platform-e2e-"))
    state_dir.chmod(0o755)
    up = run_cli("dev", "up", "--state-dir", str(state_dir), "--scrape-interval", "1s", "--json")
    if up.returncode != 0:
        run_cli("dev", "down", "--state-dir", str(state_dir), timeout=60)
        pytest.fail(f"platform dev up failed ({up.returncode}):\n{up.stderr[-4000:]}")
    state = json.loads(up.stdout)
    try:
        yield Platform(state_dir, state, load_spec("dev"))
    finally:
        final = (
            json.loads((state_dir / "state.json").read_text())
            if (state_dir / "state.json").exists()
            else state
        )
        down = run_cli("dev", "down", "--state-dir", str(state_dir), timeout=120)
        left = alive(recorded_pids(final))
        if not os.environ.get("PLATFORM_KEEP_SERVER_DIRS"):
            shutil.rmtree(state_dir, ignore_errors=True)
        assert down.returncode == 0, down.stderr
        assert not left, f"processes survived `platform dev down`: {left}"
