"""A git copy of this repository for tests that change it and compare with the committed base."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
#: What a clean clone does not have (including git-ignored build/ dirs, which image tags would hash).
IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".tools",
    ".platform",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    "*.egg-info",
    "build",
    "node_modules",
    ".next",
)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def copy_repo(dest: Path) -> Path:
    """A git copy of the repository at *dest* with one commit (HEAD)."""
    shutil.copytree(REPO, dest, ignore=IGNORE)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    return dest
