"""The services of a checkout as the stacks see them: list them, and plan their removal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import spec
from infra.errors import UsageError
from infra.scaffold import stacks as stack_edit
from infra.scaffold.plan import StackChange, validate_overlay


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
                }
            if rows[name]["status"] == "no folder":
                rows[name]["stacks"].append(stack)
    return [rows[n] for n in sorted(rows)]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain aligned columns (no colour, stable for diffs and grep)."""
    header = ("NAME", "ROUTE", "PORT", "NEEDS", "EVENTS", "STACKS", "STATUS")
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
                {"stack": c.stack, "file": f"stacks/{c.file.name}", "action": c.action} for c in self.changes
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
    changes = []
    for stack, (file, text, reg) in entries.items():
        if name in reg:
            changes.append(
                StackChange(
                    stack, file, "remove", dict(reg[name]), text, stack_edit.remove_service(file, text, name)
                )
            )
    return RemovalPlan(root, name, changes, exists)


def _check_consumers(root: Path, name: str) -> None:
    manifests = [spec.load_manifest(f) for f in sorted((root / "services").glob("*/service.yaml"))]
    publishers: dict[str, set[str]] = {}
    for m in manifests:
        for event in m.needs.rabbitmq.publishes if m.needs.rabbitmq else []:
            publishers.setdefault(event, set()).add(m.name)
    for m in manifests:
        if m.name == name or not m.needs.rabbitmq:
            continue
        orphaned = [e for e in m.needs.rabbitmq.consumes if publishers.get(e) == {name}]
        if orphaned:
            events = ", ".join(f"'{e}'" for e in orphaned)
            raise UsageError(
                f"cannot remove '{name}': {m.name} consumes {events}, which only {name} publishes",
                hint=f"drop {events} from needs.rabbitmq.consumes in services/{m.name}/service.yaml first",
            )


def validate_removal(plan: RemovalPlan, delete_folder: bool) -> None:
    """The platform after the removal must still load for every stack."""
    texts = {s: t for s, (_, t, _) in _stack_entries(plan.root).items()}
    texts.update({c.stack: c.new_text for c in plan.changes})
    validate_overlay(plan.root, texts, drop=(plan.name,) if delete_folder else ())
