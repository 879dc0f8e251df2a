"""Component tests: each test builds its component inside a program run under Pulumi's mocks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.offline import Rendered, render
from infra.spec import PlatformSpec, load_spec

Program = Callable[[PlatformSpec], None]


@pytest.fixture(scope="session")
def dev_spec() -> PlatformSpec:
    return load_spec("dev")


@pytest.fixture
def run_mocked() -> Callable[[str, Program], Rendered]:
    """Run *program(spec)* for a stack under the mock runtime (fresh runtime state every call)."""

    def run(stack: str, program: Program) -> Rendered:
        spec = load_spec(stack)
        return render(stack, program=lambda: program(spec))

    return run


def find(manifests: list[dict], kind: str, name: str) -> dict:
    """The manifest of *kind* called *name*; fails the test if absent."""
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    raise AssertionError(f"no {kind} {name} in {[(m['kind'], m['metadata']['name']) for m in manifests]}")
