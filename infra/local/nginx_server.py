"""The NGINX gateway as a local process, serving the config rendered by :mod:`infra.render.nginx`."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from infra.errors import ToolMissingError
from infra.local.command_server import CommandServer
from infra.render.nginx import GatewayAddresses, make_writable_dirs


def nginx_binary() -> str:
    """Path of nginx (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise ToolMissingError("nginx not found", hint="apt-get install nginx-light (or nginx)")
    return found


class NginxServer(CommandServer):
    """nginx in the foreground with ``conf`` at ``base_dir/nginx.conf``; ready on ``/healthz``."""

    def __init__(self, base_dir: Path, addrs: GatewayAddresses, conf: str, *, log_path: Path) -> None:
        self.addrs = addrs
        conf_path = base_dir / "nginx.conf"
        super().__init__(
            "gateway",
            base_dir,
            [nginx_binary(), "-p", str(base_dir), "-c", str(conf_path), "-g", "daemon off;"],
            log_path=log_path,
            ports=[addrs.http_port, addrs.https_port],
            ready_url=f"http://127.0.0.1:{addrs.http_port}/healthz",
            files={conf_path: conf},
            stop_signal=signal.SIGTERM,
            start_timeout=15.0,
            stop_timeout=10.0,
        )

    def _prepare(self) -> None:
        make_writable_dirs(self.addrs)
        super()._prepare()
