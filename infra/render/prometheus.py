"""prometheus.yml: scrape jobs for Kubernetes (service discovery) or a local run (static targets).

Metric contract (servicekit exposes exactly these on every service's ``/metrics``):

=================================================  =====================================================
metric                                             labels
=================================================  =====================================================
``http_requests_total`` (counter)                  ``service, method, route, status``
``http_request_duration_seconds`` (histogram,      ``service, method, route, status, le``
used as ``..._bucket``/``_sum``/``_count``)
``messaging_published_total`` (counter)            ``service, event``
``messaging_consumed_total`` (counter)             ``service, event, outcome`` with outcome in
                                                   ``ok | retried | dead_lettered | duplicate``
=================================================  =====================================================

``route`` is the route *template* (``/api/marketplace/listings/{id}``), never the raw path.
``service`` is the manifest name. Every API target also carries a ``service`` *target* label (relabelled
from ``app.kubernetes.io/name``, or set statically locally) so ``up`` can be attributed; the job uses
``honor_labels`` so the exposed ``service`` label and the target label agree.

Platform jobs: ``postgres`` (postgres_exporter, ``pg_up``), ``redis`` (redis_exporter, ``redis_up``),
``rabbitmq`` (rabbitmq_prometheus aggregated ``/metrics``) and ``rabbitmq-queues``
(``/metrics/detailed`` queue family: ``rabbitmq_detailed_queue_messages_ready{queue}``), ``gateway``
(Promtail's metrics stage turns the gateway's JSON access log into ``gateway_http_requests_total{status}``,
see :mod:`infra.render.loki`), ``kube-state-metrics`` (workload alerts), and the monitoring stack itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.render.alertmanager import render_alertmanager_config
from infra.render.alerts import render_alert_rules
from infra.spec import PlatformSpec

__all__ = [
    "METRICS",
    "ScrapeTargets",
    "render_alert_rules",
    "render_alertmanager_config",
    "render_prometheus_config",
]

#: The metric contract above, machine-readable: name -> label names (histograms without ``le``).
METRICS: dict[str, tuple[str, ...]] = {
    "http_requests_total": ("service", "method", "route", "status"),
    "http_request_duration_seconds": ("service", "method", "route", "status"),
    "messaging_published_total": ("service", "event"),
    "messaging_consumed_total": ("service", "event", "outcome"),
}
CONSUME_OUTCOMES = ("ok", "retried", "dead_lettered", "duplicate")
#: Platform scrape jobs and the Kubernetes Service (app.kubernetes.io/name) + port name behind each.
PLATFORM_JOBS: dict[str, tuple[str, str]] = {
    "postgres": ("postgres-exporter", "metrics"),
    "redis": ("redis", "metrics"),
    "rabbitmq": ("rabbitmq", "prometheus"),
    "rabbitmq-queues": ("rabbitmq", "prometheus"),
    "gateway": ("promtail", "http-metrics"),
    "prometheus": ("prometheus", "http"),
    "alertmanager": ("alertmanager", "http"),
    "loki": ("loki", "http"),
}
RABBITMQ_DETAILED_PARAMS = {"family": ["queue_coarse_metrics"], "vhost": ["market"]}
KUBE_STATE_METRICS = "kube-state-metrics.kube-system.svc.cluster.local:8080"
NAME_LABEL = "__meta_kubernetes_service_label_app_kubernetes_io_name"


@dataclass(frozen=True)
class ScrapeTargets:
    """Where Prometheus finds its targets.

    ``namespace`` set means Kubernetes endpoint discovery in that namespace; otherwise ``services``
    (service name -> ``host:port``) and ``platform`` (job -> ``host:port`` list) are static targets.
    """

    namespace: str | None = None
    #: Platform jobs discovered in another namespace than ``namespace`` (job -> namespace).
    job_namespaces: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    #: Web apps that expose metrics (``metrics:`` in their manifest) -> ``host:port`` (static targets).
    web_apps: dict[str, str] = field(default_factory=dict)
    platform: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kube_state_metrics: str | None = None

    @classmethod
    def for_kubernetes(
        cls, spec: PlatformSpec, *, kube_state_metrics: str | None = KUBE_STATE_METRICS
    ) -> ScrapeTargets:
        """Endpoint discovery in the stack's namespace, filtered by ``app.kubernetes.io`` labels; the
        ``gateway`` job (Promtail's metrics) in the logs namespace, where Promtail runs."""
        return cls(
            namespace=spec.config.namespace,
            job_namespaces={"gateway": spec.config.logs_namespace},
            kube_state_metrics=kube_state_metrics,
        )

    @classmethod
    def for_local(
        cls,
        spec: PlatformSpec,
        service_ports: Mapping[str, int],
        platform: Mapping[str, str | Sequence[str]] | None = None,
        *,
        host: str = "127.0.0.1",
    ) -> ScrapeTargets:
        """Static ``host:port`` targets; *platform* maps a job in :data:`PLATFORM_JOBS` to its target(s)."""
        unknown = sorted(set(platform or {}) - set(PLATFORM_JOBS))
        if unknown:
            raise ValueError(f"unknown platform scrape job(s): {', '.join(unknown)}")
        return cls(
            services={
                s.name: f"{host}:{service_ports[s.name]}" for s in spec.services if s.name in service_ports
            },
            web_apps={
                a.name: f"{host}:{service_ports[a.name]}"
                for a in spec.web_apps
                if a.manifest.metrics and a.name in service_ports
            },
            platform={
                job: (value,) if isinstance(value, str) else tuple(value)
                for job, value in sorted((platform or {}).items())
            },
        )


def _sd(namespace: str) -> list[dict[str, Any]]:
    return [{"role": "endpoints", "namespaces": {"names": [namespace]}}]


def _keep(label: str, regex: str) -> dict[str, Any]:
    return {"source_labels": [label], "action": "keep", "regex": regex}


def _common_relabel() -> list[dict[str, Any]]:
    return [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]


def _kubernetes_jobs(spec: PlatformSpec, targets: ScrapeTargets) -> list[dict[str, Any]]:
    assert targets.namespace is not None
    ns = targets.namespace
    names = "|".join(sorted(s.name for s in spec.services))
    jobs: list[dict[str, Any]] = [
        {
            "job_name": "services",
            "honor_labels": True,
            "metrics_path": "/metrics",
            "kubernetes_sd_configs": _sd(ns),
            "relabel_configs": [
                _keep("__meta_kubernetes_service_label_app_kubernetes_io_component", "api"),
                _keep(NAME_LABEL, names),
                _keep("__meta_kubernetes_endpoint_port_name", "http"),
                {"source_labels": [NAME_LABEL], "target_label": "service"},
                *_common_relabel(),
            ],
        }
    ]
    for app in spec.web_apps:
        if app.manifest.metrics:
            jobs.append(
                {
                    "job_name": f"web-{app.name}",
                    "honor_labels": True,
                    "metrics_path": app.manifest.metrics,
                    "kubernetes_sd_configs": _sd(ns),
                    "relabel_configs": [
                        _keep("__meta_kubernetes_service_label_app_kubernetes_io_component", "web"),
                        _keep(NAME_LABEL, app.name),
                        _keep("__meta_kubernetes_endpoint_port_name", "http"),
                        {"source_labels": [NAME_LABEL], "target_label": "service"},
                        *_common_relabel(),
                    ],
                }
            )
    for job, (name, port) in PLATFORM_JOBS.items():
        entry: dict[str, Any] = {
            "job_name": job,
            "kubernetes_sd_configs": _sd(targets.job_namespaces.get(job, ns)),
            "relabel_configs": [
                _keep(NAME_LABEL, name),
                _keep("__meta_kubernetes_endpoint_port_name", port),
                {"target_label": "service", "replacement": job.removesuffix("-queues")},
                *_common_relabel(),
            ],
        }
        _job_extras(job, entry)
        jobs.append(entry)
    if targets.kube_state_metrics:
        jobs.append(
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "static_configs": [{"targets": [targets.kube_state_metrics]}],
            }
        )
    return jobs


