"""Wire every component of a stack together: ``build_platform(spec)`` is the whole Pulumi program."""

from __future__ import annotations

import pulumi

from infra.components.namespace import Namespace, NamespaceArgs
from infra.spec import PlatformSpec


def build_platform(spec: PlatformSpec) -> None:
    """Declare every resource of *spec*'s stack and export the stack outputs."""
    namespace = Namespace("platform", NamespaceArgs(spec=spec))
    pulumi.export("namespace", namespace.name)
