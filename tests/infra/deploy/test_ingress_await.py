"""Defect A14: the Ingress await can hang where the controller publishes no status; each stack says
whether to wait (platform:gateway.ingressAwait), and pulumi.com/skipAwait carries it to the provider."""

from __future__ import annotations

import pytest

from infra.spec import load_spec
from tests.infra.deploy.conftest import find


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_ingress_await_follows_the_stack(stacks, stack) -> None:
    ingress = find(stacks[stack].manifests, "Ingress", "gateway")
    annotations = ingress["metadata"].get("annotations", {})
    if load_spec(stack).config.gateway.ingress_await:
        assert "pulumi.com/skipAwait" not in annotations
    else:
        assert annotations["pulumi.com/skipAwait"] == "true"


def test_dev_does_not_wait_for_an_ingress_status() -> None:
    """The shared dev cluster's controller publishes none (stacks/Pulumi.dev.yaml)."""
    assert load_spec("dev").config.gateway.ingress_await is False
    assert load_spec("prod").config.gateway.ingress_await is True
