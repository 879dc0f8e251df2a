"""RabbitMQ: a StatefulSet importing the derived topology (definitions) at boot, with Prometheus metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import labels as lbl
from infra.components import images, kube
from infra.render.rabbitmq import ADMIN_USER, render_definitions
from infra.spec import PlatformSpec, ServiceSpec

AMQP_PORT = 5672
METRICS_PORT = 15692
DATA_DIR = "/var/lib/rabbitmq"
CONF_DIR = "/etc/rabbitmq/conf.d"
DEFINITIONS_DIR = "/etc/rabbitmq/definitions"
PLUGINS_DIR = "/etc/rabbitmq/plugins"


def rabbitmq_conf() -> str:
    """``conf.d/10-platform.conf``: listeners, definitions import at boot, console logging."""
    return "\n".join(
        [
            f"listeners.tcp.default = {AMQP_PORT}",
            f"prometheus.tcp.port = {METRICS_PORT}",
            f"load_definitions = {DEFINITIONS_DIR}/definitions.json",
            "log.console = true",
            "log.console.level = info",
            "log.file = false",
            "",
        ]
    )


#: Plugins enabled at boot (metrics only; no management UI in the cluster).
ENABLED_PLUGINS = "[rabbitmq_prometheus].\n"


@dataclass(frozen=True)
class RabbitMQArgs:
    """Inputs of :class:`RabbitMQ` (version, storage, retry delays from ``spec.config.rabbitmq``)."""

    spec: PlatformSpec
    #: Length of every generated password ([A-Za-z0-9] only).
    password_length: int = 32
    #: Create an ``admin`` user (administrator tag) with its own Secret ``rabbitmq-admin``.
    admin: bool = True


class RabbitMQ(pulumi.ComponentResource):
    """StatefulSet + headless Service, Secret ``rabbitmq-definitions``, ``<svc>-rabbitmq`` Secrets."""

    def __init__(self, name: str, args: RabbitMQArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:RabbitMQ", name, None, opts)
        spec = args.spec
        cfg = spec.config.rabbitmq
        stack = spec.stack
        child = kube.child(self)
        labels = lbl.labels("rabbitmq", stack, "broker")
        selector = lbl.selector_labels("rabbitmq", stack)

        users = sorted(s.name for s in spec.services if s.manifest.needs.rabbitmq) + (
            [ADMIN_USER] if args.admin else []
        )
        passwords = {
            user: random.RandomPassword(
                f"{name}-{user}-password", length=args.password_length, special=False, opts=child
            ).result
            for user in users
        }
        definitions = pulumi.Output.all(*(passwords[u] for u in users)).apply(
            lambda values: json.dumps(
                render_definitions(spec, dict(zip(users, values, strict=True))), indent=2, sort_keys=True
            )
        )
        self.definitions = k8s.core.v1.Secret(
            f"{name}-definitions",
            metadata=kube.meta("rabbitmq-definitions", spec, labels),
            type="Opaque",
            string_data={"definitions.json": definitions},
            opts=child,
        )
        self.service_secrets: dict[str, k8s.core.v1.Secret] = {}
        for user in users:
            if user == ADMIN_USER:
                secret_name, svc_labels = "rabbitmq-admin", labels
            else:
                secret_name, svc_labels = f"{user}-rabbitmq", lbl.labels(user, stack, "api")
            secret = k8s.core.v1.Secret(
                f"{name}-{user}-credentials",
                metadata=kube.meta(secret_name, spec, svc_labels),
                type="Opaque",
                string_data={"RABBITMQ_USER": user, "RABBITMQ_PASSWORD": passwords[user]},
                opts=child,
            )
            if user != ADMIN_USER:
                self.service_secrets[user] = secret
        config = {"10-platform.conf": rabbitmq_conf(), "enabled_plugins": ENABLED_PLUGINS}
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=kube.meta("rabbitmq-config", spec, labels), data=config, opts=child
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta("rabbitmq", spec, labels),
            spec={
                "cluster_ip": "None",
                "selector": selector,
                "ports": [
                    {"name": "amqp", "port": AMQP_PORT, "target_port": "amqp", "protocol": "TCP"},
                    {
                        "name": "prometheus",
                        "port": METRICS_PORT,
                        "target_port": "prometheus",
                        "protocol": "TCP",
                    },
                ],
            },
            opts=child,
        )
        diagnostics = ["rabbitmq-diagnostics", "--quiet"]
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=kube.meta("rabbitmq", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec={
                "service_name": "rabbitmq",
                "replicas": 1,
                "selector": {"match_labels": selector},
                "volume_claim_templates": [
                    {
                        "metadata": {"name": "data", "labels": labels},
                        "spec": {
                            "access_modes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": cfg.storage}},
                        },
                    }
                ],
                "template": {
                    "metadata": {"labels": labels, "annotations": {"checksum/config": kube.checksum(config)}},
                    "spec": {
                        "automount_service_account_token": False,
                        "security_context": kube.pod_security(),
                        "termination_grace_period_seconds": 60,
                        "containers": [
                            {
                                "name": "rabbitmq",
                                "image": images.rabbitmq(cfg.version),
                                "image_pull_policy": "Always",
                                "env": [
                                    {"name": "HOME", "value": DATA_DIR},
                                    {
                                        "name": "RABBITMQ_ENABLED_PLUGINS_FILE",
                                        "value": f"{PLUGINS_DIR}/enabled_plugins",
                                    },
                                ],
                                "ports": [
                                    {"name": "amqp", "container_port": AMQP_PORT, "protocol": "TCP"},
                                    {"name": "prometheus", "container_port": METRICS_PORT, "protocol": "TCP"},
                                ],
                                "resources": kube.resources(cfg.resources),
                                "security_context": kube.container_security(),
                                "startup_probe": kube.exec_probe(
                                    [*diagnostics, "ping"], period=5, failures=60, timeout=10
                                ),
                                "liveness_probe": kube.exec_probe(
                                    [*diagnostics, "ping"], period=30, timeout=10
                                ),
                                "readiness_probe": kube.exec_probe(
                                    [*diagnostics, "check_port_connectivity"], period=10, timeout=10
                                ),
                                "volume_mounts": [
                                    {"name": "data", "mount_path": DATA_DIR},
                                    {"name": "config", "mount_path": CONF_DIR, "read_only": True},
                                    {"name": "plugins", "mount_path": PLUGINS_DIR, "read_only": True},
                                    {"name": "definitions", "mount_path": DEFINITIONS_DIR, "read_only": True},
                                    {"name": "tmp", "mount_path": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config",
                                "config_map": {
                                    "name": "rabbitmq-config",
                                    "items": [{"key": "10-platform.conf", "path": "10-platform.conf"}],
                                },
                            },
                            {
                                "name": "plugins",
                                "config_map": {
                                    "name": "rabbitmq-config",
                                    "items": [{"key": "enabled_plugins", "path": "enabled_plugins"}],
                                },
                            },
                            {
                                "name": "definitions",
                                "secret": {"secret_name": "rabbitmq-definitions", "default_mode": 0o440},
                            },
                            kube.empty_dir("tmp"),
                        ],
                    },
                },
            },
            opts=kube.child(self, depends_on=[self.definitions, self.config_map]),
        )
        clients = [svc.name for svc in spec.services if svc.manifest.needs.rabbitmq]
        self.policy = kube.network_policy(
            f"{name}-netpol",
            "rabbitmq",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[
                {"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(AMQP_PORT)},
                {"from": [kube.peer("prometheus", spec)], "ports": kube.ports(METRICS_PORT)},
            ],
            egress=[],
            opts=child,
        )
        self.register_outputs({"service": self.service.metadata.name, "host": "rabbitmq", "port": AMQP_PORT})

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for: its credentials and the broker with its definitions."""
        if svc.name not in self.service_secrets:
            return []
        return [self.service_secrets[svc.name], self.statefulset]
