"""Shared building blocks for the components: metadata, secure pod defaults, probes, network policies.

Everything returns plain dicts in pulumi_kubernetes' snake_case input shape (the SDK translates keys
to the Kubernetes camelCase names); free-form maps such as labels and ConfigMap data keep their keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import labels as lbl
from infra.spec import ComputeQuantities, PlatformSpec, Resources

#: UID/GID every platform container runs as: non-root and above 10000 so it never maps to a host user.
UID = 10001

Dict = dict[str, Any]

#: Requests/limits of the monitoring and logging servers.
MEDIUM = Resources(
    requests=ComputeQuantities(cpu="100m", memory="256Mi"),
    limits=ComputeQuantities(cpu="500m", memory="512Mi"),
)
#: Requests/limits of small helper containers (exporters, jobs, sidecars).
SMALL = Resources(
    requests=ComputeQuantities(cpu="50m", memory="64Mi"), limits=ComputeQuantities(cpu="200m", memory="128Mi")
)


def meta(
    name: str, spec: PlatformSpec, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> Dict:
    """ObjectMeta of a namespaced object: explicit name, the stack's namespace, labels, annotations."""
    result: Dict = {"name": name, "namespace": spec.config.namespace, "labels": dict(labels)}
    if annotations:
        result["annotations"] = dict(annotations)
    return result


def checkov_skips(**reasons: str) -> dict[str, str]:
    """``checkov.io/skipN`` annotations: ``checkov_skips(CKV_K8S_38="reason")``. Each needs a reason."""
    return {
        f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(reasons.items(), 1)
    }


#: Checks the workloads skip, each with its reason (at most five distinct checks per stack).
SKIP_DIGEST = (
    "Third-party images are pinned to exact release tags in infra/components/images.py and service "
    "images to their registry digest at deploy time; no digest is knowable offline"
)


#: Where Kubernetes clients look for the service-account token.
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def service_account_token_volume(name: str, expiry_seconds: int = 3600) -> Dict:
    """A projected, auto-rotated SA token (+ CA and namespace) for the one container that needs the API.

    Mounted explicitly instead of ``automountServiceAccountToken``, so no other container gets it.
    """
    return {
        "name": name,
        "projected": {
            "default_mode": 0o440,
            "sources": [
                {"service_account_token": {"path": "token", "expiration_seconds": expiry_seconds}},
                {"config_map": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downward_api": {
                        "items": [{"path": "namespace", "field_ref": {"field_path": "metadata.namespace"}}]
                    }
                },
            ],
        },
    }


def container_security(uid: int = UID) -> Dict:
    """Container securityContext: non-root, read-only root fs, no escalation, no capabilities, seccomp."""
    return {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": uid,
        "read_only_root_filesystem": True,
        "allow_privilege_escalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int = UID, fs_group: int | None = UID) -> Dict:
    """Pod securityContext matching :func:`container_security`; ``fs_group`` makes volumes writable."""
    result: Dict = {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": uid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        result["fs_group"] = fs_group
    return result


def resources(res: Resources) -> Dict:
    """Container requests and limits from a spec :class:`Resources`."""
    return {
        "requests": {"cpu": res.requests.cpu, "memory": res.requests.memory},
        "limits": {"cpu": res.limits.cpu, "memory": res.limits.memory},
    }


def http_probe(path: str, port: str | int, *, period: int = 10, failures: int = 3, delay: int = 0) -> Dict:
    """An HTTP GET probe."""
    probe: Dict = {
        "http_get": {"path": path, "port": port},
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": 2,
    }
    if delay:
        probe["initial_delay_seconds"] = delay
    return probe


def exec_probe(command: Sequence[str], *, period: int = 10, failures: int = 3, timeout: int = 5) -> Dict:
    """A probe that runs *command* in the container."""
    return {
        "exec_": {"command": list(command)},
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": timeout,
    }


def tcp_probe(port: str | int, *, period: int = 10, failures: int = 3) -> Dict:
    """A TCP connect probe."""
    return {
        "tcp_socket": {"port": port},
        "period_seconds": period,
        "failure_threshold": failures,
        "timeout_seconds": 2,
    }


def empty_dir(name: str, size: str = "64Mi") -> Dict:
    """A size-limited emptyDir volume (for /tmp and caches under a read-only root fs)."""
    return {"name": name, "empty_dir": {"size_limit": size}}


def topology_spread(selector: Mapping[str, str]) -> list[Dict]:
    """Spread replicas across nodes and zones, best effort."""
    return [
        {
            "max_skew": 1,
            "topology_key": key,
            "when_unsatisfiable": "ScheduleAnyway",
            "label_selector": {"match_labels": dict(selector)},
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def peer(name: str, spec: PlatformSpec) -> Dict:
    """A NetworkPolicy peer: the pods of *name* in this namespace."""
    return {"pod_selector": {"match_labels": lbl.selector_labels(name, spec.stack)}}


def namespace_peer(namespace: str) -> Dict:
    """A NetworkPolicy peer: every pod of another namespace (by its immutable name label)."""
    return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": namespace}}}


def ports(*numbers: int, protocol: str = "TCP") -> list[Dict]:
    """NetworkPolicy ports."""
    return [{"port": number, "protocol": protocol} for number in numbers]


#: Egress to the Kubernetes API server (service discovery); its address is cluster-specific.
API_SERVER_EGRESS: Dict = {"to": [{"ip_block": {"cidr": "0.0.0.0/0"}}], "ports": ports(443, 6443)}


def network_policy(
    resource_name: str,
    name: str,
    spec: PlatformSpec,
    labels: Mapping[str, str],
    pod_selector: Mapping[str, Any],
    *,
    ingress: Sequence[Dict] | None = None,
    egress: Sequence[Dict] | None = None,
    anywhere: bool = False,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy allowing exactly *ingress* (``{"from": [...], "ports": [...]}``) and *egress* rules.

    A policy type is listed only when its rules are given (an empty list means "allow nothing").
    A rule with an empty ``from``/``to`` list would allow *every* peer (Kubernetes semantics), so it
    raises ``ValueError`` unless *anywhere* is passed explicitly.
    """
    for direction, key, rules in (("ingress", "from", ingress), ("egress", "to", egress)):
        for rule in rules or ():
            if not rule[key] and not anywhere:
                raise ValueError(
                    f"NetworkPolicy {name}: an {direction} rule with an empty '{key}' list allows every "
                    "peer; list the peers, or pass anywhere=True if that is really meant"
                )
    policy_types = []
    body: Dict = {"pod_selector": dict(pod_selector)}
    if ingress is not None:
        policy_types.append("Ingress")
        # An empty peer list means "from anywhere": leave ``from`` out (Kubernetes semantics).
        body["ingress"] = [
            {"from_": r["from"], "ports": r["ports"]} if r["from"] else {"ports": r["ports"]} for r in ingress
        ]
    if egress is not None:
        policy_types.append("Egress")
        body["egress"] = [
            {"to": r["to"], "ports": r["ports"]} if r["to"] else {"ports": r["ports"]} for r in egress
        ]
    body["policy_types"] = policy_types
    return k8s.networking.v1.NetworkPolicy(
        resource_name, metadata=meta(name, spec, labels), spec=body, opts=opts
    )


def checksum(data: Mapping[str, Any]) -> str:
    """sha256 of a config map's content: a pod-template annotation that rolls pods when it changes."""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a child resource of a component."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)
