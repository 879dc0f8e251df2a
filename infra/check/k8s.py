"""Small helpers over plain Kubernetes manifests (dicts): identity, pod templates, selectors, paths."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

#: Kinds whose ``spec.template`` is a pod template.
TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
#: Kinds an HPA may scale.
SCALABLE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def kind(m: Manifest) -> str:
    return str(m.get("kind", "?"))


def name(m: Manifest) -> str:
    return str((m.get("metadata") or {}).get("name", "?"))


def namespace(m: Manifest) -> str:
    return str((m.get("metadata") or {}).get("namespace", ""))


@dataclass(frozen=True)
class PodTemplate:
    """A pod template inside a workload, with the field path that leads to its pod spec."""

    owner: Manifest
    labels: dict[str, str]
    spec: dict[str, Any]
    path: str

    @property
    def kind(self) -> str:
        return kind(self.owner)

    @property
    def name(self) -> str:
        return name(self.owner)

    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers") or [])

    def all_containers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, container) for init and regular containers."""
        for key in ("initContainers", "containers"):
            for i, c in enumerate(self.spec.get(key) or []):
                yield f"{self.path}.{key}{item_ref(c, i)}", c

    def ports(self) -> list[dict[str, Any]]:
        """Ports of containers that serve traffic (regular containers and sidecar init containers)."""
        serving = self.containers() + [
            c for c in self.spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        return [p for c in serving for p in c.get("ports") or []]


def pod_template(m: Manifest) -> PodTemplate | None:
    """The pod template of a workload manifest, or None for other kinds."""
    k = kind(m)
    spec = m.get("spec") or {}
    if k in TEMPLATE_KINDS:
        tpl, path = spec.get("template") or {}, "spec.template"
    elif k == "CronJob":
        tpl, path = (
            ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {},
            ("spec.jobTemplate.spec.template"),
        )
    elif k == "Pod":
        return PodTemplate(m, dict((m.get("metadata") or {}).get("labels") or {}), spec, "spec")
    else:
        return None
    labels = dict((tpl.get("metadata") or {}).get("labels") or {})
    return PodTemplate(m, labels, tpl.get("spec") or {}, f"{path}.spec")


def selector_is_empty(selector: dict[str, Any] | None) -> bool:
    """True for ``{}`` (or null): a label selector that selects everything."""
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def matches(selector: dict[str, Any], labels: dict[str, str], *, plain: bool = False) -> bool:
    """Whether *labels* satisfy a LabelSelector (``plain``: a Service's bare key/value map)."""
    if plain:
        return all(labels.get(k) == v for k, v in selector.items())
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def key_ref(key: str) -> str:
    """A mapping key as it appears in a field path: ``.key`` or ``["dotted.key"]``."""
    return f".{key}" if _PLAIN_KEY.match(key) else f'["{key}"]'


def item_ref(item: Any, index: int) -> str:
    """A list item in a field path: ``[name=app]`` when it has a name, else ``[index]``."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"[name={item['name']}]"
    return f"[{index}]"


def join_path(parts: Sequence[str | int], doc: Any = None) -> str:
    """``('spec', 'ports', 0, 'port')`` -> ``spec.ports[0].port``.

    With *doc* (the object the path points into), named list items read ``[name=app]``.
    """
    out = ""
    node = doc
    for part in parts:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            out += item_ref(item, part)
            node = item
        else:
            out += key_ref(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return out.lstrip(".")
