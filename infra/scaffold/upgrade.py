"""Plan ``platform upgrade-service``: a three-way merge of template changes into a generated service.

base   = the template at the recorded commit, rendered with the recorded answers;
theirs = the template at the target revision (default: the working tree's), same answers + changes;
ours   = the service's files as they are.

Per file: unchanged by the user -> theirs (update); changed on both sides -> line merge (merge, or
conflict with inline markers); added by the template -> create; deleted by the template and untouched
-> delete; deleted by the user -> stays deleted (keep). Alembic revisions the service has are never
rewritten; new template revisions are chained after the service's head (:mod:`.migrations`). The
manifest merges key by key (:func:`infra.scaffold.merge.merge_yaml`). Nothing here writes to the repo.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra import spec
from infra.errors import PlatformError, UsageError
from infra.scaffold import history, migrations
from infra.scaffold import stacks as stack_edit
from infra.scaffold.merge import has_markers, merge_text, merge_yaml
from infra.scaffold.plan import StackChange, provenance_of, validate_overlay
from infra.scaffold.provenance import ANSWERS_FILE, HAND_WRITTEN, load
from infra.scaffold.render import render_files
from infra.scaffold.template import Template, load_template, resolve_answers

Action = Literal["update", "merge", "conflict", "create", "delete", "keep"]
WRITES = ("update", "merge", "conflict", "create", "delete")
MANIFEST = "service.yaml"


@dataclass(frozen=True)
class FileChange:
    """One file of the plan; *data* is what gets written (None for delete/keep)."""

    path: str
    action: Action
    data: bytes | None = None
    note: str = ""


@dataclass
class UpgradePlan:
    """Everything ``upgrade-service`` would do to one service."""

    root: Path
    name: str
    template: str
    old_commit: str
    new_commit: str
    answers: dict[str, Any]
    changed_answers: dict[str, tuple[Any, Any]]
    files: list[FileChange] = field(default_factory=list)
    stacks: list[StackChange] = field(default_factory=list)
    #: files that still hold conflict markers from an earlier upgrade
    unresolved: list[str] = field(default_factory=list)
    #: stack -> keys where the template changed the default entry and the stack's entry differs (kept)
    stack_keeps: dict[str, list[str]] = field(default_factory=dict)
    #: things the user should know that do not stop the upgrade
    warnings: list[str] = field(default_factory=list)

    @property
    def service_dir(self) -> Path:
        return self.root / "services" / self.name

    @property
    def writes(self) -> list[FileChange]:
        return [f for f in self.files if f.action in WRITES]

    @property
    def up_to_date(self) -> bool:
        return not self.writes and not self.stacks

    @property
    def conflicts(self) -> list[str]:
        return [f.path for f in self.files if f.action == "conflict"]

    def touches_events(self) -> bool:
        """Could docs/events.md change? (an events.py, or the manifest's needs.rabbitmq)"""
        if any(f.path.endswith("events.py") for f in self.writes):
            return True
        change = next((f for f in self.writes if f.path == MANIFEST and f.data is not None), None)
        if change is None:
            return False
        old = stack_edit.plain_yaml((self.service_dir / MANIFEST).read_text(encoding="utf-8")) or {}
        try:
            new = stack_edit.plain_yaml(change.data.decode()) or {}
        except Exception:  # conflict markers: cannot tell, regenerate
            return True
        return (old.get("needs") or {}).get("rabbitmq") != (new.get("needs") or {}).get("rabbitmq")

    def touched(self) -> list[str]:
        """Repository paths the upgrade writes (they must be clean in git)."""
        paths = [f"services/{self.name}/{f.path}" for f in self.writes]
        return paths + [f"stacks/{s.file.name}" for s in self.stacks]

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "template": self.template,
            "from": self.old_commit,
            "to": self.new_commit,
            "changed_answers": {k: {"old": o, "new": n} for k, (o, n) in self.changed_answers.items()},
            "files": [
                {"path": f"services/{self.name}/{f.path}", "action": f.action, "note": f.note}
                for f in self.files
            ],
            "stacks": [
                {"stack": s.stack, "file": f"stacks/{s.file.name}", "action": "update", "entry": s.entry}
                for s in self.stacks
            ]
            + [
                {"stack": stack, "file": f"stacks/Pulumi.{stack}.yaml", "action": "keep", "keys": keys}
                for stack, keys in sorted(self.stack_keeps.items())
            ],
            "conflicts": [f"services/{self.name}/{p}" for p in self.conflicts],
            "unresolved": [f"services/{self.name}/{p}" for p in self.unresolved],
        }


def generated_services(root: Path) -> list[str]:
    """Services with provenance (not written by hand), sorted."""
    return sorted(
        f.parent.name
        for f in (root / "services").glob(f"*/{ANSWERS_FILE}")
        if (f.parent / MANIFEST).is_file()
    )


