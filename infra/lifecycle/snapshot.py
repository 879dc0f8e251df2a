"""One render of a stack as a resource graph: what the engine would hold in its state after ``up``.

Built from :class:`infra.offline.Rendered` (works on renders of older checkouts too: attributes they
lack read as empty). Secret values never enter it: manifests are redacted, and each Secret carries
only a digest of its content *as rendered offline* - the mocked passwords are derived from each
RandomPassword's inputs, so the digest changes exactly when the engine would change the Secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from infra.offline import _clean, _is_secret, _redact_secret

KUBERNETES = "kubernetes:"
#: Pulumi type of the Kubernetes provider (its inputs hold enableConfigMapMutable...).
K8S_PROVIDER = "pulumi:providers:kubernetes"


def _unwrap(value: Any) -> Any:
    """A wire value with every secret unwrapped (for digests only; never stored)."""
    if _is_secret(value):
        return _unwrap(value.get("value"))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def content_digest(inputs: dict[str, Any]) -> str:
    """sha256 of a Secret's ``data`` + ``stringData`` + ``type`` (never the values themselves)."""
    body = {key: _unwrap(inputs.get(key)) for key in ("type", "data", "stringData")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Resource:
    """One registration: a Kubernetes object, another custom resource, or a component."""

    name: str
    type: str
    parent: str = ""
    provider: str = ""
    dependencies: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: The Kubernetes manifest (secrets redacted); None for other resources.
    manifest: dict[str, Any] | None = None
    #: Inputs of a non-Kubernetes custom resource (secrets redacted).
    inputs: dict[str, Any] | None = None
    #: sha256 of a Secret's content as rendered (see the module doc); None otherwise.
    digest: str | None = None
    custom: bool = True

    @property
    def kind(self) -> str:
        return str((self.manifest or {}).get("kind", ""))

    @property
    def object_name(self) -> str:
        return str(((self.manifest or {}).get("metadata") or {}).get("name", ""))

    @property
    def ref(self) -> str:
        """``Kind/name`` for a Kubernetes object, else ``<type>::<logical name>``."""
        return f"{self.kind}/{self.object_name}" if self.manifest is not None else f"{self.type}::{self.name}"


@dataclass
class Snapshot:
    """Every resource of one render, by logical name."""

    stack: str
    resources: dict[str, Resource]

    # ---------------------------------------------------------------- building and moving
    @classmethod
    def from_rendered(cls, stack: str, rendered: Any) -> Snapshot:
        """From :class:`infra.offline.Rendered` (any checkout's version of it)."""
        resources: dict[str, Resource] = {}
        for c in rendered.captured:
            resource = Resource(
                name=c.name,
                type=c.type,
                parent=getattr(c, "parent", ""),
                provider=getattr(c, "provider", ""),
                dependencies=tuple(getattr(c, "dependencies", ())),
                options=dict(getattr(c, "options", {}) or {}),
                custom=bool(getattr(c, "custom", True)),
            )
            if c.type.startswith(KUBERNETES):
                manifest = _clean(c.inputs)
                if manifest.get("kind") == "Secret":
                    resource.digest = content_digest(c.inputs)
                    manifest = _redact_secret(manifest)
                resource.manifest = manifest
            elif resource.custom:
                resource.inputs = _clean(c.inputs)
            resources[c.name] = resource
        return cls(stack, resources)

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "resources": [asdict(self.resources[n]) for n in sorted(self.resources)]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        resources = {}
        for item in data["resources"]:
            item = {**item, "dependencies": tuple(item.get("dependencies") or ())}
            resources[item["name"]] = Resource(**item)
        return cls(data["stack"], resources)

    # ---------------------------------------------------------------- queries
    def kubernetes(self) -> Iterator[Resource]:
        """Every Kubernetes object (provider resources excluded)."""
        return (r for r in self.resources.values() if r.manifest is not None)

    def manifests(self) -> list[dict[str, Any]]:
        return [r.manifest for r in self.kubernetes() if r.manifest is not None]

    @cached_property
    def by_object(self) -> dict[tuple[str, str], Resource]:
        """(kind, object name) -> resource."""
        return {(r.kind, r.object_name): r for r in self.kubernetes()}

    def find(self, kind: str, name: str) -> Resource | None:
        return self.by_object.get((kind, name))

    def provider_config(self, resource: Resource) -> dict[str, Any] | None:
        """Inputs of the Kubernetes provider *resource* goes through (None: the default provider)."""
        provider = self.resources.get(resource.provider)
        return provider.inputs if provider is not None and provider.type == K8S_PROVIDER else None

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for r in self.resources.values():
            children.setdefault(r.parent, []).append(r.name)
        return children

    def descendants(self, name: str) -> Iterable[str]:
        for child in self._children.get(name, []):
            yield child
            yield from self.descendants(child)

    def waits_for(self, name: str) -> set[str]:
        """Everything resource *name* is created after: its dependencies, its ancestors' dependencies
        (a child registers only once its parent has, and a component registers after what it depends
        on), transitively; a component stands for all of its descendants."""
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = self.resources.get(stack.pop())
            if current is None:
                continue
            direct = list(current.dependencies)
            if current.parent:
                direct.append(current.parent)
            for dep in direct:
                if dep in seen:
                    continue
                seen.add(dep)
                stack.append(dep)
                dep_resource = self.resources.get(dep)
                if dep_resource is not None and not dep_resource.custom and dep != current.parent:
                    for child in self.descendants(dep):
                        if child not in seen:
                            seen.add(child)
                            stack.append(child)
        return seen

    def producers(self, kind: str, name: str) -> list[Resource]:
        """Resources that make object *kind*/*name* exist: the object itself, or (for a Secret) the
        cert-manager Certificate that issues it."""
        found = [r for r in (self.find(kind, name),) if r is not None]
        if kind == "Secret":
            found += [
                r
                for r in self.kubernetes()
                if r.kind == "Certificate"
                and ((r.manifest or {}).get("spec") or {}).get("secretName") == name
            ]
        return found
