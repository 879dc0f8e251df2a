"""The providers' replacement and await rules, as data.

Taken from the providers' own source, not from their documentation:

* **pulumi-kubernetes** (Python SDK pinned at 4.34.2; rules read from the provider's Go source, newest
  snapshot available here: commit 94977969d, after the v4.32.0 release - the files below have not
  changed in the 4.3x series):

  - ``provider/pkg/provider/diff.go`` (``forceNewProperties``): the force-new fields per group, version
    and kind (:data:`FORCE_NEW`), ``.metadata.name``/``.metadata.namespace`` for every kind, and the
    ConfigMap/Secret data rule (:func:`force_new_paths`): their ``data``/``binaryData``/``stringData``
    force a replacement unless the provider sets ``enableConfigMapMutable``/``enableSecretMutable`` and
    the object is not ``immutable``;
  - ``provider/pkg/provider/provider.go`` (``Diff``): a replacement is *delete-before-replace* when the
    object has a fixed ``metadata.name`` (not auto-named) in the same namespace
    (:func:`delete_before_replace`); ``pulumi.com/replaceUnready`` on a Job replaces it when the live Job
    is not ready (:data:`REPLACE_UNREADY`);
  - ``provider/pkg/openapi/match.go`` (``PatchPropertiesChanged``): a change matches a force-new path
    when it is at or below it, ``[*]`` standing for any list item (:func:`matches`);
  - ``provider/pkg/await/awaiters.go``, ``await.go``, ``service.go`` (:func:`awaited`): which kinds
    ``up`` waits for, ``pulumi.com/skipAwait``, ``pulumi.com/waitFor`` on custom resources.

* **pulumi-random** (4.21.4): every input of ``RandomPassword`` forces a replacement (``keepers`` is
  there for exactly that).
* **pulumi-docker** (5.2.0, ``provider/provider.go`` ``Diff``): an ``Image`` is only ever updated
  (rebuilt and pushed), never replaced; its ``build.contextDigest`` hashes the whole build context
  (``hashContext``) minus ``<Dockerfile>.dockerignore`` (or the context's ``.dockerignore``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

PROVIDER_VERSIONS = {
    "kubernetes": "pulumi-kubernetes 4.34.2 (provider source: diff.go forceNewProperties, provider.go Diff)",
    "random": "pulumi-random 4.21.4",
    "docker": "pulumi-docker 5.2.0 (provider.go Diff, hashContext)",
}


def checksum(data: Any) -> str:
    """sha256 of a JSON-able value (a ConfigMap's data): the pod-template checksum of what it reads."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


#: Fields every kind is replaced for: its identity.
METADATA_FORCE_NEW = (".metadata.name", ".metadata.namespace")

_LABEL_SELECTOR = (".matchExpressions", ".matchLabels")


def _selector(prefix: str) -> tuple[str, ...]:
    return (prefix, *(prefix + suffix for suffix in _LABEL_SELECTOR))


_CONTAINER = (
    "args",
    "command",
    "env",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
    "workingDir",
)
_POD = (
    ".spec.affinity",
    ".spec.automountServiceAccountToken",
    ".spec.dnsConfig",
    ".spec.dnsPolicy",
    ".spec.enableServiceLinks",
    ".spec.hostAliases",
    ".spec.hostIPC",
    ".spec.hostNetwork",
    ".spec.hostPID",
    ".spec.hostname",
    ".spec.imagePullSecrets",
    ".spec.nodeName",
    ".spec.nodeSelector",
    ".spec.overhead",
    ".spec.preemptionPolicy",
    ".spec.priority",
    ".spec.priorityClassName",
    ".spec.readinessGates",
    ".spec.restartPolicy",
    ".spec.runtimeClassName",
    ".spec.schedulerName",
    ".spec.securityContext",
    ".spec.serviceAccount",
    ".spec.serviceAccountName",
    ".spec.shareProcessNamespace",
    ".spec.subdomain",
    ".spec.terminationGracePeriodSeconds",
    ".spec.volumes",
    *(f".spec.{group}[*].{field}" for group in ("containers", "initContainers") for field in _CONTAINER),
)
_DEPLOYMENT = _selector(".spec.selector")
_STATEFUL_SET = (
    ".spec.podManagementPolicy",
    ".spec.revisionHistoryLimit",
    ".spec.serviceName",
    ".spec.volumeClaimTemplates",
    *_selector(".spec.selector"),
)
_JOB = (".spec.completions", ".spec.parallelism", ".spec.template", *_selector(".spec.selector"))

#: (apiVersion, kind) -> force-new field paths, beyond :data:`METADATA_FORCE_NEW` (diff.go ``forceNew``).
FORCE_NEW: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps/v1", "Deployment"): _DEPLOYMENT,
    ("apps/v1", "DaemonSet"): _DEPLOYMENT,
    ("apps/v1", "StatefulSet"): _STATEFUL_SET,
    ("batch/v1", "Job"): _JOB,
    ("v1", "Pod"): _POD,
    ("v1", "PersistentVolumeClaim"): (
        ".spec.accessModes",
        ".spec.storageClassName",
        ".spec.volumeName",
        *_selector(".spec.selector"),
    ),
    ("v1", "ResourceQuota"): (".spec.scopes",),
    ("v1", "Secret"): (".type",),
    ("v1", "Service"): (".spec.clusterIP",),
    ("policy/v1beta1", "PodDisruptionBudget"): (".spec",),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): (".roleRef",),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): (".roleRef",),
    ("storage.k8s.io/v1", "StorageClass"): (".parameters", ".provisioner"),
}
#: Data fields of a ConfigMap / Secret that force a replacement unless the provider makes them mutable.
CONFIG_MAP_DATA = (".binaryData", ".data")
SECRET_DATA = (".type", ".stringData", ".data")

