"""Attack: memory exhaustion through password hashing (issue 11, item 1).

auth-svc runs as its own uvicorn process (as in the pod) on the session's real PostgreSQL and Redis.
Fifty logins with random emails arrive at once: every one of them hashes (an unknown email verifies
against a dummy hash, so both paths cost the same). The process's peak resident memory must stay
under the memory limit it was given, and every answer must be 401 or a fast 503, never a crash.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from auth_svc.core.config import Settings
from auth_svc.core.hashing import PasswordHashing, cgroup_memory_limit_mib, hashing_slots
from pydantic import SecretStr
from servicekit.errors import Unavailable

from infra.local.ports import free_port
from infra.local.uvicorn_service import UvicornService

REPO = Path(__file__).resolve().parents[4]
#: The container limit of services/auth-svc/service.yaml (resources.limits.memory).
MEMORY_LIMIT_MIB = 256
LOGINS = 50


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce *settings* in a process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        env[name.upper()] = str(value)
    return env


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


async def test_fifty_concurrent_logins_stay_under_the_memory_limit(
    auth_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = settings_env(auth_settings) | {
        "MEMORY_LIMIT_MIB": str(MEMORY_LIMIT_MIB),
        # Only hashing is under test here: the limiter must not answer before the hash would run.
        "LOGIN_MAX_FAILURES_PER_IP": "10000",
        "LOG_LEVEL": "WARNING",
    }
    service = UvicornService(
        "auth-svc", "auth_svc", tmp_path, port, env, log_path=tmp_path / "auth-svc.log", cwd=REPO
    )
    with service:
        (pid,) = service.pids()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/api/auth/login",
                        json={"email": f"nobody-{uuid.uuid4().hex}@example.com", "password": "guess-123456"},
                    )
                    for _ in range(LOGINS)
                )
            )
            statuses = [r.status_code for r in answers]
            peak = peak_rss_mib(pid)
            assert service.is_running(), "auth-svc died under the login burst"
            assert (await http.get("/healthz")).status_code == 200
    assert set(statuses) <= {401, 503}, statuses
    assert 401 in statuses, "no login was answered at all"
    for answer in answers:
        if answer.status_code == 503:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"]["code"] == "busy"
    assert peak < MEMORY_LIMIT_MIB, f"peak RSS {peak:.0f} MiB >= the {MEMORY_LIMIT_MIB} MiB limit"


async def test_requests_beyond_the_queue_get_a_fast_503() -> None:
    passwords = PasswordHashing(slots=1, queue=1)
    try:
        results = await asyncio.gather(
            *(passwords.check(None, "guess-123456") for _ in range(6)), return_exceptions=True
        )
    finally:
        passwords.close()
    busy = [r for r in results if isinstance(r, Unavailable)]
    assert busy, "no request was turned away"
    assert all(r.code == "busy" and r.headers["Retry-After"] == "1" for r in busy)
    assert all(r is False for r in results if not isinstance(r, Unavailable))


def test_slots_are_what_a_quarter_of_the_limit_holds() -> None:
    assert hashing_slots(256) == 3  # 64 MiB / 19 MiB per hash
    assert hashing_slots(64) == 1


def test_cgroup_limit_is_read_and_unlimited_is_none(tmp_path: Path) -> None:
    limited, unlimited = tmp_path / "limited", tmp_path / "unlimited"
    limited.write_text(f"{512 * 1024 * 1024}\n")
    unlimited.write_text("max\n")
    assert cgroup_memory_limit_mib((limited,)) == 512
    assert cgroup_memory_limit_mib((unlimited,)) is None
    assert cgroup_memory_limit_mib((tmp_path / "absent", limited)) == 512