def parse_answers(items: list[str]) -> dict[str, str]:
    """``--answer key=value`` flags as a dict (UsageError on a malformed one or a rename)."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--answer '{item}' is not KEY=VALUE", hint="e.g. --answer redis=true")
        if key == "name":
            raise UsageError(
                "--answer name=...: an upgrade cannot rename a service",
                hint="create the new service with new-service and move your code over",
            )
        result[key] = value
    return result


def build_upgrade(
    root: Path, name: str, *, to: str | None = None, answers: dict[str, str] | None = None
) -> UpgradePlan:
    """Render base and theirs, read ours, and classify every file (see the module docstring)."""
    service_dir = root / "services" / name
    if "/" in name or name.startswith(".") or not (service_dir / MANIFEST).is_file():
        known = ", ".join(generated_services(root)) or "none"
        raise UsageError(f"no service called '{name}'", hint=f"generated services: {known}")
    manifest = spec.load_manifest(service_dir / MANIFEST)
    if manifest.template.version == HAND_WRITTEN:
        raise UsageError(
            f"services/{name} was written by hand (template version: {HAND_WRITTEN}), not generated; "
            "there is no template base to merge from",
            hint="port template changes by hand (git log -p service_templates/"
            f"{manifest.template.name}), or list upgradable services with `platform services list`",
        )
    prov = load(service_dir)
    scratch = Path(tempfile.mkdtemp(prefix="platform-upgrade-"))
    try:
        base_tmpl = history.template_at(root, prov.template, prov.commit, scratch / "base")
        base_answers = _replay(base_tmpl, prov.answers, name)
        base_answers.update(template_name=prov.template, template_commit=prov.commit)
        new_tmpl, new_commit = _target(root, prov.template, to, scratch / "theirs")
        overrides = answers or {}
        new_answers = resolve_answers(new_tmpl, overrides, recorded=prov.answers)
        new_answers.update(template_name=prov.template, template_commit=new_commit)
        base = render_files(base_tmpl, base_answers)
        theirs = render_files(new_tmpl, new_answers)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    recorded = provenance_of(new_tmpl, new_answers)
    old_q = prov.answers
    changed = {k: (old_q.get(k), v) for k, v in recorded.answers.items() if old_q.get(k) != v} | {
        k: (v, None) for k, v in old_q.items() if k not in recorded.answers
    }
    plan = UpgradePlan(root, name, prov.template, prov.commit, new_commit, recorded.answers, changed)
    _classify(plan, base, theirs, prov.commit)
    if to is None and history.dirty(root, [f"service_templates/{prov.template}"]):
        plan.warnings.append(
            f"service_templates/{prov.template} has uncommitted changes: they are merged in, but the "
            f"provenance names {new_commit[:12]}; commit the template so later upgrades replay it exactly"
        )
    _stack_entries(plan, base_tmpl, new_tmpl)
    answers_data = recorded.dump(name)
    current = service_dir / ANSWERS_FILE
    if not current.is_file() or current.read_bytes() != answers_data:
        plan.files.append(FileChange(ANSWERS_FILE, "update", answers_data, "provenance"))
    _validate(plan)
    return plan


def _replay(template: Template, recorded: dict[str, Any], name: str) -> dict[str, Any]:
    """Recorded answers through new-service's rules; bad ones name the answers file (exit 2)."""
    try:
        return resolve_answers(template, {}, recorded=recorded)
    except UsageError as exc:
        raise UsageError(f"services/{name}/{ANSWERS_FILE}: {exc.message}", hint=exc.hint) from None


def _target(root: Path, template: str, to: str | None, scratch: Path) -> tuple[Template, str]:
    if to is None:
        commit = history.template_commit(root, template)
        if commit is None:
            raise UsageError(
                f"service_templates/{template} has no git history here",
                hint="commit the template, or run inside the platform's git checkout",
            )
        return load_template(template, root), commit
    rev = history.resolve(root, to)
    commit = history.template_commit(root, template, rev)
    if commit is None:
        raise UsageError(f"--to {to}: template '{template}' does not exist there", hint="see git log")
    return history.template_at(root, template, commit, scratch), commit


def _read(folder: Path, paths: set[str]) -> dict[str, bytes]:
    return {p: (folder / p).read_bytes() for p in paths if (folder / p).is_file()}


