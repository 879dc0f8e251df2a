"""Prometheus and Alertmanager as local processes with rendered configs (Debian binaries)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from infra.errors import ToolMissingError
from infra.local.command_server import CommandServer


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ToolMissingError(f"{name} not found", hint=f"apt-get install {package}")
    return found


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


class PrometheusServer(CommandServer):
    """prometheus on ``127.0.0.1:port`` with ``prometheus.yml`` and ``rules.yml`` under ``base_dir``."""

    def __init__(
        self, base_dir: Path, port: int, config: dict[str, Any], rules: dict[str, Any], *, log_path: Path
    ) -> None:
        super().__init__(
            "prometheus",
            base_dir,
            [
                _binary("prometheus", "prometheus"),
                f"--config.file={base_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={base_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=2d",
            ],
            log_path=log_path,
            ports=[port],
            ready_url=f"http://127.0.0.1:{port}/-/ready",
            files={base_dir / "prometheus.yml": _yaml(config), base_dir / "rules.yml": _yaml(rules)},
            dirs=[base_dir / "data"],
        )


class AlertmanagerServer(CommandServer):
    """prometheus-alertmanager on ``127.0.0.1:port``, clustering off (no gossip port)."""

    def __init__(self, base_dir: Path, port: int, config: dict[str, Any], *, log_path: Path) -> None:
        super().__init__(
            "alertmanager",
            base_dir,
            [
                _binary("prometheus-alertmanager", "prometheus-alertmanager"),
                f"--config.file={base_dir / 'alertmanager.yml'}",
                f"--storage.path={base_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            log_path=log_path,
            ports=[port],
            ready_url=f"http://127.0.0.1:{port}/-/ready",
            files={base_dir / "alertmanager.yml": _yaml(config)},
            dirs=[base_dir / "data"],
        )
