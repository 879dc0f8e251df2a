"""``platform diff``: what a change does to a stack's Kubernetes objects.

The stack is rendered twice, concurrently, each in its own forked process running *that tree's* code:
the base ref (exported with ``git archive`` into a temp dir) and the working tree. The third-party
modules (Pulumi's SDK, most of a render's time) are imported once before forking and shared. The manifests are
then compared object by object; list items that have a ``name`` are matched by name, so a change
reads ``spec.template.spec.containers[name=app].resources.limits.memory: 256Mi -> 512Mi``.

Secret values never appear: the offline engine redacts them, and this module masks every Secret
``data``/``stringData`` value again before comparing (defence in depth against a base tree whose
renderer did not redact).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.check.k8s import Manifest, key_ref, kind, name, namespace
from infra.errors import PlatformError, ToolMissingError, UsageError

MASK = "<redacted>"
MARKDOWN_LIMIT = 60_000
MAX_TEXT_DIFF_LINES = 60
WORKING_TREE = "working tree"
#: A render that takes longer is stuck: its process is killed and the diff fails (never hangs).
RENDER_TIMEOUT_S = 600.0

# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class Change:
    """One field that differs; ``old``/``new`` are None when the field was added/removed."""

    path: str
    op: str
    old: Any = None
    new: Any = None

    def text_lines(self) -> list[str]:
        """``path: old -> new``, plus a unified diff for multi-line strings."""
        if self.op == "added":
            return [f"+ {self.path}: {_short(self.new)}"]
        if self.op == "removed":
            return [f"- {self.path}: {_short(self.old)}"]
        if _multiline(self.old) or _multiline(self.new):
            old, new = str(self.old).splitlines(), str(self.new).splitlines()
            lines = list(difflib.unified_diff(old, new, lineterm="", n=1))[2:]
            shown = lines[:MAX_TEXT_DIFF_LINES]
            if len(lines) > len(shown):
                shown.append(f"... {len(lines) - len(shown)} more diff lines")
            return [f"~ {self.path}: text changed", *(f"    {line}" for line in shown)]
        return [f"~ {self.path}: {_short(self.old)} -> {_short(self.new)}"]


@dataclass
class ResourceDiff:
    """One object that was added, removed or changed."""

    kind: str
    name: str
    namespace: str
    status: str
    changes: list[Change] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def text_lines(self) -> list[str]:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.status]
        lines = [f"{sign} {self.ref}" + (f" ({len(self.changes)} fields)" if self.changes else "")]
        for change in self.changes:
            lines += [f"    {line}" for line in change.text_lines()]
        return lines


@dataclass
class StackDiff:
    """The difference between the stack at *base* and in the working tree."""

    stack: str
    base: str
    resources: list[ResourceDiff]
    unchanged: int

    def of(self, status: str) -> list[ResourceDiff]:
        return [r for r in self.resources if r.status == status]

    def summary(self) -> str:
        counts = ", ".join(f"{len(self.of(s))} {s}" for s in ("added", "removed", "changed"))
        return f"{counts}, {self.unchanged} unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "base": self.base,
            "unchanged": self.unchanged,
            **{
                status: [
                    {
                        "kind": r.kind,
                        "name": r.name,
                        "namespace": r.namespace,
                        **({"changes": [c.__dict__ for c in r.changes]} if status == "changed" else {}),
                    }
                    for r in self.of(status)
                ]
                for status in ("added", "removed", "changed")
            },
        }


# ---------------------------------------------------------------- comparing


def mask_secrets(manifest: Manifest) -> Manifest:
    """A copy of *manifest* whose Secret values (data, stringData) are all :data:`MASK`."""
    if kind(manifest) != "Secret":
        return manifest
    masked = dict(manifest)
    for key in ("data", "stringData"):
        if isinstance(masked.get(key), dict):
            masked[key] = dict.fromkeys(masked[key], MASK)
        elif key in masked:
            masked[key] = MASK
    meta = dict(masked.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK
        meta["annotations"] = annotations
        masked["metadata"] = meta
    return masked


def _named(items: list[Any]) -> bool:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    return (
        len(names) == len(items) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
    )


def compare(old: Any, new: Any, path: str = "") -> list[Change]:
    """Field-level changes from *old* to *new*; list items with a ``name`` are matched by name."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = (path + key_ref(str(key))).lstrip(".")
            if key not in new:
                changes.append(Change(sub, "removed", old=old[key]))
            elif key not in old:
                changes.append(Change(sub, "added", new=new[key]))
            else:
                changes += compare(old[key], new[key], sub)
        return changes
    if isinstance(old, list) and isinstance(new, list):
        if old and new and _named(old) and _named(new):
            return _compare_named(old, new, path)
        changes = []
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                changes.append(Change(sub, "removed", old=old[i]))
            elif i >= len(old):
                changes.append(Change(sub, "added", new=new[i]))
            else:
                changes += compare(old[i], new[i], sub)
        return changes
    if old != new or type(old) is not type(new):
        return [Change(path, "changed", old=old, new=new)]
    return []


def _compare_named(old: list[dict[str, Any]], new: list[dict[str, Any]], path: str) -> list[Change]:
    before = {i["name"]: i for i in old}
    after = {i["name"]: i for i in new}
    changes: list[Change] = []
    for item_name in [*before, *(n for n in after if n not in before)]:
        sub = f"{path}[name={item_name}]"
        if item_name not in after:
            changes.append(Change(sub, "removed", old=before[item_name]))
        elif item_name not in before:
            changes.append(Change(sub, "added", new=after[item_name]))
        else:
            changes += compare(before[item_name], after[item_name], sub)
    if [i["name"] for i in old if i["name"] in after] != [i["name"] for i in new if i["name"] in before]:
        changes.append(Change(f"{path}[*]", "changed", old="order", new="reordered"))
    return changes


