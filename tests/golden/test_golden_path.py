"""The service developer's golden path: scaffold -> the repository stays green -> remove -> still green.

One clone of the work tree (tracked and new files, as on disk) with a virtualenv layered on the
project's own (no reinstall: the clone's toolkit, servicekit and services are installed editable into
it, everything else is shared). Two services with different needs are scaffolded with the clone's own
``platform``; the toolkit's test folders and the new services' tests run there; one service is
removed; they run again. Expensive (two runs of the toolkit folders), so it is one module, one clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.scaffold.sandbox import copy_worktree, layered_venv
from infra.spec import REPO_ROOT

#: Two runs of the toolkit folders: far beyond the suite's default 300 s per test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

#: One service with PostgreSQL + Redis consuming a tenant's event, one with no backing service.
FULL = ("inv-svc", ["--postgres", "--redis", "--consumes", "listing.created", "--resource", "stocks"])
BARE = ("bare-svc", ["--no-postgres"])
TOOLKIT = ["tests/cli", "tests/infra", "tests/scaffold"]
PYTEST = ["-m", "pytest", "-p", "no:cacheprovider", "-x", "-q", "--ignore=tests/golden"]


def _git(root: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=golden", "-c", "user.email=golden@example.com", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_worktree(REPO_ROOT, tmp_path_factory.mktemp("golden") / "repo")
    _git(root, "init", "-q")
    (root / ".git" / "info" / "exclude").write_text(".tools\n.venv\nfrontend/node_modules\n")  # made below
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "clone")
    services = sorted(p.parent for p in root.glob("services/*/pyproject.toml"))
    editables = [root, root / "libs" / "servicekit", *services]
    layered_venv(Path(sys.prefix), root / ".venv", editables)
    tools = REPO_ROOT / ".tools"
    if tools.is_dir():
        (root / ".tools").symlink_to(tools.resolve(), target_is_directory=True)  # checkov
    modules = REPO_ROOT / "frontend" / "node_modules"
    if modules.is_dir() and (root / "frontend").is_dir():  # openapi-typescript (the client sync test)
        (root / "frontend" / "node_modules").symlink_to(modules.resolve(), target_is_directory=True)
    return root


def _run(root: Path, *argv: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(root / ".venv" / "bin" / argv[0]), *argv[1:]],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _imports(root: Path, package: str) -> str:
    proc = _run(root, "python", "-c", f"import {package}; print({package}.__file__)")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr)[-4000:]


def test_scaffold_two_services_then_everything_is_green(clone: Path) -> None:
    for name, flags in (FULL, BARE):
        proc = _run(clone, "platform", "new-service", name, *flags, "--no-input")
        assert proc.returncode == 0, _tail(proc)
        assert f"install   services/{name} (editable" in proc.stdout
        assert "next: platform check -s dev && platform dev up" in proc.stderr
        package = name.replace("-", "_")
        assert _imports(clone, package) == str(clone / "services" / name / package / "__init__.py")
    assert _run(clone, "platform", "regenerate", "--check").returncode == 0
    changed = {line[3:].split("/")[0] for line in _git(clone, "status", "--porcelain").splitlines()}
    assert changed <= {"services", "stacks", "compose", "compose.yaml", ".env.example", "docs"}, changed
    proc = _run(clone, "python", *PYTEST, *TOOLKIT, f"services/{FULL[0]}", f"services/{BARE[0]}")
    assert proc.returncode == 0, _tail(proc)


def test_remove_one_then_everything_is_still_green(clone: Path) -> None:
    proc = _run(clone, "platform", "services", "remove", BARE[0], "--delete", "--yes")
    assert proc.returncode == 0, _tail(proc)
    assert not (clone / "services" / BARE[0]).exists()
    assert _imports(clone, "bare_svc") == ""  # uninstalled from the project environment
    assert _run(clone, "platform", "regenerate", "--check").returncode == 0
    proc = _run(clone, "python", *PYTEST, *TOOLKIT, f"services/{FULL[0]}")
    assert proc.returncode == 0, _tail(proc)
