"""Apply a plan atomically, and recover from a run that was killed half-way.

The exact guarantee (SIGKILL at any instant, or any exception):

1. Everything is written to scratch space first: ``services/.scaffold-<token>/<name>/`` (a folder
   *two* levels down, so ``services/*/service.yaml`` never sees it) and one
   ``stacks/.Pulumi.<stack>.yaml.scaffold-<token>`` per edited stack file (never matched by
   ``Pulumi.*.yaml``). Each file is fsynced. Then ``services/.scaffold-<token>/journal.json`` is
   written (temp + fsync + rename) listing the staged stack files and each original's sha256.
2. **Commit point**: ``os.rename(services/.scaffold-<token>/<name>, services/<name>)``. Before it the
   repository's visible tree is unchanged; after it the service folder is complete.
3. Each stack file is ``os.replace``-d by its staged copy (a stack file is always either the old or
   the new text, never half of either), then each regenerated artifact (compose.yaml, compose/*,
   generated docs: :mod:`infra.scaffold.generated`, rendered for the new tree and staged under
   ``services/.scaffold-<token>/generated/`` before the commit point), the directories are fsynced,
   the scratch folder is removed.

Every later ``new-service`` / ``services`` command first runs :func:`recover` (under the same lock):
scratch from a run that died before step 2 is deleted (rollback); a run that died after step 2 is
rolled forward (its staged stack files replace the originals, and the generated artifacts are
regenerated from the resulting tree) unless a stack file changed since it was staged - then the
staged copy is dropped and the service is reported as "folder exists but is not
registered in <stack>". ``remove`` uses the same journal; its commit point is moving the service folder
into scratch (or, when the folder is kept, the journal itself).

``upgrade`` (:func:`apply_upgrade`) stages a whole upgraded copy of the service folder and swaps it
with the live one in one ``renameat2(RENAME_EXCHANGE)``: its commit point; the journal records the
staged folder's inode so :func:`recover` can tell whether the swap happened.

``PLATFORM_SCAFFOLD_PAUSE_AT=<step>`` pauses at a step (for the kill test): ``rendered``, ``scratch``
(half the files written), ``staged``, ``renamed``, ``stack`` (after the first stack file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import PlatformError
from infra.scaffold import generated
from infra.scaffold.plan import Plan, StackChange, sha256

PAUSE_ENV = "PLATFORM_SCAFFOLD_PAUSE_AT"
SCRATCH_PREFIX = ".scaffold-"
STEPS = ("rendered", "scratch", "staged", "renamed", "stack")
GENERATED_DIR = "generated"


def pause(step: str) -> None:
    """Block for a while at *step* when ``PLATFORM_SCAFFOLD_PAUSE_AT`` names it (kill tests)."""
    if os.environ.get(PAUSE_ENV) == step:
        sys.stderr.write(f"paused at {step}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("PLATFORM_SCAFFOLD_PAUSE_SECONDS", "60")))


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Exclusive lock on ``services/`` (flock on the folder itself: no lock file in the tree)."""
    fd = os.open(root / "services", os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PlatformError(
                "another platform command is changing services/ right now",
                hint="wait for it to finish and run the command again",
            ) from None
        yield
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, fsync: bool = True) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def _write_journal(scratch: Path, journal: dict[str, Any]) -> None:
    tmp = scratch / "journal.json.tmp"
    write_file(tmp, json.dumps(journal, indent=2).encode())
    os.replace(tmp, scratch / "journal.json")
    _fsync_dir(scratch)


def _new_scratch(root: Path) -> tuple[str, Path]:
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    scratch = root / "services" / f"{SCRATCH_PREFIX}{token}"
    scratch.mkdir()
    return token, scratch


def _stage_stacks(changes: list[StackChange], token: str) -> dict[str, Any]:
    """Write each new stack text next to its file; journal entries use paths relative to the repo."""
    staged: dict[str, Any] = {}
    for change in changes:
        temp = f".{change.file.name}.scaffold-{token}"
        write_file(change.file.with_name(temp), change.new_text.encode())
        staged[change.stack] = {
            "file": f"stacks/{change.file.name}",
            "temp": f"stacks/{temp}",
            "sha256": sha256(change.old_text),
        }
    return staged


def _replace_stacks(root: Path, staged: dict[str, Any]) -> list[str]:
    """Move staged stack files into place; return the stacks that changed since staging (skipped)."""
    stale: list[str] = []
    first = True
    for stack, item in staged.items():
        file, temp = root / item["file"], root / item["temp"]
        if not temp.exists():
            continue  # already replaced by the run that staged it
        if not file.exists() or sha256(file.read_text(encoding="utf-8")) != item["sha256"]:
            temp.unlink()
            stale.append(stack)
            continue
        os.replace(temp, file)
        if first:
            first = False
            pause("stack")
    if staged:
        _fsync_dir(root / "stacks")
    return stale


