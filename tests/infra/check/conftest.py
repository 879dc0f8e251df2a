"""Hand-written manifests for the check tests: a small, fully consistent stack."""

from __future__ import annotations

import copy
from typing import Any

import pytest

NS = "market-test"
LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-test"}
SECURE = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": dict(LABELS), **extra}


def pod_spec() -> dict[str, Any]:
    return {
        "serviceAccountName": "web",
        "containers": [
            {
                "name": "app",
                "image": "registry.example.com/web:1.0.0",
                "ports": [{"name": "http", "containerPort": 8000}],
                "env": [
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "MODE"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "TOKEN"}}},
                    {
                        "name": "EXTRA",
                        "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "X", "optional": True}},
                    },
                ],
                "envFrom": [{"configMapRef": {"name": "web-config"}}],
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "conf", "mountPath": "/etc/web"},
                ],
                "securityContext": dict(SECURE),
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "conf", "configMap": {"name": "web-config", "items": [{"key": "MODE", "path": "mode"}]}},
        ],
    }


def good_stack() -> list[dict[str, Any]]:
    """Deployment + Service + Ingress + policies + scaling + config: every reference resolves."""
    selector = {"matchLabels": dict(LABELS)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("web")},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("web-config"), "data": {"MODE": "x"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta("web-secret"),
            "stringData": {"TOKEN": "<redacted>"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("web"),
            "spec": {
                "replicas": 2,
                "selector": selector,
                "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec()},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("web"),
            "spec": {"selector": dict(LABELS), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta("web"),
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
                "rules": [
                    {
                        "host": "web.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"name": "http"}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("default-deny"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("web-allow-ingress"),
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"podSelector": selector}], "ports": [{"port": "http"}, {"port": 8000}]}
                ],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta("web"),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta("web"),
            "spec": {"minAvailable": 1, "selector": selector},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta("web-nightly"),
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "metadata": {"labels": {"job": "nightly"}},
                            "spec": {**pod_spec(), "restartPolicy": "OnFailure"},
                        }
                    }
                },
            },
        },
    ]


@pytest.fixture
def stack() -> list[dict[str, Any]]:
    """A fresh deep copy of :func:`good_stack` a test may mutate."""
    return copy.deepcopy(good_stack())
