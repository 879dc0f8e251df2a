"""Build a scaffold plan (create / identical / conflict) and prove the resulting platform valid.

Nothing here writes to the repository: the would-be platform is checked by :func:`infra.spec.load_spec`
on an overlay (a scratch folder outside the repo with the existing manifests, the new ``service.yaml``
and the edited stack files).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra import spec
from infra.errors import SpecError, UsageError
from infra.scaffold import stacks as stack_edit
from infra.scaffold.provenance import ANSWERS_FILE, Provenance, question_answers
from infra.scaffold.render import render_files
from infra.scaffold.template import TEMPLATES_DIR, Prompter, Template, load_template, resolve_answers

FileAction = Literal["create", "identical", "conflict"]


@dataclass(frozen=True)
class StackChange:
    """What happens to one stack file: ``add`` an entry, or it is already ``present``."""

    stack: str
    file: Path
    action: Literal["add", "present", "remove", "absent"]
    entry: dict[str, Any]
    old_text: str
    new_text: str
    #: ``platform:quota`` after the change, when it changes (cpu, memory, pods).
    quota: dict[str, str] | None = None


@dataclass
class Plan:
    """Everything ``new-service`` would do; :func:`infra.scaffold.apply.apply_plan` carries it out."""

    root: Path
    name: str
    template: str
    answers: dict[str, Any]
    files: dict[str, bytes]
    actions: dict[str, FileAction] = field(default_factory=dict)
    stacks: list[StackChange] = field(default_factory=list)

    @property
    def service_dir(self) -> Path:
        return self.root / "services" / self.name

    @property
    def unchanged(self) -> bool:
        """True when the service exists exactly as it would be generated and is registered."""
        return all(a == "identical" for a in self.actions.values()) and all(
            s.action == "present" for s in self.stacks
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "template": self.template,
            "status": "unchanged" if self.unchanged else "create",
            "answers": {k: v for k, v in self.answers.items() if not k.startswith("_")},
            "files": [
                {"path": f"services/{self.name}/{path}", "action": action}
                for path, action in sorted(self.actions.items())
            ],
            "stacks": [
                {"stack": s.stack, "file": f"stacks/{s.file.name}", "action": s.action, "entry": s.entry}
                | ({"quota": s.quota} if s.quota else {})
                for s in self.stacks
            ],
        }


def template_version(root: Path, template: str) -> str:
    """Git commit of the last change to ``service_templates/<template>``; ``unknown`` outside git."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", f"{TEMPLATES_DIR}/{template}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else "unknown"


def provenance_of(tmpl: Template, answers: dict[str, Any]) -> Provenance:
    """The provenance a rendering with *answers* records (template name, commit, asked questions)."""
    return Provenance(
        tmpl.name, answers["template_commit"], question_answers(answers, list(tmpl.spec.questions))
    )


def choose_stacks(root: Path, wanted: list[str] | None) -> list[str]:
    """The stacks to register in: all by default; an unknown name is a UsageError."""
    known = spec.available_stacks(root)
    if not known:
        raise UsageError(f"no stack files in {root / 'stacks'}", hint="run the command inside the repository")
    if not wanted:
        return known
    for stack in wanted:
        if stack not in known:
            raise UsageError(f"unknown stack '{stack}'", hint=f"use one of: {', '.join(known)} (-s/--stack)")
    return list(dict.fromkeys(wanted))


def build_plan(
    root: Path,
    given: dict[str, Any],
    *,
    template: str = "fastapi",
    stacks: list[str] | None = None,
    prompter: Prompter | None = None,
) -> Plan:
    """Resolve answers, render in memory, compare with the repo and validate the resulting spec."""
    tmpl = load_template(template, root)
    chosen = choose_stacks(root, stacks)
    texts = {s: stack_edit.load_text(spec.stack_file(root, s)) for s in spec.available_stacks(root)}
    answers = resolve_answers(tmpl, given, prompter)
    name = answers["name"]
    answers["template_name"] = template
    answers["template_commit"] = template_version(root, template)
    files = render_files(tmpl, answers)
    files[ANSWERS_FILE] = provenance_of(tmpl, answers).dump(name)
    plan = Plan(root=root, name=name, template=template, answers=answers, files=files)
    manifest = spec.ServiceManifest.model_validate(stack_edit.plain_yaml(files["service.yaml"].decode()))
    registered = {s: stack_edit.registered(spec.stack_file(root, s), t) for s, t in texts.items()}
    _compare_files(plan, registered, chosen)
    for stack in chosen:
        file = spec.stack_file(root, stack)
        text = texts[stack]
        if name in registered[stack]:
            plan.stacks.append(StackChange(stack, file, "present", dict(registered[stack][name]), text, text))
        else:
            entry = stack_edit.default_entry(file, text, tmpl.spec.stack_entries)
            need = stack_edit.QuotaNeed.of(manifest, entry)
            new_text, quota = stack_edit.register(file, text, name, entry, need)
            plan.stacks.append(StackChange(stack, file, "add", entry, text, new_text, quota))
    if not plan.unchanged:
        _precheck(root, plan)
        new_texts = {s.stack: s.new_text for s in plan.stacks}
        validate_overlay(
            root, {s: new_texts.get(s, t) for s, t in texts.items()}, add={name: files["service.yaml"]}
        )
    return plan