def _stage_generated(scratch: Path, texts: dict[str, str]) -> list[str]:
    """Write regenerated artifacts under ``<scratch>/generated/`` (same file system as the targets)."""
    for rel, text in texts.items():
        target = scratch / GENERATED_DIR / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target, text.encode())
    return sorted(texts)


def _replace_generated(root: Path, scratch: Path, rels: list[str]) -> None:
    """Move staged artifacts into place, keeping each target's mode (e.g. an executable script)."""
    for rel in rels:
        staged, target = scratch / GENERATED_DIR / rel, root / rel
        if not staged.exists():
            continue
        if target.exists():
            os.chmod(staged, target.stat().st_mode & 0o777)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)


def apply_plan(plan: Plan) -> list[str]:
    """Create the service folder and register it in the stacks (see the module docstring).

    Returns the generated artifacts it rewrote (paths relative to the repository).
    """
    pause("rendered")
    token, scratch = _new_scratch(plan.root)
    try:
        staging = scratch / plan.name
        staging.mkdir()
        half = len(plan.files) // 2
        for i, (path, data) in enumerate(sorted(plan.files.items())):
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            write_file(target, data)
            if i == half:
                pause("scratch")
        changes = [s for s in plan.stacks if s.action == "add"]
        texts = generated.render_change(
            plan.root,
            {s.stack: s.new_text for s in changes},
            add={plan.name: staging},
            events=any(p.endswith("/events.py") for p in plan.files),
        )
        regenerated = _stage_generated(scratch, texts)
        staged = _stage_stacks(changes, token)
        _write_journal(
            scratch,
            {"op": "new-service", "service": plan.name, "stacks": staged, "generated": regenerated},
        )
        pause("staged")
    except BaseException:
        _rollback(plan.root, scratch, token)
        raise
    os.rename(staging, plan.service_dir)  # commit point
    _fsync_dir(plan.service_dir.parent)
    pause("renamed")
    stale = _replace_stacks(plan.root, staged)
    if stale:
        shutil.rmtree(scratch)
        raise PlatformError(
            f"services/{plan.name} was created but stack file(s) changed meanwhile: {', '.join(stale)}",
            hint=f"add '{plan.name}: {{replicas: 1}}' under platform:services in those stack files, "
            "then run `platform regenerate`",
        )
    _replace_generated(plan.root, scratch, regenerated)
    shutil.rmtree(scratch)
    return regenerated


def remove_committed(root: Path, name: str, changes: list[StackChange], delete_folder: bool) -> list[str]:
    """Unregister *name* from the stacks and, if asked, delete its folder - atomically.

    Returns the generated artifacts it rewrote (paths relative to the repository).
    """
    token, scratch = _new_scratch(root)
    try:
        removals = [c for c in changes if c.action == "remove"]
        folder = root / "services" / name
        texts = generated.render_change(
            root,
            {c.stack: c.new_text for c in removals},
            drop=(name,) if delete_folder else (),
            events=any(folder.glob("*/events.py")),
        )
        regenerated = _stage_generated(scratch, texts)
        staged = _stage_stacks(removals, token)
        _write_journal(
            scratch,
            {
                "op": "remove",
                "service": name,
                "stacks": staged,
                "delete_folder": delete_folder,
                "generated": regenerated,
            },
        )
    except BaseException:
        _rollback(root, scratch, token)
        raise
    if delete_folder:
        os.rename(root / "services" / name, scratch / name)  # commit point
        _fsync_dir(root / "services")
    _replace_stacks(root, staged)
    _replace_generated(root, scratch, regenerated)
    shutil.rmtree(scratch)
    return regenerated


_RENAME_EXCHANGE = 2  # linux/fs.h


def exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if sys.platform != "linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return False
    at_fdcwd = -100
    if func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(a))


def _stage_tree(source: Path, staging: Path, writes: dict[str, bytes | None]) -> None:
    """A copy of *source* with *writes* applied (None deletes); unchanged files are hard links."""
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        (staging / rel).mkdir(exist_ok=True)
        for name in dirnames:
            item = Path(dirpath) / name
            if item.is_symlink():
                os.symlink(os.readlink(item), staging / rel / name)
        for name in filenames:
            item, target = Path(dirpath) / name, staging / rel / name
            if (rel / name).as_posix() in writes:
                continue
            if item.is_symlink():
                os.symlink(os.readlink(item), target)
                continue
            try:
                os.link(item, target)
            except OSError:
                shutil.copy2(item, target)
    half = len(writes) // 2
    for i, (path, data) in enumerate(sorted(writes.items())):
        target = staging / path
        if data is None:
            _prune(target.parent, staging)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target, data)
        if i == half:
            pause("scratch")


