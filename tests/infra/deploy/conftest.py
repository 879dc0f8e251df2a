"""Deployment-lifecycle tests: what `pulumi up` creates, awaits, updates or replaces, in which order.

Each stack is rendered once per session under Pulumi's mock runtime; the tests read the manifests and
the resource graph (every registration's explicit and implicit dependencies) the program declared.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.offline import Captured, Rendered, render
from infra.spec import STACKS


@pytest.fixture(scope="session")
def stacks() -> dict[str, Rendered]:
    """Every shipped stack, rendered once."""
    return {stack: render(stack) for stack in STACKS}


def registrations(rendered: Rendered, type_suffix: str) -> Iterator[Captured]:
    """Registrations whose Pulumi type ends with *type_suffix* (e.g. ``core/v1:Service``)."""
    return (c for c in rendered.captured if c.type.endswith(type_suffix))


def registration(rendered: Rendered, name: str) -> Captured:
    """The registration with logical name *name*; fails the test if absent."""
    for c in rendered.captured:
        if c.name == name:
            return c
    raise AssertionError(f"no resource named {name}")


def kind_of(rendered: Rendered, name: str) -> str:
    """The Kubernetes kind of registration *name* (``Deployment``), '' for other resources."""
    typ = registration(rendered, name).type
    return typ.rsplit(":", 1)[-1] if typ.startswith("kubernetes:") else ""


def manifest_of(rendered: Rendered, name: str) -> dict:
    """The manifest registration *name* produced."""
    inputs = registration(rendered, name).inputs
    meta = inputs.get("metadata") or {}
    for m in rendered.manifests:
        if (m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")) == (
            inputs.get("kind"),
            meta.get("name"),
            meta.get("namespace"),
        ):
            return m
    raise AssertionError(f"no manifest for {name}")


def find(manifests: list[dict], kind: str, name: str) -> dict:
    for m in manifests:
        if m["kind"] == kind and m["metadata"]["name"] == name:
            return m
    raise AssertionError(f"no {kind}/{name}")


def logical_name(rendered: Rendered, kind: str, name: str) -> str:
    """The logical (Pulumi) name of the resource that produced manifest *kind*/*name*."""
    for c in rendered.captured:
        if c.inputs.get("kind") == kind and (c.inputs.get("metadata") or {}).get("name") == name:
            return c.name
    raise AssertionError(f"no resource produces {kind}/{name}")
