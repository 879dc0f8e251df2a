"""A minimal copy of a checkout to scaffold into (tests, benchmarks), and a digest of a folder tree."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: What ``new-service`` reads: the project file, the stacks, the templates and the manifests.
COPIED = ("Pulumi.yaml", "stacks", "service_templates")
#: What the Pulumi program needs on top (``platform check`` in a copy runs with PYTHONPATH=<copy>, so
#: ``infra.spec.REPO_ROOT`` is the copy).
CODE = ("__main__.py", "infra", "cli", "libs")
#: The committed generated artifacts (:mod:`infra.scaffold.generated`) and the pages around them.
GENERATED = ("compose.yaml", ".env.example", "compose", "docs")


def copy_checkout(source: Path, dest: Path, *, with_code: bool = False, with_generated: bool = False) -> Path:
    """Copy what the scaffolder needs from *source* into *dest* (created); return *dest*.

    Only ``services/*/service.yaml`` is copied, unless *with_code*: then also the toolkit's code and
    each whole service folder (without caches and egg-info), enough to run ``platform check``.
    *with_generated* adds compose.yaml, compose/, .env.example and docs/ (so they get regenerated).
    """
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
    for name in COPIED + (CODE if with_code else ()) + (GENERATED if with_generated else ()):
        item = source / name
        if item.is_dir():
            shutil.copytree(item, dest / name, ignore=ignore)
        elif item.is_file():
            shutil.copy2(item, dest / name)
    for manifest in sorted((source / "services").glob("*/service.yaml")):
        target = dest / "services" / manifest.parent.name
        if with_code:
            shutil.copytree(manifest.parent, target, ignore=ignore)
        else:
            target.mkdir(parents=True)
            shutil.copy2(manifest, target / "service.yaml")
    (dest / "services").mkdir(exist_ok=True)
    _copy_web_apps(source, dest, with_code=with_code)
    return dest


def _copy_web_apps(source: Path, dest: Path, *, with_code: bool) -> None:
    """The web app's manifest (the stacks size it), and with *with_code* its build files too."""
    from infra.spec import WEB_APP_DIRS

    ignore = shutil.ignore_patterns("node_modules", ".next", "test-results", "playwright-report")
    for folder in WEB_APP_DIRS:
        manifest = source / folder / "service.yaml"
        if not manifest.is_file():
            continue
        if with_code:
            shutil.copytree(source / folder, dest / folder, ignore=ignore)
        else:
            (dest / folder).mkdir(parents=True)
            shutil.copy2(manifest, dest / folder / "service.yaml")


def tree_digest(root: Path, *, exclude: tuple[str, ...] = ("__pycache__",)) -> str:
    """sha256 over every path, file mode and content under *root* (sorted; folders included)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude)
        rel = os.path.relpath(dirpath, root)
        digest.update(f"D {rel}\n".encode())
        for name in sorted(filenames):
            path = Path(dirpath) / name
            digest.update(f"F {rel}/{name} {path.stat().st_mode:o}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def copy_worktree(source: Path, dest: Path) -> Path:
    """Copy the files git would check out at *source* - tracked and untracked-but-not-ignored, as they
    are on disk (uncommitted edits included) - into *dest*; return *dest*. A clone of the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in sorted({p for p in listed.split("\0") if p}):
        src = source / rel
        if not src.is_file() and not src.is_symlink():
            continue  # deleted in the work tree, still in the index
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def layered_venv(base: Path, dest: Path, editables: list[Path]) -> Path:
    """A virtualenv at *dest* that sees *base*'s installed libraries and installs *editables* itself.

    No reinstall of the dependencies: a ``.pth`` file puts *base*'s site-packages on the path (its own
    ``.pth`` files - the base's editable installs - are not processed, so the copy's packages come from
    the copy), then *base*'s pip installs *editables* into *dest* (``--no-deps``, no build isolation).
    Returns the new interpreter.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base_site = base / "lib" / version / "site-packages"
    (dest / "lib" / version / "site-packages" / "_layered_base.pth").write_text(f"{base_site}\n")
    argv = [str(base / "bin" / "python"), "-m", "pip", "--python", str(python), "install", "-q"]
    argv += ["--no-deps", "--no-build-isolation"]
    for path in editables:
        argv += ["-e", str(path)]
    if editables:
        subprocess.run(argv, check=True, capture_output=True)
    for tool in (base / "bin").iterdir():  # pytest, ruff, hadolint, ...: the base's, by symlink
        target = dest / "bin" / tool.name
        if not target.exists() and not tool.name.startswith(("python", "activate", "Activate")):
            target.symlink_to(tool)
    return python