def _prune(folder: Path, top: Path) -> None:
    """Remove folders left empty by deletions, up to (not including) *top*."""
    while folder != top and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def apply_upgrade(
    root: Path,
    name: str,
    writes: dict[str, bytes | None],
    stacks: list[StackChange],
    *,
    events: bool = False,
) -> list[str]:
    """Replace ``services/<name>`` by its upgraded copy and apply stack edits - atomically.

    The copy is staged in scratch (unchanged files hard-linked), then swapped with the live folder in
    one ``renameat2(RENAME_EXCHANGE)`` (commit point); where the filesystem cannot exchange, two renames
    whose gap :func:`recover` rolls forward. The journal records the staged folder's inode, which is how
    recovery tells whether the swap happened. Generated artifacts (compose, docs; *events*: also
    docs/events.md) are rendered for the upgraded tree, staged, and replaced after the stack files, as
    :func:`apply_plan` does. Returns the artifacts it rewrote.
    """
    service = root / "services" / name
    pause("rendered")
    token, scratch = _new_scratch(root)
    try:
        _write_journal(scratch, {"op": "upgrade", "service": name, "stacks": {}, "inode": None})
        staging = scratch / name
        staging.mkdir()
        _stage_tree(service, staging, writes)
        texts = generated.render_change(
            root, {s.stack: s.new_text for s in stacks}, add={name: staging}, events=events
        )
        regenerated = _stage_generated(scratch, texts)
        staged = _stage_stacks(stacks, token)
        inode = [staging.stat().st_dev, staging.stat().st_ino]
        journal = {"op": "upgrade", "service": name, "stacks": staged, "inode": inode}
        _write_journal(scratch, {**journal, "generated": regenerated})
        pause("staged")
    except BaseException:
        _rollback(root, scratch, token)
        raise
    if not exchange(staging, service):  # commit point (atomic swap)
        os.rename(service, scratch / f"{name}.old")  # commit point (fallback): recovery rolls forward
        os.rename(staging, service)
    _fsync_dir(root / "services")
    pause("renamed")
    _replace_stacks(root, staged)
    _replace_generated(root, scratch, regenerated)
    shutil.rmtree(scratch)
    return regenerated


def _upgrade_committed(root: Path, scratch: Path, journal: dict[str, Any]) -> bool:
    """Did the swap happen? Finishes a fallback swap that died between its two renames."""
    name, inode = journal["service"], journal.get("inode")
    if inode is None:
        return False
    service, staging = root / "services" / name, scratch / name
    if not service.exists() and staging.is_dir():
        os.rename(staging, service)
        return True
    st = service.stat()
    return [st.st_dev, st.st_ino] == inode


def _rollback(root: Path, scratch: Path, token: str) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
    for temp in (root / "stacks").glob(f".Pulumi.*.yaml.scaffold-{token}"):
        temp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did about one interrupted run."""

    op: str
    service: str
    outcome: str  # "rolled back" | "completed" | "not registered"
    stacks: tuple[str, ...] = ()

    def line(self) -> str:
        what = f"an interrupted `{self.op}` of {self.service}"
        if self.outcome == "rolled back":
            return f"recovered {what}: rolled back, nothing was changed"
        if self.outcome == "completed":
            return f"recovered {what}: completed (stacks: {', '.join(self.stacks) or 'none'})"
        return (
            f"recovered {what}: folder exists but is not registered in {', '.join(self.stacks)} "
            "(the stack file changed since)"
        )


def recover(root: Path) -> list[Recovery]:
    """Finish or undo runs that were killed (call with :func:`locked` held)."""
    results: list[Recovery] = []
    services = root / "services"
    for scratch in sorted(services.glob(f"{SCRATCH_PREFIX}*")):
        token = scratch.name.removeprefix(SCRATCH_PREFIX)
        journal_file = scratch / "journal.json"
        journal = json.loads(journal_file.read_text()) if journal_file.is_file() else None
        if journal is None:  # died while writing the scratch copy: its only folder is the service
            names = [p.name for p in scratch.iterdir() if p.is_dir() and p.name != GENERATED_DIR]
            _rollback(root, scratch, token)
            results.append(Recovery("new-service", names[0] if names else "?", "rolled back"))
            continue
        name, op = journal["service"], journal["op"]
        if op == "upgrade":
            committed = _upgrade_committed(root, scratch, journal)
        elif op == "new-service":
            committed = not (scratch / name).exists() and (services / name).is_dir()
        else:
            committed = not journal["delete_folder"] or not (services / name).exists()
        if not committed:
            _rollback(root, scratch, token)
            results.append(Recovery(op, name, "rolled back"))
            continue
        stale = _replace_stacks(root, journal["stacks"])
        shutil.rmtree(scratch)
        if journal.get("generated"):
            generated.regenerate(root)  # from the tree as it now is (a stale stack was not replaced)
        if stale and op == "new-service":
            results.append(Recovery(op, name, "not registered", tuple(stale)))
        else:
            results.append(
                Recovery(op, name, "completed", tuple(s for s in journal["stacks"] if s not in stale))
            )
    return results
