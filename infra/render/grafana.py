"""Grafana provisioning: datasources, a dashboard provider, one dashboard per service + an overview.

Dashboards are built with ``grafana-foundation-sdk`` (Grafana's typed builders; works offline, emits
plain dashboard JSON) and returned as plain dicts. Panels use fixed ``[5m]`` rate windows rather than
``$__rate_interval`` so every PromQL expression (:func:`dashboard_queries`) can be checked by promtool
and run against a live Prometheus exactly as written.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import logs, loki, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from infra.spec import PlatformSpec

PROMETHEUS_UID = "prometheus"
LOKI_UID = "loki"
PROM = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
LOKI = DataSourceRef(type_val="loki", uid=LOKI_UID)
RATE = "5m"


def render_datasources(prometheus_url: str, loki_url: str) -> dict[str, Any]:
    """Grafana datasource provisioning file (fixed uids the dashboards refer to)."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": PROMETHEUS_UID,
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            },
            {
                "name": "Loki",
                "type": "loki",
                "uid": LOKI_UID,
                "access": "proxy",
                "url": loki_url,
                "isDefault": False,
                "editable": False,
            },
        ],
    }


def render_dashboard_provider(path: str) -> dict[str, Any]:
    """Dashboard provider provisioning file: load every JSON file under *path* into a 'Platform' folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "platform",
                "type": "file",
                "folder": "Platform",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }


def _prom(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def _series(title: str, unit: str, *queries: tuple[str, str]) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROM)
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_prom(expr, legend, chr(ord("A") + i)))
    return panel


def _service_queries(service: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    sel = f'service="{service}"'
    total = f"sum(rate(http_requests_total{{{sel}}}[{RATE}]))"
    errors = f'sum(rate(http_requests_total{{{sel}, status=~"5.."}}[{RATE}]))'
    bucket = f"sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{RATE}]))"
    return [
        (
            "Request rate by status",
            "reqps",
            [(f"sum by (status) (rate(http_requests_total{{{sel}}}[{RATE}]))", "{{status}}")],
        ),
        ("5xx ratio", "percentunit", [(f"{errors} / {total}", "5xx")]),
        (
            "Latency p50 / p99",
            "s",
            [(f"histogram_quantile(0.5, {bucket})", "p50"), (f"histogram_quantile(0.99, {bucket})", "p99")],
        ),
        (
            "Events published",
            "ops",
            [(f"sum by (event) (rate(messaging_published_total{{{sel}}}[{RATE}]))", "{{event}}")],
        ),
        (
            "Events consumed by outcome",
            "ops",
            [
                (
                    f"sum by (event, outcome) (rate(messaging_consumed_total{{{sel}}}[{RATE}]))",
                    "{{event}} {{outcome}}",
                )
            ],
        ),
    ]


def _overview_queries(spec: PlatformSpec) -> list[tuple[str, str, list[tuple[str, str]]]]:
    total = f"sum by (service) (rate(http_requests_total[{RATE}]))"
    errors = f'sum by (service) (rate(http_requests_total{{status=~"5.."}}[{RATE}]))'
    return [
        ("Request rate per service", "reqps", [(total, "{{service}}")]),
        ("5xx ratio per service", "percentunit", [(f"{errors} / {total}", "{{service}}")]),
        (
            "p99 latency per service",
            "s",
            [
                (
                    "histogram_quantile(0.99, sum by (service, le) "
                    f"(rate(http_request_duration_seconds_bucket[{RATE}])))",
                    "{{service}}",
                )
            ],
        ),
        (
            "Gateway requests by status",
            "reqps",
            [(f"sum by (status) (rate(gateway_http_requests_total[{RATE}]))", "{{status}}")],
        ),
        (
            "Messages ready per queue",
            "short",
            [("sum by (queue) (rabbitmq_detailed_queue_messages_ready)", "{{queue}}")],
        ),
        (
            "Dead-lettered per service",
            "ops",
            [
                (
                    f'sum by (service) (rate(messaging_consumed_total{{outcome="dead_lettered"}}[{RATE}]))',
                    "{{service}}",
                )
            ],
        ),
    ]


UP_QUERIES = (
    ("PostgreSQL up", "max(pg_up)"),
    ("Redis up", "max(redis_up)"),
    ("RabbitMQ up", 'max(up{job="rabbitmq"})'),
    ("Services up", 'sum(up{job="services"})'),
)


def _to_dict(builder: Dashboard) -> dict[str, Any]:
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True))


def _number_panels(dashboard: dict[str, Any]) -> dict[str, Any]:
    """Give every panel a unique id (the SDK leaves 0) and fill what the SDK leaves null or empty."""
    for i, panel in enumerate(dashboard["panels"], start=1):
        panel["id"] = i
        if panel.get("options") is None and panel["type"] != "row":
            panel["options"] = {}
    dashboard.setdefault("annotations", {}).setdefault("list", [])
    dashboard.setdefault("templating", {}).setdefault("list", [])
    return dashboard


def _service_dashboard(spec: PlatformSpec, service: str) -> dict[str, Any]:
    board = (
        Dashboard(f"Service: {service}")
        .uid(f"svc-{service}"[:40])
        .tags(["platform", "service", spec.stack])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("utc")
        .with_row(Row("Traffic"))
    )
    for title, unit, queries in _service_queries(service):
        board = board.with_panel(_series(title, unit, *queries))
    board = board.with_row(Row("Logs")).with_panel(
        logs.Panel()
        .title(f"{service} logs")
        .datasource(LOKI)
        .span(24)
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .with_target(loki.Dataquery().expr(loki_selector(service)).ref_id("A"))
    )
    return _number_panels(_to_dict(board))


def loki_selector(service: str) -> str:
    """LogQL for one service's logs (labels set by the Promtail config)."""
    return f'{{app="{service}"}} | json'


def _overview(spec: PlatformSpec) -> dict[str, Any]:
    board = (
        Dashboard(f"Platform overview ({spec.stack})")
        .uid("platform-overview")
        .tags(["platform", spec.stack])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("utc")
        .with_row(Row("Health"))
    )
    for title, expr in UP_QUERIES:
        board = board.with_panel(
            stat.Panel().title(title).datasource(PROM).span(6).with_target(_prom(expr, title, "A"))
        )
    board = board.with_row(Row("Traffic"))
    for title, unit, queries in _overview_queries(spec):
        board = board.with_panel(_series(title, unit, *queries))
    return _number_panels(_to_dict(board))


def render_dashboards(spec: PlatformSpec) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON: ``platform-overview.json`` and ``service-<svc>.json`` per service."""
    boards = {"platform-overview.json": _overview(spec)}
    for svc in sorted(spec.services, key=lambda s: s.name):
        boards[f"service-{svc.name}.json"] = _service_dashboard(spec, svc.name)
    return dict(sorted(boards.items()))


def dashboard_queries(spec: PlatformSpec) -> list[str]:
    """Every PromQL expression the dashboards use (sorted, unique)."""
    exprs: set[str] = set()
    for board in render_dashboards(spec).values():
        for panel in board["panels"]:
            if panel.get("datasource", {}).get("uid") != PROMETHEUS_UID:
                continue
            exprs.update(t["expr"] for t in panel.get("targets", []))
    return sorted(exprs)
