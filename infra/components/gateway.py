"""The NGINX API gateway: config from ``render_nginx_conf``, TLS at the pod, Ingress, HPA, PDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import pulumi
import pulumi_kubernetes as k8s

from infra import labels as lbl
from infra.components import images, kube
from infra.render.nginx import GatewayAddresses, render_nginx_conf
from infra.spec import PlatformSpec

CONF_DIR = "/etc/nginx/platform"
TLS_DIR = "/etc/nginx/tls"


def writable_volumes(addrs: GatewayAddresses, cache_size: str) -> tuple[list[dict], list[dict]]:
    """(mounts, volumes): one emptyDir per :attr:`GatewayAddresses.writable_dirs` entry.

    Derived, never listed by hand, so every path nginx writes to (pid, temp paths, proxy cache)
    exists and is writable under the read-only root filesystem. The proxy cache's directory gets
    *cache_size*; the others the default emptyDir limit.
    """
    cache_parent = str(PurePosixPath(addrs.cache_dir).parent)
    mounts, volumes = [], []
    for directory in addrs.writable_dirs:
        name = directory.strip("/").replace("/", "-").replace("_", "-").lower() or "root"
        mounts.append({"name": name, "mount_path": directory})
        volumes.append(
            kube.empty_dir(name, cache_size) if directory == cache_parent else kube.empty_dir(name)
        )
    return mounts, volumes


@dataclass(frozen=True)
class GatewayArgs:
    """Inputs of :class:`Gateway` (replicas, autoscaling, rate limits and TLS from ``spec.config``)."""

    spec: PlatformSpec
    #: Size limit of the proxy-cache emptyDir.
    cache_size: str = "512Mi"
    #: The Services nginx proxies to: nginx resolves ``upstream`` hosts when it starts and exits on
    #: one that does not exist yet, so the gateway's pods start only after every one of them.
    upstreams: Sequence[pulumi.Resource] = ()


class Gateway(pulumi.ComponentResource):
    """Deployment + ConfigMap ``gateway-config`` + Service + Ingress + PDB (+ HPA when autoscaled).

    Built in named parts: configuration, certificate, workload, exposure, policy.
    """

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:edge:Gateway", name, None, opts)
        self._name, self._args, self._spec = name, args, args.spec
        self._labels = lbl.labels("gateway", args.spec.stack, "gateway")
        self._selector = lbl.selector_labels("gateway", args.spec.stack)
        self._addrs = GatewayAddresses.for_kubernetes(args.spec)
        self.config = self._configuration()
        self.config_map = self.config.resource
        self.certificate = self._certificate() if args.spec.config.tls.cluster_issuer else None
        self.deployment = self._workload()
        self._exposure()
        self._scaling()
        self._policy()
        scheme = "https" if args.spec.config.tls.enabled else "http"
        self.url = f"{scheme}://{args.spec.config.domain}"
        self.register_outputs({"url": self.url})

    # ------------------------------------------------------------------ configuration
    def _configuration(self) -> kube.Source:
        """``gateway-config``: nginx.conf (read at start, so a change rolls the pods)."""
        conf = render_nginx_conf(self._spec, self._addrs)
        return kube.config_map(
            f"{self._name}-config",
            "gateway-config",
            self._spec,
            self._labels,
            {"nginx.conf": conf},
            kube.child(self),
        )

    # ------------------------------------------------------------------ certificate
    def _certificate(self) -> k8s.apiextensions.CustomResource:
        """cert-manager issues Secret ``platform:tls.secretName`` from this, without the Ingress.

        Declared explicitly and awaited (``pulumi.com/waitFor: condition=Ready``) before the gateway
        Deployment, whose pods mount the Secret: the ACME HTTP-01 challenge is answered by
        cert-manager's own solver Ingress, so nothing here waits for the gateway.
        """
        spec = self._spec
        tls = spec.config.tls
        self._certificate_spec = {
            "secretName": tls.secret_name,
            "dnsNames": [spec.config.domain],
            "issuerRef": {"name": tls.cluster_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        }
        return k8s.apiextensions.CustomResource(
            f"{self._name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=kube.meta(
                tls.secret_name, spec, self._labels, {"pulumi.com/waitFor": "condition=Ready"}
            ),
            spec=self._certificate_spec,
            opts=kube.child(self),
        )

    def _tls_source(self) -> kube.Source:
        """The TLS Secret as nginx reads it (at start): issued from the Certificate, or the operator's."""
        secret_name = self._spec.config.tls.secret_name
        if self.certificate is None:
            return kube.external_secret(secret_name)
        return kube.external_secret(secret_name, self.certificate, self._certificate_spec)

    # ------------------------------------------------------------------ workload
    def _workload(self) -> k8s.apps.v1.Deployment:
        """nginx, after every Service it proxies to exists (it resolves upstream hosts at start)."""
        spec, args, addrs = self._spec, self._args, self._addrs
        cfg, gw = spec.config, spec.config.gateway
        writable_mounts, writable = writable_volumes(addrs, args.cache_size)
        mounts = [{"name": "config", "mount_path": CONF_DIR, "read_only": True}, *writable_mounts]
        volumes = [{"name": "config", "config_map": {"name": "gateway-config"}}, *writable]
        ports = [{"name": "http", "container_port": addrs.http_port, "protocol": "TCP"}]
        if addrs.internal_port is not None:
            ports.append({"name": "internal", "container_port": addrs.internal_port, "protocol": "TCP"})
        sources = [self.config]
        if cfg.tls.enabled:
            mounts.append({"name": "tls", "mount_path": TLS_DIR, "read_only": True})
            volumes.append(
                {"name": "tls", "secret": {"secret_name": cfg.tls.secret_name, "default_mode": 0o440}}
            )
            ports.append({"name": "https", "container_port": addrs.https_port, "protocol": "TCP"})
            sources.append(self._tls_source())
        self._container_ports = [p["container_port"] for p in ports if p["name"] != "internal"]
        container = kube.container(
            "nginx",
            images.image("gateway"),
            gw.resources,
            command=["nginx", "-c", f"{CONF_DIR}/nginx.conf", "-g", "daemon off;"],
            ports=ports,
            startup_probe=kube.http_probe("/healthz", "http", period=2, failures=15),
            liveness_probe=kube.http_probe("/healthz", "http"),
            readiness_probe=kube.http_probe("/healthz", "http", period=5),
            mounts=mounts,
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [container],
            sources=sources,
            volumes=volumes,
            topology_spread_constraints=kube.topology_spread(self._selector),
        )
        deployment_spec: dict = {
            "selector": {"match_labels": self._selector},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}},
            "template": pod.template,
        }
        if gw.autoscale is None:
            deployment_spec["replicas"] = gw.replicas
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=kube.meta(
                "gateway", spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
            ),
            spec=deployment_spec,
            opts=kube.child(self, depends_on=[*pod.depends_on, *args.upstreams]),
        )

    # ------------------------------------------------------------------ exposure
    def _exposure(self) -> None:
        """Service ``gateway`` and the Ingress in front of it.

        The Service selects the workload's labels itself: a Deployment's output resolves only once it
        is ready, and the Service and the Ingress after it would wait.
        """
        spec = self._spec
        cfg, gw = spec.config, spec.config.gateway
        child = kube.child(self)
        meta = kube.meta("gateway", spec, self._labels)
        service_ports = [{"name": "http", "port": 80, "target_port": "http", "protocol": "TCP"}]
        if cfg.tls.enabled:
            service_ports.append({"name": "https", "port": 443, "target_port": "https", "protocol": "TCP"})
        if self._addrs.internal_port is not None:
            internal = {"name": "internal", "port": self._addrs.internal_port, "target_port": "internal"}
            service_ports.append({**internal, "protocol": "TCP"})
        self.service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=meta,
            spec={"type": "ClusterIP", "selector": self._selector, "ports": service_ports},
            opts=child,
        )
        annotations = {}
        if cfg.tls.enabled:
            # The gateway terminates TLS itself (HSTS, ciphers); the controller re-encrypts to it.
            # No cert-manager.io/cluster-issuer here: the Certificate is explicit, and ingress-shim
            # would create a second one for the same Secret.
            annotations["nginx.ingress.kubernetes.io/backend-protocol"] = "HTTPS"
        if not gw.ingress_await:
            # The provider waits for the controller to publish the Ingress's address; a controller
            # that publishes none would hang `up` (platform:gateway.ingressAwait: false).
            annotations["pulumi.com/skipAwait"] = "true"
        backend_port = "https" if cfg.tls.enabled else "http"
        ingress_spec: dict = {
            "ingress_class_name": gw.ingress_class,
            "rules": [
                {
                    "host": cfg.domain,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "path_type": "Prefix",
                                "backend": {"service": {"name": "gateway", "port": {"name": backend_port}}},
                            }
                        ]
                    },
                }
            ],
        }
        if cfg.tls.enabled:
            ingress_spec["tls"] = [{"hosts": [cfg.domain], "secret_name": cfg.tls.secret_name}]
        self.ingress = k8s.networking.v1.Ingress(
            f"{self._name}-ingress",
            metadata=kube.meta("gateway", spec, self._labels, annotations),
            spec=ingress_spec,
            opts=kube.child(self, depends_on=[self.service]),
        )

    # ------------------------------------------------------------------ scaling
    def _scaling(self) -> None:
        """PodDisruptionBudget and (when autoscaled) HPA, on the workload's labels."""
        spec = self._spec
        gw = spec.config.gateway
        meta = kube.meta("gateway", spec, self._labels)
        child = kube.child(self)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb",
            metadata=meta,
            spec={"max_unavailable": 1, "selector": {"match_labels": self._selector}},
            opts=child,
        )
        self.hpa = None
        if gw.autoscale is not None:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{self._name}-hpa",
                metadata=meta,
                spec={
                    "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": "gateway"},
                    "min_replicas": gw.autoscale.min,
                    "max_replicas": gw.autoscale.max,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "average_utilization": gw.autoscale.cpu_percent,
                                },
                            },
                        }
                    ],
                },
                opts=kube.child(self, depends_on=[self.deployment]),
            )

    # ------------------------------------------------------------------ policy
    def _policy(self) -> None:
        """In: only the Ingress controller's namespace (and the web app's pods on the internal API
        listener). Out: each service and the web app on its port."""
        spec = self._spec
        ingress = [
            {
                "from": [kube.namespace_peer(spec.config.gateway.ingress_namespace)],
                "ports": kube.ports(*self._container_ports),
            }
        ]
        if self._addrs.internal_port is not None:
            ingress.append(
                {
                    "from": [kube.peer(app.name, spec) for app in spec.web_apps],
                    "ports": kube.ports(self._addrs.internal_port),
                }
            )
        self.policy = kube.network_policy(
            f"{self._name}-netpol",
            "gateway",
            spec,
            self._labels,
            {"match_labels": self._selector},
            ingress=ingress,
            egress=[
                {"to": [kube.peer(app.name, spec)], "ports": kube.ports(app.manifest.port)}
                for app in (*spec.services, *spec.web_apps)
            ],
            opts=kube.child(self),
        )
