"""Defects A5 and A11: one explicit Kubernetes provider per stack - its own cluster context, and
ConfigMaps/Secrets updated in place instead of deleted and recreated under their fixed names."""

from __future__ import annotations

import pytest

from infra.errors import SpecError
from infra.spec import REPO_ROOT, config_from_stack_file, load_spec, stack_file
from tests.infra.deploy.conftest import registration, registrations


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_kubernetes_resource_goes_through_the_stacks_provider(stacks, stack) -> None:
    rendered = stacks[stack]
    providers = list(registrations(rendered, "pulumi:providers:kubernetes"))
    assert [p.name for p in providers] == ["kubernetes"]
    kubernetes = [c for c in rendered.captured if c.type.startswith("kubernetes:")]
    assert len(kubernetes) > 50
    assert {c.provider for c in kubernetes} == {"kubernetes"}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_config_maps_and_secrets_are_mutable(stacks, stack) -> None:
    """With the provider's defaults a data change replaces them, delete-first (their names are fixed)."""
    inputs = registration(stacks[stack], "kubernetes").inputs
    assert inputs["enableConfigMapMutable"] == "true"
    assert inputs["enableSecretMutable"] == "true"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_stack_names_its_cluster_context(stacks, stack) -> None:
    inputs = registration(stacks[stack], "kubernetes").inputs
    assert inputs["context"] == load_spec(stack).config.cluster.context == f"market-{stack}"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_without_a_cluster_are_refused(stack) -> None:
    config = config_from_stack_file(stack_file(REPO_ROOT, stack))
    del config["cluster"]
    with pytest.raises(SpecError) as error:
        load_spec(stack, config=config)
    assert error.value.field == "platform:cluster.context"
    assert "must name its cluster" in error.value.message
    assert "platform:cluster.context" in error.value.hint


def test_dev_may_deploy_to_the_current_context() -> None:
    config = config_from_stack_file(stack_file(REPO_ROOT, "dev"))
    del config["cluster"]
    assert load_spec("dev", config=config).config.cluster.context is None
