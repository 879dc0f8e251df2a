"""Shared building blocks for the components: metadata, secure pod defaults, probes, network policies.

Everything returns plain dicts in pulumi_kubernetes' snake_case input shape (the SDK translates keys
to the Kubernetes camelCase names); free-form maps such as labels and ConfigMap data keep their keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import credentials
from infra import labels as lbl
from infra.lifecycle import rules
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
    name: str,
    spec: PlatformSpec,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    namespace: str | None = None,
) -> Dict:
    """ObjectMeta of a namespaced object: explicit name, the stack's namespace (or *namespace*), labels,
    annotations."""
    result: Dict = {"name": name, "namespace": namespace or spec.config.namespace, "labels": dict(labels)}
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


def peer(name: str, spec: PlatformSpec, namespace: str | None = None) -> Dict:
    """A NetworkPolicy peer: the pods of *name* in the policy's namespace (or in *namespace*)."""
    result: Dict = {"pod_selector": {"match_labels": lbl.selector_labels(name, spec.stack)}}
    if namespace is not None:
        result["namespace_selector"] = {"match_labels": {"kubernetes.io/metadata.name": namespace}}
    return result


def namespace_peer(namespace: str) -> Dict:
    """A NetworkPolicy peer: every pod of another namespace (by its immutable name label)."""
    return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": namespace}}}


def ports(*numbers: int, protocol: str = "TCP") -> list[Dict]:
    """NetworkPolicy ports."""
    return [{"port": number, "protocol": protocol} for number in numbers]


def api_server_egress(spec: PlatformSpec) -> Dict:
    """Egress to the Kubernetes API server's endpoints only (``platform:cluster.apiServer``), for
    service discovery: NetworkPolicies see the endpoint addresses, not the ``kubernetes`` Service IP."""
    api = spec.config.cluster.api_server
    return {"to": [{"ip_block": {"cidr": cidr}} for cidr in api.cidrs], "ports": ports(api.port)}


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
    namespace: str | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy allowing exactly *ingress* (``{"from": [...], "ports": [...]}``) and *egress* rules.

    A policy type is listed only when its rules are given (an empty list means "allow nothing").
    A rule with an empty ``from``/``to`` list would allow *every* peer (Kubernetes semantics), so it
    raises ``ValueError`` unless *anywhere* is passed explicitly.
    """
    for direction, key, given in (("ingress", "from", ingress), ("egress", "to", egress)):
        for rule in given or ():
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
        resource_name, metadata=meta(name, spec, labels, namespace=namespace), spec=body, opts=opts
    )


#: sha256 of a ConfigMap's data (or of any JSON-able value): changes exactly when the content does.
checksum = rules.checksum


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a child resource of a component."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def password(
    spec: PlatformSpec, credential: str, resource_name: str, opts: pulumi.ResourceOptions, length: int = 32
) -> random.RandomPassword:
    """A generated password ([A-Za-z0-9]) for *credential* (:mod:`infra.credentials`); raising its
    generation in ``platform:rotation`` replaces it (``keepers``)."""
    return random.RandomPassword(
        resource_name,
        length=length,
        special=False,
        keepers=credentials.keepers(spec, credential),
        opts=opts,
    )


# ---------------------------------------------------------------- what pods read: ConfigMaps and Secrets

#: Pod-template annotation prefix: ``checksum/<object name>`` for every ConfigMap/Secret a pod mounts.
CHECKSUM_PREFIX = "checksum/"
#: Annotation on every Secret the program creates: the checksum of its (non-secret) content version.
CONTENT_CHECKSUM = "checksum/content"
#: Checksum value of an object the server reads on every use (a token file, image pull credentials):
#: a change needs no restart, so it does not roll the pods.
READ_AT_USE = "read-at-use"
#: Checksum value of an object created outside the program (the operator's TLS Secret): its changes
#: cannot be seen here; the runbook restarts the pods (docs/deploy.md).
EXTERNAL = "external"
#: Objects Kubernetes publishes into every namespace (the API server's CA bundle).
BUILTIN = frozenset({"kube-root-ca.crt"})


@dataclass(frozen=True)
class Source:
    """A ConfigMap or Secret as a pod reads it: its name, a checksum of what the pod reads, and the
    resource that produces it (the workload depends on it)."""

    kind: Literal["ConfigMap", "Secret"]
    name: str
    checksum: str
    resource: pulumi.Resource | None = None

    def as_read_at_use(self) -> Source:
        """The same object for a server that reads it on every use (no restart needed)."""
        return Source(self.kind, self.name, READ_AT_USE, self.resource)


def config_map(
    resource_name: str,
    name: str,
    spec: PlatformSpec,
    labels: Mapping[str, str],
    data: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    *,
    namespace: str | None = None,
) -> Source:
    """A ConfigMap; its checksum is the sha256 of its data."""
    resource = k8s.core.v1.ConfigMap(
        resource_name, metadata=meta(name, spec, labels, namespace=namespace), data=dict(data), opts=opts
    )
    return Source("ConfigMap", name, checksum(dict(data)), resource)


def secret(
    resource_name: str,
    name: str,
    spec: PlatformSpec,
    labels: Mapping[str, str],
    string_data: Mapping[str, pulumi.Input[str]],
    *,
    version: str,
    opts: pulumi.ResourceOptions,
    type_: str = "Opaque",
) -> Source:
    """A Secret. *version* is a non-secret description of everything its content is made of (users,
    rules, key names, the rotation generation of each credential in it): its checksum stands in for
    the content's, so no secret value ever reaches an annotation."""
    digest = checksum({"type": type_, "keys": sorted(string_data), "version": version})
    resource = k8s.core.v1.Secret(
        resource_name,
        metadata=meta(name, spec, labels, {CONTENT_CHECKSUM: digest}),
        type=type_,
        string_data=dict(string_data),
        opts=opts,
    )
    return Source("Secret", name, digest, resource)


