"""Rendering a stack at a git ref and in the working tree, concurrently, each with its own code.

The base ref is exported with ``git archive`` into a temp dir and rendered in a forked child that runs
*that tree's* ``infra`` package; the working tree renders in this process when its code is the one
loaded (else in a second child). The third-party modules (Pulumi's SDK, most of a render's time) are
imported once before forking and shared (docs/adr/0003). Each render comes back as a
:class:`infra.lifecycle.snapshot.Snapshot` - built here, by this checkout's code, from what the tree's
program registered, so a base tree's own output (or its redaction) never reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.errors import PlatformError, ToolMissingError, UsageError
from infra.lifecycle.snapshot import Snapshot

WORKING_TREE = "working tree"
#: A render that takes longer is stuck: its process is killed and the diff fails (never hangs).
RENDER_TIMEOUT_S = 600.0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise ToolMissingError("git is not installed", hint="install git (apt-get install git)")
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)


def export_tree(root: Path, ref: str, dest: Path, meanwhile: Callable[[], object] = lambda: None) -> str:
    """Extract the checkout at *ref* (the folder of *root* within its repo) into *dest*; the commit.

    ``git archive`` is piped into ``tar`` (both outside this process); *meanwhile* runs while they work.
    """
    inside = _git(root, "rev-parse", "--show-prefix")
    if inside.returncode != 0:
        raise UsageError(
            f"{root} is not inside a git repository, so there is no '{ref}' to compare with",
            hint="run platform diff in a git checkout",
        )
    resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise UsageError(
            f"unknown git ref '{ref}'",
            hint="fetch it first (e.g. git fetch origin main) or pass a branch, tag or commit that exists",
        )
    if shutil.which("tar") is None:
        raise ToolMissingError("tar is not installed", hint="install tar (apt-get install tar)")
    commit = resolved.stdout.decode().strip()
    prefix = inside.stdout.decode().strip().rstrip("/")
    treeish = f"{commit}:{prefix}" if prefix else commit
    with tempfile.TemporaryFile() as archive_errors:
        archive = subprocess.Popen(
            ["git", "-C", str(root), "archive", "--format=tar", treeish],
            stdout=subprocess.PIPE,
            stderr=archive_errors,
        )
        extract = subprocess.Popen(
            ["tar", "-x", "--no-same-owner", "-C", str(dest)],
            stdin=archive.stdout,
            stderr=subprocess.PIPE,
        )
        assert archive.stdout is not None
        archive.stdout.close()  # tar holds the only read end now
        meanwhile()
        _, tar_errors = extract.communicate()
        archive.wait()
        archive_errors.seek(0)
        failure = archive_errors.read().decode(errors="replace") if archive.returncode else ""
    if archive.returncode or extract.returncode:
        reason = (failure or tar_errors.decode(errors="replace")).strip()[:300]
        raise UsageError(f"cannot export '{ref}': {reason}", hint="check that the ref contains this project")
    return commit


#: Third-party modules every render imports (the bulk of a render's time, see bench/render.py). They
#: are imported once, before forking, and both renders share them; the trees' own code is not shared.
SHARED_MODULES = (
    "pulumi",
    "pulumi.runtime",
    "pulumi.runtime.mocks",
    "pulumi_kubernetes",
    "pulumi_random",
    "pulumi_docker",
    "pydantic",
    "yaml",
)
#: The packages each tree brings itself; a forked render uses its own tree's copy of them.
TREE_PACKAGES = ("infra",)
#: This process's program; importing it also loads every third-party module its render needs.
_PROGRAM = "infra.platform"


def _preload_shared_modules() -> None:
    for module in SHARED_MODULES:
        with contextlib.suppress(ImportError):  # a tree that needs it will say so when it renders
            importlib.import_module(module)
    # Whatever goes wrong here (say, a syntax error in the working tree) is reported by the render.
    with contextlib.suppress(Exception):
        importlib.import_module(_PROGRAM)


def _loaded_from(tree: Path) -> bool:
    module = sys.modules.get(TREE_PACKAGES[0])
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().is_relative_to(tree.resolve())


def _use_tree_code(tree: Path) -> None:
    """Make ``import infra`` load *tree*'s own code (in a forked child, before rendering).

    Only trees whose code this process does not run are forked (see :func:`render_both`).
    """
    os.chdir(tree)
    for module in [m for m in sys.modules if m.split(".", 1)[0] in TREE_PACKAGES]:
        del sys.modules[module]
    # An editable install maps `infra` to the checkout it was installed from; drop that finder so a
    # module missing from this tree fails instead of silently coming from another checkout.
    for finder in list(sys.meta_path):
        mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
        if isinstance(mapping, dict) and any(p in mapping for p in TREE_PACKAGES):
            sys.meta_path.remove(finder)
    sys.path.insert(0, str(tree))
    importlib.invalidate_caches()


def _render_tree(tree: Path, stack: str) -> dict[str, Any]:
    """In a forked child: render *stack* with *tree*'s code; ``{"snapshot"}`` or ``{"error", "hint"}``.

    The tree's program runs; the snapshot is built by *this* checkout's code (bound before the fork),
    which redacts every Secret value whatever the tree's renderer does.
    """
    _use_tree_code(tree)
    try:
        offline = importlib.import_module("infra.offline")
        render = offline.render
    except (ImportError, AttributeError) as exc:
        return {
            "error": f"this tree has no offline renderer ({exc})",
            "hint": "pick a base ref that contains infra/offline.py",
        }
    try:
        return {"snapshot": Snapshot.from_rendered(stack, render(stack, tree)).to_json()}
    except importlib.import_module("infra.errors").PlatformError as exc:
        return {"error": exc.message, "hint": exc.hint}


def _fork_render(tree: Path, stack: str, out: Path) -> int:
    """Render in a forked child that writes its result as JSON to *out*; the child's pid."""
    log = out.with_suffix(".log")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns into the parent's code
        # An inherited event loop is unusable here: its default executor's threads do not exist after
        # fork (the SDK's registrations would wait forever) and its epoll instance is shared with the
        # parent. Abandon it, unclosed (closing would touch the shared epoll), for a loop of our own.
        asyncio.set_event_loop(asyncio.new_event_loop())
        # No collection in this short-lived child: one would walk (and so copy) every page of the
        # heap it shares with the parent.
        gc.disable()
        gc.freeze()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        result = _render_tree(tree, stack)
        out.write_text(json.dumps(result), encoding="utf-8")
        code = 3 if "error" in result else 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)  # no atexit handlers, no final garbage collection, no buffered parent output


