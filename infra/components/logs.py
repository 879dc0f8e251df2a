"""Centralized logs: Loki (StatefulSet) and Promtail (DaemonSet) shipping the namespace's pod logs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import labels as lbl
from infra.components import images, kube
from infra.render.loki import LOKI_PORT, PROMTAIL_PORT, render_loki_config, render_promtail_config
from infra.spec import PlatformSpec

POD_LOGS = "/var/log/pods"


def _yaml(data: object) -> str:
    """YAML for a ConfigMap, with libyaml's emitter when PyYAML has it (same documents, ~6x faster)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=True, default_flow_style=False)


@dataclass(frozen=True)
class LoggingArgs:
    """Inputs of :class:`Logging` (retention and storage from ``spec.config.logging``)."""

    spec: PlatformSpec
    #: Group that may read kubelet pod logs (files are 0640 root:root); granted as a supplemental group,
    #: so Promtail reads logs without running as root.
    log_reader_group: int = 0


class Logging(pulumi.ComponentResource):
    """Loki StatefulSet + Service ``loki``; Promtail DaemonSet + Service ``promtail`` (metrics) in the
    logs namespace (its hostPath is refused by the stack namespace's Pod Security level), with a Role
    to discover the stack's pods.

    Built in named parts: loki, promtail.
    """

    def __init__(self, name: str, args: LoggingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:observability:Logging", name, None, opts)
        self._name, self._args, self._spec = name, args, args.spec
        self.loki_url = f"http://loki:{LOKI_PORT}"
        self._loki()
        self._promtail()
        self.register_outputs({"loki_url": self.loki_url})

    # ------------------------------------------------------------------ loki
    def _loki(self) -> None:
        """Loki: StatefulSet with its volume claim, Service ``loki``, NetworkPolicy."""
        spec, name, child = self._spec, self._name, kube.child(self)
        labels = lbl.labels("loki", spec.stack, "logging")
        selector = lbl.selector_labels("loki", spec.stack)
        data = {"config.yaml": _yaml(render_loki_config(spec, data_dir="/loki", port=LOKI_PORT))}
        config = kube.config_map(f"{name}-loki-config", "loki-config", spec, labels, data, child)
        loki = kube.container(
            "loki",
            images.image("loki"),
            kube.MEDIUM,
            args=["-config.file=/etc/loki/config.yaml"],
            ports=[{"name": "http", "container_port": LOKI_PORT, "protocol": "TCP"}],
            startup_probe=kube.http_probe("/ready", "http", period=5, failures=60),
            liveness_probe=kube.http_probe("/ready", "http", period=15, failures=5),
            readiness_probe=kube.http_probe("/ready", "http", period=5),
            mounts=[
                {"name": "config", "mount_path": "/etc/loki", "read_only": True},
                {"name": "data", "mount_path": "/loki"},
            ],
        )
        pod = kube.pod_template(
            spec,
            labels,
            [loki],
            sources=[config],
            volumes=[{"name": "config", "config_map": {"name": "loki-config"}}],
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-loki",
            metadata=kube.meta("loki", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec={
                "service_name": "loki",
                "replicas": 1,
                "selector": {"match_labels": selector},
                "volume_claim_templates": [
                    {
                        "metadata": {"name": "data", "labels": labels},
                        "spec": {
                            "access_modes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": spec.config.logging.storage}},
                        },
                    }
                ],
                "template": pod.template,
            },
            opts=kube.child(self, depends_on=list(pod.depends_on)),
        )
        k8s.core.v1.Service(
            f"{name}-loki-service",
            metadata=kube.meta("loki", spec, labels),
            spec={
                "selector": selector,
                "ports": [{"name": "http", "port": LOKI_PORT, "target_port": "http", "protocol": "TCP"}],
            },
            opts=child,
        )
        logs = spec.config.logs_namespace
        kube.network_policy(
            f"{name}-loki-netpol",
            "loki",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[
                {
                    "from": [
                        kube.peer("promtail", spec, namespace=logs),
                        kube.peer("grafana", spec),
                        kube.peer("prometheus", spec),
                    ],
                    "ports": kube.ports(LOKI_PORT),
                }
            ],
            egress=[],
            opts=child,
        )

    # ------------------------------------------------------------------ promtail
    def _promtail(self) -> None:
        """Promtail in the logs namespace: ships the stack namespace's pod logs to Loki."""
        spec, name, child, args = self._spec, self._name, kube.child(self), self._args
        stack, ns, logs = spec.stack, spec.config.namespace, spec.config.logs_namespace
        labels = lbl.labels("promtail", stack, "logging")
        selector = lbl.selector_labels("promtail", stack)
        loki_url = f"http://loki.{ns}.svc.cluster.local:{LOKI_PORT}"
        data = {
            "promtail.yaml": _yaml(
                render_promtail_config(
                    spec, loki_url, positions_file="/run/promtail/positions.yaml", port=PROMTAIL_PORT
                )
            )
        }
        config = kube.config_map(
            f"{name}-promtail-config", "promtail-config", spec, labels, data, child, namespace=logs
        )
        access = self._promtail_access(labels)
        pod_security = kube.pod_security(fs_group=None)
        pod_security["supplemental_groups"] = [args.log_reader_group]
        promtail = kube.container(
            "promtail",
            images.image("promtail"),
            kube.SMALL,
            args=["-config.file=/etc/promtail/promtail.yaml"],
            env=[{"name": "HOSTNAME", "value_from": {"field_ref": {"field_path": "spec.nodeName"}}}],
            ports=[{"name": "http-metrics", "container_port": PROMTAIL_PORT, "protocol": "TCP"}],
            liveness_probe=kube.http_probe("/ready", "http-metrics", period=15, failures=5),
            readiness_probe=kube.http_probe("/ready", "http-metrics", period=5),
            mounts=[
                {"name": "config", "mount_path": "/etc/promtail", "read_only": True},
                {"name": "positions", "mount_path": "/run/promtail"},
                {"name": "pod-logs", "mount_path": POD_LOGS, "read_only": True},
                {"name": "token", "mount_path": kube.SA_TOKEN_DIR, "read_only": True},
            ],
        )
        pod = kube.pod_template(
            spec,
            labels,
            [promtail],
            sources=[config],
            volumes=[
                {"name": "config", "config_map": {"name": "promtail-config"}},
                # Positions are per pod: after a restart Promtail re-reads from the start of each file
                # and Loki drops the duplicates it already holds.
                kube.empty_dir("positions", "16Mi"),
                # Read-only kubelet pod logs: the one thing a log shipper must see.
                {"name": "pod-logs", "host_path": {"path": POD_LOGS, "type": "Directory"}},
                kube.service_account_token_volume("token"),
            ],
            security=pod_security,
            # A public image; the stack's pull Secret lives in the stack's namespace.
            pull_secret=False,
            service_account_name="promtail",
        )
        k8s.apps.v1.DaemonSet(
            f"{name}-promtail",
            metadata=kube.meta(
                "promtail", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST), namespace=logs
            ),
            spec={
                "selector": {"match_labels": selector},
                "update_strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1}},
                "template": pod.template,
            },
            opts=kube.child(self, depends_on=[*pod.depends_on, *access]),
        )
        self._promtail_exposure(labels, selector)

    def _promtail_access(self, labels: dict) -> list[pulumi.Resource]:
        """ServiceAccount ``promtail`` (logs namespace) and a Role in the stack's namespace to discover
        its pods: a Role there, not a ClusterRole."""
        spec, name, child = self._spec, self._name, kube.child(self)
        logs = spec.config.logs_namespace
        account = k8s.core.v1.ServiceAccount(
            f"{name}-promtail-sa",
            metadata=kube.meta("promtail", spec, labels, namespace=logs),
            automount_service_account_token=False,
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-promtail-role",
            metadata=kube.meta("promtail", spec, labels),
            rules=[{"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-promtail-binding",
            metadata=kube.meta("promtail", spec, labels),
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": "promtail"},
            subjects=[{"kind": "ServiceAccount", "name": "promtail", "namespace": logs}],
            opts=child,
        )
        return [account, role, binding]

    def _promtail_exposure(self, labels: dict, selector: dict) -> None:
        """Service ``promtail`` (its metrics, the gateway's access-log counters) and its policy: in from
        Prometheus, out to Loki and the API server only."""
        spec, name, child = self._spec, self._name, kube.child(self)
        ns, logs = spec.config.namespace, spec.config.logs_namespace
        k8s.core.v1.Service(
            f"{name}-promtail-service",
            metadata=kube.meta("promtail", spec, labels, namespace=logs),
            spec={
                "selector": selector,
                "ports": [
                    {
                        "name": "http-metrics",
                        "port": PROMTAIL_PORT,
                        "target_port": "http-metrics",
                        "protocol": "TCP",
                    }
                ],
            },
            opts=child,
        )
        kube.network_policy(
            f"{name}-promtail-netpol",
            "promtail",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[
                {"from": [kube.peer("prometheus", spec, namespace=ns)], "ports": kube.ports(PROMTAIL_PORT)}
            ],
            egress=[
                {"to": [kube.peer("loki", spec, namespace=ns)], "ports": kube.ports(LOKI_PORT)},
                kube.api_server_egress(spec),
            ],
            namespace=logs,
            opts=child,
        )
