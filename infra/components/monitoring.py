"""Monitoring: Prometheus (namespace-scoped discovery), Alertmanager, Grafana with provisioned dashboards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import credentials
from infra import labels as lbl
from infra.components import images, kube
from infra.errors import UsageError
from infra.render.grafana import render_dashboard_provider, render_dashboards, render_datasources
from infra.render.prometheus import (
    ScrapeTargets,
    render_alert_rules,
    render_alertmanager_config,
    render_prometheus_config,
)
from infra.spec import PlatformSpec

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
GRAFANA_PORT = 3000
#: Ports Prometheus scrapes besides each service's http port (exporters, brokers, the stack itself).
SCRAPE_PORTS = {
    "postgres-exporter": 9187,
    "redis": 9121,
    "rabbitmq": 15692,
    "promtail": 9080,
    "alertmanager": ALERTMANAGER_PORT,
    "loki": 3100,
}


#: Where Alertmanager finds the webhook URL (``url``) and bearer token (``token``) of its receivers.
AM_SECRETS = "/etc/alertmanager/secrets"


def webhook_url(spec: PlatformSpec) -> pulumi.Output[str]:
    """``platform:alertWebhookUrl`` (a Pulumi secret), or ``https://hooks.<domain>/alertmanager``.

    Checked when the engine resolves it: an http(s) URL with a host (it may carry a token: it only
    ever reaches a Secret).
    """
    configured = pulumi.Config("platform").get_secret("alertWebhookUrl")
    default = f"https://hooks.{spec.config.domain}/alertmanager"
    url = configured if configured is not None else pulumi.Output.secret(default)

    def check(value: str | None) -> str:
        parts = urlsplit(value or default)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                "platform:alertWebhookUrl is not an http(s) URL",
                hint="pulumi config set --secret platform:alertWebhookUrl https://hooks.example.com/...",
            )
        return value or default

    return url.apply(check)


def _yaml(data: object) -> str:
    """YAML for a ConfigMap, with libyaml's emitter when PyYAML has it (same documents, ~6x faster)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=True, default_flow_style=False)


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of :class:`Monitoring` (retention, storage, scrape interval from ``spec.config.monitoring``)."""

    spec: PlatformSpec
    #: Loki's base URL for Grafana's log datasource.
    loki_url: str = "http://loki:3100"
    #: Size limit of Alertmanager's and Grafana's emptyDir state (rebuilt on restart: dashboards and
    #: datasources are provisioned; silences are lost).
    state_size: str = "256Mi"


def _selector(name: str, stack: str) -> dict:
    return {"match_labels": lbl.selector_labels(name, stack)}


class Monitoring(pulumi.ComponentResource):
    """Prometheus StatefulSet + RBAC, Alertmanager, Grafana; ConfigMaps ``<name>-config``."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:observability:Monitoring", name, None, opts)
        self._spec = spec = args.spec
        self._child = kube.child(self)
        self._prometheus(name, spec)
        self._alertmanager(name, spec, args)
        self._grafana(name, spec, args)
        self.prometheus_url = f"http://prometheus:{PROMETHEUS_PORT}"
        self.register_outputs({"prometheus_url": self.prometheus_url})

    # ------------------------------------------------------------------ prometheus
    def _prometheus(self, name: str, spec: PlatformSpec) -> None:
        """Prometheus: its configuration, discovery RBAC, the StatefulSet, Service and policy."""
        labels = lbl.labels("prometheus", spec.stack, "monitoring")
        config = render_prometheus_config(
            spec,
            ScrapeTargets.for_kubernetes(spec),
            alertmanager_urls=[f"alertmanager:{ALERTMANAGER_PORT}"],
            rule_files=["/etc/prometheus/config/rules.yml"],
        )
        data = {"prometheus.yml": _yaml(config), "rules.yml": _yaml(render_alert_rules(spec))}
        config_source = kube.config_map(
            f"{name}-prometheus-config", "prometheus-config", spec, labels, data, self._child
        )
        rbac = self._prometheus_rbac(name, spec, labels)
        self._prometheus_server(name, spec, labels, config_source, rbac)
        self._prometheus_exposure(name, spec, labels)

    def _prometheus_rbac(self, name: str, spec: PlatformSpec, labels: dict) -> list[pulumi.Resource]:
        """ServiceAccount ``prometheus`` and Roles to discover endpoints: in the stack's namespace
        (``prometheus``) and in the logs namespace (``prometheus-discovery``, Promtail's metrics, the
        gateway's access-log counters). Namespace-scoped Roles, never a ClusterRole."""
        child = self._child
        account = k8s.core.v1.ServiceAccount(
            f"{name}-prometheus-sa",
            metadata=kube.meta("prometheus", spec, labels),
            automount_service_account_token=False,
            opts=child,
        )
        rules = [
            {
                "api_groups": [""],
                "resources": ["pods", "services", "endpoints"],
                "verbs": ["get", "list", "watch"],
            },
            {
                "api_groups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["get", "list", "watch"],
            },
        ]
        subjects = [{"kind": "ServiceAccount", "name": "prometheus", "namespace": spec.config.namespace}]
        made: list[pulumi.Resource] = [account]
        for suffix, role_name, namespace in (
            ("", "prometheus", None),
            ("-logs", "prometheus-discovery", spec.config.logs_namespace),
        ):
            made.append(
                k8s.rbac.v1.Role(
                    f"{name}-prometheus{suffix}-role",
                    metadata=kube.meta(role_name, spec, labels, namespace=namespace),
                    rules=rules,
                    opts=child,
                )
            )
            made.append(
                k8s.rbac.v1.RoleBinding(
                    f"{name}-prometheus{suffix}-binding",
                    metadata=kube.meta(role_name, spec, labels, namespace=namespace),
                    role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
                    subjects=subjects,
                    opts=child,
                )
            )
        return made

    def _prometheus_server(
        self, name: str, spec: PlatformSpec, labels: dict, config: kube.Source, rbac: list[pulumi.Resource]
    ) -> None:
        """The StatefulSet: TSDB on a volume claim, the SA token mounted explicitly (discovery only)."""
        mon = spec.config.monitoring
        container = kube.container(
            "prometheus",
            images.image("prometheus"),
            kube.MEDIUM,
            args=[
                "--config.file=/etc/prometheus/config/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                f"--storage.tsdb.retention.time={mon.retention}",
                "--web.enable-lifecycle",
            ],
            ports=[{"name": "http", "container_port": PROMETHEUS_PORT, "protocol": "TCP"}],
            startup_probe=kube.http_probe("/-/ready", "http", period=5, failures=60),
            liveness_probe=kube.http_probe("/-/healthy", "http"),
            readiness_probe=kube.http_probe("/-/ready", "http", period=5),
            mounts=[
                {"name": "config", "mount_path": "/etc/prometheus/config", "read_only": True},
                {"name": "data", "mount_path": "/prometheus"},
                {"name": "token", "mount_path": kube.SA_TOKEN_DIR, "read_only": True},
            ],
        )
        pod = kube.pod_template(
            spec,
            labels,
            [container],
            sources=[config],
            volumes=[
                {"name": "config", "config_map": {"name": "prometheus-config"}},
                kube.service_account_token_volume("token"),
            ],
            service_account_name="prometheus",
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-prometheus",
            metadata=kube.meta("prometheus", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec={
                "service_name": "prometheus",
                "replicas": 1,
                "selector": {"match_labels": lbl.selector_labels("prometheus", spec.stack)},
                "volume_claim_templates": [
                    {
                        "metadata": {"name": "data", "labels": labels},
                        "spec": {
                            "access_modes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": mon.storage}},
                        },
                    }
                ],
                "template": pod.template,
            },
            opts=kube.child(self, depends_on=[*pod.depends_on, *rbac]),
        )

    def _prometheus_exposure(self, name: str, spec: PlatformSpec, labels: dict) -> None:
        """Service ``prometheus`` (for Grafana) and its policy: out only to its scrape targets,
        kube-state-metrics and the API server."""
        selector = lbl.selector_labels("prometheus", spec.stack)
        k8s.core.v1.Service(
            f"{name}-prometheus-service",
            metadata=kube.meta("prometheus", spec, labels),
            spec={
                "selector": selector,
                "ports": [
                    {"name": "http", "port": PROMETHEUS_PORT, "target_port": "http", "protocol": "TCP"}
                ],
            },
            opts=self._child,
        )
        targets = [(svc.name, svc.manifest.port) for svc in spec.services] + sorted(SCRAPE_PORTS.items())
        elsewhere = {"promtail": spec.config.logs_namespace}  # the log shipper's own namespace
        kube_state_metrics = {
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
            "pod_selector": {"match_labels": {"app.kubernetes.io/name": "kube-state-metrics"}},
        }
        kube.network_policy(
            f"{name}-prometheus-netpol",
            "prometheus",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer("grafana", spec)], "ports": kube.ports(PROMETHEUS_PORT)}],
            egress=[
                *(
                    {
                        "to": [kube.peer(target, spec, namespace=elsewhere.get(target))],
                        "ports": kube.ports(port),
                    }
                    for target, port in targets
                ),
                {"to": [kube_state_metrics], "ports": kube.ports(8080)},
                kube.api_server_egress(spec),
            ],
            opts=self._child,
        )

    # ------------------------------------------------------------------ alertmanager
    def _alertmanager(self, name: str, spec: PlatformSpec, args: MonitoringArgs) -> None:
        stack = spec.stack
        child = self._child
        labels = lbl.labels("alertmanager", stack, "monitoring")
        token = kube.password(spec, "alertmanager/webhook-token", f"{name}-webhook-token", child, 48)
        webhook = kube.secret(
            f"{name}-alertmanager-webhook",
            "alertmanager-webhook",
            spec,
            labels,
            {"token": token.result, "url": webhook_url(spec)},
            version=credentials.version(spec, "alertmanager/webhook-token"),
            opts=child,
        )
        config = render_alertmanager_config(
            spec, webhook_url_file=f"{AM_SECRETS}/url", credentials_file=f"{AM_SECRETS}/token"
        )
        data = {"alertmanager.yml": _yaml(config)}
        config_source = kube.config_map(
            f"{name}-alertmanager-config", "alertmanager-config", spec, labels, data, child
        )
        selector = lbl.selector_labels("alertmanager", stack)
        self._deployment(
            f"{name}-alertmanager",
            "alertmanager",
            labels,
            # Alertmanager reads the URL and token files at every notification: no restart needed.
            [config_source, webhook.as_read_at_use()],
            kube.container(
                "alertmanager",
                images.image("alertmanager"),
                kube.SMALL,
                args=[
                    "--config.file=/etc/alertmanager/config/alertmanager.yml",
                    "--storage.path=/alertmanager",
                    "--cluster.listen-address=",
                ],
                ports=[{"name": "http", "container_port": ALERTMANAGER_PORT, "protocol": "TCP"}],
                liveness_probe=kube.http_probe("/-/healthy", "http"),
                readiness_probe=kube.http_probe("/-/ready", "http", period=5),
                mounts=[
                    {"name": "config", "mount_path": "/etc/alertmanager/config", "read_only": True},
                    {"name": "secrets", "mount_path": AM_SECRETS, "read_only": True},
                    {"name": "data", "mount_path": "/alertmanager"},
                ],
            ),
            [
                {"name": "config", "config_map": {"name": "alertmanager-config"}},
                {"name": "secrets", "secret": {"secret_name": "alertmanager-webhook", "default_mode": 0o440}},
                kube.empty_dir("data", args.state_size),
            ],
        )
        k8s.core.v1.Service(
            f"{name}-alertmanager-service",
            metadata=kube.meta("alertmanager", spec, labels),
            spec={
                "selector": selector,
                "ports": [
                    {"name": "http", "port": ALERTMANAGER_PORT, "target_port": "http", "protocol": "TCP"}
                ],
            },
            opts=child,
        )
        kube.network_policy(
            f"{name}-alertmanager-netpol",
            "alertmanager",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer("prometheus", spec)], "ports": kube.ports(ALERTMANAGER_PORT)}],
            egress=[{"to": [{"ip_block": {"cidr": "0.0.0.0/0"}}], "ports": kube.ports(443)}],
            opts=child,
        )

    # ------------------------------------------------------------------ grafana
    def _grafana(self, name: str, spec: PlatformSpec, args: MonitoringArgs) -> None:
        stack = spec.stack
        child = self._child
        labels = lbl.labels("grafana", stack, "monitoring")
        admin_password = kube.password(spec, "grafana/admin", f"{name}-grafana-admin-password", child)
        admin = kube.secret(
            f"{name}-grafana-admin",
            "grafana-admin",
            spec,
            labels,
            {"admin-user": "admin", "admin-password": admin_password.result},
            version="user=admin;" + credentials.version(spec, "grafana/admin"),
            opts=child,
        )
        provisioning = {
            "datasources.yaml": _yaml(
                render_datasources(f"http://prometheus:{PROMETHEUS_PORT}", args.loki_url)
            ),
            "dashboards.yaml": _yaml(render_dashboard_provider("/var/lib/grafana-dashboards")),
        }
        provisioning_source = kube.config_map(
            f"{name}-grafana-config", "grafana-config", spec, labels, provisioning, child
        )
        dashboards = {
            key: json.dumps(board, indent=2, sort_keys=True) for key, board in render_dashboards(spec).items()
        }
        dashboards_source = kube.config_map(
            f"{name}-grafana-dashboards", "grafana-dashboards", spec, labels, dashboards, child
        )
        self._grafana_server(name, spec, labels, [provisioning_source, dashboards_source, admin], args)
        self._grafana_exposure(name, spec, labels)

    def _grafana_server(
        self, name: str, spec: PlatformSpec, labels: dict, sources: list[kube.Source], args: MonitoringArgs
    ) -> None:
        """Grafana's Deployment: provisioned datasources and dashboards, admin from its Secret's files;
        its state is an emptyDir (everything it needs is provisioned again at start)."""
        self._deployment(
            f"{name}-grafana",
            "grafana",
            labels,
            sources,
            kube.container(
                "grafana",
                images.image("grafana"),
                kube.MEDIUM,
                env=[
                    {"name": "GF_PATHS_DATA", "value": "/var/lib/grafana"},
                    {"name": "GF_PATHS_PROVISIONING", "value": "/etc/grafana/provisioning"},
                    {"name": "GF_SECURITY_ADMIN_USER__FILE", "value": "/etc/grafana/secrets/admin-user"},
                    {
                        "name": "GF_SECURITY_ADMIN_PASSWORD__FILE",
                        "value": "/etc/grafana/secrets/admin-password",
                    },
                    {"name": "GF_ANALYTICS_REPORTING_ENABLED", "value": "false"},
                    {"name": "GF_ANALYTICS_CHECK_FOR_UPDATES", "value": "false"},
                    {"name": "GF_USERS_ALLOW_SIGN_UP", "value": "false"},
                ],
                ports=[{"name": "http", "container_port": GRAFANA_PORT, "protocol": "TCP"}],
                startup_probe=kube.http_probe("/api/health", "http", period=5, failures=30),
                liveness_probe=kube.http_probe("/api/health", "http"),
                readiness_probe=kube.http_probe("/api/health", "http", period=5),
                mounts=[
                    {
                        "name": "datasources",
                        "mount_path": "/etc/grafana/provisioning/datasources",
                        "read_only": True,
                    },
                    {
                        "name": "providers",
                        "mount_path": "/etc/grafana/provisioning/dashboards",
                        "read_only": True,
                    },
                    {"name": "dashboards", "mount_path": "/var/lib/grafana-dashboards", "read_only": True},
                    {"name": "secrets", "mount_path": "/etc/grafana/secrets", "read_only": True},
                    {"name": "data", "mount_path": "/var/lib/grafana"},
                ],
            ),
            [
                {
                    "name": "datasources",
                    "config_map": {
                        "name": "grafana-config",
                        "items": [{"key": "datasources.yaml", "path": "datasources.yaml"}],
                    },
                },
                {
                    "name": "providers",
                    "config_map": {
                        "name": "grafana-config",
                        "items": [{"key": "dashboards.yaml", "path": "dashboards.yaml"}],
                    },
                },
                {"name": "dashboards", "config_map": {"name": "grafana-dashboards"}},
                {"name": "secrets", "secret": {"secret_name": "grafana-admin", "default_mode": 0o440}},
                kube.empty_dir("data", args.state_size),
            ],
        )

    def _grafana_exposure(self, name: str, spec: PlatformSpec, labels: dict) -> None:
        """Service ``grafana`` and its policy: nobody in (``kubectl port-forward``), out to Prometheus
        and Loki only."""
        child = self._child
        selector = lbl.selector_labels("grafana", spec.stack)
        k8s.core.v1.Service(
            f"{name}-grafana-service",
            metadata=kube.meta("grafana", spec, labels),
            spec={
                "selector": selector,
                "ports": [{"name": "http", "port": GRAFANA_PORT, "target_port": "http", "protocol": "TCP"}],
            },
            opts=child,
        )
        kube.network_policy(
            f"{name}-grafana-netpol",
            "grafana",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[],  # operators reach Grafana with `kubectl port-forward`
            egress=[
                {"to": [kube.peer("prometheus", spec)], "ports": kube.ports(PROMETHEUS_PORT)},
                {"to": [kube.peer("loki", spec)], "ports": kube.ports(3100)},
            ],
            opts=child,
        )

    def _deployment(
        self,
        resource_name: str,
        name: str,
        labels: dict,
        sources: list[kube.Source],
        container: dict,
        volumes: list,
    ) -> k8s.apps.v1.Deployment:
        spec = self._spec
        selector = lbl.selector_labels(name, spec.stack)
        pod = kube.pod_template(spec, labels, [container], sources=sources, volumes=volumes)
        return k8s.apps.v1.Deployment(
            resource_name,
            metadata=kube.meta(name, spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec={"replicas": 1, "selector": {"match_labels": selector}, "template": pod.template},
            opts=kube.child(self, depends_on=list(pod.depends_on)),
        )
