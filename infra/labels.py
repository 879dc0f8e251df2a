"""Kubernetes labels every platform object carries (docs/architecture.md, "Kubernetes naming and labels")."""

from __future__ import annotations

from typing import Literal

Component = Literal[
    "api", "web", "database", "cache", "broker", "gateway", "monitoring", "logging", "platform"
]

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"


def instance(name: str, stack: str) -> str:
    """The unique instance label of *name* in *stack* (``<name>-<stack>``)."""
    return f"{name}-{stack}"


def selector_labels(name: str, stack: str) -> dict[str, str]:
    """The labels selectors match on: ``name`` + ``instance`` (never derived from the image)."""
    return {NAME: name, INSTANCE: instance(name, stack)}


def labels(name: str, stack: str, component: Component) -> dict[str, str]:
    """All five standard labels of an object belonging to *name* (a component or a service)."""
    return {
        **selector_labels(name, stack),
        COMPONENT: component,
        PART_OF: "marketplace",
        MANAGED_BY: "pulumi",
    }