def _compare_files(plan: Plan, registered: dict[str, dict[str, Any]], chosen: list[str]) -> None:
    folder = plan.service_dir
    rel = f"services/{plan.name}"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{rel} exists and is not a folder", hint="move it away or choose another name")
    for path, data in plan.files.items():
        target = folder / path
        if not target.exists():
            plan.actions[path] = "create"
        elif target.is_file() and target.read_bytes() == data:
            plan.actions[path] = "identical"
        else:
            plan.actions[path] = "conflict"
    if not folder.exists():
        return
    if not any(plan.name in entries for entries in registered.values()):
        raise UsageError(
            f"{rel} exists but is not registered in any stack",
            hint=f"an earlier run was interrupted or the folder was added by hand: delete {rel}, or add "
            f"'{plan.name}: {{replicas: 1}}' under platform:services in stacks/Pulumi.<stack>.yaml",
        )
    changed = sorted(p for p, a in plan.actions.items() if a != "identical")
    missing = [s for s in chosen if plan.name not in registered[s]]
    if missing and not changed:
        files = ", ".join(f"stacks/Pulumi.{s}.yaml" for s in missing)
        raise UsageError(
            f"{rel} exists but is not registered in {', '.join(missing)}",
            hint=f"add '{plan.name}: {{replicas: 1}}' under platform:services in {files}, "
            f"or remove the service: `platform services remove {plan.name} --delete`",
        )
    if changed:
        raise UsageError(
            f"service '{plan.name}' already exists ({rel}: {len(changed)} file(s) differ from the template, "
            f"e.g. {changed[0]})",
            hint=f"choose another name, or remove it first: `platform services remove {plan.name} --delete`",
        )


def _precheck(root: Path, plan: Plan) -> None:
    """Clear flag-level messages for the common clashes (load_spec on the overlay is the backstop)."""
    route = plan.answers["route"]
    for file in sorted((root / "services").glob("*/service.yaml")):
        if file.parent.name == plan.name:
            continue
        data = stack_edit.plain_yaml(file.read_text(encoding="utf-8"))  # validated by the overlay later
        other = data.get("route") if isinstance(data, dict) else None
        if isinstance(other, str) and spec._routes_overlap(route, other):
            verb = "duplicates" if route == other else "overlaps"
            raise UsageError(
                f"--route '{route}' {verb} '{other}' of {file.parent.name}",
                hint="give each service its own route prefix, e.g. /api/<resource>",
            )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def validate_overlay(
    root: Path,
    stack_texts: dict[str, str],
    *,
    add: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
) -> None:
    """Run :func:`infra.spec.load_spec` for every stack on an overlay of the repo; raise its SpecError.

    *add* maps new service names to their ``service.yaml`` bytes; *drop* removes services. Paths in the
    error are reported relative to the repository, as if the change had been made.
    """
    overlay = Path(tempfile.mkdtemp(prefix="platform-overlay-"))
    try:
        (overlay / "services").mkdir()
        (overlay / "stacks").mkdir()
        for file in (root / "services").glob("*/service.yaml"):
            name = file.parent.name
            if name in drop or name in (add or {}):
                continue
            (overlay / "services" / name).mkdir()
            (overlay / "services" / name / "service.yaml").symlink_to(file.resolve())
        for folder in spec.WEB_APP_DIRS:
            if (root / folder / "service.yaml").is_file():
                (overlay / folder).mkdir()
                (overlay / folder / "service.yaml").symlink_to((root / folder / "service.yaml").resolve())
        for name, data in (add or {}).items():
            (overlay / "services" / name).mkdir()
            (overlay / "services" / name / "service.yaml").write_bytes(data)
        for stack, text in stack_texts.items():
            (overlay / "stacks" / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8")
        for stack in stack_texts:
            try:
                spec.load_spec(stack, overlay)
            except SpecError as exc:
                raise SpecError(
                    _unoverlay(exc.message, overlay), hint=_unoverlay(exc.hint, overlay), field=exc.field
                ) from None
    finally:
        shutil.rmtree(overlay, ignore_errors=True)


def _unoverlay(text: str, overlay: Path) -> str:
    prefixes = [str(overlay), str(overlay.resolve())]
    with contextlib.suppress(ValueError):
        prefixes.append(str(overlay.resolve().relative_to(Path.cwd().resolve())))
    for prefix in prefixes:
        text = text.replace(prefix + "/", "")
    return text
