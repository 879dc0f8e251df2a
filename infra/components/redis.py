"""Redis: a StatefulSet with an ACL file (one user per service), persistence per stack, exporter sidecar."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import credentials
from infra import labels as lbl
from infra.components import images, kube
from infra.render.redis import EXPORTER_USER, redis_users, render_redis_acl, render_redis_conf
from infra.spec import PlatformSpec, ServiceSpec

PORT = 6379
EXPORTER_PORT = 9121
CONF_DIR = "/etc/redis/conf"
ACL_DIR = "/etc/redis/acl"
DATA_DIR = "/data"
EXPORTER_SECRETS = "/secrets"


@dataclass(frozen=True)
class RedisArgs:
    """Inputs of :class:`Redis` (version, persistence, sizes from ``spec.config.redis``)."""

    spec: PlatformSpec
    #: Length of every generated password ([A-Za-z0-9] only).
    password_length: int = 32


def acl_version(spec: PlatformSpec) -> str:
    """The ACL file with each password replaced by its credential's rotation generation: changes
    exactly when a user, a rule or a password does (never holds a secret)."""
    return render_redis_acl(
        spec, {user: credentials.version(spec, f"redis/{user}") for user in redis_users(spec)}
    )


class Redis(pulumi.ComponentResource):
    """StatefulSet + headless Service, Secret ``redis-acl``, ``<svc>-redis`` Secrets, exporter sidecar.

    Built in named parts: credentials, configuration, server, policies. Redis reads its ACL file and
    redis.conf only at start: both are in the pod template's checksums, so a new service user, a
    changed rule or a rotated password restarts it with them.
    """

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:Redis", name, None, opts)
        self._name, self._args, self._spec = name, args, args.spec
        self._labels = lbl.labels("redis", args.spec.stack, "cache")
        self._credentials()
        self._configuration()
        self._service()
        self._server()
        self._policies()
        self.register_outputs({"service": self.service.metadata.name, "host": "redis", "port": PORT})

    def sources_for(self, svc: ServiceSpec) -> list[kube.Source]:
        """The Secret a workload of *svc* reads (``<svc>-redis``), if it uses Redis."""
        return [self.service_secrets[svc.name]] if svc.name in self.service_secrets else []

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for besides its Secret: the server with its ACL loaded."""
        return [self.statefulset] if svc.name in self.service_secrets else []

    # ------------------------------------------------------------------ credentials
    def _credentials(self) -> None:
        """One password per ACL user; Secrets ``redis-acl``, ``<svc>-redis``, ``redis-exporter``."""
        spec, name, child = self._spec, self._name, kube.child(self)
        users = redis_users(spec)
        passwords = {
            user: kube.password(
                spec, f"redis/{user}", f"{name}-{user}-password", child, self._args.password_length
            ).result
            for user in users
        }
        acl = pulumi.Output.all(*(passwords[u] for u in users)).apply(
            lambda values: render_redis_acl(spec, dict(zip(users, values, strict=True)))
        )
        self.acl = kube.secret(
            f"{name}-acl",
            "redis-acl",
            spec,
            self._labels,
            {"users.acl": acl},
            version=acl_version(spec),
            opts=child,
        )
        self.acl_secret = self.acl.resource
        self.service_secrets: dict[str, kube.Source] = {}
        for svc in spec.services:
            if svc.manifest.needs.redis is None:
                continue
            self.service_secrets[svc.name] = kube.secret(
                f"{name}-{svc.name}-redis",
                f"{svc.name}-redis",
                spec,
                lbl.labels(svc.name, spec.stack, "api"),
                {"REDIS_USER": svc.name, "REDIS_PASSWORD": passwords[svc.name]},
                version=f"user={svc.name};" + credentials.version(spec, f"redis/{svc.name}"),
                opts=child,
            )
        exporter_file = passwords[EXPORTER_USER].apply(
            lambda pw: json.dumps({f"redis://localhost:{PORT}": pw}, sort_keys=True)
        )
        self.exporter = kube.secret(
            f"{name}-exporter",
            "redis-exporter",
            spec,
            self._labels,
            {"password-file.json": exporter_file},
            version=f"redis://localhost:{PORT};" + credentials.version(spec, f"redis/{EXPORTER_USER}"),
            opts=child,
        )

    # ------------------------------------------------------------------ configuration
    def _configuration(self) -> None:
        """``redis-config``: redis.conf (persistence, maxmemory, the ACL file's path)."""
        conf = render_redis_conf(self._spec, port=PORT, dir=DATA_DIR, aclfile=f"{ACL_DIR}/users.acl")
        self.config = kube.config_map(
            f"{self._name}-config",
            "redis-config",
            self._spec,
            self._labels,
            {"redis.conf": conf},
            kube.child(self),
        )

    # ------------------------------------------------------------------ server
    def _service(self) -> None:
        """Headless Service ``redis``: the server's port and the exporter's metrics."""
        spec, child = self._spec, kube.child(self)
        selector = lbl.selector_labels("redis", spec.stack)
        self.service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=kube.meta("redis", spec, self._labels),
            spec={
                "cluster_ip": "None",
                "selector": selector,
                "ports": [
                    {"name": "redis", "port": PORT, "target_port": "redis", "protocol": "TCP"},
                    {"name": "metrics", "port": EXPORTER_PORT, "target_port": "metrics", "protocol": "TCP"},
                ],
            },
            opts=child,
        )

    def _server(self) -> None:
        """The StatefulSet: redis-server on redis.conf and the ACL file (both read at start, both in
        the checksums), the exporter sidecar, a volume claim unless the stack keeps no data."""
        spec, cfg = self._spec, self._spec.config.redis
        selector = lbl.selector_labels("redis", spec.stack)
        volumes = [
            {"name": "config", "config_map": {"name": "redis-config"}},
            {"name": "acl", "secret": {"secret_name": "redis-acl", "default_mode": 0o440}},
            {"name": "exporter-secrets", "secret": {"secret_name": "redis-exporter", "default_mode": 0o440}},
        ]
        sts_spec: dict = {"service_name": "redis", "replicas": 1, "selector": {"match_labels": selector}}
        if cfg.persistence == "none":
            # No persistence in this stack: the data directory lives and dies with the pod.
            volumes.append(kube.empty_dir("data", cfg.storage))
        else:
            sts_spec["volume_claim_templates"] = [
                {
                    "metadata": {"name": "data", "labels": self._labels},
                    "spec": {
                        "access_modes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": cfg.storage}},
                    },
                }
            ]
        server = kube.container(
            "redis",
            images.redis(cfg.version),
            cfg.resources,
            command=["redis-server", f"{CONF_DIR}/redis.conf"],
            ports=[{"name": "redis", "container_port": PORT, "protocol": "TCP"}],
            startup_probe=kube.tcp_probe("redis", period=2, failures=30),
            liveness_probe=kube.tcp_probe("redis"),
            readiness_probe=kube.tcp_probe("redis", period=5),
            mounts=[
                {"name": "config", "mount_path": CONF_DIR, "read_only": True},
                {"name": "acl", "mount_path": ACL_DIR, "read_only": True},
                {"name": "data", "mount_path": DATA_DIR},
            ],
        )
        exporter = kube.container(
            "exporter",
            images.image("redis-exporter"),
            kube.SMALL,
            args=[
                f"--redis.addr=redis://localhost:{PORT}",
                f"--redis.user={EXPORTER_USER}",
                f"--redis.password-file={EXPORTER_SECRETS}/password-file.json",
                f"--web.listen-address=:{EXPORTER_PORT}",
            ],
            ports=[{"name": "metrics", "container_port": EXPORTER_PORT, "protocol": "TCP"}],
            liveness_probe=kube.http_probe("/health", "metrics"),
            readiness_probe=kube.http_probe("/health", "metrics"),
            mounts=[{"name": "exporter-secrets", "mount_path": EXPORTER_SECRETS, "read_only": True}],
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [server, exporter],
            sources=[self.config, self.acl, self.exporter],
            volumes=volumes,
        )
        sts_spec["template"] = pod.template
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{self._name}-statefulset",
            metadata=kube.meta("redis", spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec=sts_spec,
            opts=kube.child(self, depends_on=[*pod.depends_on, self.service]),
        )

    # ------------------------------------------------------------------ policies
    def _policies(self) -> None:
        """Redis from its service users only; metrics from Prometheus only; no egress."""
        spec = self._spec
        clients = [svc.name for svc in spec.services if svc.manifest.needs.redis]
        self.policy = kube.network_policy(
            f"{self._name}-netpol",
            "redis",
            spec,
            self._labels,
            {"match_labels": lbl.selector_labels("redis", spec.stack)},
            ingress=[
                {"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(PORT)},
                {"from": [kube.peer("prometheus", spec)], "ports": kube.ports(EXPORTER_PORT)},
            ],
            egress=[],
            opts=kube.child(self),
        )