def diff_manifests(stack: str, base: str, old: list[Manifest], new: list[Manifest]) -> StackDiff:
    """Compare two renderings of a stack object by object (Secret values masked first)."""

    def index(manifests: list[Manifest]) -> dict[tuple[str, str, str], Manifest]:
        return {(kind(m), namespace(m), name(m)): mask_secrets(m) for m in manifests}

    before, after = index(old), index(new)
    resources: list[ResourceDiff] = []
    unchanged = 0
    for key in sorted(set(before) | set(after)):
        k, ns, n = key
        if key not in after:
            resources.append(ResourceDiff(k, n, ns, "removed"))
        elif key not in before:
            resources.append(ResourceDiff(k, n, ns, "added"))
        else:
            changes = compare(before[key], after[key])
            if changes:
                resources.append(ResourceDiff(k, n, ns, "changed", changes))
            else:
                unchanged += 1
    return StackDiff(stack, base, resources, unchanged)


# ---------------------------------------------------------------- rendering the two trees


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
    """In a forked child: render *stack* with *tree*'s code; ``{"manifests"}`` or ``{"error", "hint"}``."""
    _use_tree_code(tree)
    try:
        offline = importlib.import_module("infra.offline")
    except ImportError as exc:
        return {
            "error": f"this tree has no offline renderer ({exc})",
            "hint": "pick a base ref that contains infra/offline.py",
        }
    try:
        return {"manifests": offline.render_stack(stack, tree)}
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


def _collect(pid: int, out: Path, label: str, deadline: float) -> list[Manifest]:
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
    return list(data["manifests"])


def _render_here(root: Path, stack: str, freeze: bool) -> list[Manifest]:
    """Render the working tree in this process (its ``infra`` is the working tree's)."""
    from infra.offline import render_stack

    try:
        return render_stack(stack, root, freeze=freeze)
    except PlatformError as exc:
        raise PlatformError(f"{WORKING_TREE}: {exc.message}", hint=exc.hint) from None
    except Exception as exc:  # broken working-tree code: one line, as from a forked render
        raise PlatformError(
            f"rendering the {WORKING_TREE} failed: {type(exc).__name__}: {exc}"[:400],
            hint="render it alone with `platform render` to see the full error",
        ) from None


def render_both(
    root: Path, ref: str, stack: str, *, freeze: bool = False
) -> tuple[list[Manifest], list[Manifest]]:
    """Render the stack at *ref* and in the working tree, concurrently; (base, head) manifests.

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
        rendered: list[list[Manifest]] = []
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


def diff_stack(stack: str, root: Path, base: str, *, freeze: bool = False) -> StackDiff:
    """Render *stack* at *base* and in the working tree, and compare them (*freeze*: see above)."""
    old, new = render_both(root, base, stack, freeze=freeze)
    return diff_manifests(stack, base, old, new)


# ---------------------------------------------------------------- output


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.strip()


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, str):
        text = f"<{len(value.splitlines())} lines>" if _multiline(value) else value
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_text(d: StackDiff) -> str:
    """Plain text: a summary line, then one block per added/removed/changed object."""
    head = f"stack {d.stack}: {d.base} -> {WORKING_TREE}: {d.summary()}"
    if not d.resources:
        return f"{head}\nno changes"
    return "\n".join([head, *(line for r in d.resources for line in r.text_lines())])


def format_markdown(d: StackDiff, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: summary table first, per-object details folded, kept under *limit* characters."""
    parts = [
        f"### `platform diff`: stack `{d.stack}` (`{_md(d.base)}` → {WORKING_TREE})",
        "",
        f"**{d.summary()}**",
        "",
    ]
    if not d.resources:
        return "\n".join([*parts, "No changes to Kubernetes objects."]) + "\n"
    icons = {"added": "➕ added", "removed": "➖ removed", "changed": "✏️ changed"}
    table = ["", "| Change | Object | Fields |", "|---|---|---|"]
    table += [
        f"| {icons[r.status]} | `{_md(r.ref)}` | {len(r.changes) if r.changes else ''} |" for r in d.resources
    ]
    budget = limit - 400  # room for the truncation note
    text = "\n".join(parts)
    shown_rows = 0
    for row in table:
        if len(text) + len(row) + 1 > budget // 2:
            break
        text += row + "\n"
        shown_rows += 1
    omitted_rows = len(table) - shown_rows
    text += "\n"
    omitted = 0
    for r in d.of("changed"):
        body = "\n".join(line[4:] for line in r.text_lines()[1:]).replace("```", "'''")
        block = (
            f"<details><summary><code>{_html(r.ref)}</code>: {len(r.changes)} field(s)</summary>\n\n"
            f"```\n{body}\n```\n\n</details>\n\n"
        )
        if omitted or len(text) + len(block) > budget:
            omitted += 1
            continue
        text += block
    if omitted or omitted_rows:
        text += (
            f"\n_Output truncated to stay under {limit:,} characters "
            f"({omitted_rows} table rows and {omitted} detail blocks not shown); run "
            f"`platform diff --stack {d.stack} --base {_md(d.base)}` for everything._\n"
        )
    return text


def _md(text: str) -> str:
    return text.replace("`", "'").replace("|", "\\|")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
