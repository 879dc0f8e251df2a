"""Defect A12: pods on a private registry need pull credentials. The registry password is a Pulumi
secret; it reaches every pod as the image pull Secret ``registry-pull``, created before any of them."""

from __future__ import annotations

import json

import pytest

from infra.offline import SECRET_CONFIG_PLACEHOLDERS
from infra.spec import load_spec
from tests.infra.deploy.conftest import logical_name, registration

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def pods(manifests: list[dict]):
    for m in manifests:
        if m["kind"] in WORKLOADS:
            spec = m["spec"]["jobTemplate"]["spec"] if m["kind"] == "CronJob" else m["spec"]
            yield m, spec["template"]["spec"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_pod_pulls_with_the_registry_secret(stacks, stack) -> None:
    rendered = stacks[stack]
    secret = next(m for m in rendered.manifests if m["metadata"]["name"] == "registry-pull")
    assert secret["kind"] == "Secret"
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["stringData"] == {".dockerconfigjson": "<redacted>"}
    namespace = load_spec(stack).config.namespace
    workloads = [(m, pod) for m, pod in pods(rendered.manifests) if m["metadata"]["namespace"] == namespace]
    assert len(workloads) > 10
    for m, pod in workloads:
        assert pod["imagePullSecrets"] == [{"name": "registry-pull"}], m["metadata"]["name"]
    # Promtail (a public image) runs in the logs namespace, where the Secret does not exist.
    others = [(m, pod) for m, pod in pods(rendered.manifests) if m["metadata"]["namespace"] != namespace]
    assert [m["metadata"]["name"] for m, pod in others if "imagePullSecrets" not in pod] == ["promtail"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_pull_secret_exists_before_every_component(stacks, stack) -> None:
    rendered = stacks[stack]
    pull = logical_name(rendered, "Secret", "registry-pull")
    components = [
        c for c in rendered.captured if c.type.startswith("platform:") and c.type != "platform:core:Namespace"
    ]
    assert len(components) >= 8
    for component in components:
        assert pull in component.dependencies, component.name
    assert registration(rendered, pull).dependencies  # after the namespace


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_registry_password_is_read_as_a_secret(stacks, stack) -> None:
    """The password never shows up in the output (it is a Pulumi secret, so the Secret is redacted)."""
    text = json.dumps([stacks[stack].manifests, stacks[stack].resources, stacks[stack].outputs])
    assert SECRET_CONFIG_PLACEHOLDERS["registryPassword"] not in text


def test_a_stack_without_a_registry_user_pulls_anonymously(stacks) -> None:
    rendered = stacks["dev"]
    assert not [m for m in rendered.manifests if m["metadata"]["name"] == "registry-pull"]
    assert all("imagePullSecrets" not in pod for _, pod in pods(rendered.manifests))
