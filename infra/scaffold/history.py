"""The template's git history: resolve revisions, extract a template as it was, check files are clean.

The template lives in the same repository as the services, so its whole history is at hand: a template
at commit X is ``git archive X service_templates/<name>`` unpacked into a scratch folder.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from infra.errors import PlatformError, UsageError
from infra.scaffold.template import TEMPLATES_DIR, Template, load_template


def git(root: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    """Run git in *root*; a missing git binary is a clear error."""
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=not binary, timeout=60, check=False
        )
    except FileNotFoundError:
        raise PlatformError("git is not installed", hint="install git (apt-get install git)") from None


def resolve(root: Path, rev: str) -> str:
    """*rev* as a full commit sha (UsageError when git does not know it)."""
    if rev.startswith("-"):
        raise UsageError(
            f"--to '{rev}' is not a revision", hint="pass a commit, branch or tag, e.g. --to HEAD"
        )
    out = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if out.returncode != 0:
        raise UsageError(f"--to '{rev}': no such commit in this repository", hint="see git log")
    return out.stdout.strip()


def template_commit(root: Path, template: str, rev: str = "HEAD") -> str | None:
    """The last commit at or before *rev* that changed ``service_templates/<template>``."""
    out = git(root, "log", "-1", "--format=%H", rev, "--", f"{TEMPLATES_DIR}/{template}")
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    return git(root, "merge-base", "--is-ancestor", older, newer).returncode == 0


def template_at(root: Path, template: str, commit: str, scratch: Path) -> Template:
    """Load *template* as it was at *commit* (unpacked under *scratch*, which the caller removes)."""
    out = git(root, "archive", "--format=tar", commit, "--", f"{TEMPLATES_DIR}/{template}", binary=True)
    if out.returncode != 0:
        raise UsageError(
            f"template '{template}' does not exist at commit {commit[:12]}",
            hint="the recorded commit must be in this repository's history (git fetch it?)",
        )
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as archive:
        archive.extractall(scratch, filter="data")
    loaded = load_template(template, scratch)
    loaded.env.bytecode_cache = None  # one-off folder: do not fill the shared cache
    return loaded


def dirty(root: Path, paths: list[str]) -> list[str]:
    """Those of *paths* (relative to *root*) that differ from git's index/HEAD or are untracked."""
    if not paths:
        return []
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
    if out.returncode != 0:
        raise UsageError(
            "not a git repository: upgrade-service needs the template's history",
            hint="run it inside the platform's git checkout",
        )
    entries = [e for e in out.stdout.split("\0") if e]
    result: list[str] = []
    skip = False
    for entry in entries:
        if skip:  # the second path of a rename
            skip = False
            continue
        status, path = entry[:2], entry[3:]
        skip = "R" in status or "C" in status
        result.append(path)
    return sorted(result)
