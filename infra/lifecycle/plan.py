"""The engine's plan for going from one snapshot of a stack to another. Pure: no I/O, no Pulumi.

For every resource: ``create``, ``update``, ``replace`` (``delete_first`` when the provider deletes
before it creates, see :func:`infra.lifecycle.rules.delete_before_replace`) or ``delete``, with the
fields that changed and the one that forces a replacement; every workload whose pods restart is marked
as rolling, with why (which ConfigMap, Secret or image); Secrets are compared by digest, never by
value. Hazards - a data store replaced, a mounted object deleted before it is recreated, a volume claim
change, a boot-time file changed without a restart - lead the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infra.check.k8s import item_ref, key_ref
from infra.lifecycle import rules
from infra.lifecycle.snapshot import Resource, Snapshot

CREATE, UPDATE, REPLACE, DELETE = "create", "update", "replace", "delete"
#: Workload kinds whose pods restart when their pod template changes.
ROLLING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
CHECKSUM_PREFIX = "checksum/"
READ_AT_USE = "read-at-use"
#: Where a pod template lives in a manifest (a changed path under it changes the pods).
TEMPLATE = ("spec", "template")


@dataclass(frozen=True)
class FieldChange:
    """One changed field: its path (keys and list indexes), as text, and the values (None if absent)."""

    path: tuple[str | int, ...]
    text: str
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.text, "old": self.old, "new": self.new}


@dataclass
class Step:
    """What the engine does to one resource."""

    op: str
    ref: str
    kind: str
    name: str
    type: str
    #: Logical (Pulumi) name of the resource.
    resource: str = ""
    changes: list[FieldChange] = field(default_factory=list)
    #: ``path (force-new rule)`` of each change that forces the replacement.
    forced_by: list[str] = field(default_factory=list)
    delete_first: bool = False
    #: Why the workload's pods restart (empty: they do not).
    rolls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def operation(self) -> str:
        """``replace (delete first)`` etc.: what a human reads."""
        if self.op == REPLACE and self.delete_first:
            return "replace (delete first)"
        return self.op

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "operation": self.operation,
            "ref": self.ref,
            "kind": self.kind,
            "name": self.name,
            "type": self.type,
            "delete_first": self.delete_first,
            "forced_by": self.forced_by,
            "rolls": bool(self.rolls),
            "roll_reasons": self.rolls,
            "notes": self.notes,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class Hazard:
    """A change that loses data, availability or configuration unless someone acts."""

    kind: str
    ref: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "message": self.message, "field": self.field}


@dataclass
class Plan:
    """Every step of going from *base* to the working tree, and the hazards among them."""

    stack: str
    base: str
    steps: list[Step]
    unchanged: int
    hazards: list[Hazard] = field(default_factory=list)

    def of(self, op: str) -> list[Step]:
        return [s for s in self.steps if s.op == op]

    @property
    def rolling(self) -> list[Step]:
        return [s for s in self.steps if s.rolls]

    def summary(self) -> str:
        counts = ", ".join(f"{len(self.of(op))} to {op}" for op in (CREATE, UPDATE, REPLACE, DELETE))
        return f"{counts}, {len(self.rolling)} rolling, {self.unchanged} unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "base": self.base,
            "rules": rules.PROVIDER_VERSIONS,
            "summary": self.summary(),
            "unchanged": self.unchanged,
            "hazards": [h.to_dict() for h in self.hazards],
            "steps": [s.to_dict() for s in self.steps],
        }


# ---------------------------------------------------------------- comparing


def _text(path: tuple[str | int, ...], doc: Any) -> str:
    """``spec.template.spec.containers[name=app].image``: named list items by name."""
    out, node = "", doc
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            out += item_ref(item, part)
            node = item
        else:
            out += key_ref(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return out.lstrip(".")


def _walk(
    old: Any, new: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Any, Any]]:
    """(path, old, new) of every leaf that differs; lists compared index by index (as the provider's
    JSON merge patch does)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in new:
                yield (*path, key), old[key], None
            elif key not in old:
                yield (*path, key), None, new[key]
            else:
                yield from _walk(old[key], new[key], (*path, key))
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            if i >= len(new):
                yield (*path, i), old[i], None
            elif i >= len(old):
                yield (*path, i), None, new[i]
            else:
                yield from _walk(old[i], new[i], (*path, i))
    elif old != new or type(old) is not type(new):
        yield path, old, new


def field_changes(old: Any, new: Any) -> list[FieldChange]:
    """Field-level changes from *old* to *new*."""
    return [
        FieldChange(path, _text(path, new if n is not None else old), o, n)
        for path, o, n in _walk(old, new, ())
    ]


def _short_digest(digest: str | None) -> str:
    return (digest or "unknown")[:12]


