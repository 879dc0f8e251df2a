"""FastApiService: one tenant service as a hardened Deployment with everything around it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra import credentials
from infra import labels as lbl
from infra.components import kube
from infra.components.image import pinned_reference, service_image
from infra.components.secrets import JWT_PUBLIC_SECRET, JWT_SIGNING_SECRET
from infra.environment import POSTGRES_PORT, RABBITMQ_PORT, REDIS_PORT, Endpoints, service_environment
from infra.spec import PlatformSpec, ServiceSpec


def config_data(spec: PlatformSpec, svc: ServiceSpec) -> dict[str, str]:
    """The ``<svc>-config`` ConfigMap: the environment contract (:mod:`infra.environment`) in-cluster."""
    return service_environment(spec, svc, Endpoints.kubernetes(spec, SECRETS_DIR))


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
    #: The credential Secrets of :func:`secret_files` as the pods read them (``jwt-public-keys``,
    #: ``jwt-signing``, ``<svc>-db``, ``<svc>-redis``, ``<svc>-rabbitmq``), from the components that
    #: create them; the service picks those it mounts (``<svc>-keys`` it creates itself).
    secrets: Sequence[kube.Source] = ()
    #: Pinned image reference; ``None`` builds and pushes ``services/<name>/Dockerfile`` (pulumi_docker).
    image: pulumi.Input[str] | None = None
    #: Run ``alembic upgrade head`` in a ``<svc>-migrate`` Job before the Deployment (only with Postgres).
    migrate: bool = True
    #: Who may call the service on its http port (component names; Prometheus scrapes the same port).
    callers: Sequence[str] = ("gateway", "prometheus")
    #: What the migration Job (and so the Deployment) waits for besides its Secrets: the Job creating
    #: its database and role, the data stores with their users loaded.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    #: Seconds the startup probe allows before liveness takes over (30 x 2 s).
    startup_failures: int = 30


class FastApiService(pulumi.ComponentResource):
    """Deployment + Service + ServiceAccount + ConfigMap + HPA + PDB + NetworkPolicies + migration Job.

    Built in named parts: image, configuration, migration, workload, exposure, policies.
    """

    def __init__(
        self, name: str, args: FastApiServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:workload:FastApiService", name, None, opts)
        self._name, self._args = name, args
        self._spec, self._svc = args.spec, args.service
        self._labels = lbl.labels(args.service.name, args.spec.stack, "api")
        self._selector = lbl.selector_labels(args.service.name, args.spec.stack)
        self.image = self._image()
        self.config, self.service_account = self._configuration()
        self.keys = self._own_keys()
        self.migration = self._migration()
        self.deployment = self._workload()
        self.service, self.pdb, self.hpa = self._exposure()
        self._policies()
        self.register_outputs(
            {
                "image": self.image,
                "deployment": self.deployment.metadata.name,
                "service": self.service.metadata.name,
            }
        )

    def _child(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return kube.child(self, depends_on=list(depends_on)) if depends_on else kube.child(self)

    # ------------------------------------------------------------------ image
    def _image(self) -> pulumi.Output[str]:
        """The pinned image: built and pushed from the service's Dockerfile unless one is given."""
        if self._args.image is not None:
            self.image_resource = None
            return pulumi.Output.from_input(self._args.image)
        self.image_resource = service_image(f"{self._name}-image", self._spec, self._svc, self._child())
        return pinned_reference(self.image_resource)

    # ------------------------------------------------------------------ configuration
    def _configuration(self) -> tuple[kube.Source, k8s.core.v1.ServiceAccount]:
        """The ``<svc>-config`` ConfigMap (the environment contract) and the pods' ServiceAccount."""
        svc_name = self._svc.name
        config = kube.config_map(
            f"{self._name}-config",
            f"{svc_name}-config",
            self._spec,
            self._labels,
            config_data(self._spec, self._svc),
            self._child(),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-serviceaccount",
            metadata=kube.meta(svc_name, self._spec, self._labels),
            automount_service_account_token=False,
            opts=self._child(),
        )
        return config, account

    def _own_keys(self) -> kube.Source | None:
        """``<svc>-keys``: the keys the manifest declares under ``secrets`` (e.g. payment-svc's
        ``FINGERPRINT_KEY``), one generated value each, kept in the stack's state."""
        svc = self._svc
        if not svc.manifest.secrets:
            return None
        names = [credentials.service_key(svc.name, key) for key in svc.manifest.secrets]
        generated = {
            key: kube.password(self._spec, name, f"{self._name}-key-{key.lower()}", self._child(), 48)
            for key, name in zip(svc.manifest.secrets, names, strict=True)
        }
        return kube.secret(
            f"{self._name}-keys",
            f"{svc.name}-keys",
            self._spec,
            self._labels,
            {key: password.result for key, password in generated.items()},
            version=credentials.version(self._spec, *names),
            opts=self._child(),
        )

    def _sources(self, *names: str) -> list[kube.Source]:
        own = [self.keys] if self.keys is not None else []
        by_name = {s.name: s for s in [*self._args.secrets, *own]}
        return [self.config, *(by_name[n] for n in names if n in by_name)]

    # ------------------------------------------------------------------ migration
    def _migration(self) -> k8s.batch.v1.Job | None:
        """``<svc>-migrate``: ``alembic upgrade head`` before the Deployment, replaced when unready.

        Its pod template carries the image and the checksums of what it reads, so a new image (or a
        rotated database password) replaces the Job - Job templates are immutable - and it runs again.
        """
        spec, svc = self._spec, self._svc
        if not (self._args.migrate and svc.manifest.needs.postgres):
            return None
        migrate_name = f"{svc.name}-migrate"
        migrate_labels = lbl.labels(migrate_name, spec.stack, "api")
        policy = kube.network_policy(
            f"{self._name}-migrate-netpol",
            migrate_name,
            spec,
            migrate_labels,
            {"match_labels": lbl.selector_labels(migrate_name, spec.stack)},
            ingress=[],
            egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(POSTGRES_PORT)}],
            opts=self._child(),
        )
        container = kube.container(
            "migrate",
            self.image,
            svc.resources,
            command=["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
            env_from=[{"config_map_ref": {"name": f"{svc.name}-config"}}],
            mounts=[{"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True}],
        )
        pod = kube.pod_template(
            spec,
            migrate_labels,
            [container],
            sources=self._sources(f"{svc.name}-db"),
            volumes=[migration_secrets_volume(svc)],
            restart_policy="Never",
            service_account_name=svc.name,
        )
        skips = kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
        return k8s.batch.v1.Job(
            f"{self._name}-migrate",
            metadata=kube.meta(migrate_name, spec, migrate_labels, {**kube.REPLACE_UNREADY, **skips}),
            spec={"backoff_limit": 3, "active_deadline_seconds": 600, "template": pod.template},
            opts=self._child(*pod.depends_on, *self._args.depends_on, self.service_account, policy),
        )

    # ------------------------------------------------------------------ workload
    def _workload(self) -> k8s.apps.v1.Deployment:
        """The Deployment: rolls when its image, its ConfigMap or one of its Secrets changes."""
        spec, svc, args = self._spec, self._svc, self._args
        container = kube.container(
            "app",
            self.image,
            svc.resources,
            ports=[{"name": "http", "container_port": svc.manifest.port, "protocol": "TCP"}],
            env_from=[{"config_map_ref": {"name": f"{svc.name}-config"}}],
            startup_probe=kube.http_probe("/healthz", "http", period=2, failures=args.startup_failures),
            liveness_probe=kube.http_probe("/healthz", "http"),
            readiness_probe=kube.http_probe("/readyz", "http", period=5),
            mounts=[{"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True}],
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [container],
            sources=self._sources(*secret_files(svc)),
            volumes=[secrets_volume(svc)],
            service_account_name=svc.name,
            topology_spread_constraints=kube.topology_spread(self._selector),
            termination_grace_period_seconds=30,
        )
        deployment_spec: dict = {
            "selector": {"match_labels": self._selector},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}},
            "template": pod.template,
        }
        if svc.overrides.autoscale is None:
            # With an HPA the replica count belongs to the autoscaler; setting it here would fight it.
            deployment_spec["replicas"] = svc.overrides.replicas
        waits = [*pod.depends_on, self.service_account, *args.depends_on]
        if self.migration is not None:
            waits.append(self.migration)
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=kube.meta(svc.name, spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec=deployment_spec,
            opts=self._child(*waits),
        )

    # ------------------------------------------------------------------ exposure
    def _exposure(
        self,
    ) -> tuple[
        k8s.core.v1.Service,
        k8s.policy.v1.PodDisruptionBudget,
        k8s.autoscaling.v2.HorizontalPodAutoscaler | None,
    ]:
        """Service, PodDisruptionBudget and (when autoscaled) HPA.

        They select the workload's labels themselves, never its outputs: an output resolves only once
        the Deployment is ready, and everything after it would wait.
        """
        spec, svc = self._spec, self._svc
        meta = kube.meta(svc.name, spec, self._labels)
        service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=meta,
            spec={
                "type": "ClusterIP",
                "selector": self._selector,
                "ports": [
                    {"name": "http", "port": svc.manifest.port, "target_port": "http", "protocol": "TCP"}
                ],
            },
            opts=self._child(),
        )
        pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=meta,
            spec={"max_unavailable": 1, "selector": {"match_labels": self._selector}},
            opts=self._child(),
        )
        scale = svc.overrides.autoscale
        if scale is None:
            return service, pdb, None
        hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=meta,
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": svc.name},
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
            opts=self._child(self.deployment),
        )
        return service, pdb, hpa

    # ------------------------------------------------------------------ policies
    def _policies(self) -> None:
        """Ingress only from its callers on its port; egress only to the backends it needs."""
        spec, svc = self._spec, self._svc
        selector = {"match_labels": self._selector}
        self.ingress_policy = kube.network_policy(
            f"{self._name}-allow-ingress",
            f"{svc.name}-allow-ingress",
            spec,
            self._labels,
            selector,
            ingress=[
                {
                    "from": [kube.peer(c, spec) for c in self._args.callers],
                    "ports": kube.ports(svc.manifest.port),
                }
            ],
            opts=self._child(),
        )
        self.egress_policy = kube.network_policy(
            f"{self._name}-allow-egress",
            f"{svc.name}-allow-egress",
            spec,
            self._labels,
            selector,
            egress=[{"to": [kube.peer(b, spec)], "ports": kube.ports(p)} for b, p in backends(svc)],
            opts=self._child(),
        )
