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
    """Deployment + ConfigMap ``gateway-config`` + Service + Ingress + PDB (+ HPA when autoscaled)."""

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:edge:Gateway", name, None, opts)
        spec = args.spec
        cfg = spec.config
        gw = cfg.gateway
        stack = spec.stack
        child = kube.child(self)
        labels = lbl.labels("gateway", stack, "gateway")
        selector = lbl.selector_labels("gateway", stack)
        addrs = GatewayAddresses.for_kubernetes(spec)
        conf = render_nginx_conf(spec, addrs)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=kube.meta("gateway-config", spec, labels),
            data={"nginx.conf": conf},
            opts=child,
        )
        writable_mounts, writable = writable_volumes(addrs, args.cache_size)
        mounts = [{"name": "config", "mount_path": CONF_DIR, "read_only": True}, *writable_mounts]
        volumes = [{"name": "config", "config_map": {"name": "gateway-config"}}, *writable]
        ports = [{"name": "http", "container_port": addrs.http_port, "protocol": "TCP"}]
        if cfg.tls.enabled:
            mounts.append({"name": "tls", "mount_path": TLS_DIR, "read_only": True})
            volumes.append(
                {"name": "tls", "secret": {"secret_name": cfg.tls.secret_name, "default_mode": 0o440}}
            )
            ports.append({"name": "https", "container_port": addrs.https_port, "protocol": "TCP"})
        deployment_spec: dict = {
            "selector": {"match_labels": selector},
            "revision_history_limit": 5,
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_surge": 1, "max_unavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"checksum/config": kube.checksum({"nginx.conf": conf})},
                },
                "spec": {
                    "automount_service_account_token": False,
                    "security_context": kube.pod_security(),
                    "topology_spread_constraints": kube.topology_spread(selector),
                    "containers": [
                        {
                            "name": "nginx",
                            "image": images.image("gateway"),
                            "image_pull_policy": "Always",
                            "command": ["nginx", "-c", f"{CONF_DIR}/nginx.conf", "-g", "daemon off;"],
                            "ports": ports,
                            "resources": kube.resources(gw.resources),
                            "security_context": kube.container_security(),
                            "startup_probe": kube.http_probe("/healthz", "http", period=2, failures=15),
                            "liveness_probe": kube.http_probe("/healthz", "http"),
                            "readiness_probe": kube.http_probe("/healthz", "http", period=5),
                            "volume_mounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        }
        if gw.autoscale is None:
            deployment_spec["replicas"] = gw.replicas
        self.certificate = self._certificate(name, spec, labels) if cfg.tls.cluster_issuer else None
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=kube.meta("gateway", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec=deployment_spec,
            opts=kube.child(
                self,
                depends_on=[
                    self.config_map,
                    *([self.certificate] if self.certificate else []),
                    *args.upstreams,
                ],
            ),
        )
        service_ports = [{"name": "http", "port": 80, "target_port": "http", "protocol": "TCP"}]
        if cfg.tls.enabled:
            service_ports.append({"name": "https", "port": 443, "target_port": "https", "protocol": "TCP"})
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta("gateway", spec, labels),
            spec={
                "type": "ClusterIP",
                # The same labels the Deployment selects, not its output: an output resolves only
                # once the Deployment is ready, and the Service (and the Ingress after it) would wait.
                "selector": selector,
                "ports": service_ports,
            },
            opts=child,
        )
        annotations = {}
        if cfg.tls.enabled:
            # The gateway terminates TLS itself (HSTS, ciphers); the controller re-encrypts to it.
            annotations["nginx.ingress.kubernetes.io/backend-protocol"] = "HTTPS"
            # No cert-manager.io/cluster-issuer here: the Certificate above is explicit, and
            # ingress-shim would create a second one for the same Secret.
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
            f"{name}-ingress",
            metadata=kube.meta("gateway", spec, labels, annotations),
            spec=ingress_spec,
            opts=kube.child(self, depends_on=[self.service]),
        )
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=kube.meta("gateway", spec, labels),
            spec={
                "max_unavailable": 1,
                "selector": {"match_labels": selector},
            },
            opts=child,
        )
        self.hpa = None
        if gw.autoscale is not None:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=kube.meta("gateway", spec, labels),
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
        container_ports = [p["container_port"] for p in ports]
        self.policy = kube.network_policy(
            f"{name}-netpol",
            "gateway",
            spec,
            labels,
            {"match_labels": selector},
            # The edge: only the Ingress controller's namespace (platform:gateway.ingressNamespace).
            ingress=[
                {"from": [kube.namespace_peer(gw.ingress_namespace)], "ports": kube.ports(*container_ports)}
            ],
            egress=[
                {"to": [kube.peer(svc.name, spec)], "ports": kube.ports(svc.manifest.port)}
                for svc in spec.services
            ],
            opts=child,
        )
        scheme = "https" if cfg.tls.enabled else "http"
        self.url = f"{scheme}://{cfg.domain}"
        self.register_outputs({"url": self.url})

    def _certificate(
        self, name: str, spec: PlatformSpec, labels: dict[str, str]
    ) -> k8s.apiextensions.CustomResource:
        """cert-manager issues Secret ``platform:tls.secretName`` from this, without the Ingress.

        Declared explicitly and awaited (``pulumi.com/waitFor: condition=Ready``) before the gateway
        Deployment, whose pods mount the Secret: the ACME HTTP-01 challenge is answered by
        cert-manager's own solver Ingress, so nothing here waits for the gateway.
        """
        tls = spec.config.tls
        return k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=kube.meta(tls.secret_name, spec, labels, {"pulumi.com/waitFor": "condition=Ready"}),
            spec={
                "secretName": tls.secret_name,
                "dnsNames": [spec.config.domain],
                "issuerRef": {
                    "name": tls.cluster_issuer,
                    "kind": "ClusterIssuer",
                    "group": "cert-manager.io",
                },
            },
            opts=kube.child(self),
        )