def _resource_changes(old: Resource, new: Resource) -> list[FieldChange]:
    """Changes of one resource: its manifest (Secret values compared by digest) or its inputs."""
    if new.manifest is not None and old.manifest is not None:
        changes = field_changes(old.manifest, new.manifest)
        if new.kind == "Secret" and old.digest and new.digest and old.digest != new.digest:
            key = "stringData" if "stringData" in new.manifest else "data"
            changes.append(
                FieldChange(
                    (key,),
                    f"{key} (content digest)",
                    _short_digest(old.digest),
                    _short_digest(new.digest),
                )
            )
        return changes
    return field_changes(old.inputs or {}, new.inputs or {})


# ---------------------------------------------------------------- planning


def _step(base: Snapshot, head: Snapshot, old: Resource | None, new: Resource | None) -> Step | None:
    res = new or old
    assert res is not None
    step = Step("", res.ref, res.kind, res.object_name or res.name, res.type, res.name)
    if old is None:
        step.op = CREATE
        return step
    if new is None:
        step.op = DELETE
        return step
    step.changes = _resource_changes(old, new)
    ignored = new.options.get("ignore_changes") or []
    step.changes = [c for c in step.changes if not any(c.text.startswith(i) for i in ignored)]
    if not step.changes:
        return None
    step.op = UPDATE
    if new.manifest is not None and old.manifest is not None:
        patterns = rules.force_new_paths(new.manifest, head.provider_config(new))
        for change in step.changes:
            pattern = rules.forcing(change.path, patterns)
            if pattern is not None:
                step.forced_by.append(f"{change.text} ({pattern})")
        step.delete_first = rules.delete_before_replace(old.manifest, new.manifest)
    elif rules.other_change(new.type) == REPLACE:
        step.forced_by = [f"{c.text} (every input of {new.type.split(':')[-1]})" for c in step.changes]
    for path in new.options.get("replace_on_changes") or []:
        step.forced_by += [f"{c.text} (replace_on_changes)" for c in step.changes if c.text.startswith(path)]
    if new.options.get("delete_before_replace"):
        step.delete_first = True
    if step.forced_by:
        step.op = REPLACE
    return step


