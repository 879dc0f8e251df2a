"""Redis: a StatefulSet with an ACL file (one user per service), persistence per stack, exporter sidecar."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

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


class Redis(pulumi.ComponentResource):
    """StatefulSet + headless Service, Secret ``redis-acl``, ``<svc>-redis`` Secrets, exporter sidecar."""

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:Redis", name, None, opts)
        spec = args.spec
        cfg = spec.config.redis
        stack = spec.stack
        child = kube.child(self)
        labels = lbl.labels("redis", stack, "cache")
        selector = lbl.selector_labels("redis", stack)

        passwords = {
            user: random.RandomPassword(
                f"{name}-{user}-password", length=args.password_length, special=False, opts=child
            ).result
            for user in redis_users(spec)
        }
        users = sorted(passwords)
        acl = pulumi.Output.all(*(passwords[u] for u in users)).apply(
            lambda values: render_redis_acl(spec, dict(zip(users, values, strict=True)))
        )
        self.acl_secret = k8s.core.v1.Secret(
            f"{name}-acl",
            metadata=kube.meta("redis-acl", spec, labels),
            type="Opaque",
            string_data={"users.acl": acl},
            opts=child,
        )
        self.service_secrets: dict[str, k8s.core.v1.Secret] = {}
        for svc in spec.services:
            if svc.manifest.needs.redis is None:
                continue
            self.service_secrets[svc.name] = k8s.core.v1.Secret(
                f"{name}-{svc.name}-redis",
                metadata=kube.meta(f"{svc.name}-redis", spec, lbl.labels(svc.name, stack, "api")),
                type="Opaque",
                string_data={"REDIS_USER": svc.name, "REDIS_PASSWORD": passwords[svc.name]},
                opts=child,
            )
        exporter_file = passwords[EXPORTER_USER].apply(
            lambda pw: json.dumps({f"redis://localhost:{PORT}": pw}, sort_keys=True)
        )
        self.exporter_secret = k8s.core.v1.Secret(
            f"{name}-exporter",
            metadata=kube.meta("redis-exporter", spec, labels),
            type="Opaque",
            string_data={"password-file.json": exporter_file},
            opts=child,
        )
        conf = render_redis_conf(spec, port=PORT, dir=DATA_DIR, aclfile=f"{ACL_DIR}/users.acl")
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=kube.meta("redis-config", spec, labels),
            data={"redis.conf": conf},
            opts=child,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta("redis", spec, labels),
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
        volumes = [
            {"name": "config", "config_map": {"name": "redis-config"}},
            {"name": "acl", "secret": {"secret_name": "redis-acl", "default_mode": 0o440}},
            {"name": "exporter-secrets", "secret": {"secret_name": "redis-exporter", "default_mode": 0o440}},
            kube.empty_dir("tmp"),
        ]
        sts_spec: dict = {
            "service_name": "redis",
            "replicas": 1,
            "selector": {"match_labels": selector},
        }
        if cfg.persistence == "none":
            # No persistence in this stack: the data directory lives and dies with the pod.
            volumes.append(kube.empty_dir("data", cfg.storage))
        else:
            sts_spec["volume_claim_templates"] = [
                {
                    "metadata": {"name": "data", "labels": labels},
                    "spec": {
                        "access_modes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": cfg.storage}},
                    },
                }
            ]
        checksum = kube.checksum({"redis.conf": conf})
        sts_spec["template"] = {
            "metadata": {"labels": labels, "annotations": {"checksum/config": checksum}},
            "spec": {
                "automount_service_account_token": False,
                "security_context": kube.pod_security(),
                "containers": [
                    {
                        "name": "redis",
                        "image": images.redis(cfg.version),
                        "image_pull_policy": "Always",
                        "command": ["redis-server", f"{CONF_DIR}/redis.conf"],
                        "ports": [{"name": "redis", "container_port": PORT, "protocol": "TCP"}],
                        "resources": kube.resources(cfg.resources),
                        "security_context": kube.container_security(),
                        "startup_probe": kube.tcp_probe("redis", period=2, failures=30),
                        "liveness_probe": kube.tcp_probe("redis"),
                        "readiness_probe": kube.tcp_probe("redis", period=5),
                        "volume_mounts": [
                            {"name": "config", "mount_path": CONF_DIR, "read_only": True},
                            {"name": "acl", "mount_path": ACL_DIR, "read_only": True},
                            {"name": "data", "mount_path": DATA_DIR},
                            {"name": "tmp", "mount_path": "/tmp"},
                        ],
                    },
                    {
                        "name": "exporter",
                        "image": images.image("redis-exporter"),
                        "image_pull_policy": "Always",
                        "args": [
                            f"--redis.addr=redis://localhost:{PORT}",
                            f"--redis.user={EXPORTER_USER}",
                            f"--redis.password-file={EXPORTER_SECRETS}/password-file.json",
                            f"--web.listen-address=:{EXPORTER_PORT}",
                        ],
                        "ports": [{"name": "metrics", "container_port": EXPORTER_PORT, "protocol": "TCP"}],
                        "resources": kube.resources(kube.SMALL),
                        "security_context": kube.container_security(),
                        "liveness_probe": kube.http_probe("/health", "metrics"),
                        "readiness_probe": kube.http_probe("/health", "metrics"),
                        "volume_mounts": [
                            {"name": "exporter-secrets", "mount_path": EXPORTER_SECRETS, "read_only": True}
                        ],
                    },
                ],
                "volumes": volumes,
            },
        }
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=kube.meta("redis", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec=sts_spec,
            opts=kube.child(self, depends_on=[self.acl_secret, self.config_map, self.exporter_secret]),
        )
        clients = [svc.name for svc in spec.services if svc.manifest.needs.redis]
        self.policy = kube.network_policy(
            f"{name}-netpol",
            "redis",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[
                {"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(PORT)},
                {"from": [kube.peer("prometheus", spec)], "ports": kube.ports(EXPORTER_PORT)},
            ],
            egress=[],
            opts=child,
        )
        self.register_outputs({"service": self.service.metadata.name, "host": "redis", "port": PORT})

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for: its credentials and the server with its ACL loaded."""
        if svc.name not in self.service_secrets:
            return []
        return [self.service_secrets[svc.name], self.statefulset]