def _job_extras(job: str, entry: dict[str, Any]) -> None:
    if job == "rabbitmq-queues":
        entry["metrics_path"] = "/metrics/detailed"
        entry["params"] = RABBITMQ_DETAILED_PARAMS
    if job == "gateway":
        # Only the access-log-derived counters; Promtail's own metrics are not the gateway's.
        entry["metric_relabel_configs"] = [_keep("__name__", "gateway_.*")]


def _local_jobs(spec: PlatformSpec, targets: ScrapeTargets) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = [
        {
            "job_name": "services",
            "honor_labels": True,
            "metrics_path": "/metrics",
            "static_configs": [
                {"targets": [target], "labels": {"service": name}}
                for name, target in sorted(targets.services.items())
            ],
        }
    ]
    for app in spec.web_apps:
        if app.manifest.metrics and app.name in targets.web_apps:
            jobs.append(
                {
                    "job_name": f"web-{app.name}",
                    "honor_labels": True,
                    "metrics_path": app.manifest.metrics,
                    "static_configs": [
                        {"targets": [targets.web_apps[app.name]], "labels": {"service": app.name}}
                    ],
                }
            )
    for job, hosts in targets.platform.items():
        entry: dict[str, Any] = {
            "job_name": job,
            "static_configs": [{"targets": list(hosts), "labels": {"service": job.removesuffix("-queues")}}],
        }
        _job_extras(job, entry)
        jobs.append(entry)
    return jobs


def render_prometheus_config(
    spec: PlatformSpec,
    targets: ScrapeTargets,
    alertmanager_urls: Sequence[str] | str = (),
    rule_files: Sequence[str] = (),
) -> dict[str, Any]:
    """``prometheus.yml`` as a dict; *alertmanager_urls* are ``host:port`` (a scheme is stripped)."""
    mon = spec.config.monitoring
    urls = [alertmanager_urls] if isinstance(alertmanager_urls, str) else list(alertmanager_urls)
    hosts = [u.split("://", 1)[-1].rstrip("/") for u in urls]
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": mon.scrape_interval,
            "evaluation_interval": mon.scrape_interval,
            "external_labels": {"stack": spec.stack, "environment": spec.config.environment},
        },
        "rule_files": list(rule_files),
        "scrape_configs": (
            _kubernetes_jobs(spec, targets) if targets.namespace else _local_jobs(spec, targets)
        ),
    }
    if hosts:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": hosts}]}]}
    return config
