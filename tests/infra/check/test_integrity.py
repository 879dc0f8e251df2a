"""Reference integrity: a consistent stack passes; each broken reference is one precise finding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.check.integrity import Externals, check_integrity
from tests.infra.check.conftest import LABELS

Manifests = list[dict[str, Any]]
EXTERNALS = Externals(secrets=frozenset({"web-tls"}))


def get(manifests: Manifests, kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def container(manifests: Manifests) -> dict[str, Any]:
    return get(manifests, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]


def test_consistent_stack_has_no_findings(stack: Manifests) -> None:
    section = check_integrity(stack, EXTERNALS)
    assert section.findings == []
    assert section.passed >= 20


def test_undeclared_tls_secret_is_a_finding(stack: Manifests) -> None:
    section = check_integrity(stack, Externals())
    assert [(f.kind, f.path) for f in section.findings] == [("Ingress", "spec.tls[0].secretName")]


def _remove(kind: str, name: str) -> Callable[[Manifests], None]:
    def mutate(ms: Manifests) -> None:
        ms.remove(get(ms, kind, name))

    return mutate


def _set(kind: str, name: str, path: str, value: Any) -> Callable[[Manifests], None]:
    def mutate(ms: Manifests) -> None:
        node = get(ms, kind, name)
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _env_key(ms: Manifests) -> None:
    container(ms)["env"][1]["valueFrom"]["secretKeyRef"]["key"] = "NOPE"


def _cm_name(ms: Manifests) -> None:
    container(ms)["env"][0]["valueFrom"]["configMapKeyRef"]["name"] = "web-config2"


def _mount(ms: Manifests) -> None:
    container(ms)["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})


def _duplicate(ms: Manifests) -> None:
    ms.append(get(ms, "Service", "web"))


TPL = "spec.template.spec"
APP = f"{TPL}.containers[name=app]"

CASES: dict[str, tuple[Callable[[Manifests], None], str, str, str, str]] = {
    # case: (mutation, kind, name, field path, message fragment)
    "service selects nothing": (
        _set("Service", "web", "spec.selector", {"app": "other"}),
        "Service",
        "web",
        "spec.selector",
        "selects no pods",
    ),
    "service named targetPort missing": (
        _set("Service", "web", "spec.ports.0.targetPort", "metrics"),
        "Service",
        "web",
        "spec.ports[name=http].targetPort",
        "'metrics' is not a container port",
    ),
    "service numeric targetPort missing": (
        _set("Service", "web", "spec.ports.0.targetPort", 9000),
        "Service",
        "web",
        "spec.ports[name=http].targetPort",
        "9000",
    ),
    "ingress backend service missing": (
        _set("Ingress", "web", "spec.rules.0.http.paths.0.backend.service.name", "api"),
        "Ingress",
        "web",
        "spec.rules[0].http.paths[0].backend.service.name",
        "Service 'api' does not exist",
    ),
    "ingress backend port missing": (
        _set("Ingress", "web", "spec.rules.0.http.paths.0.backend.service.port", {"number": 8080}),
        "Ingress",
        "web",
        "spec.rules[0].http.paths[0].backend.service.port",
        "has no port 8080",
    ),
    "networkpolicy selects nothing": (
        _set("NetworkPolicy", "web-allow-ingress", "spec.podSelector", {"matchLabels": {"x": "y"}}),
        "NetworkPolicy",
        "web-allow-ingress",
        "spec.podSelector",
        "selects no pods",
    ),
    "networkpolicy peer selects nothing": (
        _set(
            "NetworkPolicy",
            "web-allow-ingress",
            "spec.ingress.0.from.0.podSelector",
            {"matchLabels": {"x": "y"}},
        ),
        "NetworkPolicy",
        "web-allow-ingress",
        "spec.ingress[0].from[0].podSelector",
        "selects no pods",
    ),
    "networkpolicy port not on pods": (
        _set("NetworkPolicy", "web-allow-ingress", "spec.ingress.0.ports.1.port", 9999),
        "NetworkPolicy",
        "web-allow-ingress",
        "spec.ingress[0].ports[1].port",
        "9999",
    ),
    "hpa target missing": (
        _set("HorizontalPodAutoscaler", "web", "spec.scaleTargetRef.name", "api"),
        "HorizontalPodAutoscaler",
        "web",
        "spec.scaleTargetRef",
        "Deployment/api does not exist",
    ),
    "pdb selects nothing": (
        _set("PodDisruptionBudget", "web", "spec.selector", {"matchLabels": {"x": "y"}}),
        "PodDisruptionBudget",
        "web",
        "spec.selector",
        "selects no pods",
    ),
    "configmap missing": (
        _cm_name,
        "Deployment",
        "web",
        f"{APP}.env[name=MODE].valueFrom.configMapKeyRef",
        "ConfigMap 'web-config2'",
    ),
    "secret missing": (
        _remove("Secret", "web-secret"),
        "Deployment",
        "web",
        f"{APP}.env[name=TOKEN].valueFrom.secretKeyRef",
        "Secret 'web-secret'",
    ),
    "secret key missing": (
        _env_key,
        "Deployment",
        "web",
        f"{APP}.env[name=TOKEN].valueFrom.secretKeyRef.key",
        "no key 'NOPE'",
    ),
    "serviceaccount missing": (
        _remove("ServiceAccount", "web"),
        "Deployment",
        "web",
        f"{TPL}.serviceAccountName",
        "ServiceAccount 'web'",
    ),
    "volume mount without volume": (
        _mount,
        "Deployment",
        "web",
        f"{APP}.volumeMounts[name=cache]",
        "does not define",
    ),
    "deployment selector vs template labels": (
        _set("Deployment", "web", "spec.selector", {"matchLabels": {"app": "other"}}),
        "Deployment",
        "web",
        "spec.selector",
        "does not match",
    ),
    "duplicate object": (_duplicate, "Service", "web", "metadata.name", "defined more than once"),
    "label value over 63 characters": (
        _set("Deployment", "web", "metadata.labels", {**LABELS, "app.kubernetes.io/instance": "w" * 64}),
        "Deployment",
        "web",
        'metadata.labels["app.kubernetes.io/instance"]',
        "64 characters (at most 63)",
    ),
    "label value syntax": (
        _set("ConfigMap", "web-config", "metadata.labels", {"app.kubernetes.io/part-of": "market place"}),
        "ConfigMap",
        "web-config",
        'metadata.labels["app.kubernetes.io/part-of"]',
        "is invalid",
    ),
    "label key syntax": (
        _set("ServiceAccount", "web", "metadata.labels", {"app.kubernetes.io/": "web"}),
        "ServiceAccount",
        "web",
        'metadata.labels["app.kubernetes.io/"]',
        "invalid name",
    ),
    "selector value over 63 characters": (
        _set(
            "NetworkPolicy",
            "web-allow-ingress",
            "spec.ingress.0.from",
            [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "n" * 64}}}],
        ),
        "NetworkPolicy",
        "web-allow-ingress",
        'spec.ingress[0].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]',
        "64 characters",
    ),
    "match expression value over 63 characters": (
        _set(
            "PodDisruptionBudget",
            "web",
            "spec.selector",
            {
                "matchLabels": dict(LABELS),
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["t" * 64]}],
            },
        ),
        "PodDisruptionBudget",
        "web",
        "spec.selector.matchExpressions[0].tier",
        "64 characters",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_reference_is_reported_once(stack: Manifests, case: str) -> None:
    mutate, kind, name, path, fragment = CASES[case]
    mutate(stack)
    findings = [f for f in check_integrity(stack, EXTERNALS).findings if f.kind == kind and f.name == name]
    assert [f.path for f in findings] == [path], findings
    assert fragment in findings[0].message


def test_cronjob_references_are_checked(stack: Manifests) -> None:
    stack.remove(get(stack, "ConfigMap", "web-config"))
    findings = check_integrity(stack, EXTERNALS).findings
    assert any(
        f.kind == "CronJob" and f.path.startswith("spec.jobTemplate.spec.template.spec") for f in findings
    )


def test_optional_reference_may_dangle(stack: Manifests) -> None:
    env = container(stack)["env"][2]
    assert env["valueFrom"]["secretKeyRef"]["optional"] is True
    assert check_integrity(stack, EXTERNALS).findings == []
    env["valueFrom"]["secretKeyRef"]["optional"] = False
    assert [f.path for f in check_integrity(stack, EXTERNALS).findings if f.name == "web"] == [
        f"{APP}.env[name=EXTRA].valueFrom.secretKeyRef"
    ]


def test_match_expressions_are_honoured(stack: Manifests) -> None:
    pdb = get(stack, "PodDisruptionBudget", "web")
    pdb["spec"]["selector"] = {
        "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["web", "api"]}]
    }
    assert check_integrity(stack, EXTERNALS).findings == []
    pdb["spec"]["selector"]["matchExpressions"] = [{"key": "job", "operator": "NotIn", "values": ["nightly"]}]
    assert check_integrity(stack, EXTERNALS).findings == []
    pdb["spec"]["selector"]["matchExpressions"] = [{"key": "job", "operator": "DoesNotExist"}]
    assert check_integrity(stack, EXTERNALS).findings == []
    pdb["spec"]["selector"]["matchExpressions"] = [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["api"]}
    ]
    assert [f.kind for f in check_integrity(stack, EXTERNALS).findings] == ["PodDisruptionBudget"]


def test_kube_root_ca_configmap_is_built_in(stack: Manifests) -> None:
    spec = get(stack, "Deployment", "web")["spec"]["template"]["spec"]
    spec["volumes"].append(
        {"name": "token", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}
    )
    assert check_integrity(stack, EXTERNALS).findings == []
    spec["volumes"][-1]["projected"]["sources"][0]["configMap"]["name"] = "other-ca.crt"
    assert [f.path for f in check_integrity(stack, EXTERNALS).findings] == [
        f"{TPL}.volumes[name=token].projected.sources[0].configMap"
    ]
