"""Defect A1: the TLS await deadlock. No Service selector may wait for a Deployment to be ready, and the
gateway's certificate is declared (cert-manager Certificate) before the pods that mount its Secret."""

from __future__ import annotations

import pytest

from infra.check.schema import validate_schemas
from infra.spec import load_spec
from tests.infra.deploy.conftest import find, kind_of, logical_name, registration, registrations

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_service_or_budget_waits_for_a_workload(stacks, stack) -> None:
    """A Service (or PDB) built from a Deployment's output is created only once that Deployment is
    ready; the gateway's pods wait for a Secret that needs the Ingress, which needs the Service."""
    rendered = stacks[stack]
    waiting = [
        (c.name, dep)
        for suffix in ("core/v1:Service", "policy/v1:PodDisruptionBudget")
        for c in registrations(rendered, suffix)
        for dep in c.dependencies
        if kind_of(rendered, dep) in WORKLOAD_KINDS
    ]
    assert waiting == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_gateway_certificate_is_declared_and_awaited_before_the_gateway(stacks, stack) -> None:
    rendered, spec = stacks[stack], load_spec(stack)
    tls = spec.config.tls
    cert = find(rendered.manifests, "Certificate", tls.secret_name)
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["spec"]["secretName"] == tls.secret_name
    assert cert["spec"]["dnsNames"] == [spec.config.domain]
    assert cert["spec"]["issuerRef"] == {
        "name": tls.cluster_issuer,
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    # Ready before anything mounts the Secret: the provider awaits the condition named here.
    assert cert["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    certificate = logical_name(rendered, "Certificate", tls.secret_name)
    assert certificate in registration(rendered, logical_name(rendered, "Deployment", "gateway")).dependencies


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_ingress_does_not_ask_cert_manager_for_a_second_certificate(stacks, stack) -> None:
    """ingress-shim would create its own Certificate for the same Secret name and fight ours."""
    ingress = find(stacks[stack].manifests, "Ingress", "gateway")
    annotations = ingress["metadata"].get("annotations", {})
    assert not any(key.startswith("cert-manager.io/") for key in annotations)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_certificate_passes_cert_manager_schema(stacks, stack) -> None:
    certs = [m for m in stacks[stack].manifests if m["kind"] == "Certificate"]
    section = validate_schemas(certs, "1.30")
    assert (section.passed, section.findings) == (1, [])


def test_the_certificate_schema_rejects_unknown_fields(stacks) -> None:
    cert = dict(find(stacks["prod"].manifests, "Certificate", "gateway-tls"))
    cert["spec"] = {**cert["spec"], "dnsName": ["typo.example.com"]}
    section = validate_schemas([cert], "1.30")
    assert [f.path for f in section.findings] == ["spec"]
    assert "dnsName" in section.findings[0].message


def test_without_an_issuer_no_certificate_is_declared(stacks) -> None:
    """dev has no clusterIssuer: the operator creates the TLS Secret (docs/deploy.md)."""
    assert not [m for m in stacks["dev"].manifests if m["kind"] == "Certificate"]
