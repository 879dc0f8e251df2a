"""The services of a checkout as the stacks see them: list them, and plan their removal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import spec
from infra.errors import UsageError
from infra.scaffold import stacks as stack_edit
from infra.scaffold.history import template_commit
from infra.scaffold.plan import StackChange, validate_overlay
from infra.scaffold.provenance import HAND_WRITTEN


def _stack_entries(root: Path) -> dict[str, tuple[Path, str, dict[str, Any]]]:
    result = {}
    for stack in spec.available_stacks(root):
        file = spec.stack_file(root, stack)
        text = stack_edit.load_text(file)
        result[stack] = (file, text, stack_edit.registered(file, text))
    return result


def list_services(root: Path) -> list[dict[str, Any]]:
    """One row per service folder (and per stack entry without a folder), sorted by name."""
    entries = _stack_entries(root)
    rows: dict[str, dict[str, Any]] = {}
    heads: dict[str, str | None] = {}
    for file in sorted((root / "services").glob("*/service.yaml")):
        m = spec.load_manifest(file)
        rabbit = m.needs.rabbitmq
        stacks = [s for s, (_, _, reg) in entries.items() if m.name in reg]
        rows[m.name] = {
            "name": m.name,
            "kind": "service",
            "route": m.route,
            "port": m.port,
            "postgres": m.needs.postgres.database if m.needs.postgres else None,
            "redis": m.needs.redis is not None,
            "publishes": list(rabbit.publishes) if rabbit else [],
            "consumes": list(rabbit.consumes) if rabbit else [],
            "template": f"{m.template.name}@{m.template.version[:12]}",
            **_template_state(root, m.template.name, m.template.version, heads),
            "stacks": stacks,
            "status": "ok" if stacks else "not registered",
        }
    for folder in spec.WEB_APP_DIRS:
        file = root / folder / "service.yaml"
        if not file.is_file():
            continue
        web = spec.load_web_manifest(file)
        stacks = [s for s, (_, _, reg) in entries.items() if web.name in reg]
        rows[web.name] = {
            "name": web.name,
            "kind": "web",
            "route": "/",
            "port": web.port,
            "postgres": None,
            "redis": False,
            "publishes": [],
            "consumes": [],
            "template": f"web@{folder}",
            "stacks": stacks,
            "status": "ok" if stacks else "not registered",
        }
    for stack, (_, _, reg) in entries.items():
        for name in reg:
            if name not in rows:
                rows[name] = {
                    "name": name,
                    "kind": "",
                    "route": "",
                    "port": None,
                    "postgres": None,
                    "redis": False,
                    "publishes": [],
                    "consumes": [],
                    "template": "",
                    "stacks": [],
                    "status": "no folder",
                    "template_revision": None,
                    "template_moved_on": None,
                }
            if rows[name]["status"] == "no folder":
                rows[name]["stacks"].append(stack)
    return [rows[n] for n in sorted(rows)]


def _template_state(root: Path, template: str, version: str, heads: dict[str, str | None]) -> dict[str, Any]:
    """The recorded template revision and whether the template has had commits since (None: unknown)."""
    if version == HAND_WRITTEN:
        return {"template_revision": HAND_WRITTEN, "template_moved_on": None}
    if template not in heads:
        heads[template] = template_commit(root, template)
    head = heads[template]
    return {"template_revision": version, "template_moved_on": None if head is None else head != version}


def _template_cell(row: dict[str, Any]) -> str:
    revision = row.get("template_revision")
    if revision is None:
        return "-"
    if revision == HAND_WRITTEN:
        return "hand-written"
    moved = " (template moved on)" if row["template_moved_on"] else ""
    return f"{row['template']}{moved}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain aligned columns (no colour, stable for diffs and grep)."""
    header = ("NAME", "ROUTE", "PORT", "NEEDS", "EVENTS", "STACKS", "TEMPLATE", "STATUS")
    lines = [header]
    for r in rows:
        needs = ",".join(
            n
            for n, on in (
                ("postgres", r["postgres"]),
                ("redis", r["redis"]),
                ("rabbitmq", r["publishes"] or r["consumes"]),
            )
            if on
        )
        events = " ".join([f"+{e}" for e in r["publishes"]] + [f"<{e}" for e in r["consumes"]])
        lines.append(
            (
                r["name"],
                r["route"],
                str(r["port"] or ""),
                needs or "-",
                events or "-",
                ",".join(r["stacks"]) or "-",
                _template_cell(r),
                r["status"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


@dataclass
class RemovalPlan:
    """What ``services remove`` would do."""

    root: Path
    name: str
    changes: list[StackChange]
    folder_exists: bool

    def to_json(self, delete_folder: bool) -> dict[str, Any]:
        return {
            "service": self.name,
            "stacks": [
                {"stack": c.stack, "file": f"stacks/{c.file.name}", "action": c.action}
                | ({"quota": c.quota} if c.quota else {})
                for c in self.changes
            ],
            "folder": f"services/{self.name}",
            "delete_folder": delete_folder and self.folder_exists,
        }


def plan_removal(root: Path, name: str) -> RemovalPlan:
    """Check *name* can go (no consumer left without a publisher) and compute the stack edits."""
    folder = root / "services" / name
    entries = _stack_entries(root)
    registered_in = [s for s, (_, _, reg) in entries.items() if name in reg]
    exists = (folder / "service.yaml").is_file()
    if "/" in name or name.startswith(".") or (not exists and not registered_in):
        known = ", ".join(r["name"] for r in list_services(root)) or "none"
        raise UsageError(f"no service called '{name}'", hint=f"known services: {known}")
    if exists:
        _check_consumers(root, name)
    manifest = spec.load_manifest(folder / "service.yaml") if exists else None
    changes = []
    for stack, (file, text, reg) in entries.items():
        if name in reg:
            # give back what new-service added to the quota (the same rounded need)
            need = stack_edit.QuotaNeed.of(manifest, dict(reg[name] or {})) if manifest is not None else None
            new_text, quota = stack_edit.unregister(file, text, name, need)
            changes.append(StackChange(stack, file, "remove", dict(reg[name]), text, new_text, quota))
    return RemovalPlan(root, name, changes, exists)


def _check_consumers(root: Path, name: str) -> None:
    """Refuse when a consumer would lose its only publisher - naming every such consumer at once."""
    manifests = [spec.load_manifest(f) for f in sorted((root / "services").glob("*/service.yaml"))]
    publishers: dict[str, set[str]] = {}
    for m in manifests:
        for event in m.needs.rabbitmq.publishes if m.needs.rabbitmq else []:
            publishers.setdefault(event, set()).add(m.name)
    blockers: list[tuple[str, str]] = []
    for m in manifests:
        if m.name == name or not m.needs.rabbitmq:
            continue
        orphaned = [e for e in m.needs.rabbitmq.consumes if publishers.get(e) == {name}]
        if orphaned:
            blockers.append((m.name, ", ".join(f"'{e}'" for e in orphaned)))
    if blockers:
        raise UsageError(
            f"cannot remove '{name}': "
            + "; ".join(f"{consumer} consumes {events}" for consumer, events in blockers)
            + f", which only {name} publishes",
            hint="first drop them from needs.rabbitmq.consumes in "
            + ", ".join(f"services/{consumer}/service.yaml ({events})" for consumer, events in blockers),
        )


def uncommitted_files(root: Path, name: str) -> list[str]:
    """Files under ``services/<name>`` that git does not have as committed (new, changed, ignored
    files excluded); empty outside a git checkout."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=all", "--", f"services/{name}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return sorted(entry[3:] for entry in out.stdout.split("\0") if len(entry) > 3 and entry[2] == " ")


def validate_removal(plan: RemovalPlan, delete_folder: bool) -> None:
    """The platform after the removal must still load for every stack."""
    texts = {s: t for s, (_, t, _) in _stack_entries(plan.root).items()}
    texts.update({c.stack: c.new_text for c in plan.changes})
    validate_overlay(plan.root, texts, drop=(plan.name,) if delete_folder else ())