def _container_name(manifest: dict[str, Any], group: str, index: int) -> str:
    containers = (((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}).get(group) or []
    return str(containers[index].get("name", index)) if index < len(containers) else str(index)


def _roll_reasons(step: Step, head: Snapshot, new: Resource) -> list[str]:
    """Why the pods of an updated workload restart: the objects, images and fields its template changed."""
    reasons: list[str] = []
    for change in step.changes:
        path = change.path
        if path[: len(TEMPLATE)] != TEMPLATE:
            continue
        rest = path[len(TEMPLATE) :]
        if (
            rest[:2] == ("metadata", "annotations")
            and len(rest) > 2
            and str(rest[2]).startswith(CHECKSUM_PREFIX)
        ):
            name = str(rest[2])[len(CHECKSUM_PREFIX) :]
            kind = "ConfigMap" if head.find("ConfigMap", name) else "Secret"
            reasons.append(f"{kind} {name} changed")
        elif len(rest) >= 4 and rest[1] in ("containers", "initContainers") and rest[3] == "image":
            container = _container_name(new.manifest or {}, str(rest[1]), int(rest[2]))
            reasons.append(f"image of {container}: {change.new}")
        else:
            reasons.append(f"pod template: {change.text}")
    return sorted(set(reasons), key=reasons.index)


def _notes(step: Step, new: Resource | None) -> list[str]:
    notes = []
    if step.kind == "Job" and step.op in (CREATE, REPLACE):
        notes.append("runs" if step.op == CREATE else "runs again")
    unready = new is not None and new.manifest is not None and rules.replaced_when_unready(new.manifest)
    if unready and step.op == UPDATE:
        notes.append("replaced if its last run did not complete (replaceUnready)")
    if new is not None and new.manifest is not None and step.op in (CREATE, UPDATE, REPLACE):
        waits = rules.awaited(new.manifest)
        if waits:
            notes.append(f"awaits {waits}")
    return notes


def _reads(resource: Resource) -> dict[tuple[str, str], str | None]:
    """(kind, name) of every ConfigMap/Secret a workload's pods read -> its checksum annotation."""
    manifest = resource.manifest or {}
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    refs: dict[tuple[str, str], str | None] = {}

    def add(kind: str, name: str | None) -> None:
        if name:
            refs[(kind, name)] = annotations.get(f"{CHECKSUM_PREFIX}{name}")

    for volume in pod.get("volumes") or []:
        add("ConfigMap", (volume.get("configMap") or {}).get("name"))
        add("Secret", (volume.get("secret") or {}).get("secretName"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            add("ConfigMap", (source.get("configMap") or {}).get("name"))
            add("Secret", (source.get("secret") or {}).get("name"))
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for env_from in container.get("envFrom") or []:
            add("ConfigMap", (env_from.get("configMapRef") or {}).get("name"))
            add("Secret", (env_from.get("secretRef") or {}).get("name"))
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            add("ConfigMap", (source.get("configMapKeyRef") or {}).get("name"))
            add("Secret", (source.get("secretKeyRef") or {}).get("name"))
    return refs


def reads(resource: Resource) -> dict[tuple[str, str], str | None]:
    """Public view of :func:`_reads` (the lifecycle check uses it too)."""
    return _reads(resource)


def _hazards(plan: Plan, base: Snapshot, head: Snapshot) -> list[Hazard]:
    hazards: list[Hazard] = []
    steps = {s.ref: s for s in plan.steps}
    for step in plan.steps:
        old = base.find(step.kind, step.name)
        claims = old is not None and ((old.manifest or {}).get("spec") or {}).get("volumeClaimTemplates")
        if step.kind == "StatefulSet" and step.op == REPLACE and claims:
            hazards.append(
                Hazard(
                    "data-store-replaced",
                    step.ref,
                    f"{step.ref} is replaced{' (deleted first)' if step.delete_first else ''}: its pods "
                    "stop, and its volume claims keep their old spec",
                    "; ".join(step.forced_by),
                )
            )
        claim_changes = [
            c.text
            for c in step.changes
            if (step.kind == "StatefulSet" and c.path[:2] == ("spec", "volumeClaimTemplates"))
            or (step.kind == "PersistentVolumeClaim" and c.path[:1] == ("spec",))
        ]
        if claim_changes:
            hazards.append(
                Hazard(
                    "volume-claim-change",
                    step.ref,
                    f"{step.ref}: a volume claim changes (claims are not resized by a template)",
                    ", ".join(claim_changes),
                )
            )
    for workload in head.kubernetes():
        for (kind, name), checksum in _reads(workload).items():
            step = steps.get(f"{kind}/{name}")
            if step is None:
                continue
            if step.op == DELETE or (step.op == REPLACE and step.delete_first):
                hazards.append(
                    Hazard(
                        "mounted-object-deleted-first",
                        step.ref,
                        f"{step.ref} is {step.operation} while {workload.ref} reads it: pods starting in the "
                        "gap cannot mount it",
                    )
                )
            elif step.op in (UPDATE, REPLACE) and checksum != READ_AT_USE:
                wstep = steps.get(workload.ref)
                annotation = (*TEMPLATE, "metadata", "annotations", f"{CHECKSUM_PREFIX}{name}")
                rolled = wstep is not None and any(c.path == annotation for c in wstep.changes)
                if not rolled and workload.kind in (*ROLLING_KINDS, "Job", "CronJob"):
                    hazards.append(
                        Hazard(
                            "stale-boot-config",
                            step.ref,
                            f"{step.ref} changes but {workload.ref} is not restarted: a server that reads it "
                            "at boot keeps the old content",
                        )
                    )
    return hazards


def plan(base: Snapshot, head: Snapshot, base_label: str = "base") -> Plan:
    """The engine's plan from *base* to *head*."""
    steps: list[Step] = []
    unchanged = 0
    names = sorted(set(base.resources) | set(head.resources))
    for name in names:
        old, new = base.resources.get(name), head.resources.get(name)
        if (old or new) is None or not (old or new).custom:  # type: ignore[union-attr]
            continue
        if (new or old).type.startswith("pulumi:providers:"):  # type: ignore[union-attr]
            continue
        step = _step(base, head, old, new)
        if step is None:
            unchanged += 1
            continue
        steps.append(step)
    replaced = {s.resource for s in steps if s.op == REPLACE}
    for step in steps:  # replace_with: replaced whenever one of the named resources is
        resource = head.resources.get(step.resource)
        triggers = sorted(set((resource.options.get("replace_with") if resource else None) or []) & replaced)
        if triggers and step.op == UPDATE:
            step.op = REPLACE
            step.forced_by.append(f"replace_with: {', '.join(triggers)}")
    for step in steps:
        new = head.resources.get(step.resource)
        if step.kind in ROLLING_KINDS and step.op == UPDATE and new is not None:
            step.rolls = _roll_reasons(step, head, new)
        step.notes = _notes(step, new)
    order = {CREATE: 0, REPLACE: 1, UPDATE: 2, DELETE: 3}
    steps.sort(key=lambda s: (s.kind == "", s.kind, s.name, order[s.op]))
    result = Plan(head.stack, base_label, steps, unchanged)
    result.hazards = _hazards(result, base, head)
    return result
