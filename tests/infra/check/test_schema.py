"""Strict schema validation with kubernetes-validate's bundled OpenAPI schemas."""

from __future__ import annotations

from typing import Any

import pytest

from infra.check.schema import schema_dir, validate_schemas
from infra.errors import UsageError

Manifests = list[dict[str, Any]]


def test_consistent_stack_is_valid(stack: Manifests) -> None:
    section = validate_schemas(stack, "1.30")
    assert section.findings == []
    assert section.passed == len(stack)


def test_unknown_field_is_an_error_in_strict_mode(stack: Manifests) -> None:
    stack[3]["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    findings = validate_schemas(stack, "1.30").findings
    assert [(f.kind, f.name, f.path) for f in findings] == [
        ("Deployment", "web", "spec.template.spec.containers[name=app]")
    ]
    assert "imagePullPolice" in findings[0].message


def test_wrong_type_names_the_field(stack: Manifests) -> None:
    stack[3]["spec"]["replicas"] = "two"
    findings = validate_schemas(stack, "1.30").findings
    assert [f.path for f in findings] == ["spec.replicas"]
    assert "'two' is not of type" in findings[0].message


def test_missing_required_field(stack: Manifests) -> None:
    del stack[3]["spec"]["selector"]
    findings = validate_schemas(stack, "1.30").findings
    assert [f.path for f in findings] == ["spec"]
    assert "'selector' is a required property" in findings[0].message


def test_kind_without_schema_is_reported(stack: Manifests) -> None:
    stack.append(
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"}}
    )
    findings = validate_schemas(stack, "1.30").findings
    assert [(f.kind, f.path) for f in findings] == [("ServiceMonitor", "apiVersion")]
    assert "no schema" in findings[0].message


def test_removed_api_version_fails_for_the_target_release() -> None:
    old_hpa = {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 2},
    }
    assert validate_schemas([old_hpa], "1.30").failed == 1


def test_version_picks_the_strict_schemas() -> None:
    assert schema_dir("1.30") == "v1.30.0-local-strict"


def test_unsupported_version_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"no schemas for Kubernetes 1\.99"):
        schema_dir("1.99")
