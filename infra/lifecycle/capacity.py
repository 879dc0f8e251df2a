"""The peak a rolling update of every workload needs, next to the namespace's ResourceQuota.

During ``up`` every Deployment may roll at once (surge pods on top of its replicas, or of its HPA's
maximum when one scales it), every Job may run (migrations before their Deployments), a CronJob may
fire. A quota that holds only the steady state refuses the surge pods and the rollout stalls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra.check.k8s import Manifest, kind, name, namespace, pod_template
from infra.quantities import cpu, memory

__all__ = ["RESOURCES", "Demand", "Peak", "amount", "cpu", "memory", "peaks", "show"]

RESOURCES = ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory", "pods")


def amount(resource: str, quantity: Any) -> Decimal:
    """A quota or container quantity of *resource* as a number (cores, bytes or pods)."""
    if resource.endswith("cpu"):
        return cpu(quantity)
    if resource.endswith("memory"):
        return Decimal(memory(quantity))
    return Decimal(str(quantity))


def show(resource: str, value: Decimal) -> str:
    """A number of *resource* back in Kubernetes units (``7.1`` cores, ``13.5Gi``)."""
    if resource.endswith("memory"):
        return f"{format((value / 2**30).quantize(Decimal('0.01')).normalize(), 'f')}Gi"
    return format(value.normalize(), "f")


def _surge(value: Any, replicas: int) -> int:
    """Pods a RollingUpdate may add: an int, or a percentage rounded up (Kubernetes' default 25%)."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


@dataclass
class Demand:
    """What one workload needs at the peak of an ``up``."""

    kind: str
    name: str
    pods: int
    per_pod: dict[str, Decimal]
    why: str

    def total(self, resource: str) -> Decimal:
        return (
            Decimal(self.pods) if resource == "pods" else self.per_pod.get(resource, Decimal(0)) * self.pods
        )


@dataclass
class Peak:
    """The peak of one namespace against its quota (``hard``)."""

    namespace: str
    hard: dict[str, Decimal]
    demands: list[Demand] = field(default_factory=list)

    def need(self, resource: str) -> Decimal:
        return sum((d.total(resource) for d in self.demands), Decimal(0))

    def over(self) -> list[str]:
        """Quota resources the peak exceeds."""
        return [r for r in RESOURCES if r in self.hard and self.need(r) > self.hard[r]]


def _per_pod(pod: dict[str, Any]) -> dict[str, Decimal]:
    totals = {r: Decimal(0) for r in RESOURCES if r != "pods"}
    for container in pod.get("containers") or []:
        res = container.get("resources") or {}
        for section in ("requests", "limits"):
            for key, value in (res.get(section) or {}).items():
                if f"{section}.{key}" in totals:
                    totals[f"{section}.{key}"] += amount(key, value)
    return totals


def peaks(manifests: Iterable[Manifest]) -> list[Peak]:
    """The rollout peak of every namespace that has a ResourceQuota."""
    manifests = list(manifests)
    hpa_max = {
        (namespace(m), (m["spec"].get("scaleTargetRef") or {}).get("name")): int(m["spec"]["maxReplicas"])
        for m in manifests
        if kind(m) == "HorizontalPodAutoscaler"
    }
    result = []
    for quota in (m for m in manifests if kind(m) == "ResourceQuota"):
        ns = namespace(quota)
        hard = {
            r: amount(r, v)
            for r, v in ((quota.get("spec") or {}).get("hard") or {}).items()
            if r in RESOURCES
        }
        peak = Peak(ns, hard)
        for m in manifests:
            tpl = pod_template(m)
            if tpl is None or namespace(m) != ns:
                continue
            spec = m.get("spec") or {}
            per_pod = _per_pod(tpl.spec)
            k = kind(m)
            if k == "Deployment":
                replicas = hpa_max.get((ns, name(m)), int(spec.get("replicas", 1)))
                rolling = ((spec.get("strategy") or {}).get("rollingUpdate")) or {}
                surge = _surge(rolling.get("maxSurge"), replicas)
                scaled = "HPA max" if (ns, name(m)) in hpa_max else "replicas"
                demand = Demand(
                    k, name(m), replicas + surge, per_pod, f"{replicas} ({scaled}) + {surge} surge"
                )
            elif k == "StatefulSet":
                replicas = int(spec.get("replicas", 1))
                demand = Demand(k, name(m), replicas, per_pod, f"{replicas} (one at a time, no surge)")
            elif k == "Job":
                pods = int(spec.get("parallelism", 1))
                demand = Demand(k, name(m), pods, per_pod, "runs during up")
            elif k == "CronJob":
                demand = Demand(k, name(m), 1, per_pod, "may fire during up (concurrencyPolicy Forbid)")
            else:  # DaemonSet: one pod per node; the platform runs none in a quota'd namespace
                demand = Demand(k, name(m), 0, per_pod, "one per node (not counted)")
            peak.demands.append(demand)
        result.append(peak)
    return result
