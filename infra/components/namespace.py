"""The stack's namespace with its guard rails: quota, default limits, default-deny network policy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import labels as lbl
from infra.components.kube import meta, ports
from infra.spec import PlatformSpec


@dataclass(frozen=True)
class NamespaceArgs:
    """Inputs of :class:`Namespace`."""

    spec: PlatformSpec
    #: Default container requests applied by the LimitRange when a container sets none.
    default_request: tuple[str, str] = ("100m", "128Mi")
    #: Default container limits applied by the LimitRange when a container sets none.
    default_limit: tuple[str, str] = ("500m", "256Mi")


class Namespace(pulumi.ComponentResource):
    """Namespace + ResourceQuota + LimitRange + default-deny NetworkPolicy + allow-DNS egress."""

    def __init__(self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:core:Namespace", name, None, opts)
        spec = args.spec
        ns = spec.config.namespace
        labels = lbl.labels("platform", spec.stack, "platform")
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": ns,
                # Promtail needs a read-only hostPath, which the restricted profile forbids; everything
                # else is restricted-compliant, so violations are reported (warn/audit), not enforced.
                "labels": {
                    **labels,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        quota = spec.config.quota
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("platform-quota", spec, labels),
            spec={
                "hard": {
                    "requests.cpu": quota.cpu,
                    "limits.cpu": quota.cpu,
                    "requests.memory": quota.memory,
                    "limits.memory": quota.memory,
                    "pods": str(quota.pods),
                }
            },
            opts=in_ns,
        )
        cpu_req, mem_req = args.default_request
        cpu_lim, mem_lim = args.default_limit
        self.limits = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("platform-limits", spec, labels),
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "default_request": {"cpu": cpu_req, "memory": mem_req},
                        "default": {"cpu": cpu_lim, "memory": mem_lim},
                    }
                ]
            },
            opts=in_ns,
        )
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny", spec, labels),
            spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
            opts=in_ns,
        )
        self.allow_dns = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-dns",
            metadata=meta("allow-dns", spec, labels),
            spec={
                "pod_selector": {},
                "policy_types": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespace_selector": {
                                    "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": ports(53, protocol="UDP") + ports(53),
                    }
                ],
            },
            opts=in_ns,
        )
        self.name = self.namespace.metadata.name
        self.register_outputs({"name": self.name})