def _wait(pid: int, deadline: float) -> int:
    """The exit status of child *pid*; SIGKILLed (and reported as such) once *deadline* passes."""
    if hasattr(os, "pidfd_open"):  # Linux: sleep until the child exits or the deadline passes
        pidfd = os.pidfd_open(pid)  # readable once the child has exited
        try:
            select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(pidfd)
    while True:  # elsewhere (macOS): poll
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return status
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _kill_unreaped(pids: list[int]) -> None:
    for pid in pids:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # reaped already
        if not finished:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _collect(pid: int, out: Path, label: str, deadline: float) -> Snapshot:
    status = _wait(pid, deadline)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and time.monotonic() >= deadline:
        raise PlatformError(
            f"rendering the {label} did not finish within {RENDER_TIMEOUT_S:.0f} s",
            hint="render it alone with `platform render` to see where it stops",
        )
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log = out.with_suffix(".log")
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        raise PlatformError(
            f"rendering the {label} failed (exit {os.waitstatus_to_exitcode(status)}): "
            f"{(lines or ['(no output)'])[-1][:300]}",
            hint="render it alone with `platform render` to see the full error",
        ) from None
    if "error" in data:
        error_class = UsageError if label != WORKING_TREE else PlatformError
        raise error_class(f"{label}: {data['error']}", hint=data.get("hint", ""))
    return Snapshot.from_json(data["snapshot"])


def _render_here(root: Path, stack: str, freeze: bool) -> Snapshot:
    """Render the working tree in this process (its ``infra`` is the working tree's)."""
    from infra.offline import render

    try:
        return Snapshot.from_rendered(stack, render(stack, root, freeze=freeze))
    except PlatformError as exc:
        raise PlatformError(f"{WORKING_TREE}: {exc.message}", hint=exc.hint) from None
    except Exception as exc:  # broken working-tree code: one line, as from a forked render
        raise PlatformError(
            f"rendering the {WORKING_TREE} failed: {type(exc).__name__}: {exc}"[:400],
            hint="render it alone with `platform render` to see the full error",
        ) from None


def render_both(root: Path, ref: str, stack: str, *, freeze: bool = False) -> tuple[Snapshot, Snapshot]:
    """Render the stack at *ref* and in the working tree, concurrently; (base, head) snapshots.

    The shared third-party modules are imported once, then the base renders in a forked child with
    its own ``infra`` code while the working tree renders here (or in a second child when this
    process runs another checkout's code), so the two renders cost one import plus two render
    bodies. *freeze*: see :func:`infra.offline.fast_runtime` (for processes that exit right after).
    """
    if not hasattr(os, "fork"):
        raise UsageError(
            "platform diff renders the base ref in a forked process, and this system has no fork()",
            hint="run it on Linux or macOS (on Windows: inside WSL), as CI does",
        )
    with tempfile.TemporaryDirectory(prefix="platform-diff-") as tmp:
        base_tree, outputs = Path(tmp) / "base", Path(tmp)
        base_tree.mkdir()
        export_tree(root, ref, base_tree, meanwhile=_preload_shared_modules)
        jobs = [(f"base '{ref}'", base_tree, outputs / "base.json")]
        here = _loaded_from(root)
        if not here:
            jobs.append((WORKING_TREE, root, outputs / "head.json"))
        pids = [_fork_render(tree, stack, out) for _, tree, out in jobs]
        deadline = time.monotonic() + RENDER_TIMEOUT_S
        rendered: list[Snapshot] = []
        errors: list[PlatformError] = []  # the base's first
        head_error: list[PlatformError] = []
        try:
            if here:
                try:
                    head = _render_here(root, stack, freeze)
                except PlatformError as exc:
                    head_error.append(exc)
            for (label, _, out), pid in zip(jobs, pids, strict=True):
                try:
                    rendered.append(_collect(pid, out, label, deadline))
                except PlatformError as exc:
                    errors.append(exc)
        finally:
            _kill_unreaped(pids)  # whatever went wrong above, no child outlives the diff
        if errors or head_error:
            raise (errors + head_error)[0]
    if here:
        rendered.append(head)
    old, new = rendered
    return old, new
