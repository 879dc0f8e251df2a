"""``platform diff``: what a change does to a stack's Kubernetes objects.

The stack is rendered twice, concurrently, each in its own Python process running *that tree's* code:
the base ref (exported with ``git archive`` into a temp dir) and the working tree. The manifests are
then compared object by object; list items that have a ``name`` are matched by name, so a change
reads ``spec.template.spec.containers[name=app].resources.limits.memory: 256Mi -> 512Mi``.

Secret values never appear: the offline engine redacts them, and this module masks every Secret
``data``/``stringData`` value again before comparing (defence in depth against a base tree whose
renderer did not redact).
"""

from __future__ import annotations

import difflib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.check.k8s import Manifest, key_ref, kind, name, namespace
from infra.errors import PlatformError, ToolMissingError, UsageError

MASK = "<redacted>"
MARKDOWN_LIMIT = 60_000
MAX_TEXT_DIFF_LINES = 60
WORKING_TREE = "working tree"

#: Runs in the rendered tree (cwd first on sys.path, so its own ``infra`` is imported); writes
#: ``{"manifests": [...]}`` or ``{"error", "hint"}`` to the file named by argv[2].
_WORKER = """
import json, sys
from pathlib import Path
stack, out = sys.argv[1], Path(sys.argv[2])
# An editable install maps `infra` to the checkout it was installed from; drop that finder so a
# module missing from this tree fails instead of silently coming from another checkout.
for finder in list(sys.meta_path):
    mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
    if isinstance(mapping, dict) and "infra" in mapping:
        sys.meta_path.remove(finder)
try:
    from infra.offline import render_stack
except ImportError as exc:
    out.write_text(json.dumps({"error": f"this tree has no offline renderer ({exc})",
        "hint": "pick a base ref that contains infra/offline.py"}))
    sys.exit(3)
from infra.errors import PlatformError
try:
    manifests = render_stack(stack, Path.cwd())
except PlatformError as exc:
    out.write_text(json.dumps({"error": exc.message, "hint": exc.hint}))
    sys.exit(3)
out.write_text(json.dumps({"manifests": manifests}))
# Skip the interpreter's final full collection over Pulumi's many objects (~0.4 s): nothing is left
# to clean up that the OS would not reclaim.
import gc
gc.freeze()
"""


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


def export_tree(root: Path, ref: str, dest: Path) -> str:
    """Extract the checkout at *ref* (the folder of *root* within its repo) into *dest*; the commit."""
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
    commit = resolved.stdout.decode().strip()
    prefix = inside.stdout.decode().strip().rstrip("/")
    archive = _git(root, "archive", "--format=tar", f"{commit}:{prefix}" if prefix else commit)
    if archive.returncode != 0:
        raise UsageError(
            f"cannot export '{ref}': {archive.stderr.decode().strip()[:300]}",
            hint="check that the ref contains this project",
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return commit


def _start_render(tree: Path, stack: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, stack, str(out)],
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _collect(process: subprocess.Popen[bytes], out: Path, label: str) -> list[Manifest]:
    _, stderr = process.communicate()
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise PlatformError(
            f"rendering the {label} failed (exit {process.returncode}): {tail[0][:300]}",
            hint="render it alone with `platform render` to see the full error",
        ) from None
    if "error" in data:
        error_class = UsageError if label != WORKING_TREE else PlatformError
        raise error_class(f"{label}: {data['error']}", hint=data.get("hint", ""))
    return list(data["manifests"])


def render_both(root: Path, ref: str, stack: str) -> tuple[list[Manifest], list[Manifest]]:
    """Render the stack at *ref* and in the working tree, concurrently; (base, head) manifests."""
    with tempfile.TemporaryDirectory(prefix="platform-diff-") as tmp:
        base_tree, outputs = Path(tmp) / "base", Path(tmp)
        base_tree.mkdir()
        export_tree(root, ref, base_tree)
        jobs = [
            (f"base '{ref}'", _start_render(base_tree, stack, outputs / "base.json"), outputs / "base.json"),
            (WORKING_TREE, _start_render(root, stack, outputs / "head.json"), outputs / "head.json"),
        ]
        rendered: list[list[Manifest]] = []
        errors: list[PlatformError] = []
        for label, process, out in jobs:  # always reap both processes
            try:
                rendered.append(_collect(process, out, label))
            except PlatformError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
    old, new = rendered
    return old, new


def diff_stack(stack: str, root: Path, base: str) -> StackDiff:
    """Render *stack* at *base* and in the working tree, and compare them."""
    old, new = render_both(root, base, stack)
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
