"""RabbitMQ: a StatefulSet importing the derived topology (definitions) at boot, with Prometheus metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import credentials
from infra import labels as lbl
from infra.components import images, kube
from infra.render.rabbitmq import ADMIN_USER, disk_free_limit_bytes, render_definitions
from infra.spec import PlatformSpec, ServiceSpec

AMQP_PORT = 5672
METRICS_PORT = 15692
DATA_DIR = "/var/lib/rabbitmq"
CONF_DIR = "/etc/rabbitmq/conf.d"
DEFINITIONS_DIR = "/etc/rabbitmq/definitions"
PLUGINS_DIR = "/etc/rabbitmq/plugins"


def rabbitmq_conf(storage: str = "2Gi") -> str:
    """``conf.d/10-platform.conf``: listeners, definitions import at boot, console logging, and the
    free-disk alarm sized from the volume (:func:`disk_free_limit_bytes`)."""
    return "\n".join(
        [
            f"listeners.tcp.default = {AMQP_PORT}",
            f"prometheus.tcp.port = {METRICS_PORT}",
            f"load_definitions = {DEFINITIONS_DIR}/definitions.json",
            "log.console = true",
            "log.console.level = info",
            "log.file = false",
            f"disk_free_limit.absolute = {disk_free_limit_bytes(storage)}",
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


def definitions_version(spec: PlatformSpec, users: list[str]) -> str:
    """The definitions with each password replaced by its credential's rotation generation: changes
    exactly when the topology (events, consumers, retry delays), a user or a password does."""
    placeholders = {user: credentials.version(spec, f"rabbitmq/{user}") for user in users}
    return json.dumps(render_definitions(spec, placeholders), sort_keys=True)


class RabbitMQ(pulumi.ComponentResource):
    """StatefulSet + headless Service, Secret ``rabbitmq-definitions``, ``<svc>-rabbitmq`` Secrets.

    Built in named parts: credentials, configuration, server, policies. The broker imports its
    definitions only at boot: they are in the pod template's checksums, so a new event, consumer,
    retry delay, user or rotated password restarts it with them.
    """

    def __init__(self, name: str, args: RabbitMQArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:RabbitMQ", name, None, opts)
        self._name, self._args, self._spec = name, args, args.spec
        self._labels = lbl.labels("rabbitmq", args.spec.stack, "broker")
        self._credentials()
        self._configuration()
        self._service()
        self._server()
        self._policies()
        self.register_outputs({"service": self.service.metadata.name, "host": "rabbitmq", "port": AMQP_PORT})

    def sources_for(self, svc: ServiceSpec) -> list[kube.Source]:
        """The Secret a workload of *svc* reads (``<svc>-rabbitmq``), if it uses the broker."""
        return [self.service_secrets[svc.name]] if svc.name in self.service_secrets else []

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for besides its Secret: the broker with its definitions."""
        return [self.statefulset] if svc.name in self.service_secrets else []

    # ------------------------------------------------------------------ credentials
    def _credentials(self) -> None:
        """A password per broker user; the definitions, ``<svc>-rabbitmq`` and ``rabbitmq-admin`` Secrets."""
        spec, name, child, stack = self._spec, self._name, kube.child(self), self._spec.stack
        users = sorted(s.name for s in spec.services if s.manifest.needs.rabbitmq) + (
            [ADMIN_USER] if self._args.admin else []
        )
        passwords = {
            user: kube.password(
                spec, f"rabbitmq/{user}", f"{name}-{user}-password", child, self._args.password_length
            ).result
            for user in users
        }
        definitions = pulumi.Output.all(*(passwords[u] for u in users)).apply(
            lambda values: json.dumps(
                render_definitions(spec, dict(zip(users, values, strict=True))), indent=2, sort_keys=True
            )
        )
        self.definitions_source = kube.secret(
            f"{name}-definitions",
            "rabbitmq-definitions",
            spec,
            self._labels,
            {"definitions.json": definitions},
            version=definitions_version(spec, users),
            opts=child,
        )
        self.definitions = self.definitions_source.resource
        self.service_secrets: dict[str, kube.Source] = {}
        for user in users:
            if user == ADMIN_USER:
                secret_name, labels = "rabbitmq-admin", self._labels
            else:
                secret_name, labels = f"{user}-rabbitmq", lbl.labels(user, stack, "api")
            secret = kube.secret(
                f"{name}-{user}-credentials",
                secret_name,
                spec,
                labels,
                {"RABBITMQ_USER": user, "RABBITMQ_PASSWORD": passwords[user]},
                version=f"user={user};" + credentials.version(spec, f"rabbitmq/{user}"),
                opts=child,
            )
            if user != ADMIN_USER:
                self.service_secrets[user] = secret

    # ------------------------------------------------------------------ configuration
    def _configuration(self) -> None:
        """``rabbitmq-config``: the conf.d file (listeners, definitions at boot) and enabled plugins."""
        data = {
            "10-platform.conf": rabbitmq_conf(self._spec.config.rabbitmq.storage),
            "enabled_plugins": ENABLED_PLUGINS,
        }
        self.config = kube.config_map(
            f"{self._name}-config", "rabbitmq-config", self._spec, self._labels, data, kube.child(self)
        )
        self.config_map = self.config.resource

    # ------------------------------------------------------------------ server
    def _service(self) -> None:
        """Headless Service ``rabbitmq``: AMQP and the Prometheus plugin's metrics."""
        spec, child = self._spec, kube.child(self)
        selector = lbl.selector_labels("rabbitmq", spec.stack)
        self.service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=kube.meta("rabbitmq", spec, self._labels),
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

    def _server(self) -> None:
        """The StatefulSet: the broker imports its definitions at boot (in the checksums), plugins and
        conf.d from ``rabbitmq-config``, data on a volume claim."""
        spec, cfg = self._spec, self._spec.config.rabbitmq
        selector = lbl.selector_labels("rabbitmq", spec.stack)
        diagnostics = ["rabbitmq-diagnostics", "--quiet"]
        container = kube.container(
            "rabbitmq",
            images.rabbitmq(cfg.version),
            cfg.resources,
            env=[
                {"name": "HOME", "value": DATA_DIR},
                {"name": "RABBITMQ_ENABLED_PLUGINS_FILE", "value": f"{PLUGINS_DIR}/enabled_plugins"},
            ],
            ports=[
                {"name": "amqp", "container_port": AMQP_PORT, "protocol": "TCP"},
                {"name": "prometheus", "container_port": METRICS_PORT, "protocol": "TCP"},
            ],
            startup_probe=kube.exec_probe([*diagnostics, "ping"], period=5, failures=60, timeout=10),
            liveness_probe=kube.exec_probe([*diagnostics, "ping"], period=30, timeout=10),
            readiness_probe=kube.exec_probe([*diagnostics, "check_port_connectivity"], period=10, timeout=10),
            mounts=[
                {"name": "data", "mount_path": DATA_DIR},
                {"name": "config", "mount_path": CONF_DIR, "read_only": True},
                {"name": "plugins", "mount_path": PLUGINS_DIR, "read_only": True},
                {"name": "definitions", "mount_path": DEFINITIONS_DIR, "read_only": True},
            ],
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [container],
            sources=[self.config, self.definitions_source],
            volumes=[
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
            ],
            termination_grace_period_seconds=60,
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{self._name}-statefulset",
            metadata=kube.meta(
                "rabbitmq", spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
            ),
            spec={
                "service_name": "rabbitmq",
                "replicas": 1,
                "selector": {"match_labels": selector},
                "volume_claim_templates": [
                    {
                        "metadata": {"name": "data", "labels": self._labels},
                        "spec": {
                            "access_modes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": cfg.storage}},
                        },
                    }
                ],
                "template": pod.template,
            },
            opts=kube.child(self, depends_on=[*pod.depends_on, self.service]),
        )

    # ------------------------------------------------------------------ policies
    def _policies(self) -> None:
        """AMQP from its service users only; metrics from Prometheus only; no egress."""
        spec = self._spec
        clients = [svc.name for svc in spec.services if svc.manifest.needs.rabbitmq]
        self.policy = kube.network_policy(
            f"{self._name}-netpol",
            "rabbitmq",
            spec,
            self._labels,
            {"match_labels": lbl.selector_labels("rabbitmq", spec.stack)},
            ingress=[
                {"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(AMQP_PORT)},
                {"from": [kube.peer("prometheus", spec)], "ports": kube.ports(METRICS_PORT)},
            ],
            egress=[],
            opts=kube.child(self),
        )
