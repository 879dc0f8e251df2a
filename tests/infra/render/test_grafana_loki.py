"""Grafana provisioning and Loki/Promtail configs: wired to the spec, consistent, deterministic.

No grafana/loki/promtail binaries exist on these machines; PromQL in the dashboards is checked by
promtool in test_prometheus.py.
"""

from __future__ import annotations

import json

import yaml

from infra.render.grafana import (
    LOKI_UID,
    PROMETHEUS_UID,
    render_dashboard_provider,
    render_dashboards,
    render_datasources,
)
from infra.render.loki import render_loki_config, render_promtail_config
from infra.render.prometheus import METRICS
from infra.spec import PlatformSpec


def test_one_dashboard_per_service_plus_overview(spec: PlatformSpec) -> None:
    names = set(render_dashboards(spec))
    assert names == {"platform-overview.json"} | {f"service-{s.name}.json" for s in spec.services}


def test_dashboard_panels_have_unique_ids_and_known_datasources(spec: PlatformSpec) -> None:
    uids = {d["uid"] for d in render_datasources("http://p:9090", "http://l:3100")["datasources"]}
    for board in render_dashboards(spec).values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in uids
                assert all(t["refId"] for t in panel["targets"])


def test_service_dashboard_covers_traffic_errors_latency_messaging_and_logs(spec: PlatformSpec) -> None:
    svc = spec.services[0].name
    board = render_dashboards(spec)[f"service-{svc}.json"]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for metric in METRICS:
        assert metric in exprs
    assert "histogram_quantile(0.5," in exprs
    assert "histogram_quantile(0.99," in exprs
    logs = [p for p in board["panels"] if p["type"] == "logs"]
    assert logs[0]["datasource"]["uid"] == LOKI_UID
    assert f'app="{svc}"' in logs[0]["targets"][0]["expr"]


def test_dashboards_serialize_to_valid_json(spec: PlatformSpec) -> None:
    for board in render_dashboards(spec).values():
        assert json.loads(json.dumps(board))["schemaVersion"] >= 36


def test_datasources_use_fixed_uids() -> None:
    sources = render_datasources("http://prometheus:9090", "http://loki:3100")["datasources"]
    assert [(s["uid"], s["url"]) for s in sources] == [
        (PROMETHEUS_UID, "http://prometheus:9090"),
        (LOKI_UID, "http://loki:3100"),
    ]


def test_dashboard_provider_points_at_path() -> None:
    assert render_dashboard_provider("/var/lib/grafana/dashboards")["providers"][0]["options"]["path"] == (
        "/var/lib/grafana/dashboards"
    )


def test_loki_retention_follows_the_stack(spec: PlatformSpec) -> None:
    config = render_loki_config(spec)
    assert config["limits_config"]["retention_period"] == spec.config.logging.retention
    assert config["compactor"]["retention_enabled"] is True
    assert config["schema_config"]["configs"][0]["object_store"] == "filesystem"


def test_promtail_discovers_pods_in_the_stack_namespace(spec: PlatformSpec) -> None:
    job = render_promtail_config(spec, "http://loki:3100")["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [spec.config.namespace]}}]


def test_promtail_extracts_level_request_id_and_service(spec: PlatformSpec) -> None:
    stages = render_promtail_config(spec, "http://loki:3100")["scrape_configs"][0]["pipeline_stages"]
    json_stage = next(s["json"] for s in stages if "json" in s)
    assert {"level", "request_id", "service"} <= set(json_stage["expressions"])
    labels = next(s["labels"] for s in stages if "labels" in s)
    assert "request_id" not in labels  # unbounded cardinality stays in the line


def test_promtail_counts_gateway_statuses_under_the_alerted_name(spec: PlatformSpec) -> None:
    stages = render_promtail_config(spec, "http://loki:3100")["scrape_configs"][0]["pipeline_stages"]
    match = next(s["match"] for s in stages if "match" in s)
    metric = next(s["metrics"] for s in match["stages"] if "metrics" in s)
    ((name, cfg),) = metric.items()
    assert cfg["prefix"] + name == "gateway_http_requests_total"


def test_promtail_pushes_to_loki_push_api(spec: PlatformSpec) -> None:
    client = render_promtail_config(spec, "http://loki:3100/")["clients"][0]
    assert client["url"] == "http://loki:3100/loki/api/v1/push"


def test_promtail_local_variant_tails_files(spec: PlatformSpec) -> None:
    config = render_promtail_config(spec, "http://127.0.0.1:3100", log_files={"gateway": "/tmp/x/*.log"})
    job = config["scrape_configs"][0]
    assert job["static_configs"][0]["labels"] == {"app": "gateway", "__path__": "/tmp/x/*.log"}


def test_yaml_outputs_are_deterministic(spec: PlatformSpec) -> None:
    def render() -> str:
        return yaml.safe_dump(
            [
                render_loki_config(spec),
                render_promtail_config(spec, "http://l:3100"),
                render_dashboards(spec),
            ],
            sort_keys=True,
        )

    assert render() == render()