def external_secret(name: str, resource: pulumi.Resource | None = None, content: Any = None) -> Source:
    """A Secret the program does not write: issued from *resource* (a cert-manager Certificate, whose
    spec is *content*) or created by the operator (no resource: :data:`EXTERNAL`)."""
    return Source("Secret", name, checksum(content) if resource is not None else EXTERNAL, resource)


def _references(pod: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap/Secret a pod spec reads: volumes, projections, env, pull secrets."""
    refs: set[tuple[str, str]] = set()
    for volume in pod.get("volumes") or []:
        if "config_map" in volume:
            refs.add(("ConfigMap", volume["config_map"]["name"]))
        if "secret" in volume:
            refs.add(("Secret", volume["secret"]["secret_name"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "config_map" in source:
                refs.add(("ConfigMap", source["config_map"]["name"]))
            if "secret" in source:
                refs.add(("Secret", source["secret"]["name"]))
    for container in [*(pod.get("init_containers") or []), *pod["containers"]]:
        for env_from in container.get("env_from") or []:
            if "config_map_ref" in env_from:
                refs.add(("ConfigMap", env_from["config_map_ref"]["name"]))
            if "secret_ref" in env_from:
                refs.add(("Secret", env_from["secret_ref"]["name"]))
        for env in container.get("env") or []:
            source = env.get("value_from") or {}
            if "config_map_key_ref" in source:
                refs.add(("ConfigMap", source["config_map_key_ref"]["name"]))
            if "secret_key_ref" in source:
                refs.add(("Secret", source["secret_key_ref"]["name"]))
    for pull in pod.get("image_pull_secrets") or []:
        refs.add(("Secret", pull["name"]))
    return refs


#: Name of the image pull Secret every pod uses when the stack sets ``platform:registryUsername``.
PULL_SECRET = "registry-pull"


def pull_secret_source(spec: PlatformSpec) -> Source | None:
    """The image pull Secret as pods read it (the kubelet reads it at every pull), or None."""
    if not spec.config.registry_username:
        return None
    return Source("Secret", PULL_SECRET, READ_AT_USE)


def container(
    name: str,
    image: pulumi.Input[str],
    res: Resources,
    *,
    uid: int = UID,
    mounts: Sequence[Dict] = (),
    **fields: Any,
) -> Dict:
    """A hardened container: :func:`container_security`, ``imagePullPolicy: Always``, its requests and
    limits, and a writable ``/tmp`` (an emptyDir the pod builder adds) under the read-only root."""
    volume_mounts = list(mounts)
    if not any(m["mount_path"] == "/tmp" for m in volume_mounts):
        volume_mounts.append({"name": "tmp", "mount_path": "/tmp"})
    return {
        "name": name,
        "image": image,
        "image_pull_policy": "Always",
        **fields,
        "resources": resources(res),
        "security_context": container_security(uid),
        "volume_mounts": volume_mounts,
    }


@dataclass(frozen=True)
class PodTemplate:
    """A pod template (``{"metadata", "spec"}``) and the resources its pods read (to depend on)."""

    template: Dict
    depends_on: tuple[pulumi.Resource, ...]


def pod_template(
    spec: PlatformSpec,
    labels: Mapping[str, str],
    containers: Sequence[Dict],
    *,
    sources: Sequence[Source] = (),
    volumes: Sequence[Dict] = (),
    security: Dict | None = None,
    pull_secret: bool = True,
    **fields: Any,
) -> PodTemplate:
    """A hardened pod: no service-account token, :func:`pod_security`, a ``tmp`` emptyDir, the stack's
    image pull Secret, and one ``checksum/<name>`` annotation per ConfigMap/Secret it reads.

    Every object the pod reads must be among *sources* (or built into every namespace): a reference
    without one raises ``ValueError``, so a change that the server reads only at boot cannot be
    forgotten by the checksum.
    """
    pull = pull_secret_source(spec) if pull_secret else None
    all_sources = [*sources, *([pull] if pull else [])]
    body: Dict = {
        "automount_service_account_token": False,
        "security_context": security if security is not None else pod_security(),
        **fields,
        "containers": list(containers),
        "volumes": list(volumes),
    }
    if pull:
        body["image_pull_secrets"] = [{"name": PULL_SECRET}]
    mounted_tmp = any(
        m["name"] == "tmp" for c in containers for m in c.get("volume_mounts") or []
    ) and not any(v["name"] == "tmp" for v in body["volumes"])
    if mounted_tmp:
        body["volumes"].append(empty_dir("tmp"))
    known = {(s.kind, s.name): s for s in all_sources}
    annotations: dict[str, str] = {}
    read: list[Source] = []
    for kind_, name in sorted(_references(body)):
        if name in BUILTIN:
            continue
        if (kind_, name) not in known:
            raise ValueError(
                f"the pod of {labels.get(lbl.NAME)} reads {kind_} {name}, which is not among its sources: "
                "pass it to the pod builder so its changes roll the pods"
            )
        read.append(known[(kind_, name)])
        annotations[f"{CHECKSUM_PREFIX}{name}"] = known[(kind_, name)].checksum
    template = {"metadata": {"labels": dict(labels), "annotations": annotations}, "spec": body}
    depends = tuple(s.resource for s in read if s.resource is not None)
    return PodTemplate(template, depends)


#: Every Job is replaced when it is not complete (pulumi-kubernetes ``replaceUnready``): a Job saved
#: after a failed run would otherwise only be updated and awaited again on every later ``up``.
REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}
