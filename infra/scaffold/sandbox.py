"""A minimal copy of a checkout to scaffold into (tests, benchmarks), and a digest of a folder tree."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

#: What ``new-service`` reads: the project file, the stacks, the templates and the manifests.
COPIED = ("Pulumi.yaml", "stacks", "service_templates")
#: What the Pulumi program needs on top (``platform check`` in a copy runs with PYTHONPATH=<copy>, so
#: ``infra.spec.REPO_ROOT`` is the copy).
CODE = ("__main__.py", "infra", "cli", "libs")


def copy_checkout(source: Path, dest: Path, *, with_code: bool = False) -> Path:
    """Copy what the scaffolder needs from *source* into *dest* (created); return *dest*.

    Only ``services/*/service.yaml`` is copied, unless *with_code*: then also the toolkit's code and
    each whole service folder (without caches and egg-info), enough to run ``platform check``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
    for name in COPIED + (CODE if with_code else ()):
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