def _classify(plan: UpgradePlan, base: dict[str, bytes], theirs: dict[str, bytes], old: str) -> None:
    ours = _read(plan.service_dir, set(base) | set(theirs))
    plan.unresolved = sorted(p for p, data in ours.items() if has_markers(data))
    new_revisions: dict[str, bytes] = {}
    for path in sorted(set(base) | set(theirs)):
        b, t, o = base.get(path), theirs.get(path), ours.get(path)
        label = f"services/{plan.name}/{path}"
        if b == t:
            continue  # the template did not change it: whatever the user did stands
        if b is None and t is not None and migrations.is_revision(path):
            if o is None or o != t:
                new_revisions[path] = t
        elif t is None:  # deleted by the template (or never in theirs)
            if o is None or b is None:
                continue
            if o == b:
                plan.files.append(FileChange(path, "delete"))
            else:
                plan.files.append(FileChange(path, "keep", note="the template deleted it; you changed it"))
        elif o is None:
            if b is None:
                plan.files.append(FileChange(path, "create", t))
            else:
                plan.files.append(FileChange(path, "keep", note="deleted by you: stays deleted"))
        elif o == t:
            continue  # the user already has the template's new version
        elif migrations.is_revision(path):
            plan.files.append(
                FileChange(path, "keep", note="existing Alembic revision: never rewritten by an upgrade")
            )
        elif o == b:
            plan.files.append(FileChange(path, "update", t))
        else:
            merge = merge_yaml if path == MANIFEST else merge_text
            data, clean = merge(b or b"", o, t, label)
            plan.files.append(FileChange(path, "merge" if clean else "conflict", data))
    if new_revisions:
        ours_revs = {p: d for p, d in ours.items() if migrations.is_revision(p)}
        folder = plan.service_dir / "migrations" / "versions"
        if folder.is_dir():
            for file in folder.glob("*.py"):
                ours_revs.setdefault(f"{migrations.VERSIONS}{file.name}", file.read_bytes())
        base_revs = {
            r for r, _ in (migrations.ids(d) for p, d in base.items() if migrations.is_revision(p)) if r
        }
        placed = migrations.place_new(new_revisions, base_revs, ours_revs, old[:8])
        for _, (final, data) in sorted(placed.items()):
            plan.files.append(FileChange(final, "create", data, note="new Alembic revision"))
    plan.files.sort(key=lambda f: f.path)


def _stack_entries(plan: UpgradePlan, base: Template, theirs: Template) -> None:
    """Each stack's entry: the template's default-entry change merged in key by key; and the stack's
    ``platform:quota`` moved by what the upgraded service's rollout needs beyond the old one's."""
    old_manifest = spec.load_manifest(plan.service_dir / MANIFEST)
    new_manifest = _new_manifest(plan, old_manifest)
    for stack in spec.available_stacks(plan.root):
        file = spec.stack_file(plan.root, stack)
        text = stack_edit.load_text(file)
        entries = stack_edit.registered(file, text)
        if plan.name not in entries:
            continue
        new_text = text
        old = stack_edit.default_entry(file, text, base.spec.stack_entries)
        new = stack_edit.default_entry(file, text, theirs.spec.stack_entries)
        if old != new:
            new_text, clashes = stack_edit.merge_entry(file, text, plan.name, old, new)
            if clashes:
                plan.stack_keeps[stack] = clashes
        entry = stack_edit.registered(file, new_text)[plan.name]
        if new_manifest is not None:
            need_old = stack_edit.QuotaNeed.of(old_manifest, entries[plan.name] or {})
            need_new = stack_edit.QuotaNeed.of(new_manifest, entry or {})
            if need_old != need_new:
                new_text, _ = stack_edit.change_quota(file, new_text, need_old, -1)
                new_text, _ = stack_edit.change_quota(file, new_text, need_new, +1)
        if new_text != text:
            plan.stacks.append(StackChange(stack, file, "update", dict(entry or {}), text, new_text))


def _new_manifest(plan: UpgradePlan, current: Any) -> Any:
    """The upgraded manifest (None while it has conflicts: the quota is then left alone)."""
    change = next((f for f in plan.writes if f.path == MANIFEST), None)
    if change is None:
        return current
    if change.action == "conflict" or change.data is None:
        return None
    try:
        return spec.ServiceManifest.model_validate(stack_edit.plain_yaml(change.data.decode()))
    except ValueError:
        return None  # _validate reports it


def _validate(plan: UpgradePlan) -> None:
    """The upgraded platform must load for every stack (skipped while the manifest has conflicts)."""
    change = next((f for f in plan.writes if f.path == MANIFEST), None)
    if change is not None and change.action == "conflict":
        return
    if change is None and not plan.stacks:
        return
    texts = {s: stack_edit.load_text(spec.stack_file(plan.root, s)) for s in spec.available_stacks(plan.root)}
    texts.update({s.stack: s.new_text for s in plan.stacks})
    add = {plan.name: change.data} if change is not None and change.data is not None else None
    try:
        validate_overlay(plan.root, texts, add=add)
    except PlatformError as exc:
        raise UsageError(
            f"the upgraded services/{plan.name}/{MANIFEST} would be invalid: {exc.message}", hint=exc.hint
        ) from None
