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


def _pod_security(level: str | None, version: str) -> dict[str, str]:
    """Pod Security Admission labels: *level* enforced (None: nothing enforced), restricted reported."""
    labels = {
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": version,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": version,
    }
    if level:
        labels |= {
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": version,
        }
    return labels


class Namespace(pulumi.ComponentResource):
    """The stack's namespace (Pod Security ``restricted`` enforced) + ResourceQuota + LimitRange +
    default-deny and allow-DNS NetworkPolicies, and the logs namespace of the log shipper.

    Promtail reads the kubelet's pod logs through a hostPath, which every Pod Security level above
    ``privileged`` refuses; rather than leave the whole stack unenforced, it gets a namespace of its own
    (``<namespace>-logs``: nothing enforced, restricted violations reported, default-deny as well).
    """

    def __init__(self, name: str, args: NamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:core:Namespace", name, None, opts)
        spec = args.spec
        ns = spec.config.namespace
        labels = lbl.labels("platform", spec.stack, "platform")
        child = pulumi.ResourceOptions(parent=self)
        version = f"v{spec.config.kubernetes_version}"
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": ns, "labels": {**labels, **_pod_security("restricted", version)}},
            opts=child,
        )
        self.logs_namespace = k8s.core.v1.Namespace(
            f"{name}-logs-namespace",
            metadata={
                "name": spec.config.logs_namespace,
                "labels": {**labels, **_pod_security(None, version)},
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
        self.default_deny, self.allow_dns = self._guard_rails(name, "", spec, labels, None, in_ns)
        in_logs = pulumi.ResourceOptions(parent=self, depends_on=[self.logs_namespace])
        self._guard_rails(f"{name}-logs", "logs-", spec, labels, spec.config.logs_namespace, in_logs)
        self.name = self.namespace.metadata.name
        self.register_outputs({"name": self.name})

    @staticmethod
    def _guard_rails(
        name: str,
        prefix: str,
        spec: PlatformSpec,
        labels: dict,
        namespace: str | None,
        opts: pulumi.ResourceOptions,
    ) -> tuple[k8s.networking.v1.NetworkPolicy, k8s.networking.v1.NetworkPolicy]:
        """``<prefix>default-deny`` (ingress and egress) and ``<prefix>allow-dns`` (to kube-dns), for every
        pod of a namespace (object names stay unique across the stack's namespaces)."""
        default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta(f"{prefix}default-deny", spec, labels, namespace=namespace),
            spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
            opts=opts,
        )
        allow_dns = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-dns",
            metadata=meta(f"{prefix}allow-dns", spec, labels, namespace=namespace),
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
            opts=opts,
        )
        return default_deny, allow_dns
