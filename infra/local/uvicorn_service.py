"""One FastAPI service under uvicorn (``<pkg>.main:create_app --factory``), ready on ``/readyz``."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.local.command_server import CommandServer

#: Seconds uvicorn keeps an idle connection open: above nginx's upstream ``keepalive_timeout`` (60 s).
KEEP_ALIVE_S = 75
#: Seconds uvicorn waits for open connections (websockets included) at shutdown before closing them.
GRACEFUL_SHUTDOWN_S = 3


def uvicorn_argv(
    package: str,
    port: int,
    *,
    reload: bool = False,
    reload_dirs: Sequence[Path] = (),
    host: str = "127.0.0.1",
) -> list[str]:
    """The uvicorn command line: the image's CMD with a loopback address and the local port.

    Only the gateway (on loopback) talks to a service, so its ``X-Forwarded-For`` is trusted.
    uvicorn's own INFO lines (printed before the service configures JSON logging) are silenced, so
    the service log holds JSON lines only; the service logs its own start.

    Hot-path flags: uvloop and httptools by name (uvicorn[standard] ships both; naming them makes a
    missing one fail at start instead of silently falling back to asyncio/h11); no uvicorn access
    log (servicekit writes its own JSON access line; uvicorn would still format its arguments for
    every response); keep-alive longer than the gateway's upstream ``keepalive_timeout`` (60 s), so
    uvicorn never closes a pooled connection just as nginx reuses it.
    """
    argv = [
        sys.executable, "-m", "uvicorn", f"{package}.main:create_app", "--factory",
        "--host", host, "--port", str(port),
        "--proxy-headers", "--forwarded-allow-ips", host, "--no-server-header",
        "--log-level", "warning",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--timeout-keep-alive", str(KEEP_ALIVE_S),
        "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S),
    ]  # fmt: skip
    if reload:
        argv.append("--reload")
        for directory in reload_dirs:
            argv += ["--reload-dir", str(directory)]
    return argv


class UvicornService(CommandServer):
    """A service process with its environment contract in ``env``."""

    def __init__(
        self,
        name: str,
        package: str,
        base_dir: Path,
        port: int,
        env: Mapping[str, str],
        *,
        log_path: Path,
        cwd: Path,
        reload: bool = False,
        reload_dirs: Sequence[Path] = (),
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            name,
            base_dir,
            uvicorn_argv(package, port, reload=reload, reload_dirs=reload_dirs),
            log_path=log_path,
            ports=[port],
            ready_url=f"http://127.0.0.1:{port}/readyz",
            env=env,
            cwd=cwd,
            start_timeout=start_timeout,
            stop_timeout=10.0,
        )
