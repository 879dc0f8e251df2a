"""Install (or uninstall) a service's package in the project environment, as bootstrap.sh does.

The project environment is ``<root>/.venv`` when it exists, else the environment this CLI runs in
when that environment lives inside *root*; a checkout without either (a scratch copy, a CLI installed
elsewhere) is left alone and the result carries the one command that does it. Installs are editable,
``--no-deps`` (servicekit and the pinned libraries are already there) and ``--no-build-isolation``
(no download of a build backend: the environment's setuptools builds the editable wheel).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Action = Literal["installed", "uninstalled", "skipped", "failed"]


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install_service` / :func:`uninstall_service` did."""

    action: Action
    command: str  #: the command that does it, as a user would type it in the repository
    python: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {"action": self.action, "command": self.command, "python": self.python, "reason": self.reason}


def project_python(root: Path) -> Path | None:
    """The interpreter of *root*'s project environment, or None when it has none this CLI may touch."""
    venv = root / ".venv" / "bin" / "python"
    if venv.is_file():
        return venv
    prefix = Path(sys.prefix).resolve()
    if sys.prefix != sys.base_prefix and prefix.is_relative_to(root.resolve()):
        return Path(sys.executable)
    return None


def distribution_name(service_dir: Path) -> str:
    """``[project].name`` of the service's pyproject.toml (the folder name when unreadable)."""
    try:
        data = tomllib.loads((service_dir / "pyproject.toml").read_text(encoding="utf-8"))
        return str(data["project"]["name"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return service_dir.name


def _shown(root: Path, python: Path | None) -> str:
    if python is None:
        return ".venv/bin/python"
    try:
        return str(python.relative_to(root))
    except ValueError:
        return str(python)


def install_command(root: Path, name: str, python: Path | None = None) -> list[str]:
    """argv of the editable install of ``services/<name>`` (run with cwd = *root*), as a user types it."""
    return [
        _shown(root, python),
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        f"services/{name}",
    ]


def _run(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, check=False)


def _last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (out.stderr + out.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit code {out.returncode}"])[-1].strip()


def install_service(root: Path, name: str) -> InstallResult:
    """``pip install -e services/<name>`` into the project environment (see the module docstring)."""
    python = project_python(root)
    argv = install_command(root, name, python)
    shown = shlex.join(argv)
    if python is None:
        return InstallResult("skipped", shown, reason=f"no project environment ({root / '.venv'})")
    out = _run(root, [str(python), *argv[1:3], "install", "-q", *argv[4:]])
    if out.returncode != 0:
        return InstallResult("failed", shown, str(python), _last_line(out))
    return InstallResult("installed", shown, str(python))


def uninstall_service(root: Path, name: str, dist: str | None = None) -> InstallResult:
    """``pip uninstall -y <distribution>`` from the project environment; a no-op when not installed.

    *dist* defaults to the name in ``services/<name>/pyproject.toml`` (read it before deleting the folder).
    """
    python = project_python(root)
    dist = dist or distribution_name(root / "services" / name)
    argv = ["-m", "pip", "uninstall", "-q", "-y", dist]
    shown = shlex.join([_shown(root, python), *argv])
    if python is None:
        return InstallResult("skipped", shown, reason=f"no project environment ({root / '.venv'})")
    out = _run(root, [str(python), *argv])
    if out.returncode != 0:
        return InstallResult("failed", shown, str(python), _last_line(out))
    return InstallResult("uninstalled", shown, str(python))


def not_installed(services: list[tuple[str, Path]]) -> dict[str, str]:
    """Services whose package this interpreter cannot import from their folder: name -> why.

    *services*: (name, folder) pairs. The local runner starts services with this interpreter, so a
    package that is missing, or installed from another checkout, would fail or run the wrong code.
    """
    import importlib.util

    problems: dict[str, str] = {}
    for name, folder in services:
        package = name.replace("-", "_")
        try:
            found = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            found = None
        origin = Path(found.origin).resolve() if found and found.origin else None
        if origin is None:
            problems[name] = "not installed"
        elif not origin.is_relative_to(folder.resolve()):
            problems[name] = f"installed from {origin.parent.parent}"
    return problems
