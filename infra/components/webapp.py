"""WebApp: the marketplace web app (Next.js standalone server) as a hardened Deployment.

The same hardening as :class:`~infra.components.service.FastApiService` (non-root, read-only root,
no service-account token, probes, PDB, HPA, default-deny plus exact allows); what differs is what
Next.js needs: an emptyDir for ``.next/cache`` (its image and fetch caches), no credentials at all
(tokens live in the browser's httpOnly cookies; the app's server only forwards them), and one egress:
the gateway's internal API listener, where its server-side rendering calls ``/api/...``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import labels as lbl
from infra.components import kube
from infra.components.image import pinned_reference, web_image
from infra.environment import WEB_CACHE_DIR, web_environment
from infra.render.nginx import INTERNAL_PORT
from infra.spec import PlatformSpec, WebAppSpec


def api_base_url(spec: PlatformSpec) -> str:
    """The gateway's internal API listener, as the web app's pods reach it."""
    return f"http://gateway.{spec.config.namespace}.svc.cluster.local:{INTERNAL_PORT}"


def config_data(spec: PlatformSpec, app: WebAppSpec) -> dict[str, str]:
    """The ``<app>-config`` ConfigMap: where Next.js listens and where it calls the API."""
    return web_environment(spec, app, environment=spec.config.environment, api_base_url=api_base_url(spec))


@dataclass(frozen=True)
class WebAppArgs:
    """Inputs of :class:`WebApp`."""

    spec: PlatformSpec
    app: WebAppSpec
    #: Pinned image reference; ``None`` builds and pushes ``frontend/Dockerfile`` (pulumi_docker).
    image: pulumi.Input[str] | None = None
    #: Size limit of the ``.next/cache`` emptyDir.
    cache_size: str = "256Mi"
    #: Seconds the startup probe allows before liveness takes over (30 x 2 s).
    startup_failures: int = 30


class WebApp(pulumi.ComponentResource):
    """Deployment + Service + ServiceAccount + ConfigMap + PDB (+ HPA) + NetworkPolicies.

    Built in named parts: image, configuration, workload, exposure, policies.
    """

    def __init__(self, name: str, args: WebAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:workload:WebApp", name, None, opts)
        self._name, self._args = name, args
        self._spec, self._app = args.spec, args.app
        self._labels = lbl.labels(args.app.name, args.spec.stack, "web")
        self._selector = lbl.selector_labels(args.app.name, args.spec.stack)
        self.image = self._image()
        self.config, self.service_account = self._configuration()
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
        """The pinned image: built and pushed from ``frontend/Dockerfile`` unless one is given."""
        if self._args.image is not None:
            self.image_resource = None
            return pulumi.Output.from_input(self._args.image)
        self.image_resource = web_image(f"{self._name}-image", self._spec, self._app, self._child())
        return pinned_reference(self.image_resource)

    # ------------------------------------------------------------------ configuration
    def _configuration(self) -> tuple[kube.Source, k8s.core.v1.ServiceAccount]:
        """``<app>-config`` (read at start, so a change rolls the pods) and a token-less account."""
        config = kube.config_map(
            f"{self._name}-config",
            f"{self._app.name}-config",
            self._spec,
            self._labels,
            config_data(self._spec, self._app),
            self._child(),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-serviceaccount",
            metadata=kube.meta(self._app.name, self._spec, self._labels),
            automount_service_account_token=False,
            opts=self._child(),
        )
        return config, account

    # ------------------------------------------------------------------ workload
    def _workload(self) -> k8s.apps.v1.Deployment:
        """``node server.js`` under a read-only root; ``.next/cache`` and ``/tmp`` are emptyDirs."""
        spec, app, args = self._spec, self._app, self._args
        health = app.manifest.health
        container = kube.container(
            "app",
            self.image,
            app.resources,
            ports=[{"name": "http", "container_port": app.manifest.port, "protocol": "TCP"}],
            env_from=[{"config_map_ref": {"name": f"{app.name}-config"}}],
            startup_probe=kube.http_probe(health, "http", period=2, failures=args.startup_failures),
            liveness_probe=kube.http_probe(health, "http"),
            readiness_probe=kube.http_probe(health, "http", period=5),
            mounts=[{"name": "next-cache", "mount_path": WEB_CACHE_DIR}],
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [container],
            sources=[self.config],
            volumes=[kube.empty_dir("next-cache", args.cache_size)],
            service_account_name=app.name,
            topology_spread_constraints=kube.topology_spread(self._selector),
            termination_grace_period_seconds=30,
        )
        deployment_spec: dict = {
            "selector": {"match_labels": self._selector},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}},
            "template": pod.template,
        }
        if app.overrides.autoscale is None:
            deployment_spec["replicas"] = app.overrides.replicas
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=kube.meta(app.name, spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec=deployment_spec,
            opts=self._child(*pod.depends_on, self.service_account),
        )

    # ------------------------------------------------------------------ exposure
    def _exposure(
        self,
    ) -> tuple[
        k8s.core.v1.Service,
        k8s.policy.v1.PodDisruptionBudget,
        k8s.autoscaling.v2.HorizontalPodAutoscaler | None,
    ]:
        """Service, PodDisruptionBudget and (when autoscaled) HPA, on the workload's labels."""
        spec, app = self._spec, self._app
        meta = kube.meta(app.name, spec, self._labels)
        port = app.manifest.port
        service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=meta,
            spec={
                "type": "ClusterIP",
                "selector": self._selector,
                "ports": [{"name": "http", "port": port, "target_port": "http", "protocol": "TCP"}],
            },
            opts=self._child(),
        )
        pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=meta,
            spec={"max_unavailable": 1, "selector": {"match_labels": self._selector}},
            opts=self._child(),
        )
        scale = app.overrides.autoscale
        if scale is None:
            return service, pdb, None
        hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=meta,
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": app.name},
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
        """In: the gateway (and Prometheus when the app exposes metrics) on its port. Out: the
        gateway's internal API listener only."""
        spec, app = self._spec, self._app
        selector = {"match_labels": self._selector}
        callers = ["gateway", *(["prometheus"] if app.manifest.metrics else [])]
        self.ingress_policy = kube.network_policy(
            f"{self._name}-allow-ingress",
            f"{app.name}-allow-ingress",
            spec,
            self._labels,
            selector,
            ingress=[{"from": [kube.peer(c, spec) for c in callers], "ports": kube.ports(app.manifest.port)}],
            opts=self._child(),
        )
        self.egress_policy = kube.network_policy(
            f"{self._name}-allow-egress",
            f"{app.name}-allow-egress",
            spec,
            self._labels,
            selector,
            egress=[{"to": [kube.peer("gateway", spec)], "ports": kube.ports(INTERNAL_PORT)}],
            opts=self._child(),
        )
