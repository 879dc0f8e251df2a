"""Reference integrity: every name, selector and port a manifest points at exists in the stack.

A Kubernetes API server accepts most dangling references and the cluster only fails at run time
(a Service with no endpoints, a pod stuck in CreateContainerConfigError). These checks catch them
offline. Objects created outside the Pulumi program (e.g. the TLS Secret cert-manager issues) must
be declared in :class:`Externals`; nothing else is assumed to exist.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from infra.check.k8s import (
    SCALABLE_KINDS,
    Manifest,
    PodTemplate,
    item_ref,
    key_ref,
    kind,
    matches,
    name,
    namespace,
    pod_template,
    selector_is_empty,
)
from infra.check.report import Section

#: ConfigMaps Kubernetes publishes into every namespace (the API server's CA bundle, since 1.20).
BUILTIN_CONFIG_MAPS = frozenset({"kube-root-ca.crt"})
#: ClusterRoles every cluster ships with; bindings may refer to them.
BUILTIN_CLUSTER_ROLES = frozenset({"view", "edit", "admin", "cluster-admin"})
#: A label value (and the name part of a label key): at most 63 characters, alphanumeric at both ends,
#: ``-``, ``_`` and ``.`` inside. The API server rejects anything else; its OpenAPI schema does not.
LABEL_VALUE_MAX = 63
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: The optional prefix of a label key: a DNS-1123 subdomain of at most 253 characters.
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: Subtrees holding free-form user data, never labels.
_DATA_FIELDS = frozenset({"data", "stringData", "binaryData"})


def label_value_problem(value: Any) -> str | None:
    """Why *value* is not a valid label value, or None."""
    if not isinstance(value, str):
        return f"label value {value!r} is not a string"
    if len(value) > LABEL_VALUE_MAX:
        return f"label value '{value}' is {len(value)} characters (at most {LABEL_VALUE_MAX})"
    if not LABEL_VALUE.match(value):
        return f"label value '{value}' is invalid (letters, digits, '-', '_', '.'; alphanumeric at both ends)"
    return None


def label_key_problem(key: Any) -> str | None:
    """Why *key* is not a valid label key (``[prefix/]name``), or None."""
    if not isinstance(key, str) or not key:
        return f"label key {key!r} is empty or not a string"
    prefix, _, name_ = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not LABEL_PREFIX.match(prefix)):
        return f"label key '{key}' has an invalid prefix (a DNS subdomain of at most 253 characters)"
    if not name_ or len(name_) > LABEL_VALUE_MAX or not LABEL_VALUE.match(name_):
        return f"label key '{key}' has an invalid name (1-63 characters, alphanumeric at both ends)"
    return None


def _label_sets(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, key->values) of every label map and selector in a manifest (values listed per key)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _label_sets(item, f"{path}{item_ref(item, i)}")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        sub = f"{path}{key_ref(str(key))}".lstrip(".")
        if key in _DATA_FIELDS and not path:
            continue
        plain_selector = (
            key == "selector"
            and isinstance(value, dict)
            and value
            and all(isinstance(v, str) for v in value.values())
        )
        if (key in ("labels", "matchLabels") and isinstance(value, dict)) or plain_selector:
            yield sub, {k: [v] for k, v in value.items()}
        elif key == "matchExpressions" and isinstance(value, list):
            for i, expr in enumerate(value):
                if isinstance(expr, dict):
                    yield f"{sub}[{i}]", {expr.get("key"): list(expr.get("values") or [])}
        else:
            yield from _label_sets(value, sub)


@dataclass(frozen=True)
class Externals:
    """Objects that exist in the namespace without the program creating them."""

    secrets: frozenset[str] = frozenset()
    config_maps: frozenset[str] = frozenset()


class _Index:
    """Objects of the stack, looked up by namespace, kind and name."""

    def __init__(self, manifests: list[Manifest]) -> None:
        self.objects: dict[tuple[str, str, str], Manifest] = {}
        self.templates: dict[str, list[PodTemplate]] = defaultdict(list)
        self.duplicates: list[Manifest] = []
        for m in manifests:
            key = (namespace(m), kind(m), name(m))
            if key in self.objects:
                self.duplicates.append(m)
            self.objects[key] = m
            tpl = pod_template(m)
            if tpl is not None:
                self.templates[namespace(m)].append(tpl)

    def get(self, ns: str, kind_: str, name_: str) -> Manifest | None:
        return self.objects.get((ns, kind_, name_)) or self.objects.get(("", kind_, name_))

    def selected(self, ns: str, selector: dict[str, Any], *, plain: bool = False) -> list[PodTemplate]:
        return [t for t in self.templates[ns] if matches(selector, t.labels, plain=plain)]


class _Checker:
    def __init__(self, manifests: list[Manifest], externals: Externals) -> None:
        self.index = _Index(manifests)
        self.manifests = manifests
        self.externals = externals
        self.section = Section("integrity", "Reference integrity")

    def ok(self) -> None:
        self.section.passed += 1

    def expect(self, cond: bool, m: Manifest, path: str, message: str) -> bool:
        """Count a passed reference, or record a finding; returns *cond*."""
        if cond:
            self.ok()
        else:
            self.section.fail(kind(m), name(m), path, message)
        return cond

    def run(self) -> Section:
        for dup in self.index.duplicates:
            self.section.fail(kind(dup), name(dup), "metadata.name", "defined more than once")
        for m in self.manifests:
            self._labels(m)
            handler = getattr(self, f"on_{kind(m).lower()}", None)
            if handler:
                handler(m)
            tpl = pod_template(m)
            if tpl is not None:
                self._pod(tpl)
        return self.section

    # ------------------------------------------------------------ labels

    def _labels(self, m: Manifest) -> None:
        """Every label key and value, and every selector's keys and values, is valid."""
        for path, entries in _label_sets(m, ""):
            problems = [
                (f"{path}{key_ref(str(key))}", problem)
                for key, values in entries.items()
                for problem in (label_key_problem(key), *(label_value_problem(v) for v in values))
                if problem
            ]
            for where, problem in problems:
                self.section.fail(kind(m), name(m), where, problem)
            if not problems:
                self.ok()

    # ------------------------------------------------------------ workloads

    def _workload_selector(self, m: Manifest) -> None:
        tpl = pod_template(m)
        selector = (m.get("spec") or {}).get("selector")
        if tpl is None or selector is None:
            return
        self.expect(
            matches(selector, tpl.labels),
            m,
            "spec.selector",
            f"does not match the pod template's labels {tpl.labels}",
        )

    on_deployment = _workload_selector
    on_daemonset = _workload_selector
    on_replicaset = _workload_selector

    def on_statefulset(self, m: Manifest) -> None:
        self._workload_selector(m)
        service = (m.get("spec") or {}).get("serviceName")
        if service:
            self.expect(
                self.index.get(namespace(m), "Service", service) is not None,
                m,
                "spec.serviceName",
                f"Service '{service}' does not exist",
            )

    def _pod(self, tpl: PodTemplate) -> None:
        m, ns, spec = tpl.owner, namespace(tpl.owner), tpl.spec
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
        if sa and sa != "default":
            self.expect(
                self.index.get(ns, "ServiceAccount", sa) is not None,
                m,
                f"{tpl.path}.serviceAccountName",
                f"ServiceAccount '{sa}' does not exist",
            )
        for i, ref in enumerate(spec.get("imagePullSecrets") or []):
            self._secret(m, f"{tpl.path}.imagePullSecrets[{i}].name", ref.get("name"), None, False)
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        claim_templates = {
            (t.get("metadata") or {}).get("name")
            for t in (m.get("spec") or {}).get("volumeClaimTemplates") or []
            if kind(m) == "StatefulSet"
        }
        for i, vol in enumerate(spec.get("volumes") or []):
            self._volume(m, f"{tpl.path}.volumes{item_ref(vol, i)}", vol)
        for cpath, container in tpl.all_containers():
            for i, env in enumerate(container.get("env") or []):
                source = env.get("valueFrom") or {}
                path = f"{cpath}.env{item_ref(env, i)}.valueFrom"
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    self._config_map(m, f"{path}.configMapKeyRef", ref.get("name"), ref.get("key"), ref)
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    self._secret(m, f"{path}.secretKeyRef", ref.get("name"), ref.get("key"), ref)
            for i, src in enumerate(container.get("envFrom") or []):
                if "configMapRef" in src:
                    ref = src["configMapRef"]
                    self._config_map(m, f"{cpath}.envFrom[{i}].configMapRef", ref.get("name"), None, ref)
                if "secretRef" in src:
                    ref = src["secretRef"]
                    self._secret(m, f"{cpath}.envFrom[{i}].secretRef", ref.get("name"), None, ref)
            for i, mount in enumerate(container.get("volumeMounts") or []):
                vol = mount.get("name")
                self.expect(
                    vol in volumes or vol in claim_templates,
                    m,
                    f"{cpath}.volumeMounts{item_ref(mount, i)}",
                    f"mounts volume '{vol}', which the pod spec does not define",
                )

    def _volume(self, m: Manifest, path: str, vol: dict[str, Any]) -> None:
        if "configMap" in vol:
            ref = vol["configMap"]
            for key in [i.get("key") for i in ref.get("items") or []] or [None]:
                self._config_map(m, f"{path}.configMap", ref.get("name"), key, ref)
        if "secret" in vol:
            ref = vol["secret"]
            for key in [i.get("key") for i in ref.get("items") or []] or [None]:
                self._secret(m, f"{path}.secret", ref.get("secretName"), key, ref)
        for j, source in enumerate((vol.get("projected") or {}).get("sources") or []):
            if "configMap" in source:
                ref = source["configMap"]
                self._config_map(m, f"{path}.projected.sources[{j}].configMap", ref.get("name"), None, ref)
            if "secret" in source:
                ref = source["secret"]
                self._secret(m, f"{path}.projected.sources[{j}].secret", ref.get("name"), None, ref)
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            self.expect(
                self.index.get(namespace(m), "PersistentVolumeClaim", claim) is not None,
                m,
                f"{path}.persistentVolumeClaim.claimName",
                f"PersistentVolumeClaim '{claim}' does not exist",
            )

    def _config_map(
        self, m: Manifest, path: str, ref: str | None, key: str | None, src: dict[str, Any]
    ) -> None:
        self._data_ref(
            m,
            path,
            "ConfigMap",
            ref,
            key,
            src,
            self.externals.config_maps | BUILTIN_CONFIG_MAPS,
            ("data", "binaryData"),
        )

    def _secret(
        self, m: Manifest, path: str, ref: str | None, key: str | None, src: dict[str, Any] | None
    ) -> None:
        self._data_ref(m, path, "Secret", ref, key, src, self.externals.secrets, ("data", "stringData"))

    def _data_ref(
        self,
        m: Manifest,
        path: str,
        kind_: str,
        ref: str | None,
        key: str | None,
        src: dict[str, Any] | None,
        external: frozenset[str],
        data_fields: tuple[str, ...],
    ) -> None:
        if (src or {}).get("optional") is True or (ref and ref in external):
            self.ok()
            return
        target = self.index.get(namespace(m), kind_, ref or "")
        if not self.expect(target is not None, m, path, f"{kind_} '{ref}' does not exist"):
            return
        if key is not None and target is not None:
            keys = {k for f in data_fields for k in (target.get(f) or {})}
            self.expect(key in keys, m, f"{path}.key", f"{kind_} '{ref}' has no key '{key}'")

    # ------------------------------------------------------------ networking

    def on_service(self, m: Manifest) -> None:
        spec = m.get("spec") or {}
        selector = spec.get("selector")
        if spec.get("type") == "ExternalName" or not selector:
            return
        pods = self.index.selected(namespace(m), selector, plain=True)
        if not self.expect(
            bool(pods), m, "spec.selector", f"selects no pods (no pod template has {selector})"
        ):
            return
        for i, port in enumerate(spec.get("ports") or []):
            target = port.get("targetPort", port.get("port"))
            missing = [t for t in pods if not _has_port(t, target)]
            self.expect(
                not missing,
                m,
                f"spec.ports{item_ref(port, i)}.targetPort",
                f"port {target!r} is not a container port of "
                + ", ".join(f"{t.kind}/{t.name}" for t in missing),
            )

    def on_ingress(self, m: Manifest) -> None:
        spec = m.get("spec") or {}
        backends: list[tuple[str, dict[str, Any]]] = []
        if spec.get("defaultBackend"):
            backends.append(("spec.defaultBackend", spec["defaultBackend"]))
        for i, rule in enumerate(spec.get("rules") or []):
            for j, p in enumerate((rule.get("http") or {}).get("paths") or []):
                backends.append((f"spec.rules[{i}].http.paths[{j}].backend", p.get("backend") or {}))
        for path, backend in backends:
            service = backend.get("service")
            if not service:
                continue
            svc = self.index.get(namespace(m), "Service", service.get("name", ""))
            if not self.expect(
                svc is not None, m, f"{path}.service.name", f"Service '{service.get('name')}' does not exist"
            ):
                continue
            port = service.get("port") or {}
            ports = (svc or {}).get("spec", {}).get("ports") or []
            wanted = port.get("number", port.get("name"))
            self.expect(
                any(p.get("port") == wanted or (p.get("name") and p.get("name") == wanted) for p in ports),
                m,
                f"{path}.service.port",
                f"Service '{service.get('name')}' has no port {wanted!r}",
            )
        for i, tls in enumerate(spec.get("tls") or []):
            if tls.get("secretName"):
                self._secret(m, f"spec.tls[{i}].secretName", tls["secretName"], None, None)

    def on_networkpolicy(self, m: Manifest) -> None:
        spec = m.get("spec") or {}
        ns = namespace(m)
        selector = spec.get("podSelector") or {}
        targets: list[PodTemplate] = []
        if not selector_is_empty(selector):
            targets = self.index.selected(ns, selector)
            if not self.expect(
                bool(targets), m, "spec.podSelector", f"selects no pods ({_describe(selector)})"
            ):
                return
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(spec.get(direction) or []):
                for j, peer in enumerate(rule.get(peer_key) or []):
                    sel = peer.get("podSelector")
                    if sel is None or "namespaceSelector" in peer or selector_is_empty(sel):
                        continue  # other namespaces, or every pod here
                    self.expect(
                        bool(self.index.selected(ns, sel)),
                        m,
                        f"spec.{direction}[{i}].{peer_key}[{j}].podSelector",
                        f"selects no pods in namespace '{ns}' ({_describe(sel)})",
                    )
                if direction == "ingress" and targets:
                    for j, port in enumerate(rule.get("ports") or []):
                        if "port" not in port:
                            continue
                        missing = [
                            t for t in targets if not _has_port(t, port["port"], end=port.get("endPort"))
                        ]
                        self.expect(
                            not missing,
                            m,
                            f"spec.ingress[{i}].ports[{j}].port",
                            f"port {port['port']!r} is not a container port of "
                            + ", ".join(f"{t.kind}/{t.name}" for t in missing),
                        )

    # ------------------------------------------------------------ scaling and disruption

    def on_horizontalpodautoscaler(self, m: Manifest) -> None:
        ref = (m.get("spec") or {}).get("scaleTargetRef") or {}
        target_kind, target = ref.get("kind", ""), ref.get("name", "")
        self.expect(
            target_kind in SCALABLE_KINDS and self.index.get(namespace(m), target_kind, target) is not None,
            m,
            "spec.scaleTargetRef",
            f"{target_kind}/{target} does not exist (or cannot be scaled)",
        )

    def on_poddisruptionbudget(self, m: Manifest) -> None:
        selector = (m.get("spec") or {}).get("selector") or {}
        self.expect(
            not selector_is_empty(selector) and bool(self.index.selected(namespace(m), selector)),
            m,
            "spec.selector",
            f"selects no pods ({_describe(selector)})",
        )

    # ------------------------------------------------------------ RBAC

    def on_rolebinding(self, m: Manifest) -> None:
        role = m.get("roleRef") or {}
        role_kind, role_name = role.get("kind", ""), role.get("name", "")
        exists = self.index.get(namespace(m), role_kind, role_name) is not None or (
            role_kind == "ClusterRole" and role_name in BUILTIN_CLUSTER_ROLES
        )
        self.expect(exists, m, "roleRef", f"{role_kind} '{role_name}' does not exist")
        for i, subject in enumerate(m.get("subjects") or []):
            if subject.get("kind") != "ServiceAccount":
                continue
            ns = subject.get("namespace") or namespace(m)
            self.expect(
                self.index.get(ns, "ServiceAccount", subject.get("name", "")) is not None
                or subject.get("name") == "default",
                m,
                f"subjects{item_ref(subject, i)}",
                f"ServiceAccount '{subject.get('name')}' does not exist in namespace '{ns}'",
            )

    on_clusterrolebinding = on_rolebinding


def _describe(selector: dict[str, Any]) -> str:
    """A label selector in one short line."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    parts += [
        f"{e.get('key')} {e.get('operator')} {e.get('values') or ''}".strip()
        for e in selector.get("matchExpressions") or []
    ]
    return ", ".join(parts) or "empty selector"


def _has_port(tpl: PodTemplate, target: Any, end: Any = None) -> bool:
    """Whether a pod template declares *target* (a port name or number, or a range up to *end*)."""
    for port in tpl.ports():
        if isinstance(target, str) and not target.isdigit():
            if port.get("name") == target:
                return True
        else:
            number = port.get("containerPort")
            low = int(target)
            if number == low or (end is not None and isinstance(number, int) and low <= number <= int(end)):
                return True
    return False


def check_integrity(manifests: Iterable[Manifest], externals: Externals = Externals()) -> Section:
    """Check every cross-object reference of a stack's manifests."""
    return _Checker(list(manifests), externals).run()