REPLACE_UNREADY = "pulumi.com/replaceUnready"
SKIP_AWAIT = "pulumi.com/skipAwait"
WAIT_FOR = "pulumi.com/waitFor"


def provider_flags(config: Mapping[str, Any] | None) -> tuple[bool, bool]:
    """(configmaps mutable, secrets mutable) from a Kubernetes provider's inputs (None: the defaults)."""
    config = config or {}

    def flag(key: str) -> bool:
        return str(config.get(key, "false")).lower() == "true"

    return flag("enableConfigMapMutable"), flag("enableSecretMutable")


def force_new_paths(
    manifest: Mapping[str, Any], provider: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Every field path whose change replaces *manifest* (diff.go ``forceNewProperties``)."""
    kind, api = manifest.get("kind", ""), manifest.get("apiVersion", "")
    configmaps_mutable, secrets_mutable = provider_flags(provider)
    immutable = manifest.get("immutable") is True
    if kind == "Secret" and api == "v1" and (not secrets_mutable or immutable):
        return (*METADATA_FORCE_NEW, *SECRET_DATA)
    if kind == "ConfigMap" and api == "v1" and (not configmaps_mutable or immutable):
        return (*METADATA_FORCE_NEW, *CONFIG_MAP_DATA)
    return (*METADATA_FORCE_NEW, *FORCE_NEW.get((api, kind), ()))


Path = Sequence[str | int]


def _parts(pattern: str) -> list[str]:
    parts: list[str] = []
    for piece in pattern.lstrip(".").split("."):
        while "[*]" in piece:
            head, _, piece = piece.partition("[*]")
            if head:
                parts.append(head)
            parts.append("[*]")
        if piece:
            parts.append(piece)
    return parts


def matches(path: Path, pattern: str) -> bool:
    """Whether a change at *path* (keys and list indexes) is at or below the force-new *pattern*."""
    wanted = _parts(pattern)
    if len(path) < len(wanted):
        return False
    for part, want in zip(path, wanted, strict=False):
        if want == "[*]":
            if not isinstance(part, int):
                return False
        elif part != want:
            return False
    return True


def forcing(path: Path, patterns: Sequence[str]) -> str | None:
    """The first force-new pattern a change at *path* falls under, or None."""
    return next((p for p in patterns if matches(path, p)), None)


def delete_before_replace(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """provider.go ``Diff``: a replacement deletes first when the name is fixed (not generateName, not
    auto-named by Pulumi) and stays the same, in the same namespace."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    named = (
        bool(new_meta.get("name"))
        and (new_meta.get("annotations") or {}).get("pulumi.com/autonamed") != "true"
    )
    return (
        named
        and new_meta.get("name") == old_meta.get("name")
        and new_meta.get("namespace", "") == old_meta.get("namespace", "")
    )


def replaced_when_unready(manifest: Mapping[str, Any]) -> bool:
    """``pulumi.com/replaceUnready: "true"`` on a Job: a Job that is not complete is replaced."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    return manifest.get("kind") == "Job" and annotations.get(REPLACE_UNREADY) == "true"


#: Kinds whose create/update ``up`` awaits (awaiters.go), and what it waits for.
AWAITS = {
    "Deployment": "the rollout: updated replicas available",
    "StatefulSet": "every replica ready and updated",
    "DaemonSet": "every scheduled pod updated and ready",
    "Job": "completion",
    "Service": "endpoints: a ready pod behind it (not for headless or selector-less Services)",
    "Ingress": "the controller publishing an address, and its backend Services",
    "PersistentVolumeClaim": "Bound",
    "Pod": "ready",
}


def awaited(manifest: Mapping[str, Any]) -> str | None:
    """What ``up`` waits for before it considers *manifest* created or updated, or None."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    if annotations.get(SKIP_AWAIT) == "true":
        return None
    if annotations.get(WAIT_FOR):
        return f"its waitFor condition ({annotations[WAIT_FOR]})"
    kind = manifest.get("kind", "")
    if kind == "Service":
        spec = manifest.get("spec") or {}
        if spec.get("clusterIP") == "None" or not spec.get("selector") or spec.get("type") == "ExternalName":
            return None
    return AWAITS.get(kind)


#: Non-Kubernetes resource types and how a change to their inputs is applied.
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
DOCKER_IMAGE = "docker:index/image:Image"


def other_change(type_: str) -> str:
    """``replace`` or ``update``: how the engine applies an input change to a non-Kubernetes resource."""
    if type_.startswith("random:"):
        return "replace"  # every input is ForceNew
    return "update"  # docker Image: rebuilt and pushed in place
