"""FastApiService: one tenant service as a hardened Deployment with everything around it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import labels as lbl
from infra.components import kube
from infra.components.image import pinned_reference, service_image
from infra.spec import PlatformSpec, ServiceSpec

#: Ports of the backing services (docs/architecture.md).
POSTGRES_PORT = 5432
REDIS_PORT = 6379
RABBITMQ_PORT = 5672
RABBITMQ_VHOST = "market"
JWT_AUDIENCE = "marketplace"
#: Secrets of the token keys (created by infra.components.secrets.SharedSecrets).
JWT_SIGNING_SECRET = "jwt-signing"
JWT_PUBLIC_SECRET = "jwt-public-keys"


def config_data(spec: PlatformSpec, svc: ServiceSpec) -> dict[str, str]:
    """The ``<svc>-config`` ConfigMap: exactly the non-secret variables of docs/architecture.md."""
    cfg = spec.config
    needs = svc.manifest.needs
    data = {
        "SERVICE_NAME": svc.name,
        "ENVIRONMENT": cfg.environment,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "CORS_ORIGINS": ",".join(cfg.gateway.cors_origins),
        "JWT_ISSUER": f"https://{cfg.domain}/api/auth",
        "JWT_AUDIENCE": JWT_AUDIENCE,
        "SECRETS_DIR": SECRETS_DIR,
    }
    if needs.postgres:
        data |= {"POSTGRES_HOST": "postgres", "POSTGRES_PORT": str(POSTGRES_PORT)}
        data["POSTGRES_DB"] = needs.postgres.database
    if needs.redis:
        data |= {"REDIS_HOST": "redis", "REDIS_PORT": str(REDIS_PORT), "REDIS_DB": str(needs.redis.db)}
    if needs.rabbitmq:
        data |= {"RABBITMQ_HOST": "rabbitmq", "RABBITMQ_PORT": str(RABBITMQ_PORT)}
        data["RABBITMQ_VHOST"] = RABBITMQ_VHOST
        data["RABBITMQ_RETRY_DELAYS_MS"] = ",".join(str(d) for d in cfg.rabbitmq.retry_delays_ms)
    return {**data, **svc.env}


#: Where every service's credentials are mounted; servicekit reads files here (``SECRETS_DIR``).
SECRETS_DIR = "/var/run/secrets/platform"


def secret_files(svc: ServiceSpec) -> dict[str, list[str]]:
    """Secret name -> keys the service needs; each key is named like the variable it feeds.

    Every service verifies tokens (``jwt-public-keys``); only the issuer can sign (``jwt-signing``).
    """
    needs = svc.manifest.needs
    result: dict[str, list[str]] = {JWT_PUBLIC_SECRET: ["JWT_PUBLIC_KEYS"]}
    if svc.manifest.issues_tokens:
        result[JWT_SIGNING_SECRET] = ["JWT_SIGNING_KEY"]
    if svc.manifest.secrets:
        result[f"{svc.name}-keys"] = list(svc.manifest.secrets)
    if needs.postgres:
        result[f"{svc.name}-db"] = ["POSTGRES_USER", "POSTGRES_PASSWORD"]
    if needs.redis:
        result[f"{svc.name}-redis"] = ["REDIS_USER", "REDIS_PASSWORD"]
    if needs.rabbitmq:
        result[f"{svc.name}-rabbitmq"] = ["RABBITMQ_USER", "RABBITMQ_PASSWORD"]
    return result


def secrets_volume(svc: ServiceSpec) -> dict:
    """A read-only projected volume of the service's credentials, one file per variable.

    Files rather than environment variables: they never show up in ``/proc/<pid>/environ``, crash
    dumps or ``kubectl describe``, and rotate without restarting the pod.
    """
    sources = [
        {"secret": {"name": name, "items": [{"key": key, "path": key} for key in keys]}}
        for name, keys in secret_files(svc).items()
    ]
    return {"name": "secrets", "projected": {"default_mode": 0o440, "sources": sources}}


def migration_secrets_volume(svc: ServiceSpec) -> dict:
    """The ``<svc>-migrate`` Job's credentials: only its database role (``<svc>-db``).

    Redis, RabbitMQ, the token keys and the service's own keys stay out of a pod that only runs
    ``alembic upgrade``.
    """
    keys = secret_files(svc)[f"{svc.name}-db"]
    sources = [{"secret": {"name": f"{svc.name}-db", "items": [{"key": k, "path": k} for k in keys]}}]
    return {"name": "secrets", "projected": {"default_mode": 0o440, "sources": sources}}


def backends(svc: ServiceSpec) -> list[tuple[str, int]]:
    """(component name, port) of every backing service the manifest needs, in a fixed order."""
    needs = svc.manifest.needs
    result = []
    if needs.postgres:
        result.append(("postgres", POSTGRES_PORT))
    if needs.redis:
        result.append(("redis", REDIS_PORT))
    if needs.rabbitmq:
        result.append(("rabbitmq", RABBITMQ_PORT))
    return result


@dataclass(frozen=True)
class FastApiServiceArgs:
    """Inputs of :class:`FastApiService`."""

    spec: PlatformSpec
    service: ServiceSpec
    #: Pinned image reference; ``None`` builds and pushes ``services/<name>/Dockerfile`` (pulumi_docker).
    image: pulumi.Input[str] | None = None
    #: Run ``alembic upgrade head`` in a ``<svc>-migrate`` Job before the Deployment (only with Postgres).
    migrate: bool = True
    #: Digest of the published token keys and the signing key's name: pods read them at boot, so a
    #: change (a rotation step) rolls them (``checksum/token-keys``).
    token_keys_checksum: pulumi.Input[str] | None = None
    #: Who may call the service on its http port (component names; Prometheus scrapes the same port).
    callers: Sequence[str] = ("gateway", "prometheus")
    #: Resources the migration Job (and so the Deployment) waits for: databases, roles, Secrets.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    #: Seconds the startup probe allows before liveness takes over (30 x 2 s).
    startup_failures: int = 30


class FastApiService(pulumi.ComponentResource):
    """Deployment + Service + ServiceAccount + ConfigMap + HPA + PDB + NetworkPolicies + migration Job."""

    def __init__(
        self, name: str, args: FastApiServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:workload:FastApiService", name, None, opts)
        spec, svc = args.spec, args.service
        svc_name = svc.name
        overrides = svc.overrides
        labels = lbl.labels(svc_name, spec.stack, "api")
        selector = lbl.selector_labels(svc_name, spec.stack)
        child = kube.child(self)
        port = svc.manifest.port

        if args.image is None:
            self.image_resource = service_image(f"{name}-image", spec, svc, child)
            image: pulumi.Input[str] = pinned_reference(self.image_resource)
        else:
            self.image_resource = None
            image = args.image
        self.image = pulumi.Output.from_input(image)

        data = config_data(spec, svc)
        self.keys = None
        if svc.manifest.secrets:
            generated = {
                key: random.RandomPassword(f"{name}-key-{key.lower()}", length=48, special=False, opts=child)
                for key in svc.manifest.secrets
            }
            self.keys = k8s.core.v1.Secret(
                f"{name}-keys",
                metadata=kube.meta(f"{svc_name}-keys", spec, labels),
                type="Opaque",
                string_data={key: password.result for key, password in generated.items()},
                opts=child,
            )
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=kube.meta(f"{svc_name}-config", spec, labels), data=data, opts=child
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=kube.meta(svc_name, spec, labels),
            automount_service_account_token=False,
            opts=child,
        )
        env_from = [{"config_map_ref": {"name": f"{svc_name}-config"}}]
        volumes = [kube.empty_dir("tmp"), secrets_volume(svc)]
        mounts = [
            {"name": "tmp", "mount_path": "/tmp"},
            {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
        ]
        container_security = kube.container_security()

        migrate_deps: list[pulumi.Resource] = [self.config_map, *args.depends_on]
        skips = kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
        self.migration = None
        if args.migrate and svc.manifest.needs.postgres:
            migrate_name = f"{svc_name}-migrate"
            migrate_labels = lbl.labels(migrate_name, spec.stack, "api")
            self.migration_policy = kube.network_policy(
                f"{name}-migrate-netpol",
                migrate_name,
                spec,
                migrate_labels,
                {"match_labels": lbl.selector_labels(migrate_name, spec.stack)},
                ingress=[],
                egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(POSTGRES_PORT)}],
                opts=child,
            )
            self.migration = k8s.batch.v1.Job(
                f"{name}-migrate",
                metadata=kube.meta(migrate_name, spec, migrate_labels, skips),
                spec={
                    "backoff_limit": 3,
                    "active_deadline_seconds": 600,
                    "template": {
                        "metadata": {"labels": migrate_labels},
                        "spec": {
                            "restart_policy": "Never",
                            "service_account_name": svc_name,
                            "automount_service_account_token": False,
                            "security_context": kube.pod_security(),
                            "containers": [
                                {
                                    "name": "migrate",
                                    "image": image,
                                    "image_pull_policy": "Always",
                                    "command": ["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
                                    "env_from": env_from,
                                    "resources": kube.resources(svc.resources),
                                    "security_context": container_security,
                                    "volume_mounts": mounts,
                                }
                            ],
                            "volumes": [kube.empty_dir("tmp"), migration_secrets_volume(svc)],
                        },
                    },
                },
                opts=kube.child(
                    self, depends_on=[*migrate_deps, self.service_account, self.migration_policy]
                ),
            )

        checksum = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        annotations: dict[str, pulumi.Input[str]] = {"checksum/config": checksum}
        if args.token_keys_checksum is not None:
            annotations["checksum/token-keys"] = args.token_keys_checksum
        deployment_spec: dict = {
            "selector": {"match_labels": selector},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "service_account_name": svc_name,
                    "automount_service_account_token": False,
                    "security_context": kube.pod_security(),
                    "topology_spread_constraints": kube.topology_spread(selector),
                    "termination_grace_period_seconds": 30,
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "image_pull_policy": "Always",
                            "ports": [{"name": "http", "container_port": port, "protocol": "TCP"}],
                            "env_from": env_from,
                            "resources": kube.resources(svc.resources),
                            "security_context": container_security,
                            "startup_probe": kube.http_probe(
                                "/healthz", "http", period=2, failures=args.startup_failures
                            ),
                            "liveness_probe": kube.http_probe("/healthz", "http"),
                            "readiness_probe": kube.http_probe("/readyz", "http", period=5),
                            "volume_mounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        }
        if overrides.autoscale is None:
            # With an HPA the replica count belongs to the autoscaler; setting it here would fight it.
            deployment_spec["replicas"] = overrides.replicas
        deps: list[pulumi.Resource] = [self.config_map, self.service_account, *args.depends_on]
        if self.keys is not None:
            deps.append(self.keys)
        if self.migration is not None:
            deps.append(self.migration)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=kube.meta(svc_name, spec, labels, skips),
            spec=deployment_spec,
            opts=kube.child(self, depends_on=deps),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta(svc_name, spec, labels),
            spec={
                "type": "ClusterIP",
                "selector": self.deployment.spec.selector.match_labels,
                "ports": [{"name": "http", "port": port, "target_port": "http", "protocol": "TCP"}],
            },
            opts=child,
        )
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=kube.meta(svc_name, spec, labels),
            spec={
                "max_unavailable": 1,
                "selector": {"match_labels": self.deployment.spec.selector.match_labels},
            },
            opts=child,
        )
        self.hpa = None
        if overrides.autoscale is not None:
            scale = overrides.autoscale
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=kube.meta(svc_name, spec, labels),
                spec={
                    "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": svc_name},
                    "min_replicas": scale.min,
                    "max_replicas": scale.max,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "average_utilization": scale.cpu_percent},
                            },
                        }
                    ],
                },
                opts=kube.child(self, depends_on=[self.deployment]),
            )
        self.ingress_policy = kube.network_policy(
            f"{name}-allow-ingress",
            f"{svc_name}-allow-ingress",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer(c, spec) for c in args.callers], "ports": kube.ports(port)}],
            opts=child,
        )
        self.egress_policy = kube.network_policy(
            f"{name}-allow-egress",
            f"{svc_name}-allow-egress",
            spec,
            labels,
            {"match_labels": selector},
            egress=[{"to": [kube.peer(b, spec)], "ports": kube.ports(p)} for b, p in backends(svc)],
            opts=child,
        )
        self.register_outputs(
            {
                "image": self.image,
                "deployment": self.deployment.metadata.name,
                "service": self.service.metadata.name,
            }
        )
